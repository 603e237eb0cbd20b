// A SAML 2.0 service provider built on samlify (which nobody on the
// realmgate team wrote), for realmgate as identity provider: it signs its
// AuthnRequests (HTTP-Redirect: the query signature; HTTP-POST: an
// enveloped XML signature), has samlify verify realmgate's signed Response
// (and the SAML schemas, with xmllint), checks Audience, Recipient,
// Destination and InResponseTo itself (samlify leaves them to the app), and
// takes part in single logout both ways over HTTP-Redirect with signed
// messages.
//
//   node sp.mjs CONFIG.json
//
// CONFIG.json: {"key": "sp.key", "cert": "sp.crt", "idpMetadata": "<realmgate>/saml-idp/metadata?app=<id>"}
// The SP is at the URL it prints: entityID <url>/metadata, GET /login?binding=redirect|post
// starts a sign-in, POST /acs is the AssertionConsumerService (303 to /app
// on success), GET /logout starts an SP-initiated logout of the latest
// session, GET /slo is the SingleLogoutService (HTTP-Redirect).
// It listens on 127.0.0.1 port 0 and prints {"url": ...} when ready, then
// one JSON line per event ({"event": "login"|"logout_request"|"logout_response"|"error", ...}).
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import samlify from 'samlify';
import validator from '@authenio/samlify-node-xmllint';

if (process.argv.length !== 3) {
  console.error('usage: node sp.mjs CONFIG.json');
  process.exit(2);
}
const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
samlify.setSchemaValidator(validator);

const log = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
const { redirect, post } = samlify.Constants.namespace.binding;

let base; // this SP's URL, known once listening
let sp;
let idp; // realmgate, from its metadata (fetched on first use: realmgate starts after us)
const pending = new Set(); // AuthnRequest IDs awaiting their Response
const logouts = new Set(); // LogoutRequest IDs awaiting their LogoutResponse
const sessions = []; // {nameID, sessionIndex}, newest last

async function identityProvider() {
  if (!idp) {
    const res = await fetch(cfg.idpMetadata);
    if (!res.ok) throw new Error(`GET ${cfg.idpMetadata}: ${res.status}`);
    idp = samlify.IdentityProvider({ metadata: await res.text(), wantLogoutRequestSigned: true, wantLogoutResponseSigned: true });
  }
  return idp;
}

