package broker_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/internal/devidp"
	"github.com/realmgate/realmgate/providers/oidc"
	"github.com/realmgate/realmgate/providers/saml"
	"github.com/realmgate/realmgate/realm"
	"github.com/realmgate/realmgate/transform"
)

// portal mounts, on e's server under /portal/, what the setup portal does
// with the test sign-in API: /portal/test starts one for the query's
// tenant, idp and return (500 with the error when refused), as the
// holder of setup link L1.
func (e *env) portal() {
	e.t.Helper()
	p := echo.New()
	p.GET("/portal/test", func(c echo.Context) error {
		err := e.broker.StartTestSignIn(c, broker.TestSignIn{Tenant: c.QueryParam("tenant"), IdP: c.QueryParam("idp"),
			Return: c.QueryParam("return"), Actor: "setup-link:L1"})
		if errors.Is(err, broker.ErrTestSignInRequest) {
			return c.String(http.StatusBadRequest, err.Error())
		}
		return err
	})
	p.GET("/portal/done", func(c echo.Context) error { return c.String(http.StatusOK, "done") })
	e.srv.Config.Handler.(*http.ServeMux).Handle("/portal/", p)
}

// startTest asks the portal for a test sign-in at tenant's idp.
func (e *env) startTest(b *browser, tenant, idp, ret string) *http.Response {
	e.t.Helper()
	return b.get(e.issuer + "/portal/test?" + url.Values{"tenant": {tenant}, "idp": {idp}, "return": {ret}}.Encode())
}

// testResult follows the callback's redirect back to the portal and reads
// the result it names.
func (e *env) testResult(resp *http.Response) *broker.TestSignInResult {
	e.t.Helper()
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, e.issuer+"/portal/done?") || (resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther) {
		e.t.Fatalf("test sign-in answer = %d %q, want a redirect to %s/portal/done?...test=", resp.StatusCode, loc, e.issuer)
	}
	q := mustQuery(e.t, loc)
	if q.Get("keep") != "1" || q.Get("code") != "" {
		e.t.Errorf("return URL query = %v, want keep=1 kept and no code", q)
	}
	res, err := e.broker.TestSignInResult(context.Background(), q.Get("test"))
	if err != nil {
		e.t.Fatalf("TestSignInResult(%q): %v", q.Get("test"), err)
	}
	return res
}

// noSession checks that the browser holds no session or remembered-choice
// cookie and that nothing answers an authorization request from a session.
func (e *env) noSession(b *browser) {
	e.t.Helper()
	for _, ck := range b.c.Jar.Cookies(mustURL(e.t, e.issuer)) {
		if ck.Name == "rg_session" || ck.Name == "rg_idp" {
			e.t.Errorf("a test sign-in set cookie %s", ck.Name)
		}
	}
	_, challenge := pkce()
	v := authParams(challenge)
	v.Del("login_hint")
	if loc := b.get(e.authorizeURL(v)).Header.Get("Location"); strings.Contains(loc, "code=") {
		e.t.Errorf("after a test sign-in, /authorize answered from a session: %q", loc)
	}
}

// withPendingIdPs marks the harness IdPs ids pending from the start.
func withPendingIdPs(ids ...string) envOpt {
	return func(c *broker.Config) {
		tenants := harnessTenants()
		for i := range tenants {
			for _, p := range tenants[i].IdPs {
				if slices.Contains(ids, p) {
					tenants[i].Pending = append(tenants[i].Pending, p)
				}
			}
		}
		res, err := realm.New(tenants, realm.Options{BaseDomain: "login.test"})
		if err != nil {
			panic(err)
		}
		c.Resolver = res
		for i := range c.IdPs {
			c.IdPs[i].Pending = slices.Contains(ids, c.IdPs[i].ID)
		}
	}
}

