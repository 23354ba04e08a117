// Checks an OpenAPI 3.1 document with validators nobody here wrote, for
// e2e/openapi_test.go: @seriousme/openapi-schema-validator validates the
// document against the OpenAPI 3.1 schema; Ajv (JSON Schema 2020-12, the
// dialect of OpenAPI 3.1) validates every request example against the
// schema of its body, and a client body with a secret, which the admin API
// refuses, against ClientMetadata (it must be refused). Prints one JSON
// line; exits 1 on any failure.
//
//   node check.mjs ../../docs/openapi.json
import { readFileSync } from 'node:fs';
import { Validator } from '@seriousme/openapi-schema-validator';
import Ajv2020 from 'ajv/dist/2020.js';

const out = (o, code) => { process.stdout.write(JSON.stringify(o) + '\n'); process.exit(code); };
try {
  const spec = JSON.parse(readFileSync(process.argv[2], 'utf8'));
  const res = await new Validator().validate(spec);
  if (!res.valid) out({ valid: false, errors: res.errors }, 1);
  if (!String(spec.openapi).startsWith('3.1')) out({ valid: false, errors: 'not OpenAPI 3.1: ' + spec.openapi }, 1);
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  ajv.addSchema(spec, 'openapi.json');
  const schemaOf = (s) => (s.$ref ? ajv.getSchema('openapi.json' + s.$ref) : ajv.compile(s));
  let examples = 0;
  const failures = [];
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (method === 'parameters' || method === 'servers' || typeof op !== 'object') continue;
      for (const [ct, media] of Object.entries(op.requestBody?.content ?? {})) {
        if (!media.schema) continue;
        const validate = schemaOf(media.schema);
        for (const [name, ex] of Object.entries(media.examples ?? {})) {
          examples++;
          if (!validate(ex.value)) failures.push({ path, method, ct, name, errors: validate.errors });
        }
      }
    }
  }
  const client = ajv.getSchema('openapi.json#/components/schemas/ClientMetadata');
  const badRefused = !!client && !client({ client_id: 'x', scope: 'a', secret: 'mine' });
  out({ valid: failures.length === 0 && badRefused, examples, failures, bad_body_refused: badRefused }, failures.length === 0 && badRefused ? 0 : 1);
} catch (err) {
  out({ valid: false, errors: String(err && err.stack || err) }, 1);
}
