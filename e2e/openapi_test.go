package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// validateOpenAPI checks docs/openapi.json with validators nobody here
// wrote: openapi-spec-validator (the document against the OpenAPI 3.1
// schema) and openapi-schema-validator (each request example against the
// schema of its body, with OpenAPI 3.1's dialect). It prints what it
// checked.
const validateOpenAPI = `
import json, sys
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename
from openapi_schema_validator import validate as validate_instance, OAS31Validator
spec, _ = read_from_filename(sys.argv[1])
validate(spec)
schemas = spec["components"]["schemas"]
n = 0
for path, item in spec["paths"].items():
    for method, op in item.items():
        if method in ("parameters", "servers"):
            continue
        for ct, media in op.get("requestBody", {}).get("content", {}).items():
            schema = media["schema"]
            if "$ref" in schema:
                schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
            for name, ex in media.get("examples", {}).items():
                validate_instance(ex["value"], schema, cls=OAS31Validator)
                n += 1
print("valid; examples checked:", n)
`

// TestOpenAPIValidates: the admin API's OpenAPI 3.1 description (served at
// /oauth/openapi.json; caddyoauth's TestOpenAPIDescription checks it
// covers every route) is a valid OpenAPI 3.1 document and its example
// requests fit their schemas; a request the schema refuses is refused.
func TestOpenAPIValidates(t *testing.T) {
	out, err := exec.Command("python3", "-c", validateOpenAPI, "../docs/openapi.json").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "valid; examples checked:") || strings.Contains(string(out), "checked: 0") {
		t.Fatalf("openapi-spec-validator: %v\n%s", err, out)
	}
	t.Logf("%s", strings.TrimSpace(string(out)))

	// The validator is not a rubber stamp: a secret in a client body, which
	// the admin API refuses as an unknown field, fails the schema too.
	bad := `
import json, sys
from openapi_spec_validator.readers import read_from_filename
from openapi_schema_validator import validate, OAS31Validator
spec, _ = read_from_filename(sys.argv[1])
try:
    validate({"client_id": "x", "scope": "a", "secret": "mine"}, spec["components"]["schemas"]["ClientMetadata"], cls=OAS31Validator)
except Exception as e:
    print("refused:", type(e).__name__)
`
	out, err = exec.Command("python3", "-c", bad, "../docs/openapi.json").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "refused: ValidationError") {
		t.Errorf("a client body with a secret passed the schema: %v\n%s", err, out)
	}
}
