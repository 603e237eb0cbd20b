// device.mjs: a CLI that signs its user in with the device authorization
// grant (RFC 8628) through panva's openid-client 6 (OpenID Certified), for
// realmgate's end-to-end tests.
//
//   node device.mjs --issuer URL --client-id ID [--scope S]
//     discovers the issuer (a public client, token_endpoint_auth_method
//     none), asks for a device code with initiateDeviceAuthorization and
//     prints the response as one JSON line, {"device": {...}, "metadata":
//     {...}}; then polls the token endpoint with pollDeviceAuthorizationGrant
//     (which waits the interval, keeps polling on authorization_pending and
//     slows down on slow_down) while the Go test, as the person, opens the
//     verification URI and signs in; prints a second JSON line with the
//     token response, the ID token's claims (openid-client checked its
//     signature, iss, aud and exp) and how many polls were answered
//     authorization_pending. Then the same device code again, which must
//     be refused: {"reuse": {"error": ...}}.
//
// Any error openid-client raises is printed as {"error": ..., "code": ...,
// "oauth_error": ...} on stdout with exit status 1.
import { parseArgs } from 'node:util';

import * as client from 'openid-client';

const options = {};
for (const name of ['issuer', 'client-id', 'scope']) {
  options[name] = { type: 'string' };
}
const { values: args } = parseArgs({ options });

let pending = 0;

async function main() {
  if (!args.issuer || !args['client-id']) throw new Error('--issuer and --client-id are required');
  // Plain http is allowed only because every peer listens on loopback.
  const cfg = await client.discovery(new URL(args.issuer), args['client-id'], undefined, client.None(),
    { execute: [client.allowInsecureRequests] });
  cfg[client.customFetch] = async (url, init) => {
    const res = await fetch(url, init);
    if (String(url).endsWith('/token') && res.status === 400) {
      const body = await res.clone().json().catch(() => ({}));
      if (body.error === 'authorization_pending') pending++;
    }
    return res;
  };
  const md = cfg.serverMetadata();
  const device = await client.initiateDeviceAuthorization(cfg, { scope: args.scope ?? 'openid email profile' });
  console.log(JSON.stringify({
    device,
    metadata: {
      device_authorization_endpoint: md.device_authorization_endpoint,
      grant_types_supported: md.grant_types_supported,
    },
  }));
  const tokens = await client.pollDeviceAuthorizationGrant(cfg, device);
  const out = { response: { ...tokens }, id_token_claims: tokens.claims(), pending };
  // Wait the interval, so the reuse is not answered slow_down.
  await new Promise((r) => setTimeout(r, (device.interval ?? 5) * 1000 + 500));
  try {
    await client.genericGrantRequest(cfg, 'urn:ietf:params:oauth:grant-type:device_code', { device_code: device.device_code });
    out.reuse = { ok: true };
  } catch (err) {
    out.reuse = { error: err?.error ?? String(err) };
  }
  return out;
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
