// A DPoP client of the gateway for e2e/dpop_test.go: panva's openid-client
// v6, as its documentation shows DPoP (RFC 9449). It discovers the
// authorization server, makes a DPoP key pair, gets a client-credentials
// token with a DPoP proof (following use_dpop_nonce by itself when the
// server asks for a nonce), calls the API with the token and a fresh proof,
// and prints one JSON line. Any failure prints {"error": …} and exits 1.
//
//   node dpop.js --issuer URL --client-id ID --client-secret S --scope S --resource-url URL
//
// The gateway's internal CA comes in NODE_EXTRA_CA_CERTS.
import * as client from 'openid-client';

const args = {};
for (let i = 2; i + 1 < process.argv.length; i += 2) {
  args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
}
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

try {
  const config = await client.discovery(new URL(args.issuer), args['client-id'], args['client-secret']);
  const keyPair = await client.randomDPoPKeyPair('ES256');
  const DPoP = client.getDPoPHandle(config, keyPair);
  const tokens = await client.clientCredentialsGrant(config, { scope: args.scope }, { DPoP });
  const res = await client.fetchProtectedResource(config, tokens.access_token, new URL(args['resource-url']), 'GET', undefined, undefined, { DPoP });
  out({
    token_type: tokens.token_type,
    access_token: tokens.access_token,
    status: res.status,
    body: await res.text(),
    dpop_algs: config.serverMetadata().dpop_signing_alg_values_supported,
  });
  process.exit(0);
} catch (err) {
  out({ error: String(err && err.stack || err), cause: err && err.cause ? JSON.stringify(err.cause) : undefined, code: err && err.code });
  process.exit(1);
}