// acmeRules maps Finance-Admins to the admin role and denies contractors.
func acmeRules(t *testing.T) envOpt {
	eng, err := transform.Compile(nil, []transform.Rule{
		{Name: "contractors-out", If: `"Contractors" in upstream.groups`, Deny: "Contractors cannot sign in here."},
		{Name: "admins", If: `"Finance-Admins" in upstream.groups`, Add: []transform.Assignment{{Claim: "roles", Expr: `"admin"`}}},
		{Name: "never", If: `false`, Set: []transform.Assignment{{Claim: "x", Expr: `"y"`}}},
	}, transform.Options{Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	return func(c *broker.Config) { c.Rules = map[string]*transform.Engine{"acme": eng} }
}

// ruleStep returns the trace step of rule name.
func ruleStep(res *broker.TestSignInResult, name string) (transform.Step, bool) {
	for _, st := range res.Trace {
		if st.Rule == name {
			return st, true
		}
	}
	return transform.Step{}, false
}

// TestTestSignIn_PendingIdPExplained: a test sign-in at a pending IdP goes
// upstream like a sign-in (state, nonce, PKCE), and its answer is
// explained (attributes, claims, trace), audited with the actor, and
// issued nothing: no session, no cookie, no code, and the state is spent.
func TestTestSignIn_PendingIdPExplained(t *testing.T) {
	audit := &auditSink{}
	e := newEnv(t, withPendingIdPs("acme-idp"), acmeRules(t), withAuditSink(audit))
	e.portal()
	b := e.browser()
	resp := e.startTest(b, "acme", "acme-idp", e.issuer+"/portal/done?keep=1")
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "https://idp.example/acme-idp/") {
		t.Fatalf("start = %d %q, want 302 to the pending IdP", resp.StatusCode, loc)
	}
	e.acme.mu.Lock()
	lr := e.acme.last
	e.acme.mu.Unlock()
	if lr.State == "" || lr.Nonce == "" || lr.CodeVerifier == "" || lr.CallbackURL != e.issuer+"/callback/acme-idp" {
		t.Fatalf("upstream login request = %+v, want state, nonce, PKCE and the IdP's callback", lr)
	}
	cb := e.issuer + "/callback/acme-idp?code=upstream-code&state=" + url.QueryEscape(lr.State)
	res := e.testResult(b.get(cb))
	if res.Outcome != broker.TestSignedIn || res.Tenant != "acme" || res.IdP != "acme-idp" || res.Actor != "setup-link:L1" {
		t.Fatalf("result = %+v, want signed_in at acme/acme-idp by setup-link:L1", res)
	}
	if res.Upstream.Subject != "alice-upstream" || res.Upstream.Email != "alice@acme.test" ||
		fmt.Sprint(res.Upstream.Claims["groups"]) != "[Finance-Admins]" {
		t.Errorf("upstream = %+v, want alice's identity and raw groups", res.Upstream)
	}
	if fmt.Sprint(res.Claims["roles"]) != "[admin]" || res.Claims["email"] != "alice@acme.test" || res.Claims["tid"] != "acme" ||
		res.Claims["idp"] != "acme-idp" || res.Claims["sub"] != res.Subject || res.Subject == "" {
		t.Errorf("claims = %v, want roles [admin], email, tid, idp and sub", res.Claims)
	}
	if st, ok := ruleStep(res, "admins"); !ok || !st.Matched || len(st.Changes) != 1 || st.Changes[0].Claim != "roles" {
		t.Errorf("trace of rule admins = %+v, %v, want matched, one change of roles", st, ok)
	}
	if st, ok := ruleStep(res, "never"); !ok || st.Matched {
		t.Errorf("trace of rule never = %+v, %v, want not matched", st, ok)
	}
	e.noSession(b)
	// Readable more than once while it lasts.
	if _, err := e.broker.TestSignInResult(context.Background(), res.ID); err != nil {
		t.Errorf("second read: %v", err)
	}
	// The state was spent: the same answer again completes nothing.
	if r, _ := b.getBody(cb); r.StatusCode != http.StatusBadRequest || strings.Contains(r.Header.Get("Location"), "code=") {
		t.Errorf("replayed test callback = %d %q, want 400", r.StatusCode, r.Header.Get("Location"))
	}
	var started, finished map[string]any
	for _, ev := range audit.events(t) {
		switch ev["outcome"] {
		case "test_sign_in_started":
			started = ev
		case "test_sign_in_finished":
			finished = ev
		case "success":
			t.Errorf("a test sign-in wrote a success event: %v", ev)
		}
	}
	if str(started, "actor") != "setup-link:L1" || str(started, "tenant") != "acme" || str(started, "idp") != "acme-idp" {
		t.Errorf("started event = %v, want actor, tenant and idp", started)
	}
	if str(finished, "actor") != "setup-link:L1" || str(finished, "reason") != broker.TestSignedIn || str(finished, "idp") != "acme-idp" {
		t.Errorf("finished event = %v, want actor, idp and reason signed_in", finished)
	}
}

// TestTestSignIn_DeniedAndUpstreamError: a rule's deny and an upstream
// error are results too, with the deny message or a readable reason.
func TestTestSignIn_DeniedAndUpstreamError(t *testing.T) {
	e := newEnv(t, acmeRules(t))
	e.portal()
	e.acme.ident.Claims = map[string]any{"sub": "alice-upstream", "groups": []any{"Contractors"}}
	b := e.browser()
	state := mustQuery(t, mustLocation(t, e.startTest(b, "acme", "acme-idp", e.issuer+"/portal/done?keep=1"))).Get("state")
	res := e.testResult(b.get(e.issuer + "/callback/acme-idp?code=c&state=" + url.QueryEscape(state)))
	if res.Outcome != broker.TestDenied || res.Denied != "Contractors cannot sign in here." || res.Claims != nil {
		t.Errorf("result = %+v, want denied with the rule's message and no claims", res)
	}
	if st, ok := ruleStep(res, "contractors-out"); !ok || st.Denied == "" {
		t.Errorf("trace = %+v, want the deny step", res.Trace)
	}

	state = mustQuery(t, mustLocation(t, e.startTest(b, "acme", "acme-idp", e.issuer+"/portal/done?keep=1"))).Get("state")
	res = e.testResult(b.get(e.issuer + "/callback/acme-idp?" + url.Values{"state": {state}, "error": {"access_denied"},
		"error_description": {"AADSTS50105: user not assigned\x07"}}.Encode()))
	if res.Outcome != broker.TestUpstreamError || !strings.Contains(res.Error, "access denied") ||
		!strings.Contains(res.Error, "AADSTS50105: user not assigned.") || res.Claims != nil || res.Upstream.Subject != "" {
		t.Errorf("result = %+v, want upstream_error naming the IdP's error, without control characters", res)
	}
	e.acme.err = errors.New("oidc: id token signature: crypto/rsa: verification error")
	state = mustQuery(t, mustLocation(t, e.startTest(b, "acme", "acme-idp", e.issuer+"/portal/done?keep=1"))).Get("state")
	res = e.testResult(b.get(e.issuer + "/callback/acme-idp?code=c&state=" + url.QueryEscape(state)))
	if res.Outcome != broker.TestUpstreamError || !strings.Contains(res.Error, "failed verification") || strings.Contains(res.Error, "crypto/rsa") {
		t.Errorf("result error = %q, want a readable reason, not the internal error", res.Error)
	}
	e.noSession(b)
}

// TestTestSignIn_S01_ReturnOnIssuerOrigin: Return must be an absolute URL
// on the issuer's own origin; anything else is refused before anything
// starts, and the test never redirects elsewhere. An IdP of another tenant,
// an unknown IdP and a missing actor are refused too.
func TestTestSignIn_S01_ReturnOnIssuerOrigin(t *testing.T) {
	e := newEnv(t)
	e.portal()
	u := mustURL(t, e.issuer)
	for _, tc := range []struct{ name, ret string }{
		{"another host", "https://evil.example/portal/done"},
		{"another scheme", "https://" + u.Host + "/portal/done"},
		{"another port", "http://" + u.Hostname() + ":1/portal/done"},
		{"scheme-relative", "//evil.example/portal/done"},
		{"relative", "/portal/done"},
		{"user information", "http://user@" + u.Host + "/portal/done"},
		{"host in user information", "http://" + u.Host + "@evil.example/portal/done"},
		{"backslash", "http://" + u.Host + "\\@evil.example/"},
		{"fragment", e.issuer + "/portal/done#x"},
		{"javascript", "javascript:alert(1)"},
		{"data", "data:text/html,hi"},
		{"newline", e.issuer + "/portal/done\r\nLocation: https://evil.example"},
		{"empty", ""},
		{"too long", e.issuer + "/portal/done?" + strings.Repeat("a", 3000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.startTest(e.browser(), "acme", "acme-idp", tc.ret)
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Errorf("start with return %q = %d %q, want 400 and no redirect", tc.ret, resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
	for _, tc := range []struct{ name, tenant, idp string }{
		{"IdP of another tenant", "globex", "acme-idp"},
		{"unknown IdP", "acme", "nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if resp := e.startTest(e.browser(), tc.tenant, tc.idp, e.issuer+"/portal/done"); resp.StatusCode != http.StatusBadRequest {
				t.Errorf("start %s/%s = %d, want 400", tc.tenant, tc.idp, resp.StatusCode)
			}
		})
	}
	rec := httptest.NewRecorder()
	c := echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/", nil), rec)
	if err := e.broker.StartTestSignIn(c, broker.TestSignIn{Tenant: "acme", IdP: "acme-idp", Return: e.issuer + "/x"}); !errors.Is(err, broker.ErrTestSignInRequest) {
		t.Errorf("StartTestSignIn without an actor: %v, want ErrTestSignInRequest", err)
	}
	if startedAt(e.acme) {
		t.Error("a refused test sign-in went upstream")
	}
	// The issuer's origin with its default port spelled out is the same origin.
	if resp := e.startTest(e.browser(), "acme", "acme-idp", strings.ToUpper(u.Scheme)+"://"+u.Host+"/portal/done"); resp.StatusCode != http.StatusFound {
		t.Errorf("start with the issuer's origin in upper case = %d, want 302", resp.StatusCode)
	}
}

// TestTestSignIn_NotFound: an unknown, malformed or expired id is
// ErrTestSignInNotFound.
func TestTestSignIn_NotFound(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"", "no-such-result", strings.Repeat("x", 500)} {
		if _, err := e.broker.TestSignInResult(context.Background(), id); !errors.Is(err, broker.ErrTestSignInNotFound) {
			t.Errorf("TestSignInResult(%.20q) error = %v, want ErrTestSignInNotFound", id, err)
		}
	}
	if broker.TestSignInTTL > 30*time.Minute || broker.TestSignInTTL < 5*time.Minute {
		t.Errorf("TestSignInTTL = %v, want about 15 minutes", broker.TestSignInTTL)
	}
}

// TestTestSignIn_NormalSignInUnchanged: the state of a test sign-in is
// not a normal sign-in's, and a normal sign-in's is not a test's: an
// ordinary sign-in at the same (active) IdP still gets its code.
func TestTestSignIn_NormalSignInUnchanged(t *testing.T) {
	e := newEnv(t)
	e.portal()
	b := e.browser()
	testState := mustQuery(t, mustLocation(t, e.startTest(b, "acme", "acme-idp", e.issuer+"/portal/done?keep=1"))).Get("state")
	verifier, challenge := pkce()
	q := e.login(b, authParams(challenge))
	if tr := e.exchange(q.Get("code"), verifier); tr.status != http.StatusOK {
		t.Fatalf("normal sign-in after a test start: token = %d %v", tr.status, tr.body)
	}
	res := e.testResult(b.get(e.issuer + "/callback/acme-idp?code=c&state=" + url.QueryEscape(testState)))
	if res.Outcome != broker.TestSignedIn {
		t.Errorf("test result = %+v", res)
	}
}

// TestTestSignIn_DevIdP: a test sign-in through a real OpenID Provider
// (internal/devidp: discovery, the code flow with PKCE, a signed ID token
// checked with its nonce) at a pending IdP: the result has the ID token's
// claims, the rules' claims and trace; a forged answer (a code the OP never
// issued) is an upstream error; nothing is issued either time.
func TestTestSignIn_DevIdP(t *testing.T) {
	opSrv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(opSrv.Close)
	e := newEnv(t, acmeRules(t), func(c *broker.Config) {
		op, err := devidp.New(devidp.Options{BaseURL: opSrv.URL, DevMode: true, AutoApprove: "alice@acme.test", Algorithm: "ES256",
			Realms: []devidp.Realm{{Name: "acme", Clients: []devidp.Client{{ID: "realmgate", Secret: "s3cret",
				RedirectURIs: []string{c.Issuer + "/callback/acme-idp"}}},
				Users: []devidp.User{{Subject: "acme-u-1001", Email: "alice@acme.test", EmailVerified: true, Name: "Alice Anders",
					Groups: []string{"Finance-Admins"}}}}}})
		if err != nil {
			t.Fatal(err)
		}
		opSrv.Config.Handler = op.Handler()
		conn, err := oidc.New(oidc.Config{ID: "acme-idp", Issuer: op.Issuer("acme"), ClientID: "realmgate", ClientSecret: "s3cret",
			HTTPClient: opSrv.Client(), Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		for i := range c.IdPs {
			if c.IdPs[i].ID == "acme-idp" {
				c.IdPs[i].Connector = conn
			}
		}
	}, withPendingIdPs("acme-idp"))
	e.portal()
	b := e.browser()
	toOP := mustLocation(t, e.startTest(b, "acme", "acme-idp", e.issuer+"/portal/done?keep=1"))
	if !strings.HasPrefix(toOP, opSrv.URL+"/acme/") || mustQuery(t, toOP).Get("code_challenge") == "" || mustQuery(t, toOP).Get("nonce") == "" {
		t.Fatalf("start went to %q, want the OP's authorization endpoint with PKCE and a nonce", toOP)
	}
	back := mustLocation(t, b.get(toOP))
	if !strings.HasPrefix(back, e.issuer+"/callback/acme-idp?") {
		t.Fatalf("OP answered %q, want realmgate's callback", back)
	}
	res := e.testResult(b.get(back))
	if res.Outcome != broker.TestSignedIn || res.Upstream.Issuer != opSrv.URL+"/acme" || res.Upstream.Subject != "acme-u-1001" ||
		res.Upstream.Claims["nonce"] == nil || fmt.Sprint(res.Upstream.Claims["groups"]) != "[Finance-Admins]" {
		t.Fatalf("result = %+v, want alice's verified ID token claims", res)
	}
	if fmt.Sprint(res.Claims["roles"]) != "[admin]" || res.Claims["name"] != "Alice Anders" {
		t.Errorf("claims = %v, want roles [admin] and name", res.Claims)
	}
	if st, ok := ruleStep(res, "admins"); !ok || !st.Matched {
		t.Errorf("trace = %+v, want rule admins matched", res.Trace)
	}
	// A code the OP never issued: the token request fails upstream.
	toOP = mustLocation(t, e.startTest(b, "acme", "acme-idp", e.issuer+"/portal/done?keep=1"))
	forged := e.issuer + "/callback/acme-idp?" + url.Values{"code": {"forged"}, "state": {mustQuery(t, toOP).Get("state")},
		"iss": {opSrv.URL + "/acme"}}.Encode()
	res = e.testResult(b.get(forged))
	if res.Outcome != broker.TestUpstreamError || res.Error == "" || res.Claims != nil {
		t.Errorf("forged answer: result = %+v, want upstream_error", res)
	}
	e.noSession(b)
	// The IdP is still pending: an end user is not sent there.
	_, challenge := pkce()
	if _, body := e.browser().getBody(e.authorizeURL(authParams(challenge))); !strings.Contains(body, noSignInMethod) {
		t.Error("an end user of acme was not told there is no sign-in method")
	}
}

// TestTestSignIn_SAML: a test sign-in at a pending SAML IdP (crewjam's
// samlidp): the signed, encrypted assertion is checked by the connector
// and its attributes are the result's.
func TestTestSignIn_SAML(t *testing.T) {
	se := newSAMLEnv(t, saml.BindingRedirect)
	// contoso-saml becomes pending; the harness's tenants stay as they are.
	tenants := []realm.Tenant{{ID: "contoso", Name: "Contoso", Domains: []string{"contoso.test"}, IdPs: []string{"contoso-saml"},
		Pending: []string{"contoso-saml"}}}
	idps := []broker.IdP{{ID: "contoso-saml", Tenant: "contoso", Name: "Contoso AD FS", Connector: se.conn, Pending: true}}
	byTenant := map[string][]string{}
	for _, p := range se.harnessIdPs() {
		byTenant[p.Tenant] = append(byTenant[p.Tenant], p.ID)
		idps = append(idps, p)
	}
	for id, ps := range byTenant {
		tenants = append(tenants, realm.Tenant{ID: id, Name: id, IdPs: ps})
	}
	res, err := realm.New(tenants, realm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := se.broker.Reconfigure(broker.Directory{Resolver: res, IdPs: idps}); err != nil {
		t.Fatal(err)
	}
	se.portal()
	b := se.browser()
	_, challenge := pkce()
	v := authParams(challenge)
	v.Set("login_hint", "alice@contoso.test")
	if _, body := b.getBody(se.authorizeURL(v)); !strings.Contains(body, noSignInMethod) {
		t.Fatal("an end user of contoso was sent to the pending SAML IdP")
	}
	sso := mustLocation(t, se.startTest(b, "contoso", "contoso-saml", se.issuer+"/portal/done?keep=1"))
	if !strings.HasPrefix(sso, se.idp.URL+"/sso?") {
		t.Fatalf("start went to %q, want the SAML IdP", sso)
	}
	action, acs := se.atIdP(b, http.MethodGet, sso, nil)
	resp, _ := b.postForm(action, acs)
	r := se.testResult(resp)
	if r.Outcome != broker.TestSignedIn || r.Upstream.Email != "alice@contoso.test" || r.Upstream.Subject != "alice" ||
		len(r.Upstream.Claims) == 0 || r.Claims["email"] != "alice@contoso.test" || r.Claims["tid"] != "contoso" {
		t.Fatalf("result = %+v, want alice's attributes and claims", r)
	}
	if !strings.Contains(fmt.Sprint(r.Upstream.Claims), "Finance-Admins") {
		t.Errorf("attributes = %v, want the groups attribute", r.Upstream.Claims)
	}
	se.noSession(b)
	// The same response again: the state (and the assertion id) is spent.
	if again, _ := b.postForm(action, acs); again.StatusCode != http.StatusBadRequest {
		t.Errorf("second POST of the test response = %d, want 400", again.StatusCode)
	}
}
