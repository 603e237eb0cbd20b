// m2m.mjs: a machine-to-machine client for realmgate's end-to-end tests,
// panva's openid-client 6 (OpenID Certified) running the client
// credentials grant (RFC 6749 §4.4).
//
//   node m2m.mjs --issuer URL --client-id ID
//                (--client-secret S | --private-jwk FILE) [--scope S] [--resource R]
//     discovers the issuer; authenticates with client_secret_basic, or with
//     private_key_jwt (RFC 7523) signed by the private JWK in FILE (its kid
//     and alg are used); asks for a token; verifies it with panva's jose
//     against the discovered jwks_uri (typ at+jwt, iss, exp); asks a second
//     time (a fresh assertion each time). Prints {"metadata": {...the
//     discovery fields m2m relies on}, "response": {...}, "header": {...},
//     "payload": {...}, "second_ok": true}.
//
// Any error openid-client raises is printed as {"error": ..., "code": ...,
// "oauth_error": ...} on stdout with exit status 1.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import * as jose from 'jose';
import * as client from 'openid-client';

const options = {};
for (const name of ['issuer', 'client-id', 'client-secret', 'private-jwk', 'scope', 'resource']) {
  options[name] = { type: 'string' };
}
const { values: args } = parseArgs({ options });

async function main() {
  if (!args.issuer || !args['client-id']) throw new Error('--issuer and --client-id are required');
  let auth;
  if (args['private-jwk']) {
    const jwk = JSON.parse(readFileSync(args['private-jwk'], 'utf8'));
    const key = await jose.importJWK(jwk, jwk.alg);
    auth = client.PrivateKeyJwt({ key, kid: jwk.kid });
  } else {
    auth = client.ClientSecretBasic(args['client-secret']);
  }
  // Plain http is allowed only because every peer listens on loopback.
  const cfg = await client.discovery(new URL(args.issuer), args['client-id'], undefined, auth,
    { execute: [client.allowInsecureRequests] });
  const params = {};
  if (args.scope) params.scope = args.scope;
  if (args.resource) params.resource = args.resource;
  const response = await client.clientCredentialsGrant(cfg, params);
  const md = cfg.serverMetadata();
  const jwks = jose.createRemoteJWKSet(new URL(md.jwks_uri), { [jose.customFetch]: fetch });
  const { payload, protectedHeader } = await jose.jwtVerify(response.access_token, jwks, {
    issuer: md.issuer, typ: 'at+jwt', requiredClaims: ['exp', 'iat', 'jti', 'sub', 'client_id'],
  });
  const second = await client.clientCredentialsGrant(cfg, params);
  return {
    metadata: {
      grant_types_supported: md.grant_types_supported,
      token_endpoint_auth_methods_supported: md.token_endpoint_auth_methods_supported,
      token_endpoint_auth_signing_alg_values_supported: md.token_endpoint_auth_signing_alg_values_supported,
    },
    response: { ...response },
    header: protectedHeader,
    payload,
    second_ok: typeof second.access_token === 'string' && second.access_token !== response.access_token,
  };
}

try {
  console.log(JSON.stringify(await main()));
} catch (err) {
  const out = { error: String(err?.message ?? err), code: err?.code, name: err?.name };
  if (err?.error !== undefined) out.oauth_error = err.error;
  if (err?.error_description !== undefined) out.oauth_error_description = err.error_description;
  console.log(JSON.stringify(out));
  process.exit(1);
}
