// A client that registers itself at the gateway with openid-client v6's
// dynamicClientRegistration (RFC 7591), for e2e/registration_test.go, then
// uses the registration for the code flow with PKCE as any relying party
// would. It prints one JSON line after registering (the client
// information and the authorization URL), reads the callback URL from
// stdin, redeems the code, validates the ID token, refreshes, and prints
// a second line. Any failure prints {"error": …} and exits 1.
//
//   node register.js --issuer URL --redirect-uri URL --auth-method M [--initial-access-token T]
//
// The gateway's internal CA comes in NODE_EXTRA_CA_CERTS.
import readline from 'node:readline';
import * as client from 'openid-client';

const args = {};
for (let i = 2; i + 1 < process.argv.length; i += 2) {
  args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
}
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

async function run() {
  const metadata = {
    client_name: 'Registered by openid-client',
    redirect_uris: [args['redirect-uri']],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    scope: 'openid profile email',
    token_endpoint_auth_method: args['auth-method'],
  };
  const options = args['initial-access-token'] ? { initialAccessToken: args['initial-access-token'] } : {};
  const config = await client.dynamicClientRegistration(new URL(args.issuer), metadata, undefined, options);
  const registered = config.clientMetadata();
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: args['redirect-uri'], scope: metadata.scope, state, nonce,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  out({
    client_id: registered.client_id, has_secret: typeof registered.client_secret === 'string',
    registration_client_uri: registered.registration_client_uri,
    registration_access_token: registered.registration_access_token,
    token_endpoint_auth_method: registered.token_endpoint_auth_method,
    authorization_url: url.href,
  });
  const { value, done } = await lines.next();
  if (done) throw new Error('stdin closed before the callback URL');
  const tokens = await client.authorizationCodeGrant(config, new URL(value.trim()), {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
  });
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  out({ claims: tokens.claims(), refreshed_claims: refreshed.claims() });
}

try {
  await run();
  process.exit(0);
} catch (err) {
  out({ error: String(err && err.stack || err), cause: err && err.cause ? JSON.stringify(err.cause) : undefined, code: err && err.code });
  process.exit(1);
}
