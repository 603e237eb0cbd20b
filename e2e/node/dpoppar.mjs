// dpoppar.mjs: a public client of realmgate that uses pushed authorization
// requests (RFC 9126) and DPoP (RFC 9449) through panva's openid-client 6
// (OpenID Certified), driven in two steps by the Go test, which plays the
// browser in between.
//
//   node dpoppar.mjs start --issuer URL --client-id ID --redirect-uri URI
//                          --state-file FILE [--login-hint EMAIL]
//     discovers the issuer, makes a DPoP key (ES256), PKCE, state and nonce,
//     pushes the authorization request with buildAuthorizationUrlWithPAR and
//     a DPoP proof (binding the code to the key, RFC 9449 §10), saves the key
//     and secrets to FILE and prints {"url", "metadata"}: the authorization
//     URL (client_id and request_uri only) and the discovered PAR and DPoP
//     metadata.
//
//   node dpoppar.mjs finish --issuer URL --client-id ID --state-file FILE
//                           --callback URL
//     redeems the code with DPoP (openid-client checks iss, state, PKCE, the
//     ID token, its nonce, and token_type DPoP), fetches userinfo with the
//     DPoP-bound token, refreshes with the same key and fetches userinfo
//     again; answers server nonces (use_dpop_nonce) as openid-client does,
//     by retrying once with the DPoP-Nonce it got. Then the attacks, with
//     plain fetch: the bound token as a bearer token, with the DPoP scheme
//     and no proof, with a proof openid-client already used (replay), and a
//     refresh without a proof and with another key (key swap), after which
//     the right key's refresh fails too (the family is ended). Prints one
//     JSON object with what it saw.
//
// Any error openid-client raises is printed as {"error", "code", "cause"}
// on stdout with exit status 1, so the Go test can show it.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import * as client from 'openid-client';

const options = {};
for (const name of ['issuer', 'client-id', 'redirect-uri', 'state-file', 'login-hint', 'callback']) {
  options[name] = { type: 'string' };
}
const { positionals, values: args } = parseArgs({ allowPositionals: true, options });

function need(...names) {
  for (const k of names) {
    if (!args[k]) throw new Error(`--${k} is required`);
  }
}

// Requests openid-client sends, with their headers (lower-case names), so
// a proof it used can be replayed.
const sent = [];

async function config() {
  need('issuer', 'client-id');
  // A public client (token_endpoint_auth_method none). Plain http is
  // allowed only because every peer listens on loopback.
  const cfg = await client.discovery(new URL(args.issuer), args['client-id'], undefined, client.None(),
    { execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks] });
  cfg[client.customFetch] = async (url, init) => {
    const res = await fetch(url, init);
    sent.push({ url: String(url), method: init.method, headers: { ...init.headers }, status: res.status });
    return res;
  };
  return cfg;
}

const EC = { name: 'ECDSA', namedCurve: 'P-256' };

async function exportPair(kp) {
  return {
    privateKey: await crypto.subtle.exportKey('jwk', kp.privateKey),
    publicKey: await crypto.subtle.exportKey('jwk', kp.publicKey),
  };
}

async function importPair(saved) {
  return {
    privateKey: await crypto.subtle.importKey('jwk', saved.privateKey, EC, false, ['sign']),
    publicKey: await crypto.subtle.importKey('jwk', saved.publicKey, EC, true, ['verify']),
  };
}

async function start() {
  need('redirect-uri', 'state-file');
  const cfg = await config();
  const meta = cfg.serverMetadata();
  const keyPair = await client.randomDPoPKeyPair('ES256', { extractable: true });
  const DPoP = client.getDPoPHandle(cfg, keyPair);
  const verifier = client.randomPKCECodeVerifier();
  const saved = {
    redirect_uri: args['redirect-uri'],
    code_verifier: verifier,
    state: client.randomState(),
    nonce: client.randomNonce(),
    key: await exportPair(keyPair),
  };
  const params = {
    redirect_uri: saved.redirect_uri,
    scope: 'openid email profile',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state: saved.state,
    nonce: saved.nonce,
  };
  if (args['login-hint']) params.login_hint = args['login-hint'];
  const url = await client.buildAuthorizationUrlWithPAR(cfg, params, { DPoP });
  writeFileSync(args['state-file'], JSON.stringify(saved), { mode: 0o600 });
  const par = sent.find((r) => r.url === meta.pushed_authorization_request_endpoint && r.status === 201);
  return {
    url: url.href,
    par_with_dpop: Boolean(par?.headers.dpop),
    metadata: {
      pushed_authorization_request_endpoint: meta.pushed_authorization_request_endpoint,
      require_pushed_authorization_requests: meta.require_pushed_authorization_requests,
      dpop_signing_alg_values_supported: meta.dpop_signing_alg_values_supported,
    },
  };
}

