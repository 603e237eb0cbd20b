package broker_test

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"encoding/xml"
	"html"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	crewjam "github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/samlidp"
	"github.com/realmgate/realmgate/transform"
)

// The SAML IdP side (broker/samlidp.go) against crewjam's service
// provider, a SAML SP nobody here wrote: sign-in in both bindings, signed
// requests, IdP-initiated, single logout both ways; and the security
// checks (ACS exactly as registered, replay, signatures, audience and
// recipient, signature wrapping).

const (
	spEntity = "https://sp.example/saml/metadata"
	spACS    = "https://sp.example/saml/acs"
	spSLO    = "https://sp.example/saml/slo"
)

// spKey makes an RSA key and a self-signed certificate for a test SP.
func spKey(t *testing.T) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "sp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return k, c
}

// idpEnv is an env with one SAML app ("wiki", registered per sp) and
// crewjam's SP for it.
type idpEnv struct {
	*env
	sp  *crewjam.ServiceProvider
	app *samlidp.SP
}

func newIdPEnv(t *testing.T, mutate func(sp *samlidp.SP), opts ...envOpt) *idpEnv {
	t.Helper()
	key, cert := spKey(t)
	app := &samlidp.SP{EntityID: spEntity,
		ACS:          []samlidp.Endpoint{{URL: spACS, Index: 0, Default: true}, {URL: "https://sp.example/saml/acs2", Index: 3}},
		SLO:          &samlidp.LogoutEndpoint{URL: spSLO, Binding: samlidp.BindingRedirect},
		SigningCerts: []*x509.Certificate{cert}, RequireSigned: true, EncryptionCert: cert,
		NameIDFormat: samlidp.NameIDPersistent, NameIDClaim: "sub", Sign: samlidp.SignBoth, Lifetime: 5 * time.Minute,
		IdPInitiated: true, DefaultRelayState: "/home",
		Attributes: []samlidp.Attribute{
			{Name: "tid", NameFormat: "urn:oasis:names:tc:SAML:2.0:attrname-format:basic", Claim: "tid"},
			{Name: "http://schemas.microsoft.com/ws/2008/06/identity/claims/role", NameFormat: "urn:oasis:names:tc:SAML:2.0:attrname-format:uri", FriendlyName: "role", Claim: "roles"},
			{Name: "email", Claim: "email"}, {Name: "absent", Claim: "no_such_claim"},
		}}
	if mutate != nil {
		mutate(app)
	}
	eng, err := transform.Compile(nil, []transform.Rule{{Name: "groups to roles",
		Add: []transform.Assignment{{Claim: "roles", Expr: `["admin", "member"]`}}}}, transform.Options{Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *broker.Config) {
		c.Clients = append(c.Clients, broker.Client{ID: "wiki", AllowedTenants: []string{"acme", "globex"}, SAML: app})
		c.Rules = map[string]*transform.Engine{"acme": eng}
		for _, o := range opts {
			o(c)
		}
	})
	md := fetchIdPMetadata(t, e.issuer)
	acs, _ := url.Parse(spACS)
	slo, _ := url.Parse(spSLO)
	mdURL, _ := url.Parse(spEntity)
	sp := &crewjam.ServiceProvider{EntityID: spEntity, Key: key, Certificate: cert, MetadataURL: *mdURL, AcsURL: *acs, SloURL: *slo,
		IDPMetadata: md, AuthnNameIDFormat: crewjam.PersistentNameIDFormat, SignatureMethod: dsig.RSASHA256SignatureMethod,
		AllowIDPInitiated: true}
	return &idpEnv{env: e, sp: sp, app: app}
}

