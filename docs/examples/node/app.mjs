// A web app that signs its users in with realmgate, using panva's
// openid-client (docs/integration.md). It starts the authorization code flow
// with PKCE at /, and at /callback lets openid-client check the state and the
// iss parameter, redeem the code and validate the ID token and its nonce.
import http from 'node:http';
import * as client from 'openid-client';

const issuer = new URL(process.env.ISSUER ?? 'http://127.0.0.1:8080');
const clientId = process.env.CLIENT_ID ?? 'example-app';
const clientSecret = process.env.CLIENT_SECRET ?? 'example-app-secret-do-not-use-in-production';
const redirectUri = new URL(process.env.REDIRECT_URI ?? 'http://127.0.0.1:3000/callback');

// Discovery. Plain http is allowed only for the loopback demo.
const config = await client.discovery(issuer, clientId, clientSecret, undefined,
  issuer.protocol === 'http:' ? { execute: [client.allowInsecureRequests] } : undefined);

const pending = new Map(); // state -> { verifier, nonce }; a real app keeps these in its session

http.createServer(async (req, res) => {
  const url = new URL(req.url, redirectUri);
  try {
    if (url.pathname === '/') {
      const verifier = client.randomPKCECodeVerifier();
      const state = client.randomState();
      const nonce = client.randomNonce();
      pending.set(state, { verifier, nonce });
      const params = {
        redirect_uri: redirectUri.href, scope: 'openid email profile roles', state, nonce,
        code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
      };
      const email = url.searchParams.get('email');
      if (email) params.login_hint = email; // straight to the user's IdP
      res.writeHead(302, { location: client.buildAuthorizationUrl(config, params).href }).end();
    } else if (url.pathname === redirectUri.pathname) {
      const state = url.searchParams.get('state');
      const p = pending.get(state);
      pending.delete(state);
      if (!p) {
        res.writeHead(400).end('unknown state');
        return;
      }
      const tokens = await client.authorizationCodeGrant(config, url, {
        pkceCodeVerifier: p.verifier, expectedState: state, expectedNonce: p.nonce, idTokenExpected: true,
      });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(tokens.claims())); // tid, roles, email, ...
    } else {
      res.writeHead(404).end();
    }
  } catch (err) {
    res.writeHead(502).end(String(err));
  }
}).listen(Number(redirectUri.port), redirectUri.hostname, () => console.log(`listening on ${redirectUri.origin}`));
