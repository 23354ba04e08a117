// An OpenID provider that nobody in this project wrote: panva's
// oidc-provider (the version package-lock.json pins), started by
// e2e/oidcprovider_test.go to issue the access tokens that a real Caddy
// with oauth_scope must accept.
//
//   node server.js --port PORT --client-id ID --client-secret SECRET \
//     --resource URI [--resource URI ...]
//
// It listens on 127.0.0.1:PORT over plain http (oauth_scope accepts http
// issuers for loopback hosts only), and its issuer is
// http://127.0.0.1:PORT. Everything is the library's default but for what
// the test needs:
//   - one confidential client that may use the client_credentials grant
//     (features.clientCredentials is off by default), authenticating with
//     client_secret_basic (the default);
//   - the resources the test names (features.resourceIndicators, RFC 8707,
//     on by default but refusing every resource until getResourceServerInfo
//     says otherwise): each has the scopes user:read and user:write, and a
//     token for it is an RFC 9068 JWT access token (accessTokenFormat
//     'jwt'), its aud the resource, signed with the library's default
//     algorithm (RS256) and its quick-start development key, whose JWK
//     carries alg RS256. (An RSA key of one's own without alg would be
//     published without it, and the discovery document would list PS256
//     and RS256: oauth_scope then refuses the key unless the issuer block
//     says `algorithms RS256`.)
// Without a resource parameter the provider issues its default opaque
// access tokens.
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import Provider, { errors } from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    resource: { type: 'string', multiple: true, default: [] },
  },
  strict: true,
});

const port = Number(args.port);
if (!Number.isInteger(port) || port <= 0 || port > 65535 || !args['client-id'] || !args['client-secret']) {
  console.error('usage: node server.js --port PORT --client-id ID --client-secret SECRET --resource URI...');
  process.exit(2);
}
const resources = new Set(args.resource);

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: args['client-id'],
    client_secret: args['client-secret'],
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
  }],
  features: {
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      async getResourceServerInfo(ctx, resourceIndicator) {
        if (!resources.has(resourceIndicator)) {
          throw new errors.InvalidTarget();
        }
        return {
          scope: 'user:read user:write',
          accessTokenFormat: 'jwt',
        };
      },
    },
  },
});

// What the provider refuses or fails at goes to stderr, which the test
// shows when it fails.
for (const event of ['grant.error', 'server_error']) {
  provider.on(event, (ctx, err) => {
    console.error(`${event}: ${err.name}: ${err.message}${err.error_description ? ` (${err.error_description})` : ''}`);
  });
}

const server = createServer(provider.callback());
server.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on http://127.0.0.1:${port}`);
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
