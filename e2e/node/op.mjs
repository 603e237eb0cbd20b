// op.mjs: the upstream OpenID Provider for realmgate's end-to-end tests,
// panva's oidc-provider (OpenID Certified) with its development interactions.
//
//   node op.mjs --client-id ID --client-secret SECRET --redirect-uri URI [--redirect-uri URI ...]
//               [--backchannel-logout-uri URI] [--host 127.0.0.X] [--groups-claim]
//
// It listens on a free 127.0.0.1 port (or one of --host, another loopback
// address), and once it serves it prints one JSON line to stdout:
// {"issuer":"http://127.0.0.1:PORT"}. The issuer is the listener's address,
// so the caller never races for a port.
//
// Accounts: "alice" (alice@acme.test, groups finance-admins and staff) and
// "bob" (bob@acme.test, group staff). The ID token carries only sub (the
// provider's default conformIdTokenClaims); email, profile and groups come
// from userinfo, so realmgate must merge userinfo to see them.
//
// Accounts "carol" (carol@secure.test) and "dave" (dave@secure.test), group
// staff, say how they authenticated: the login result carries amr, which
// oidc-provider puts in their ID tokens (amr is never filtered by
// conformIdTokenClaims): carol ["pwd"] (one factor), dave ["pwd", "otp"]
// (multi-factor). alice and bob get no amr, as before. (The openid scope
// lists amr so that the claims filter lets it into ID tokens.)
//
// --groups-claim sends groups with the profile scope too, as Microsoft Entra
// ID does once an app registration sets groupMembershipClaims: no groups
// scope is asked for (e2e/chrome's setup portal walk, an Entra-like IdP).
//
// --backchannel-logout-uri turns on the backchannelLogout feature and
// registers that URI (with backchannel_logout_session_required) for the
// client: ending the session at <issuer>/session/end then POSTs a logout
// token (OIDC Back-Channel Logout 1.0) there. oidc-provider refuses to
// send it to special-use addresses such as 127.0.0.1 (its SSRF guard); with
// this flag, and only then, its fetch goes without that guard, since every
// peer of these tests is on loopback.
//
// Once serving, it also prints one JSON line per token answer ({"event":"token",
// "id_token_claims":[names]}) and per userinfo answer ({"event":"userinfo",
// "status":200}), so the tests can check where realmgate's claims came from,
// one per authorization request ({"event":"authorization","acr_values":...,
// "prompt":...}), and one per back-channel logout it sent
// ({"event":"backchannel.success"|"backchannel.error", ...}).
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
    'backchannel-logout-uri': { type: 'string' },
    'groups-claim': { type: 'boolean', default: false },
    host: { type: 'string', default: '127.0.0.1' },
  },
});
if (!args['client-id'] || !args['client-secret'] || args['redirect-uri'].length === 0) {
  console.error('usage: node op.mjs --client-id ID --client-secret SECRET --redirect-uri URI');
  process.exit(2);
}
if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(args.host)) {
  console.error('--host must be a 127.0.0.0/8 address: the tests stay on loopback');
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
  carol: {
    email: 'carol@secure.test', email_verified: true,
    name: 'Carol Singlefactor', groups: ['staff'],
  },
  dave: {
    email: 'dave@secure.test', email_verified: true,
    name: 'Dave Twofactor', groups: ['staff'],
  },
};

// How each account authenticates (RFC 8176 values), put in the ID token's amr.
const amr = {
  carol: ['pwd'],
  dave: ['pwd', 'otp'],
};

// A generated RS256 signing key with a kid (RFC 7517 §4.5) and alg.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: `op-${randomBytes(6).toString('hex')}`, alg: 'RS256', use: 'sig' };

const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(0, args.host, resolve);
});
const issuer = `http://${args.host}:${server.address().port}`;

const backchannel = args['backchannel-logout-uri'];
const provider = new Provider(issuer, {
  clients: [{
    client_id: args['client-id'],
    client_secret: args['client-secret'],
    redirect_uris: args['redirect-uri'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...(backchannel ? { backchannel_logout_uri: backchannel, backchannel_logout_session_required: true } : {}),
  }],
  jwks: { keys: [jwk] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  claims: {
    // amr is what an interaction reported (carol, dave); the others have none.
    openid: ['sub', 'amr'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name', ...(args['groups-claim'] ? ['groups'] : [])],
    groups: ['groups'],
  },
  scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
  // RFC 7636: every authorization request must carry an S256 challenge, so a
  // broker that forgot PKCE upstream would be refused here.
  pkce: { required: () => true },
  ...(backchannel ? {
    fetch: (url, options) => {
      delete options.dispatcher; // the SSRF-guarding dispatcher: loopback is the point here
      return globalThis.fetch(url, options);
    },
  } : {}),
  features: {
    devInteractions: { enabled: true },
    backchannelLogout: { enabled: Boolean(backchannel) },
  },
  async findAccount(_ctx, sub) {
    const a = accounts[sub];
    if (!a) return undefined;
    return { accountId: sub, async claims() { return { sub, ...a }; } };
  },
});
provider.on('server_error', (_ctx, err) => console.error('op server_error:', err));
provider.on('backchannel.success', (_ctx, client, accountId, sid) => {
  console.log(JSON.stringify({ event: 'backchannel.success', client: client.clientId, account: accountId, sid }));
});
provider.on('backchannel.error', (_ctx, err, client, accountId, sid) => {
  console.log(JSON.stringify({ event: 'backchannel.error', client: client.clientId, account: accountId, sid, error: String(err?.message ?? err) }));
});

// The login step of devInteractions finishes with { login: { accountId } };
// add the account's amr there, the documented place an interaction reports
// how the user authenticated (it becomes the session's and ID token's amr).
const interactionResult = provider.interactionResult.bind(provider);
provider.interactionResult = (req, res, result, options) => {
  const id = result?.login?.accountId;
  if (id && amr[id]) result.login.amr = amr[id];
  return interactionResult(req, res, result, options);
};

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
  } else if (ctx.method === 'GET' && ctx.path === '/auth') {
    console.log(JSON.stringify({ event: 'authorization', acr_values: ctx.query.acr_values ?? null, prompt: ctx.query.prompt ?? null }));
  }
});
server.on('request', provider.callback());

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

console.log(JSON.stringify({ issuer }));
