// SAML 2.0 identity providers built on samlify (which nobody on the
// realmgate team wrote), shaped like AD FS relying party trusts: each asks for
// signed AuthnRequests, verifies them, checks them against the SAML schemas
// with xmllint, logs a user in with a form, and answers with a signed (and,
// with "encrypt", encrypted) assertion whose attributes use AD FS claim-type
// URIs, multi-valued groups included.
//
//   node idp.mjs CONFIG.json
//
// CONFIG.json lists the IdPs one process serves (one process, because
// xmllint's first validation compiles it, which takes seconds):
//   [{"name": "contoso", "key": "idp.key", "cert": "idp.crt",
//     "spMetadata": "<realmgate>/saml/<id>/metadata", "domain": "contoso.test", "encrypt": true}]
// "unsignedRequests": true accepts AuthnRequests without a signature, as AD
// FS does by default (its metadata then says WantAuthnRequestsSigned="false").
// IdP NAME's metadata is at /NAME/metadata, its SSO service at /NAME/sso
// (HTTP-Redirect: GET, HTTP-POST: POST), its login form posts to /NAME/login,
// its Single Logout service is /NAME/slo (HTTP-Redirect) and GET /NAME/logout
// starts an IdP-initiated logout of the latest session.
// The process listens on 127.0.0.1 port 0 and prints one JSON line when
// ready, {"url": ...}; then one JSON line per event
// ({"idp": NAME, "event": "request"|"response"|"error", ...}).
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import samlify from 'samlify';
import validator from '@authenio/samlify-node-xmllint';

if (process.argv.length !== 3) {
  console.error('usage: node idp.mjs CONFIG.json');
  process.exit(2);
}
const configs = JSON.parse(readFileSync(process.argv[2], 'utf8'));

samlify.setSchemaValidator(validator);

const log = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

// The directory (one user, alice, in the IdP's domain): AD FS sends these
// claim types for a user of Active Directory.
const claims = {
  email: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress',
  upn: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn',
  givenName: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname',
  surname: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname',
  name: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name',
  role: 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role',
  groupsid: 'http://schemas.microsoft.com/ws/2008/06/identity/claims/groupsid',
  amr: 'http://schemas.microsoft.com/claims/authnmethodsreferences',
};
const directory = (domain) => ({
  alice: {
    password: 'wonderland',
    immutableID: 'Tx5Qm0Zc8kKZr3K1mJ0g2A==', // AD FS persistent NameIDs are base64 objectGUIDs
    attrs: {
      [claims.email]: [`alice@${domain}`],
      [claims.upn]: [`alice@corp.${domain}`],
      [claims.givenName]: ['Alice'],
      [claims.surname]: ['Liddell'],
      [claims.name]: ['CORP\\alice'],
      [claims.role]: ['Finance-Admins', 'Domain Users'],
      [claims.groupsid]: ['S-1-5-21-3623811015-3361044348-30300820-1013', 'S-1-5-21-3623811015-3361044348-30300820-513'],
      [claims.amr]: ['http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/password'],
    },
  },
});

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));

