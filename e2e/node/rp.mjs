// rp.mjs: a downstream relying party for realmgate's end-to-end tests, panva's
// openid-client 6 (OpenID Certified), driven in two steps by the Go test,
// which plays the browser in between.
//
//   node rp.mjs start  --issuer URL --client-id ID --client-secret S --redirect-uri URI
//                      --state-file FILE [--login-hint EMAIL] [--scope "openid email profile"]
//                      [--tenant ID] [--acr-values V] [--prompt P] [--claims JSON]
//     discovers the issuer, makes a PKCE verifier, state and nonce, saves them
//     to FILE and prints {"url": "<authorization URL>"} (with realmgate's
//     tenant parameter, acr_values, prompt or the claims request parameter
//     (OIDC Core §5.5, e.g. an authentication context in acrs) when given).
//
//   node rp.mjs finish --issuer URL --client-id ID --client-secret S
//                      --state-file FILE --callback URL
//     redeems the code (openid-client checks iss per RFC 9207, state, the ID
//     token's signature against the JWKS, its claims and nonce), fetches userinfo, introspects the access token,
//     refreshes (checking the new ID token), fetches userinfo again with the
//     refreshed access token, revokes the refresh token and checks that a
//     further refresh is refused. Prints one JSON object with what it saw.
//
// The session lifecycle tests (lifecycle_test.go) use these commands too:
//
//   redeem --state-file FILE --callback URL
//     only redeems the code, with the same checks as finish, and prints
//     {"id_token", "access_token", "refresh_token", "scope", "claims"} (claims:
//     the ID token's) and "access_token_jwt": the access token verified by
//     verify-jwt (typ at+jwt, aud the client).
//   logout-url --id-token-hint JWT [--post-logout-redirect-uri URI] [--state S]
//     prints {"url"} made by openid-client's buildEndSessionUrl (OIDC
//     RP-Initiated Logout 1.0) from the discovered end_session_endpoint.
//   probe [--refresh-token RT] [--access-token AT [--sub SUB]]
//     tries a refresh and userinfo and prints what happened:
//     {"refresh": {"ok", "error", ...}, "userinfo": {"ok", "error", ...}}.
//   exchange --subject-token T --subject-token-type TYPE [--actor-token T
//            --actor-token-type TYPE] [--audience A] [--scope S]
//     an RFC 8693 token exchange through openid-client's genericGrantRequest;
//     prints {"ok": true, "response": {...}, "access_token_jwt": ...} (the
//     issued token verified by verify-jwt for the audience) or {"ok": false,
//     "error", "error_description"}.
//   verify-jwt --token JWT --typ TYP --audience AUD [--require c1,c2]
//     verifies a JWT realmgate issued with panva's jose (the library under
//     openid-client): signature against the discovered jwks_uri, typ header,
//     iss, aud, iat and exp, and the listed claims present. Prints
//     {"header", "payload"}.
//   serve --issuer URL --client-id ID --client-secret S
//     runs any of the commands above without starting node each time: it
//     reads one JSON object per stdin line, {"cmd": "redeem", "args":
//     {"callback": ...}} (args named as the options, without the dashes,
//     added to serve's own), and answers each with one JSON line on stdout:
//     the command's output, or {"error": ..., "failed": true}.
//
// Any error openid-client raises is printed as {"error": ..., "code": ...,
// "cause": ...} on stdout with exit status 1, so the Go test can show it.
import { readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

import * as jose from 'jose';
import * as client from 'openid-client';

const options = {};
for (const name of ['issuer', 'client-id', 'client-secret', 'redirect-uri', 'state-file', 'login-hint', 'scope',
  'callback', 'tenant', 'acr-values', 'prompt', 'id-token-hint', 'post-logout-redirect-uri', 'state',
  'refresh-token', 'access-token', 'sub', 'subject-token', 'subject-token-type', 'actor-token',
  'actor-token-type', 'audience', 'token', 'typ', 'require', 'claims']) {
  options[name] = { type: 'string' };
}
const { positionals, values: cliArgs } = parseArgs({ allowPositionals: true, options });

function errorJSON(err) {
  const out = { error: String(err?.message ?? err), code: err?.code, name: err?.name };
  if (err?.cause !== undefined) {
    try { out.cause = JSON.parse(JSON.stringify(err.cause)); } catch { out.cause = String(err.cause); }
  }
  if (err?.error !== undefined) out.oauth_error = err.error;
  if (err?.error_description !== undefined) out.oauth_error_description = err.error_description;
  return out;
}

function need(args, ...names) {
  for (const k of names) {
    if (!args[k]) throw new Error(`--${k} is required`);
  }
}

// Discovery results, by issuer and client (serve reuses them).
const configs = new Map();

async function config(args) {
  need(args, 'issuer', 'client-id', 'client-secret');
  const key = JSON.stringify([args.issuer, args['client-id'], args['client-secret']]);
  if (!configs.has(key)) {
    // Plain http is allowed only because every peer listens on loopback.
    // Non-repudiation checks make openid-client verify the ID token's JWS
    // signature against realmgate's JWKS too (by default it trusts the TLS
    // channel of the token endpoint instead).
    configs.set(key, await client.discovery(new URL(args.issuer), args['client-id'], args['client-secret'], undefined,
      { execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks] }));
  }
  return configs.get(key);
}

