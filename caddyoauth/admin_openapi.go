package caddyoauth

import (
	_ "embed"
	"net/http"
)

// openAPIDoc is the OpenAPI 3.1 description of the admin API
// (docs/openapi.json is the same file; admin_openapi_test.go checks both
// and that it covers every route).
//
//go:embed openapi.json
var openAPIDoc []byte

// handleOpenAPI serves the description: GET /oauth/openapi.json.
func handleOpenAPI(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return methodNotAllowed(w, http.MethodGet)
	}
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(openAPIDoc)
	return err
}