// The response template: samlify's default with an AuthnStatement and an
// AttributeStatement of several values per attribute, as AD FS sends them.
const responseTemplate = (user, sessionIndex) => {
  const attributes = Object.entries(user.attrs).map(([name, vals]) =>
    `<saml:Attribute Name="${esc(name)}">` +
    vals.map((v) => `<saml:AttributeValue>${esc(v)}</saml:AttributeValue>`).join('') +
    '</saml:Attribute>').join('');
  return '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{ID}" Version="2.0" IssueInstant="{IssueInstant}" Destination="{Destination}" InResponseTo="{InResponseTo}">' +
    '<saml:Issuer>{Issuer}</saml:Issuer><samlp:Status><samlp:StatusCode Value="{StatusCode}"/></samlp:Status>' +
    '<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{AssertionID}" Version="2.0" IssueInstant="{IssueInstant}">' +
    '<saml:Issuer>{Issuer}</saml:Issuer>' +
    '<saml:Subject><saml:NameID Format="{NameIDFormat}">{NameID}</saml:NameID>' +
    '<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData InResponseTo="{InResponseTo}" NotOnOrAfter="{SubjectConfirmationDataNotOnOrAfter}" Recipient="{SubjectRecipient}"/></saml:SubjectConfirmation></saml:Subject>' +
    '<saml:Conditions NotBefore="{ConditionsNotBefore}" NotOnOrAfter="{ConditionsNotOnOrAfter}"><saml:AudienceRestriction><saml:Audience>{Audience}</saml:Audience></saml:AudienceRestriction></saml:Conditions>' +
    `<saml:AttributeStatement>${attributes}</saml:AttributeStatement>` +
    `<saml:AuthnStatement AuthnInstant="{IssueInstant}" SessionIndex="${esc(sessionIndex)}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>` +
    '</saml:Assertion></samlp:Response>';
};

// One IdP per configuration entry, made when the server knows its URL.
const idps = new Map(); // name -> { cfg, idp, sp, users, pending }

async function serviceProvider(t) {
  if (!t.sp) {
    // realmgate's SP metadata, fetched on first use (realmgate may start after us).
    const res = await fetch(t.cfg.spMetadata);
    if (!res.ok) throw new Error(`GET ${t.cfg.spMetadata}: ${res.status}`);
    // Single Logout: the IdP signs what it sends to realmgate and wants
    // realmgate's logout messages signed (SAML Profiles §4.4.4).
    t.sp = samlify.ServiceProvider({ metadata: await res.text(), wantLogoutRequestSigned: true, wantLogoutResponseSigned: true });
  }
  return t.sp;
}

