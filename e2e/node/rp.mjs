// rp.mjs: a downstream relying party for realmgate's end-to-end tests, panva's
// openid-client 6 (OpenID Certified), driven in two steps by the Go test,
// which plays the browser in between.
//
//   node rp.mjs start  --issuer URL --client-id ID --client-secret S --redirect-uri URI
//                      --state-file FILE [--login-hint EMAIL] [--scope "openid email profile"]
//     discovers the issuer, makes a PKCE verifier, state and nonce, saves them
//     to FILE and prints {"url": "<authorization URL>"}.
//
//   node rp.mjs finish --issuer URL --client-id ID --client-secret S
//                      --state-file FILE --callback URL
//     redeems the code (openid-client checks iss per RFC 9207, state, the ID
//     token's signature against the JWKS, its claims and nonce), fetches userinfo, introspects the access token,
//     refreshes (checking the new ID token), fetches userinfo again with the
//     refreshed access token, revokes the refresh token and checks that a
//     further refresh is refused. Prints one JSON object with what it saw.
//
// Any error openid-client raises is printed as {"error": ..., "code": ...,
// "cause": ...} on stdout with exit status 1, so the Go test can show it.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import * as client from 'openid-client';

const { positionals, values: args } = parseArgs({
  allowPositionals: true,
  options: {
    issuer: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    'redirect-uri': { type: 'string' },
    'state-file': { type: 'string' },
    'login-hint': { type: 'string' },
    scope: { type: 'string', default: 'openid email profile' },
    callback: { type: 'string' },
  },
});

function fail(err) {
  const out = { error: String(err?.message ?? err), code: err?.code, name: err?.name };
  if (err?.cause !== undefined) {
    try { out.cause = JSON.parse(JSON.stringify(err.cause)); } catch { out.cause = String(err.cause); }
  }
  if (err?.error !== undefined) out.oauth_error = err.error;
  if (err?.error_description !== undefined) out.oauth_error_description = err.error_description;
  console.log(JSON.stringify(out));
  process.exit(1);
}

async function config() {
  for (const k of ['issuer', 'client-id', 'client-secret', 'state-file']) {
    if (!args[k]) throw new Error(`--${k} is required`);
  }
  // Plain http is allowed only because every peer listens on loopback.
  // Non-repudiation checks make openid-client verify the ID token's JWS
  // signature against realmgate's JWKS too (by default it trusts the TLS
  // channel of the token endpoint instead).
  return client.discovery(new URL(args.issuer), args['client-id'], args['client-secret'], undefined,
    { execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks] });
}

async function start() {
  if (!args['redirect-uri']) throw new Error('--redirect-uri is required');
  const cfg = await config();
  const verifier = client.randomPKCECodeVerifier();
  const saved = {
    redirect_uri: args['redirect-uri'],
    code_verifier: verifier,
    state: client.randomState(),
    nonce: client.randomNonce(),
  };
  const params = {
    redirect_uri: saved.redirect_uri,
    scope: args.scope,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state: saved.state,
    nonce: saved.nonce,
  };
  if (args['login-hint']) params.login_hint = args['login-hint'];
  writeFileSync(args['state-file'], JSON.stringify(saved), { mode: 0o600 });
  console.log(JSON.stringify({ url: client.buildAuthorizationUrl(cfg, params).href }));
}

async function finish() {
  if (!args.callback) throw new Error('--callback is required');
  const saved = JSON.parse(readFileSync(args['state-file'], 'utf8'));
  const cfg = await config();
  const tokens = await client.authorizationCodeGrant(cfg, new URL(args.callback), {
    pkceCodeVerifier: saved.code_verifier,
    expectedState: saved.state,
    expectedNonce: saved.nonce,
    idTokenExpected: true,
  });
  const idClaims = tokens.claims();
  const userinfo = await client.fetchUserInfo(cfg, tokens.access_token, idClaims.sub);
  const introspection = await client.tokenIntrospection(cfg, tokens.access_token);

  const refreshed = await client.refreshTokenGrant(cfg, tokens.refresh_token);
  const refreshedClaims = refreshed.claims();
  const userinfoAfterRefresh = await client.fetchUserInfo(cfg, refreshed.access_token, idClaims.sub);

  // The first refresh token was rotated away; revoke the live one, then
  // check the family is dead.
  await client.tokenRevocation(cfg, refreshed.refresh_token);
  let refreshAfterRevoke = 'accepted';
  try {
    await client.refreshTokenGrant(cfg, refreshed.refresh_token);
  } catch (err) {
    refreshAfterRevoke = err?.error ?? String(err?.message ?? err);
  }

  console.log(JSON.stringify({
    server_issuer: cfg.serverMetadata().issuer,
    token_type: tokens.token_type,
    scope: tokens.scope,
    id_token_claims: idClaims,
    userinfo,
    introspection,
    refresh: {
      id_token_claims: refreshedClaims ?? null,
      new_refresh_token: Boolean(refreshed.refresh_token) && refreshed.refresh_token !== tokens.refresh_token,
      new_access_token: refreshed.access_token !== tokens.access_token,
      userinfo: userinfoAfterRefresh,
    },
    refresh_after_revoke: refreshAfterRevoke,
  }));
}

try {
  switch (positionals[0]) {
    case 'start': await start(); break;
    case 'finish': await finish(); break;
    default:
      console.error('usage: node rp.mjs start|finish ...');
      process.exit(2);
  }
} catch (err) {
  fail(err);
}
