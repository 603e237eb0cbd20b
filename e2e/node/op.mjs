// op.mjs: the upstream OpenID Provider for realmgate's end-to-end tests,
// panva's oidc-provider (OpenID Certified) with its development interactions.
//
//   node op.mjs --client-id ID --client-secret SECRET --redirect-uri URI [--redirect-uri URI ...]
//
// It listens on a free 127.0.0.1 port, and once it serves it prints one JSON
// line to stdout: {"issuer":"http://127.0.0.1:PORT"}. The issuer is the
// listener's address, so the caller never races for a port.
//
// Accounts: "alice" (alice@acme.test, groups finance-admins and staff) and
// "bob" (bob@acme.test, group staff). The ID token carries only sub (the
// provider's default conformIdTokenClaims); email, profile and groups come
// from userinfo, so realmgate must merge userinfo to see them.
//
// Once serving, it also prints one JSON line per token answer ({"event":"token",
// "id_token_claims":[names]}) and per userinfo answer ({"event":"userinfo",
// "status":200}), so the tests can check where realmgate's claims came from.
//
// The signing key is a fresh RS256 key made at start (kid "op-<random>"):
// nothing secret is kept in the repository.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    'client-id': { type: 'string', default: process.env.OP_CLIENT_ID },
    'client-secret': { type: 'string', default: process.env.OP_CLIENT_SECRET },
    'redirect-uri': { type: 'string', multiple: true, default: process.env.OP_REDIRECT_URI ? [process.env.OP_REDIRECT_URI] : [] },
  },
});
if (!args['client-id'] || !args['client-secret'] || args['redirect-uri'].length === 0) {
  console.error('usage: node op.mjs --client-id ID --client-secret SECRET --redirect-uri URI');
  process.exit(2);
}

const accounts = {
  alice: {
    email: 'alice@acme.test', email_verified: true,
    name: 'Alice Liddell', given_name: 'Alice', family_name: 'Liddell',
    groups: ['finance-admins', 'staff'],
  },
  bob: {
    email: 'bob@acme.test', email_verified: true,
    name: 'Bob Builder', given_name: 'Bob', family_name: 'Builder',
    groups: ['staff'],
  },
};

// A generated RS256 signing key with a kid (RFC 7517 §4.5) and alg.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: `op-${randomBytes(6).toString('hex')}`, alg: 'RS256', use: 'sig' };

const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(0, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: args['client-id'],
    client_secret: args['client-secret'],
    redirect_uris: args['redirect-uri'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [jwk] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name'],
    groups: ['groups'],
  },
  scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
  // RFC 7636: every authorization request must carry an S256 challenge, so a
  // broker that forgot PKCE upstream would be refused here.
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  async findAccount(_ctx, sub) {
    const a = accounts[sub];
    if (!a) return undefined;
    return { accountId: sub, async claims() { return { sub, ...a }; } };
  },
});
provider.on('server_error', (_ctx, err) => console.error('op server_error:', err));

// One JSON line on stdout per token and userinfo answer, so the test can
// prove what realmgate got from where: the names of the ID token's claims
// and that userinfo was served.
provider.use(async (ctx, next) => {
  await next();
  if (ctx.method === 'POST' && ctx.path === '/token' && ctx.status === 200 && ctx.body?.id_token) {
    const payload = JSON.parse(Buffer.from(ctx.body.id_token.split('.')[1], 'base64url').toString());
    console.log(JSON.stringify({ event: 'token', id_token_claims: Object.keys(payload).sort() }));
  } else if (ctx.path === '/me') {
    console.log(JSON.stringify({ event: 'userinfo', status: ctx.status }));
  }
});
server.on('request', provider.callback());

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

console.log(JSON.stringify({ issuer }));