function page(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><html><head><title>AD FS (samlify)</title></head><body>${body}</body></html>`);
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 1 << 20) throw new Error('body too large');
  }
  return Object.fromEntries(new URLSearchParams(body));
}

// handleSSO verifies the AuthnRequest (signature, schema) and shows the login form.
async function handleSSO(t, req, res, url) {
  const sp = await serviceProvider(t);
  let parsed;
  let relayState;
  if (req.method === 'GET') {
    // SAML Bindings §3.4.4.1: the signature covers the raw query parts in this order.
    const raw = url.search.slice(1).split('&');
    const part = (name) => raw.find((p) => p.startsWith(name + '='));
    const octetString = ['SAMLRequest', 'RelayState', 'SigAlg'].map(part).filter(Boolean).join('&');
    const query = Object.fromEntries(url.searchParams);
    parsed = await t.idp.parseLoginRequest(sp, 'redirect', { query, octetString });
    relayState = query.RelayState;
  } else {
    const body = await readForm(req);
    parsed = await t.idp.parseLoginRequest(sp, 'post', { body });
    relayState = body.RelayState;
  }
  const id = randomUUID();
  t.pending.set(id, { parsed, relayState });
  log({ idp: t.cfg.name, event: 'request', binding: req.method === 'GET' ? 'redirect' : 'post',
    id: parsed.extract.request.id, issuer: parsed.extract.issuer,
    signed: Boolean(parsed.sigAlg) || req.method === 'POST' }); // POST: the enveloped signature was verified
  page(res, 200, `<h1>Sign in to ${esc(t.cfg.name)}</h1><form method="post" action="/${esc(t.cfg.name)}/login">
<input type="hidden" name="req" value="${esc(id)}">
<label>User name <input name="username" autocomplete="username"></label>
<label>Password <input name="password" type="password"></label>
<button type="submit">Sign in</button></form>`);
}

// handleLogin checks the password and answers the SP with the HTTP-POST binding.
async function handleLogin(t, req, res) {
  const form = await readForm(req);
  const p = t.pending.get(form.req);
  const user = t.users[form.username];
  if (!p || !user || user.password !== form.password) {
    page(res, 401, '<p>Wrong user name or password.</p>');
    return;
  }
  t.pending.delete(form.req);
  const sp = await serviceProvider(t);
  const sessionIndex = '_' + randomUUID();
  t.sessions.set(sessionIndex, user.immutableID); // for Single Logout
  t.latest = sessionIndex;
  const now = new Date();
  const later = new Date(now.getTime() + 5 * 60 * 1000);
  const acs = sp.entityMeta.getAssertionConsumerService('post');
  const result = await t.idp.createLoginResponse(sp, p.parsed, 'post', { email: user.immutableID }, {
    relayState: p.relayState,
    customTagReplacement: () => {
      const id = t.idp.entitySetting.generateID();
      return {
        id,
        context: samlify.SamlLib.replaceTagsByValue(responseTemplate(user, sessionIndex), {
          ID: id,
          AssertionID: t.idp.entitySetting.generateID(),
          Destination: acs,
          Audience: sp.entityMeta.getEntityID(),
          SubjectRecipient: acs,
          NameIDFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
          NameID: user.immutableID,
          Issuer: t.idp.entityMeta.getEntityID(),
          IssueInstant: now.toISOString(),
          ConditionsNotBefore: now.toISOString(),
          ConditionsNotOnOrAfter: later.toISOString(),
          SubjectConfirmationDataNotOnOrAfter: later.toISOString(),
          InResponseTo: p.parsed.extract.request.id,
          StatusCode: 'urn:oasis:names:tc:SAML:2.0:status:Success',
        }),
      };
    },
  });
  log({ idp: t.cfg.name, event: 'response', in_response_to: p.parsed.extract.request.id, encrypted: Boolean(t.cfg.encrypt) });
  page(res, 200, `<form method="post" action="${esc(result.entityEndpoint)}">
<input type="hidden" name="SAMLResponse" value="${esc(result.context)}">
<input type="hidden" name="RelayState" value="${esc(result.relayState ?? '')}">
<button type="submit">Continue</button></form><script>document.forms[0].submit()</script>`);
}

// handleSLO is the IdP's Single Logout service (HTTP-Redirect binding): a
// LogoutRequest from realmgate (SP-initiated) must be signed and name a
// session this IdP issued (NameID and SessionIndex), and is answered with a
// signed LogoutResponse; a LogoutResponse from realmgate (to a request that
// /NAME/logout sent) must be signed and answer that request.
async function handleSLO(t, req, res, url) {
  const sp = await serviceProvider(t);
  const raw = url.search.slice(1).split('&');
  const part = (name) => raw.find((p) => p.startsWith(name + '='));
  const query = Object.fromEntries(url.searchParams);
  const param = query.SAMLRequest ? 'SAMLRequest' : 'SAMLResponse';
  const octetString = [param, 'RelayState', 'SigAlg'].map(part).filter(Boolean).join('&');
  if (param === 'SAMLRequest') {
    const parsed = await t.idp.parseLogoutRequest(sp, 'redirect', { query, octetString });
    const { nameID, sessionIndex } = parsed.extract;
    log({ idp: t.cfg.name, event: 'logout_request', binding: 'redirect', signed: Boolean(parsed.sigAlg) });
    if (!sessionIndex || t.sessions.get(sessionIndex) !== nameID) {
      log({ idp: t.cfg.name, event: 'error', error: `LogoutRequest for a session this IdP did not issue: ${nameID} / ${sessionIndex}` });
    }
    t.sessions.delete(sessionIndex);
    const result = await t.idp.createLogoutResponse(sp, parsed, 'redirect', query.RelayState ?? '');
    res.writeHead(302, { Location: result.context });
    res.end();
    return;
  }
  const parsed = await t.idp.parseLogoutResponse(sp, 'redirect', { query, octetString });
  const irt = parsed.extract.response.inResponseTo;
  log({ idp: t.cfg.name, event: 'logout_response', binding: 'redirect', signed: Boolean(parsed.sigAlg), in_response_to: irt });
  if (!t.logouts.delete(irt)) {
    log({ idp: t.cfg.name, event: 'error', error: `LogoutResponse to a request this IdP did not send: ${irt}` });
  }
  page(res, 200, '<h1>Signed out</h1><p>You are signed out of every application.</p>');
}

// handleIdPLogout starts an IdP-initiated logout of alice's latest session:
// a signed LogoutRequest to realmgate's SLO endpoint.
async function handleIdPLogout(t, req, res) {
  const sp = await serviceProvider(t);
  const sessionIndex = t.latest;
  const nameID = t.sessions.get(sessionIndex);
  if (!nameID) {
    page(res, 400, '<p>No session to log out.</p>');
    return;
  }
  t.sessions.delete(sessionIndex);
  const { id, context } = await t.idp.createLogoutRequest(sp, 'redirect', { logoutNameID: nameID, sessionIndex }, 'idp-relay');
  t.logouts.add(id);
  log({ idp: t.cfg.name, event: 'logout_request_sent', binding: 'redirect' });
  res.writeHead(302, { Location: context });
  res.end();
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  const [, name, action] = url.pathname.split('/');
  const t = idps.get(name);
  try {
    if (!t) {
      page(res, 404, 'not found');
    } else if (action === 'metadata' && req.method === 'GET') {
      res.writeHead(200, { 'Content-Type': 'application/samlmetadata+xml' });
      res.end(t.idp.getMetadata());
    } else if (action === 'sso' && (req.method === 'GET' || req.method === 'POST')) {
      await handleSSO(t, req, res, url);
    } else if (action === 'login' && req.method === 'POST') {
      await handleLogin(t, req, res);
    } else if (action === 'slo' && req.method === 'GET') {
      await handleSLO(t, req, res, url);
    } else if (action === 'logout' && req.method === 'GET') {
      await handleIdPLogout(t, req, res);
    } else {
      page(res, 404, 'not found');
    }
  } catch (err) {
    log({ idp: name, event: 'error', path: url.pathname, error: String(err?.message ?? err) });
    if (!res.headersSent) page(res, 400, `<p>SAML error: ${esc(err?.message ?? err)}</p>`);
  }
});

// The first xmllint validation compiles xmllint (seconds on a busy machine):
// do it before saying ready.
await validator.validate('<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_warmup" Version="2.0" IssueInstant="2020-01-01T00:00:00Z"><saml:Issuer>warm-up</saml:Issuer></samlp:AuthnRequest>');

server.listen(0, '127.0.0.1', () => {
  const base = `http://127.0.0.1:${server.address().port}`;
  for (const cfg of configs) {
    const root = `${base}/${cfg.name}`;
    const idp = samlify.IdentityProvider({
      entityID: `${root}/adfs/services/trust`,
      privateKey: readFileSync(cfg.key),
      signingCert: readFileSync(cfg.cert),
      encryptCert: readFileSync(cfg.cert),
      wantAuthnRequestsSigned: !cfg.unsignedRequests,
      wantLogoutRequestSigned: true,
      wantLogoutResponseSigned: true,
      isAssertionEncrypted: Boolean(cfg.encrypt),
      nameIDFormat: ['urn:oasis:names:tc:SAML:2.0:nameid-format:persistent'],
      singleSignOnService: [
        { Binding: samlify.Constants.namespace.binding.redirect, Location: `${root}/sso` },
        { Binding: samlify.Constants.namespace.binding.post, Location: `${root}/sso` },
      ],
      singleLogoutService: [
        { Binding: samlify.Constants.namespace.binding.redirect, Location: `${root}/slo` },
      ],
    });
    idps.set(cfg.name, { cfg, idp, sp: null, users: directory(cfg.domain), pending: new Map(),
      sessions: new Map(), latest: null, logouts: new Set() });
  }
  log({ url: base });
});
