// A relying party of the gateway's OpenID provider, for e2e/oidcrp_test.go:
// openid-client (v6, or v5 with --lib v5) discovers the provider from the
// issuer URL as its documentation shows, builds an authorization request
// with PKCE (S256), state and nonce, and prints it as one JSON line. The Go
// test drives the sign-in and writes the callback URL to stdin; the
// library then redeems the code, validates the ID token (signature from
// the JWKS, iss, aud, exp, nonce), fetches userinfo, and prints the result
// as one JSON line. Any failure prints {"error": …} and exits 1.
//
//   node rp.js --lib v6|v5 --issuer URL --client-id ID --client-secret S --redirect-uri URL
//
// The gateway's internal CA comes in NODE_EXTRA_CA_CERTS.
import readline from 'node:readline';
import * as v6 from 'openid-client';
import v5 from 'openid-client-v5';

const args = {};
for (let i = 2; i + 1 < process.argv.length; i += 2) {
  args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
}
const scope = 'openid profile email';
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function readLine() {
  const { value, done } = await lines.next();
  if (done) throw new Error('stdin closed before the callback URL');
  return value.trim();
}

async function runV6() {
  // Discovery from the issuer URL: /.well-known/openid-configuration.
  const config = await v6.discovery(new URL(args.issuer), args['client-id'], args['client-secret']);
  const verifier = v6.randomPKCECodeVerifier();
  const challenge = await v6.calculatePKCECodeChallenge(verifier);
  const state = v6.randomState();
  const nonce = v6.randomNonce();
  const url = v6.buildAuthorizationUrl(config, {
    redirect_uri: args['redirect-uri'], scope, code_challenge: challenge,
    code_challenge_method: 'S256', state, nonce,
  });
  out({ authorization_url: url.href, issuer: config.serverMetadata().issuer });
  const callback = new URL(await readLine());
  const tokens = await v6.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
  });
  const claims = tokens.claims();
  const userinfo = await v6.fetchUserInfo(config, tokens.access_token, claims.sub);
  const refreshed = await v6.refreshTokenGrant(config, tokens.refresh_token);
  out({ lib: 'openid-client v6', claims, userinfo, refreshed_claims: refreshed.claims() });
}

async function runV5() {
  const issuer = await v5.Issuer.discover(args.issuer);
  const client = new issuer.Client({
    client_id: args['client-id'], client_secret: args['client-secret'],
    redirect_uris: [args['redirect-uri']], response_types: ['code'],
  });
  const verifier = v5.generators.codeVerifier();
  const challenge = v5.generators.codeChallenge(verifier);
  const state = v5.generators.state();
  const nonce = v5.generators.nonce();
  const url = client.authorizationUrl({ scope, code_challenge: challenge, code_challenge_method: 'S256', state, nonce });
  out({ authorization_url: url, issuer: issuer.issuer });
  const callback = await readLine();
  const params = client.callbackParams(callback);
  const tokens = await client.callback(args['redirect-uri'], params, { code_verifier: verifier, state, nonce });
  const claims = tokens.claims(); // validated by callback, at_hash included
  const userinfo = await client.userinfo(tokens);
  const refreshed = await client.refresh(tokens.refresh_token);
  out({ lib: 'openid-client v5', claims, userinfo, refreshed_claims: refreshed.claims() });
}

try {
  await (args.lib === 'v5' ? runV5() : runV6());
  process.exit(0);
} catch (err) {
  out({ error: String(err && err.stack || err), cause: err && err.cause ? String(err.cause) : undefined, code: err && err.code });
  process.exit(1);
}
