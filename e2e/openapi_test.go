package e2e

import (
	"context"
	"encoding/json"
	"os/exec"
	"testing"
	"time"
)

// openAPICheckDir is the Node project of the OpenAPI validators.
const openAPICheckDir = "openapi-check"

// TestOpenAPIValidates: the OpenAPI 3.1 description of the admin API and
// the public endpoints (docs/openapi.json, served at /oauth/openapi.json;
// caddyoauth's TestOpenAPIDescription and TestOpenAPIPublicEndpoints check
// it covers every route) is checked by validators nobody here wrote:
// @seriousme/openapi-schema-validator validates the document against the
// OpenAPI 3.1 schema, and Ajv validates every request example against its
// body's schema (JSON Schema 2020-12, OpenAPI 3.1's dialect). The schema
// is not a rubber stamp: a client body with a secret, which the admin API
// refuses as an unknown field, is refused by it too.
func TestOpenAPIValidates(t *testing.T) {
	npmInstallIn(t, openAPICheckDir, "@seriousme/openapi-schema-validator")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "check.mjs", "../../docs/openapi.json")
	cmd.Dir = openAPICheckDir
	out, err := cmd.Output()
	var res struct {
		Valid          bool            `json:"valid"`
		Examples       int             `json:"examples"`
		Failures       json.RawMessage `json:"failures"`
		Errors         json.RawMessage `json:"errors"`
		BadBodyRefused bool            `json:"bad_body_refused"`
	}
	if jerr := json.Unmarshal(out, &res); jerr != nil {
		t.Fatalf("check.mjs: %v %v: %s", err, jerr, out)
	}
	if err != nil || !res.Valid || res.Examples == 0 || !res.BadBodyRefused {
		t.Fatalf("OpenAPI document: valid %v, %d examples, failures %s, errors %s, a body with a secret refused: %v",
			res.Valid, res.Examples, res.Failures, res.Errors, res.BadBodyRefused)
	}
	t.Logf("docs/openapi.json: a valid OpenAPI 3.1 document; %d request examples fit their schemas", res.Examples)
}