function page(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><html><head><title>samlify SP</title></head><body>${body}</body></html>`);
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 1 << 20) throw new Error('body too large');
  }
  return Object.fromEntries(new URLSearchParams(body));
}

// redirectParts returns what samlify needs to verify an HTTP-Redirect
// message: the query and the octets the signature covers (SAML Bindings
// §3.4.4.1: the raw query parts in this order).
function redirectParts(url, param) {
  const raw = url.search.slice(1).split('&');
  const part = (name) => raw.find((p) => p.startsWith(name + '='));
  return { query: Object.fromEntries(url.searchParams), octetString: [param, 'RelayState', 'SigAlg'].map(part).filter(Boolean).join('&') };
}

async function handleLogin(req, res, url) {
  const i = await identityProvider();
  const binding = url.searchParams.get('binding') === 'post' ? 'post' : 'redirect';
  const relay = `rs-${binding}`;
  const r = sp.createLoginRequest(i, binding, { relayState: relay });
  pending.add(r.id);
  log({ event: 'login_request', binding, id: r.id });
  if (binding === 'redirect') {
    res.writeHead(302, { Location: r.context });
    res.end();
    return;
  }
  page(res, 200, `<form method="post" action="${esc(r.entityEndpoint)}">
<input type="hidden" name="SAMLRequest" value="${esc(r.context)}">
<input type="hidden" name="RelayState" value="${esc(r.relayState ?? relay)}">
<button type="submit">Continue</button></form><script>document.forms[0].submit()</script>`);
}

// handleACS has samlify verify the Response (signature, issuer, times,
// schema), then checks what samlify leaves to the app.
async function handleACS(req, res) {
  const i = await identityProvider();
  const body = await readForm(req);
  const { extract, samlContent } = await sp.parseLoginResponse(i, 'post', { body });
  const acs = `${base}/acs`;
  // The Response is signed as a whole (realmgate's app registers sign: both),
  // so its SubjectConfirmationData is covered by a verified signature.
  const scd = samlify.Extractor.extract(samlContent, [{
    key: 'scd', localPath: ['Response', 'Assertion', 'Subject', 'SubjectConfirmation', 'SubjectConfirmationData'],
    attributes: ['Recipient', 'InResponseTo', 'NotOnOrAfter'],
  }]).scd ?? {};
  const problems = [];
  if (extract.audience !== sp.entityMeta.getEntityID()) problems.push(`audience ${extract.audience}`);
  if (scd.recipient !== acs) problems.push(`recipient ${scd.recipient}`);
  if (extract.response?.destination !== acs) problems.push(`destination ${extract.response?.destination}`);
  const irt = extract.response?.inResponseTo;
  if (!pending.delete(irt) || scd.inResponseTo !== irt) problems.push(`InResponseTo ${irt} / ${scd.inResponseTo} answers no pending request`);
  if (problems.length > 0) {
    log({ event: 'error', error: `Response refused: ${problems.join('; ')}` });
    page(res, 403, `<p>Response refused: ${esc(problems.join('; '))}</p>`);
    return;
  }
  const sessionIndex = extract.sessionIndex?.sessionIndex;
  sessions.push({ nameID: extract.nameID, sessionIndex });
  log({ event: 'login', in_response_to: irt, relay_state: body.RelayState ?? '', name_id: extract.nameID,
    session_index: sessionIndex, audience: extract.audience, recipient: scd.recipient, attributes: extract.attributes });
  res.writeHead(303, { Location: `${base}/app?relay=${encodeURIComponent(body.RelayState ?? '')}` });
  res.end();
}

// handleLogout starts an SP-initiated logout of the latest session.
async function handleLogout(req, res) {
  const i = await identityProvider();
  const s = sessions.pop();
  if (!s) {
    page(res, 400, '<p>No session to log out.</p>');
    return;
  }
  const { id, context } = sp.createLogoutRequest(i, 'redirect', { logoutNameID: s.nameID, sessionIndex: s.sessionIndex }, 'sp-bye');
  logouts.add(id);
  log({ event: 'logout_request_sent', id });
  res.writeHead(302, { Location: context });
  res.end();
}

// handleSLO: realmgate's LogoutRequest (realmgate-initiated) must be signed
// and name a session this SP has; it is answered with a signed
// LogoutResponse. realmgate's LogoutResponse must be signed and answer a
// request this SP sent.
async function handleSLO(req, res, url) {
  const i = await identityProvider();
  if (url.searchParams.has('SAMLRequest')) {
    const parsed = await sp.parseLogoutRequest(i, 'redirect', redirectParts(url, 'SAMLRequest'));
    const { nameID, sessionIndex } = parsed.extract;
    const k = sessions.findIndex((s) => s.nameID === nameID && s.sessionIndex === sessionIndex);
    log({ event: 'logout_request', signed: Boolean(parsed.sigAlg), name_id: nameID, session_index: sessionIndex, known: k >= 0 });
    if (k >= 0) sessions.splice(k, 1);
    const r = sp.createLogoutResponse(i, parsed, 'redirect', url.searchParams.get('RelayState') ?? '');
    res.writeHead(302, { Location: r.context });
    res.end();
    return;
  }
  const parsed = await sp.parseLogoutResponse(i, 'redirect', redirectParts(url, 'SAMLResponse'));
  const irt = parsed.extract.response?.inResponseTo;
  log({ event: 'logout_response', signed: Boolean(parsed.sigAlg), in_response_to: irt, answered: logouts.delete(irt),
    relay_state: url.searchParams.get('RelayState') ?? '' });
  page(res, 200, '<h1>Signed out of the samlify app</h1>');
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url, base);
  try {
    if (url.pathname === '/metadata') {
      res.writeHead(200, { 'Content-Type': 'application/samlmetadata+xml' });
      res.end(sp.getMetadata());
    } else if (url.pathname === '/login' && req.method === 'GET') {
      await handleLogin(req, res, url);
    } else if (url.pathname === '/acs' && req.method === 'POST') {
      await handleACS(req, res);
    } else if (url.pathname === '/app' && req.method === 'GET') {
      page(res, 200, '<h1>Signed in to the samlify app</h1>');
    } else if (url.pathname === '/logout' && req.method === 'GET') {
      await handleLogout(req, res);
    } else if (url.pathname === '/slo' && req.method === 'GET') {
      await handleSLO(req, res, url);
    } else {
      page(res, 404, 'not found');
    }
  } catch (err) {
    log({ event: 'error', path: url.pathname, error: String(err?.message ?? err) });
    if (!res.headersSent) page(res, 400, `<p>SAML error: ${esc(err?.message ?? err)}</p>`);
  }
});

// The first xmllint validation compiles xmllint: do it before saying ready.
await validator.validate('<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_warmup" Version="2.0" IssueInstant="2020-01-01T00:00:00Z"><saml:Issuer>warm-up</saml:Issuer></samlp:AuthnRequest>');

server.listen(0, '127.0.0.1', () => {
  base = `http://127.0.0.1:${server.address().port}`;
  sp = samlify.ServiceProvider({
    entityID: `${base}/metadata`,
    privateKey: readFileSync(cfg.key),
    signingCert: readFileSync(cfg.cert),
    authnRequestsSigned: true,
    wantAssertionsSigned: true,
    wantMessageSigned: true,
    // Where the AuthnRequest's enveloped signature goes (HTTP-POST). Without
    // it samlify 2.13.1, given wantMessageSigned, places it after a
    // Response's Issuer, which an AuthnRequest does not have.
    signatureConfig: { prefix: 'ds', location: { reference: "/*[local-name(.)='AuthnRequest']/*[local-name(.)='Issuer']", action: 'after' } },
    wantLogoutRequestSigned: true,
    wantLogoutResponseSigned: true,
    nameIDFormat: ['urn:oasis:names:tc:SAML:2.0:nameid-format:persistent'],
    assertionConsumerService: [{ Binding: post, Location: `${base}/acs` }],
    singleLogoutService: [{ Binding: redirect, Location: `${base}/slo` }],
  });
  log({ url: base });
});