func fetchIdPMetadata(t *testing.T, issuer string) *crewjam.EntityDescriptor {
	t.Helper()
	resp, err := http.Get(issuer + "/saml-idp/metadata")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/samlmetadata+xml" {
		t.Fatalf("GET /saml-idp/metadata = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var md crewjam.EntityDescriptor
	if err := xml.Unmarshal(b, &md); err != nil {
		t.Fatalf("metadata: %v\n%s", err, b)
	}
	return &md
}

// rewriteDest puts the request's SAML destination on the test server (the
// crewjam SP builds it from the metadata, which names the issuer already).
var hiddenInput = regexp.MustCompile(`name="(SAMLResponse|SAMLRequest|RelayState)" value="([^"]*)"`)

// postFields returns the hidden fields and the action of a POST-binding page.
func postFields(t *testing.T, body string) (string, url.Values) {
	t.Helper()
	m := regexp.MustCompile(`<form method="post" action="([^"]*)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no POST form in:\n%s", body)
	}
	v := url.Values{}
	for _, f := range hiddenInput.FindAllStringSubmatch(body, -1) {
		v.Set(f[1], htmlUnescape(f[2]))
	}
	return htmlUnescape(m[1]), v
}

func htmlUnescape(s string) string { return html.UnescapeString(s) }

// upstream follows the browser to the fake upstream IdP and back, and
// returns the final response body (the POST form to the ACS).
func (e *idpEnv) upstream(b *browser, resp *http.Response) (*http.Response, string) {
	e.t.Helper()
	for resp.StatusCode == http.StatusSeeOther || resp.StatusCode == http.StatusFound {
		loc := mustLocation(e.t, resp)
		if strings.HasPrefix(loc, "https://idp.example/") {
			u, _ := url.Parse(loc)
			idp := strings.Split(u.Path, "/")[1]
			return b.getBody(e.issuer + "/callback/" + idp + "?code=c&state=" + url.QueryEscape(u.Query().Get("state")))
		}
		if strings.HasPrefix(loc, "/") {
			loc = e.issuer + loc
		}
		var body string
		resp, body = b.getBody(loc)
		if resp.StatusCode == http.StatusOK {
			return resp, body
		}
	}
	e.t.Fatalf("sign-in stopped at %d %s", resp.StatusCode, resp.Header.Get("Location"))
	return nil, ""
}

// acs parses what realmgate posted to the ACS with crewjam's SP.
func (e *idpEnv) acs(body string, requestIDs ...string) (*crewjam.Assertion, url.Values, error) {
	e.t.Helper()
	action, v := postFields(e.t, body)
	if action != spACS {
		e.t.Fatalf("Response posted to %q, want the registered ACS %q", action, spACS)
	}
	req, _ := http.NewRequest(http.MethodPost, spACS, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if err := req.ParseForm(); err != nil {
		e.t.Fatal(err)
	}
	a, err := e.sp.ParseResponse(req, requestIDs)
	if ie, ok := err.(*crewjam.InvalidResponseError); ok {
		e.t.Logf("crewjam: %v", ie.PrivateErr)
	}
	return a, v, err
}

// redirectRequest returns a signed HTTP-Redirect AuthnRequest URL (query
// signature, as SAML Bindings §3.4.4.1 has it) and the request's ID.
func (e *idpEnv) redirectRequest(relay string) (string, string) {
	e.t.Helper()
	u, err := e.sp.MakeRedirectAuthenticationRequest(relay)
	if err != nil {
		e.t.Fatal(err)
	}
	return u.String() + "&login_hint=alice%40acme.test", requestIDOf(e.t, u.Query().Get("SAMLRequest"), true)
}

// requestIDOf decodes a SAMLRequest and returns its ID.
func requestIDOf(t *testing.T, enc string, deflated bool) string {
	t.Helper()
	raw, _ := base64.StdEncoding.DecodeString(enc)
	if deflated {
		raw, _ = io.ReadAll(flate.NewReader(bytes.NewReader(raw)))
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatalf("request: %v", err)
	}
	return doc.Root().SelectAttrValue("ID", "")
}

func attrValues(a *crewjam.Assertion, name string) []string {
	var out []string
	for _, st := range a.AttributeStatements {
		for _, at := range st.Attributes {
			if at.Name == name {
				for _, v := range at.Values {
					out = append(out, v.Value)
				}
			}
		}
	}
	return out
}

// TestSAMLIdP_CrewjamSP_Redirect: an SP-initiated sign-in with a signed
// HTTP-Redirect AuthnRequest through the upstream IdP ends in a signed,
// encrypted assertion crewjam's SP accepts, with Audience = the SP's
// entity ID, Recipient = the ACS, InResponseTo the request's ID, the NameID
// the OIDC sub, and tid and roles attributes from the claims pipeline.
func TestSAMLIdP_CrewjamSP_Redirect(t *testing.T) {
	e := newIdPEnv(t, nil)
	b := e.browser()
	u, id := e.redirectRequest("relay-1")
	resp, body := e.upstream(b, b.get(u))
	a, v, err := e.acs(body, id)
	if err != nil {
		t.Fatalf("crewjam ParseResponse: %v", err)
	}
	_ = resp
	if v.Get("RelayState") != "relay-1" {
		t.Errorf("RelayState = %q, want relay-1", v.Get("RelayState"))
	}
	if got := a.Conditions.AudienceRestrictions[0].Audience.Value; got != spEntity {
		t.Errorf("Audience = %q, want %q", got, spEntity)
	}
	scd := a.Subject.SubjectConfirmations[0].SubjectConfirmationData
	if scd.Recipient != spACS || scd.InResponseTo != id {
		t.Errorf("SubjectConfirmationData Recipient %q InResponseTo %q, want %q %q", scd.Recipient, scd.InResponseTo, spACS, id)
	}
	if got := attrValues(a, "tid"); !slices.Equal(got, []string{"acme"}) {
		t.Errorf("tid = %q, want [acme]", got)
	}
	if got := attrValues(a, "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"); !slices.Equal(got, []string{"admin", "member"}) {
		t.Errorf("roles = %q, want [admin member]", got)
	}
	if got := attrValues(a, "absent"); got != nil {
		t.Errorf("absent = %q, want the attribute left out", got)
	}
	if a.Subject.NameID.Format != samlidp.NameIDPersistent || a.Subject.NameID.Value == "" {
		t.Errorf("NameID = %+v, want a persistent sub", a.Subject.NameID)
	}
	if a.AuthnStatements[0].AuthnContext.AuthnContextClassRef.Value != samlidp.ACMFA {
		t.Errorf("AuthnContextClassRef = %q, want MFA (the upstream amr had mfa)", a.AuthnStatements[0].AuthnContext.AuthnContextClassRef.Value)
	}
	// The same user in an OIDC app: the same sub as the NameID, through
	// the SSO session (no second trip upstream).
	q := e.clientRedirect(b.get(e.authorizeURL(authParams(s256(authVerifier)))), appCB)
	tok := e.exchange(q.Get("code"), authVerifier)
	_, idc := claimsOf(t, tok.str("id_token"))
	if idc["sub"] != a.Subject.NameID.Value {
		t.Errorf("ID token sub %v, NameID %q: want the same subject", idc["sub"], a.Subject.NameID.Value)
	}
}

// TestSAMLIdP_CrewjamSP_PostAndSSO: a signed HTTP-POST AuthnRequest signs
// in; a second one from the same browser is answered from the SSO session.
func TestSAMLIdP_CrewjamSP_PostAndSSO(t *testing.T) {
	e := newIdPEnv(t, nil)
	b := e.browser()
	var lastPostID string
	post := func() (*http.Response, string) {
		html, err := e.sp.MakePostAuthenticationRequest("rs")
		if err != nil {
			t.Fatal(err)
		}
		action, v := postFields(t, string(html))
		lastPostID = requestIDOf(t, v.Get("SAMLRequest"), false)
		return b.postForm(action+"?login_hint=alice%40acme.test", v)
	}
	resp, _ := post()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST AuthnRequest = %d, want 303 to continue with the browser's cookies", resp.StatusCode)
	}
	_, body := e.upstream(b, resp)
	a, _, err := e.acs(body, lastPostID)
	if err != nil {
		t.Fatalf("crewjam ParseResponse (HTTP-POST request): %v", err)
	}
	if got := a.Subject.SubjectConfirmations[0].SubjectConfirmationData.InResponseTo; got != lastPostID {
		t.Errorf("InResponseTo = %q, want %q", got, lastPostID)
	}
	// SSO: no trip upstream.
	resp, _ = post()
	resp2, body2 := b.getBody(e.issuer + mustLocation(t, resp))
	if resp2.StatusCode != http.StatusOK || !strings.Contains(body2, spACS) {
		t.Fatalf("second sign-in = %d, want the Response form straight from the session:\n%s", resp2.StatusCode, body2)
	}
}

// TestSAMLIdP_CrewjamSP_IdPInitiated: the app-launch URL posts an
// unsolicited Response (no InResponseTo) with the default RelayState.
func TestSAMLIdP_CrewjamSP_IdPInitiated(t *testing.T) {
	e := newIdPEnv(t, nil)
	b := e.browser()
	_, body := e.upstream(b, b.get(e.issuer+"/saml-idp/launch/wiki?login_hint=alice%40acme.test"))
	a, v, err := e.acs(body)
	if err != nil {
		t.Fatalf("crewjam ParseResponse (IdP-initiated): %v", err)
	}
	if v.Get("RelayState") != "/home" || a.Subject.SubjectConfirmations[0].SubjectConfirmationData.InResponseTo != "" {
		t.Errorf("RelayState %q InResponseTo %q, want /home and none", v.Get("RelayState"), a.Subject.SubjectConfirmations[0].SubjectConfirmationData.InResponseTo)
	}
	resp, _ := b.getBody(e.issuer + "/saml-idp/launch/app-a")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("launch of an OIDC client = %d, want 404", resp.StatusCode)
	}
}

// signIn signs the browser in to the SAML app and returns the assertion.
func (e *idpEnv) signIn(b *browser) *crewjam.Assertion {
	e.t.Helper()
	u, id := e.redirectRequest("")
	_, body := e.upstream(b, b.get(u))
	a, _, err := e.acs(body, id)
	if err != nil {
		e.t.Fatalf("sign-in: %v", err)
	}
	return a
}

// TestSAMLIdP_SingleLogout_SPInitiated: the SP's signed LogoutRequest ends
// the realmgate session (the OIDC app's next authorize goes upstream
// again) and is answered with a signed Success LogoutResponse crewjam
// validates.
func TestSAMLIdP_SingleLogout_SPInitiated(t *testing.T) {
	// crewjam's SP checks an XML signature even on HTTP-Redirect logout
	// messages (SAML Bindings §3.4.4.1 has the query signature there), so
	// this app registers the HTTP-POST binding for its SLO.
	e := newIdPEnv(t, func(sp *samlidp.SP) { sp.SLO.Binding = samlidp.BindingPost })
	b := e.browser()
	a := e.signIn(b)
	u, err := e.sp.MakeRedirectLogoutRequest(a.Subject.NameID.Value, "bye")
	if err != nil {
		t.Fatal(err)
	}
	resp, body := b.getBody(u.String())
	action, v := postFields(t, body)
	if resp.StatusCode != http.StatusOK || action != spSLO {
		t.Fatalf("logout = %d to %q, want a LogoutResponse posted to the SP's SLO", resp.StatusCode, action)
	}
	if v.Get("RelayState") != "bye" {
		t.Errorf("RelayState = %q, want bye", v.Get("RelayState"))
	}
	if err := e.sp.ValidateLogoutResponseForm(v.Get("SAMLResponse")); err != nil {
		t.Errorf("crewjam ValidateLogoutResponseForm: %v", err)
	}
	r := b.get(e.authorizeURL(authParams(s256(authVerifier))))
	if l := r.Header.Get("Location"); !strings.HasPrefix(l, "https://idp.example/") {
		t.Errorf("authorize after SAML logout = %d %q, want the upstream IdP (session ended)", r.StatusCode, l)
	}
	// Replay of the same LogoutRequest is refused.
	if r, _ := b.getBody(u.String()); r.StatusCode != http.StatusBadRequest {
		t.Errorf("replayed LogoutRequest = %d, want 400", r.StatusCode)
	}
}

// TestSAMLIdP_SingleLogout_IdPInitiated: realmgate's /logout sends the
// SAML app a signed LogoutRequest naming the NameID and SessionIndex it
// issued; the app's LogoutResponse finishes the logout.
func TestSAMLIdP_SingleLogout_IdPInitiated(t *testing.T) {
	e := newIdPEnv(t, nil)
	b := e.browser()
	a := e.signIn(b)
	resp, _ := b.postForm(e.issuer+"/logout", url.Values{"confirm": {"yes"}})
	loc := mustLocation(t, resp)
	if !strings.HasPrefix(loc, spSLO+"?") {
		t.Fatalf("logout = %d %q, want a LogoutRequest to the SP", resp.StatusCode, loc)
	}
	lu, _ := url.Parse(loc)
	raw, _ := base64.StdEncoding.DecodeString(lu.Query().Get("SAMLRequest"))
	xmlb, _ := io.ReadAll(flate.NewReader(bytes.NewReader(raw)))
	var lr crewjam.LogoutRequest
	if err := xml.Unmarshal(xmlb, &lr); err != nil {
		t.Fatal(err)
	}
	if lr.NameID.Value != a.Subject.NameID.Value || lr.SessionIndex == nil || lr.SessionIndex.Value != a.AuthnStatements[0].SessionIndex {
		t.Errorf("LogoutRequest NameID %q SessionIndex %+v, want %q %q", lr.NameID.Value, lr.SessionIndex, a.Subject.NameID.Value, a.AuthnStatements[0].SessionIndex)
	}
	if lu.Query().Get("Signature") == "" || lu.Query().Get("SigAlg") != dsig.RSASHA256SignatureMethod {
		t.Errorf("LogoutRequest query %q, want RSA-SHA256 signed", lu.RawQuery)
	}
	ru, err := e.sp.MakeRedirectLogoutResponse(lr.ID, lu.Query().Get("RelayState"))
	if err != nil {
		t.Fatal(err)
	}
	resp, body := b.getBody(ru.String())
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "signed out") {
		t.Errorf("LogoutResponse = %d, want the signed-out page:\n%s", resp.StatusCode, body)
	}
}

// The security tests of the IdP side.

// TestSAMLIdP_Security_ACSExact: an AuthnRequest naming an ACS that is not
// registered byte for byte (another host, a suffix, a query) is refused
// with a page; nothing is posted to it (S01). A registered index works.
func TestSAMLIdP_Security_ACSExact(t *testing.T) {
	for _, tc := range []struct {
		name, acs string
		ok        bool
	}{
		{"registered", spACS, true},
		{"other host", "https://evil.example/saml/acs", false},
		{"suffix", spACS + "/x", false},
		{"query", spACS + "?x=1", false},
		{"case", strings.ToUpper(spACS), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newIdPEnv(t, nil)
			e.sp.AcsURL = *mustURL(t, tc.acs)
			b := e.browser()
			u, _ := e.redirectRequest("")
			resp, body := b.getBody(u)
			switch {
			case tc.ok && resp.StatusCode != http.StatusFound:
				t.Errorf("AuthnRequest with ACS %q = %d, want 302 upstream", tc.acs, resp.StatusCode)
			case !tc.ok && (resp.StatusCode != http.StatusBadRequest || strings.Contains(body, tc.acs) || resp.Header.Get("Location") != ""):
				t.Errorf("AuthnRequest with ACS %q = %d Location %q, want 400 and nothing sent there", tc.acs, resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestSAMLIdP_Security_Replay: the same AuthnRequest (same ID) is accepted once.
func TestSAMLIdP_Security_Replay(t *testing.T) {
	e := newIdPEnv(t, nil)
	u, _ := e.redirectRequest("")
	if r := e.browser().get(u); r.StatusCode != http.StatusFound {
		t.Fatalf("first AuthnRequest = %d, want 302", r.StatusCode)
	}
	if r, _ := e.browser().getBody(u); r.StatusCode != http.StatusBadRequest {
		t.Errorf("replayed AuthnRequest = %d, want 400", r.StatusCode)
	}
}

// TestSAMLIdP_Security_Signatures: with require_signed_requests, an
// unsigned request, one signed by another key, one whose signed query was
// altered, and one with a SHA-1 signature are refused, in both bindings.
func TestSAMLIdP_Security_Signatures(t *testing.T) {
	otherKey, otherCert := spKey(t)
	cases := []struct {
		name   string
		mutate func(sp *crewjam.ServiceProvider)
		post   bool
		tamper func(u string) string
	}{
		{"redirect unsigned", func(sp *crewjam.ServiceProvider) { sp.SignatureMethod = "" }, false, nil},
		{"redirect other key", func(sp *crewjam.ServiceProvider) { sp.Key, sp.Certificate = otherKey, otherCert }, false, nil},
		{"redirect sha1", func(sp *crewjam.ServiceProvider) { sp.SignatureMethod = dsig.RSASHA1SignatureMethod }, false, nil},
		{"redirect relay state altered", nil, false, func(u string) string { return strings.Replace(u, "RelayState=rs", "RelayState=rX", 1) }},
		{"post unsigned", func(sp *crewjam.ServiceProvider) { sp.SignatureMethod = "" }, true, nil},
		{"post other key", func(sp *crewjam.ServiceProvider) { sp.Key, sp.Certificate = otherKey, otherCert }, true, nil},
		{"post sha1", func(sp *crewjam.ServiceProvider) { sp.SignatureMethod = dsig.RSASHA1SignatureMethod }, true, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newIdPEnv(t, nil)
			if tc.mutate != nil {
				tc.mutate(e.sp)
			}
			var resp *http.Response
			if tc.post {
				html, err := e.sp.MakePostAuthenticationRequest("rs")
				if err != nil {
					t.Fatal(err)
				}
				action, v := postFields(t, string(html))
				resp, _ = e.browser().postForm(action, v)
			} else {
				u, _ := e.redirectRequest("rs")
				if tc.tamper != nil {
					u = tc.tamper(u)
				}
				resp, _ = e.browser().getBody(u)
			}
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("AuthnRequest = %d %s, want 400", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
}

// TestSAMLIdP_Security_Wrapping: signature wrapping is refused: a signed
// AuthnRequest / LogoutRequest moved inside an unsigned one (or an
// unsigned one beside a signed copy) never has its unsigned parts read.
func TestSAMLIdP_Security_Wrapping(t *testing.T) {
	e := newIdPEnv(t, nil)
	signed, err := e.sp.MakeAuthenticationRequest(e.issuer+"/saml-idp/sso", crewjam.HTTPPostBinding, crewjam.HTTPPostBinding)
	if err != nil {
		t.Fatal(err)
	}
	wrap := func(signedEl *etree.Element, evilACS string) string {
		// The attacker's request: a new ID, its own ACS, the signed
		// request tucked inside as an extension-like child.
		evil := signedEl.Copy()
		evil.CreateAttr("ID", "_evil")
		evil.CreateAttr("AssertionConsumerServiceURL", evilACS)
		for _, ch := range evil.ChildElements() {
			if ch.Tag == "Signature" {
				evil.RemoveChild(ch)
			}
		}
		evil.AddChild(signedEl.Copy())
		doc := etree.NewDocument()
		doc.SetRoot(evil)
		b, _ := doc.WriteToBytes()
		return base64.StdEncoding.EncodeToString(b)
	}
	el := signed.Element()
	for _, tc := range []struct{ name, msg string }{
		{"signed request inside an evil one", wrap(el, "https://evil.example/acs")},
		{"evil ACS, signature kept", func() string {
			ev := el.Copy()
			ev.CreateAttr("AssertionConsumerServiceURL", "https://evil.example/acs")
			doc := etree.NewDocument()
			doc.SetRoot(ev)
			b, _ := doc.WriteToBytes()
			return base64.StdEncoding.EncodeToString(b)
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.browser().postForm(e.issuer+"/saml-idp/sso", url.Values{"SAMLRequest": {tc.msg}})
			if resp.StatusCode != http.StatusBadRequest || strings.Contains(body, "evil.example") {
				t.Errorf("wrapped AuthnRequest = %d, want 400 and nothing sent to the evil ACS", resp.StatusCode)
			}
		})
	}
	// A wrapped LogoutRequest: the signed one (for another user) inside an
	// unsigned one naming the victim.
	b := e.browser()
	a := e.signIn(b)
	lr, err := e.sp.MakeLogoutRequest(e.issuer+"/saml-idp/slo", "someone-else")
	if err != nil {
		t.Fatal(err)
	}
	ev := lr.Element()
	ev.CreateAttr("ID", "_evil-logout")
	for _, ch := range ev.ChildElements() {
		if ch.Tag == "Signature" {
			ev.RemoveChild(ch)
		}
		if ch.Tag == "NameID" {
			ch.SetText(a.Subject.NameID.Value)
		}
	}
	ev.AddChild(lr.Element())
	doc := etree.NewDocument()
	doc.SetRoot(ev)
	raw, _ := doc.WriteToBytes()
	resp, _ := b.postForm(e.issuer+"/saml-idp/slo", url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString(raw)}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("wrapped LogoutRequest = %d, want 400", resp.StatusCode)
	}
	// The session is still there: SSO answers the next request.
	u, _ := e.redirectRequest("")
	if r, body := b.getBody(u); r.StatusCode != http.StatusOK || !strings.Contains(body, spACS) {
		t.Errorf("after the wrapped LogoutRequest: sign-in = %d, want the session still alive", r.StatusCode)
	}
}

// TestSAMLIdP_Security_ClockSkew: a request issued too long ago or too far
// in the future is refused.
func TestSAMLIdP_Security_ClockSkew(t *testing.T) {
	for _, d := range []time.Duration{-5 * time.Minute, 5 * time.Minute} {
		e := newIdPEnv(t, nil)
		saved := crewjam.TimeNow
		crewjam.TimeNow = func() time.Time { return time.Now().Add(d) }
		u, _ := e.redirectRequest("")
		crewjam.TimeNow = saved
		if r, _ := e.browser().getBody(u); r.StatusCode != http.StatusBadRequest {
			t.Errorf("AuthnRequest issued %s off = %d, want 400", d, r.StatusCode)
		}
	}
}

// TestSAMLIdP_Security_TenantNotAllowed: a user of a tenant the app does
// not allow gets a RequestDenied Response, not an assertion (the one
// authorization decision, as for OIDC clients).
func TestSAMLIdP_Security_TenantNotAllowed(t *testing.T) {
	e := newIdPEnv(t, nil)
	b := e.browser()
	u, _ := e.sp.MakeRedirectAuthenticationRequest("")
	resp := b.get(u.String() + "&login_hint=peter%40initech.test")
	if resp.StatusCode == http.StatusFound && strings.HasPrefix(resp.Header.Get("Location"), "https://idp.example/") {
		t.Fatalf("a user of initech (not allowed) was sent upstream")
	}
	_ = context.Background
	_ = pem.Encode
}

// TestSAMLIdP_MetadataPerApp: <issuer>/saml-idp/metadata?app=<id> is the
// same metadata plus WantAuthnRequestsSigned as the app is registered (SP
// toolkits such as samlify compare it with their own setting); the plain
// URL says nothing of it; an id that is not a SAML app is 404.
func TestSAMLIdP_MetadataPerApp(t *testing.T) {
	e := newIdPEnv(t, nil)
	get := func(q string) (int, *crewjam.EntityDescriptor) {
		resp, err := http.Get(e.issuer + "/saml-idp/metadata" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var md crewjam.EntityDescriptor
		if resp.StatusCode == http.StatusOK {
			if err := xml.Unmarshal(b, &md); err != nil {
				t.Fatalf("metadata%s: %v", q, err)
			}
		}
		return resp.StatusCode, &md
	}
	for _, tc := range []struct {
		q      string
		status int
		want   *bool
	}{
		{"", http.StatusOK, nil},
		{"?app=wiki", http.StatusOK, new(bool)},
		{"?app=app-a", http.StatusNotFound, nil},
		{"?app=nope", http.StatusNotFound, nil},
	} {
		if tc.q == "?app=wiki" {
			*tc.want = true
		}
		st, md := get(tc.q)
		if st != tc.status {
			t.Errorf("GET metadata%s = %d, want %d", tc.q, st, tc.status)
			continue
		}
		if st != http.StatusOK {
			continue
		}
		got := md.IDPSSODescriptors[0].WantAuthnRequestsSigned
		if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
			t.Errorf("GET metadata%s: WantAuthnRequestsSigned = %v, want %v", tc.q, got, tc.want)
		}
		if md.EntityID != e.issuer+"/saml-idp/metadata" {
			t.Errorf("GET metadata%s: entityID %q, want the one IdP entity", tc.q, md.EntityID)
		}
	}
}
