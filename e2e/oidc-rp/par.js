// A relying party that pushes its authorization requests (RFC 9126), for
// e2e/par_test.go: panva's openid-client v6 discovers the provider, pushes
// the request with buildAuthorizationUrlWithPAR (PKCE S256, state, nonce;
// client_secret_basic at the PAR endpoint), and prints the authorization
// URL (client_id and request_uri only) as one JSON line. The Go test drives
// the sign-in and writes the callback URL to stdin; the library redeems the
// code, validates the ID token and prints the claims. Any failure prints
// {"error": …} and exits 1.
//
//   node par.js --issuer URL --client-id ID --client-secret S --redirect-uri URL
import readline from 'node:readline';
import * as client from 'openid-client';

const args = {};
for (let i = 2; i + 1 < process.argv.length; i += 2) {
  args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
}
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

try {
  const config = await client.discovery(new URL(args.issuer), args['client-id'], args['client-secret']);
  const verifier = client.randomPKCECodeVerifier();
  const challenge = await client.calculatePKCECodeChallenge(verifier);
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = await client.buildAuthorizationUrlWithPAR(config, {
    redirect_uri: args['redirect-uri'], scope: 'openid profile', code_challenge: challenge,
    code_challenge_method: 'S256', state, nonce,
  });
  out({ authorization_url: url.href, par_endpoint: config.serverMetadata().pushed_authorization_request_endpoint });
  const { value, done } = await lines.next();
  if (done) throw new Error('stdin closed before the callback URL');
  const tokens = await client.authorizationCodeGrant(config, new URL(value.trim()), {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
  });
  out({ claims: tokens.claims() });
  process.exit(0);
} catch (err) {
  out({ error: String(err && err.stack || err), cause: err && err.cause ? JSON.stringify(err.cause) : undefined });
  process.exit(1);
}