async function start(args) {
  need(args, 'redirect-uri', 'state-file');
  const cfg = await config(args);
  const verifier = client.randomPKCECodeVerifier();
  const saved = {
    redirect_uri: args['redirect-uri'],
    code_verifier: verifier,
    state: client.randomState(),
    nonce: client.randomNonce(),
  };
  const params = {
    redirect_uri: saved.redirect_uri,
    scope: args.scope ?? 'openid email profile',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state: saved.state,
    nonce: saved.nonce,
  };
  if (args['login-hint']) params.login_hint = args['login-hint'];
  if (args.tenant) params.tenant = args.tenant;
  if (args['acr-values']) params.acr_values = args['acr-values'];
  if (args.prompt) params.prompt = args.prompt;
  if (args.claims) params.claims = args.claims;
  writeFileSync(args['state-file'], JSON.stringify(saved), { mode: 0o600 });
  return { url: client.buildAuthorizationUrl(cfg, params).href };
}

// redeemCode redeems the authorization code of the callback URL with the
// secrets start saved: openid-client checks iss (RFC 9207), state, PKCE, the
// ID token's signature, claims and nonce.
async function redeemCode(cfg, args) {
  need(args, 'callback', 'state-file');
  const saved = JSON.parse(readFileSync(args['state-file'], 'utf8'));
  return client.authorizationCodeGrant(cfg, new URL(args.callback), {
    pkceCodeVerifier: saved.code_verifier,
    expectedState: saved.state,
    expectedNonce: saved.nonce,
    idTokenExpected: true,
  });
}

async function redeem(args) {
  const cfg = await config(args);
  const tokens = await redeemCode(cfg, args);
  return {
    id_token: tokens.id_token,
    access_token: tokens.access_token,
    refresh_token: tokens.refresh_token ?? null,
    scope: tokens.scope,
    claims: tokens.claims(),
    access_token_jwt: await verifyJWT({ ...args, token: tokens.access_token, typ: 'at+jwt', audience: args['client-id'] }),
  };
}

async function finish(args) {
  const cfg = await config(args);
  const tokens = await redeemCode(cfg, args);
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

  return {
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
  };
}

async function logoutURL(args) {
  need(args, 'id-token-hint');
  const cfg = await config(args);
  const params = { id_token_hint: args['id-token-hint'] };
  if (args['post-logout-redirect-uri']) params.post_logout_redirect_uri = args['post-logout-redirect-uri'];
  if (args.state) params.state = args.state;
  return { url: client.buildEndSessionUrl(cfg, params).href };
}

// outcome runs fn and reports its OAuth error code instead of throwing.
async function outcome(fn) {
  try {
    return { ok: true, ...(await fn()) };
  } catch (err) {
    return {
      ok: false,
      error: err?.error ?? err?.code ?? String(err?.message ?? err),
      error_description: err?.error_description,
      status: err?.status ?? err?.response?.status,
    };
  }
}

async function probe(args) {
  const cfg = await config(args);
  const out = {};
  if (args['refresh-token']) {
    out.refresh = await outcome(async () => {
      const r = await client.refreshTokenGrant(cfg, args['refresh-token']);
      return { refresh_token: r.refresh_token, access_token: r.access_token };
    });
  }
  if (args['access-token']) {
    out.userinfo = await outcome(async () => ({
      claims: await client.fetchUserInfo(cfg, args['access-token'], args.sub ?? client.skipSubjectCheck),
    }));
  }
  return out;
}

async function exchange(args) {
  const cfg = await config(args);
  const params = {};
  for (const k of ['subject-token', 'subject-token-type', 'actor-token', 'actor-token-type', 'audience', 'scope']) {
    if (args[k] !== undefined) params[k.replaceAll('-', '_')] = args[k];
  }
  return outcome(async () => {
    const response = await client.genericGrantRequest(cfg, 'urn:ietf:params:oauth:grant-type:token-exchange', params);
    const out = { response: { ...response } };
    if (args.audience && response.access_token) {
      out.access_token_jwt = await verifyJWT({ ...args, token: response.access_token, typ: 'at+jwt' });
    }
    return out;
  });
}

async function verifyJWT(args) {
  need(args, 'token', 'typ', 'audience');
  const cfg = await config(args);
  const meta = cfg.serverMetadata();
  const jwks = jose.createRemoteJWKSet(new URL(meta.jwks_uri));
  const { payload, protectedHeader } = await jose.jwtVerify(args.token, jwks, {
    issuer: meta.issuer,
    audience: args.audience,
    typ: args.typ,
    algorithms: meta.id_token_signing_alg_values_supported,
    requiredClaims: ['iat', 'exp', ...(args.require ? args.require.split(',') : [])],
  });
  return { header: protectedHeader, payload };
}

const commands = {
  start, finish, redeem, probe, exchange, 'logout-url': logoutURL, 'verify-jwt': verifyJWT,
};

async function serve(base) {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) continue;
    let out;
    try {
      const { cmd, args = {} } = JSON.parse(line);
      if (!commands[cmd]) throw new Error(`unknown command ${cmd}`);
      out = await commands[cmd]({ ...base, ...args });
    } catch (err) {
      out = { ...errorJSON(err), failed: true };
    }
    process.stdout.write(`${JSON.stringify(out)}\n`);
  }
}

const cmd = positionals[0];
if (cmd === 'serve') {
  await serve(cliArgs);
} else if (commands[cmd]) {
  try {
    console.log(JSON.stringify(await commands[cmd](cliArgs)));
  } catch (err) {
    console.log(JSON.stringify(errorJSON(err)));
    process.exit(1);
  }
} else {
  console.error(`usage: node rp.mjs ${Object.keys(commands).join('|')}|serve ...`);
  process.exit(2);
}