// outcome runs fn and reports its OAuth error code instead of throwing.
async function outcome(fn) {
  try {
    return { ok: true, ...(await fn()) };
  } catch (err) {
    return { ok: false, error: err?.error ?? err?.code ?? String(err?.message ?? err), status: err?.status };
  }
}

// raw sends a userinfo request by hand and reports the answer.
async function raw(url, headers) {
  const res = await fetch(url, { headers });
  let body = {};
  try { body = await res.json(); } catch { /* empty */ }
  return { status: res.status, error: body.error ?? null, www_authenticate: res.headers.get('www-authenticate') };
}

async function finish() {
  need('callback', 'state-file');
  const cfg = await config();
  const meta = cfg.serverMetadata();
  const saved = JSON.parse(readFileSync(args['state-file'], 'utf8'));
  const DPoP = client.getDPoPHandle(cfg, await importPair(saved.key));

  const tokens = await client.authorizationCodeGrant(cfg, new URL(args.callback), {
    pkceCodeVerifier: saved.code_verifier,
    expectedState: saved.state,
    expectedNonce: saved.nonce,
    idTokenExpected: true,
  }, undefined, { DPoP });
  const idClaims = tokens.claims();
  const accessPayload = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url').toString());
  const userinfo = await client.fetchUserInfo(cfg, tokens.access_token, idClaims.sub, { DPoP });
  const used = sent.findLast((r) => r.url === meta.userinfo_endpoint && r.status === 200);

  const refreshed = await client.refreshTokenGrant(cfg, tokens.refresh_token, undefined, { DPoP });
  const userinfoAfterRefresh = await client.fetchUserInfo(cfg, refreshed.access_token, idClaims.sub, { DPoP });
  const refreshedPayload = JSON.parse(Buffer.from(refreshed.access_token.split('.')[1], 'base64url').toString());

  // The attacks.
  const at = refreshed.access_token;
  const asBearer = await raw(meta.userinfo_endpoint, { authorization: `Bearer ${at}` });
  const noProof = await raw(meta.userinfo_endpoint, { authorization: `DPoP ${at}` });
  const replayed = await raw(meta.userinfo_endpoint, { authorization: used.headers.authorization, dpop: used.headers.dpop });
  const refreshNoProof = await outcome(() => client.refreshTokenGrant(cfg, refreshed.refresh_token));
  const otherKey = client.getDPoPHandle(cfg, await client.randomDPoPKeyPair('ES256'));
  const refreshOtherKey = await outcome(() => client.refreshTokenGrant(cfg, refreshed.refresh_token, undefined, { DPoP: otherKey }));
  const refreshAfterSwap = await outcome(() => client.refreshTokenGrant(cfg, refreshed.refresh_token, undefined, { DPoP }));

  return {
    token_type: tokens.token_type,
    id_token_claims: idClaims,
    access_token_cnf: accessPayload.cnf ?? null,
    userinfo,
    nonce_challenges: sent.filter((r) => r.status === 400 || r.status === 401).length,
    refresh: {
      token_type: refreshed.token_type,
      new_refresh_token: refreshed.refresh_token !== tokens.refresh_token,
      access_token_cnf: refreshedPayload.cnf ?? null,
      userinfo: userinfoAfterRefresh,
    },
    attacks: {
      bearer: asBearer,
      no_proof: noProof,
      replayed_proof: replayed,
      refresh_without_proof: refreshNoProof,
      refresh_other_key: refreshOtherKey,
      refresh_after_key_swap: refreshAfterSwap,
    },
  };
}

const commands = { start, finish };
const cmd = positionals[0];
if (!commands[cmd]) {
  console.error(`usage: node dpoppar.mjs ${Object.keys(commands).join('|')} ...`);
  process.exit(2);
}
try {
  console.log(JSON.stringify(await commands[cmd]()));
} catch (err) {
  const out = { error: String(err?.message ?? err), code: err?.code, name: err?.name };
  if (err?.cause !== undefined) {
    try { out.cause = JSON.parse(JSON.stringify(err.cause)); } catch { out.cause = String(err.cause); }
  }
  if (err?.error !== undefined) out.oauth_error = err.error;
  console.log(JSON.stringify(out));
  process.exit(1);
}
