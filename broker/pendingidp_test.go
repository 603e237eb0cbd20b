package broker_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/realm"
)

const noSignInMethod = "Your organization has no sign-in method configured yet."

// pendingDirectory is the harness's directory with the IdPs ids pending,
// in the resolver and in the broker alike (as internal/assemble builds it
// from providers[].pending).
func (e *env) pendingDirectory(ids ...string) broker.Directory {
	e.t.Helper()
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
		e.t.Fatal(err)
	}
	idps := e.harnessIdPs()
	for i := range idps {
		idps[i].Pending = slices.Contains(ids, idps[i].ID)
	}
	return broker.Directory{Resolver: res, IdPs: idps}
}

// setPending reconfigures e with the IdPs ids pending and every other active.
func (e *env) setPending(ids ...string) {
	e.t.Helper()
	if err := e.broker.Reconfigure(e.pendingDirectory(ids...)); err != nil {
		e.t.Fatalf("Reconfigure with %v pending: %v", ids, err)
	}
}

// startedAt reports whether a sign-in was started at the fake IdP f.
func startedAt(f *fakeIdP) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last.State != ""
}

// TestPendingIdP_EmailDomain: the email of a tenant whose only IdP is
// pending (login_hint, or typed on the discovery page) gets the "no
// sign-in method" page, and nothing starts at the IdP.
func TestPendingIdP_EmailDomain(t *testing.T) {
	e := newEnv(t)
	e.setPending("acme-idp")
	_, challenge := pkce()
	b := e.browser()
	resp, body := b.getBody(e.authorizeURL(authParams(challenge)))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, noSignInMethod) {
		t.Fatalf("authorize with login_hint alice@acme.test = %d %q, want 400 with %q", resp.StatusCode, resp.Header.Get("Location"), noSignInMethod)
	}
	// Typed on the discovery page.
	v := authParams(challenge)
	v.Del("login_hint")
	r := url.Values{"r": {mustQuery(t, mustLocation(t, b.get(e.authorizeURL(v)))).Get("r")}, "email": {"alice@acme.test"}}
	resp, body = b.postForm(e.issuer+"/login", r)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, noSignInMethod) {
		t.Fatalf("POST /login alice@acme.test = %d %q, want 400 with %q", resp.StatusCode, resp.Header.Get("Location"), noSignInMethod)
	}
	if startedAt(e.acme) {
		t.Error("a sign-in was started at the pending IdP")
	}
}

// TestPendingIdP_ChoicePage: a tenant with an active and a pending IdP
// sends its users straight to the active one (no choice page offering the
// pending one), and a POSTed choice of the pending one is refused.
func TestPendingIdP_ChoicePage(t *testing.T) {
	e := newEnv(t)
	_, challenge := pkce()
	v := authParams(challenge)
	v.Set("login_hint", "peter@initech.test")
	if resp, body := e.browser().getBody(e.authorizeURL(v)); resp.StatusCode != http.StatusOK || !strings.Contains(body, "initech-b") {
		t.Fatalf("both IdPs active: authorize = %d, want the choice page offering initech-b", resp.StatusCode)
	}
	e.setPending("initech-b")
	b := e.browser()
	if idp, _ := e.upstreamState(b, v); idp != "initech-a" {
		t.Fatalf("initech-b pending: authorize went to %q, want initech-a", idp)
	}
	v.Del("login_hint")
	r := mustQuery(t, mustLocation(t, b.get(e.authorizeURL(v)))).Get("r")
	resp, body := b.postForm(e.issuer+"/login", url.Values{"r": {r}, "email": {"peter@initech.test"}, "idp": {"initech-b"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "That sign-in option is not available here.") {
		t.Fatalf("POST /login idp=initech-b = %d %q, want 400 \"not available\"", resp.StatusCode, resp.Header.Get("Location"))
	}
	if startedAt(e.initechB) {
		t.Error("a sign-in was started at the pending IdP")
	}
}

// TestPendingIdP_IdPHint: idp_hint and kc_idp_hint naming a pending IdP
// are ignored (the discovery page asks), as if it did not exist.
func TestPendingIdP_IdPHint(t *testing.T) {
	for _, param := range []string{"idp_hint", "kc_idp_hint"} {
		t.Run(param, func(t *testing.T) {
			e := newEnv(t)
			_, challenge := pkce()
			v := authParams(challenge)
			v.Del("login_hint")
			v.Set(param, "initech-b")
			if idp, _ := e.upstreamState(e.browser(), v); idp != "initech-b" {
				t.Fatalf("active: %s=initech-b went to %q", param, idp)
			}
			e.setPending("initech-b")
			e.initechB.last = providers.LoginRequest{}
			loc := mustLocation(t, e.browser().get(e.authorizeURL(v)))
			if !strings.HasPrefix(loc, "/login?") && !strings.HasPrefix(loc, e.issuer+"/login?") {
				t.Fatalf("pending: %s=initech-b redirected to %q, want the discovery page", param, loc)
			}
			if startedAt(e.initechB) {
				t.Error("a sign-in was started at the pending IdP")
			}
		})
	}
}

// TestPendingIdP_RememberedCookie: the remembered-choice cookie of an IdP
// that became pending neither routes to it nor offers it.
func TestPendingIdP_RememberedCookie(t *testing.T) {
	e := newEnv(t)
	_, challenge := pkce()
	v := authParams(challenge)
	v.Del("login_hint")
	v.Set("idp_hint", "initech-b")
	b := e.browser()
	e.login(b, v) // sets the remembered choice: initech-b
	v.Del("idp_hint")
	if idp, _ := e.upstreamState(b, withPrompt(v, "login")); idp != "initech-b" {
		t.Fatalf("active: the remembered choice went to %q, want initech-b", idp)
	}
	e.setPending("initech-b")
	e.initechB.last = providers.LoginRequest{}
	loc := mustLocation(t, b.get(e.authorizeURL(withPrompt(v, "login"))))
	if !strings.Contains(loc, "/login?") {
		t.Fatalf("pending: the remembered choice redirected to %q, want the discovery page", loc)
	}
	r := mustQuery(t, loc).Get("r")
	if _, body := b.getBody(e.issuer + "/login?r=" + url.QueryEscape(r)); strings.Contains(body, "Last time you signed in") {
		t.Error("the discovery page offers the pending IdP as the remembered choice")
	}
	resp, _ := b.postForm(e.issuer+"/login", url.Values{"r": {r}, "idp": {"initech-b"}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("POST /login idp=initech-b (remembered, pending) = %d, want 400", resp.StatusCode)
	}
	if startedAt(e.initechB) {
		t.Error("a sign-in was started at the pending IdP")
	}
}

// withPrompt returns v with prompt set (a new sign-in, not SSO).
func withPrompt(v url.Values, prompt string) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	out.Set("prompt", prompt)
	return out
}

// TestPendingIdP_GlobalButtons: a pending IdP of the default tenant is no
// button on the discovery page, and its POSTed choice is refused.
func TestPendingIdP_GlobalButtons(t *testing.T) {
	e := newEnv(t)
	_, challenge := pkce()
	v := authParams(challenge)
	v.Del("login_hint")
	b := e.browser()
	page := func() (string, string) {
		r := mustQuery(t, mustLocation(t, b.get(e.authorizeURL(v)))).Get("r")
		_, body := b.getBody(e.issuer + "/login?r=" + url.QueryEscape(r))
		return r, body
	}
	if _, body := page(); !strings.Contains(body, `value="social"`) {
		t.Fatal("active: the discovery page has no button for the social IdP")
	}
	e.setPending("social")
	r, body := page()
	if strings.Contains(body, `value="social"`) || strings.Contains(body, "GitHub") {
		t.Error("pending: the discovery page still offers the social IdP")
	}
	resp, body := b.postForm(e.issuer+"/login", url.Values{"r": {r}, "idp": {"social"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "That sign-in option is not available here.") {
		t.Errorf("POST /login idp=social (pending) = %d, want 400 \"not available\"", resp.StatusCode)
	}
	// An email no tenant verified goes to the default tenant: no method.
	resp, body = b.postForm(e.issuer+"/login", url.Values{"r": {r}, "email": {"someone@gmail.example"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, noSignInMethod) {
		t.Errorf("POST /login someone@gmail.example = %d, want 400 with %q", resp.StatusCode, noSignInMethod)
	}
	if startedAt(e.social) {
		t.Error("a sign-in was started at the pending IdP")
	}
}

// TestPendingIdP_NormalCallback: a normal sign-in that comes back from an
// IdP made pending meanwhile is refused before the answer is looked at: no
// code, no session.
func TestPendingIdP_NormalCallback(t *testing.T) {
	e := newEnv(t)
	_, challenge := pkce()
	b := e.browser()
	idp, state := e.upstreamState(b, authParams(challenge))
	e.setPending("acme-idp")
	resp, body := b.getBody(e.issuer + "/callback/" + idp + "?code=upstream-code&state=" + url.QueryEscape(state))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, noSignInMethod) {
		t.Fatalf("callback of a pending IdP = %d %q, want 403 with %q", resp.StatusCode, resp.Header.Get("Location"), noSignInMethod)
	}
	for _, ck := range b.c.Jar.Cookies(mustURL(t, e.issuer)) {
		if ck.Name == "rg_session" || ck.Name == "rg_idp" {
			t.Errorf("cookie %s set by a refused callback", ck.Name)
		}
	}
}

// TestPendingIdP_SessionAndRefresh: an IdP made pending again serves its
// users nothing more: their SSO session answers no authorization request
// and their refresh tokens are refused (authorizeFor).
func TestPendingIdP_SessionAndRefresh(t *testing.T) {
	e := newEnv(t)
	verifier, challenge := pkce()
	b := e.browser()
	q := e.login(b, authParams(challenge))
	tr := e.exchange(q.Get("code"), verifier)
	if tr.status != http.StatusOK || tr.str("refresh_token") == "" {
		t.Fatalf("token = %d %v", tr.status, tr.body)
	}
	e.setPending("acme-idp")
	_, challenge2 := pkce()
	v := authParams(challenge2)
	v.Set("client_id", "app-b")
	v.Set("redirect_uri", "https://app-b.example/callback")
	resp := b.get(e.authorizeURL(v))
	if loc := resp.Header.Get("Location"); strings.Contains(loc, "code=") || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("SSO from a session of a pending IdP = %d %q, want 400 (no sign-in method), no code", resp.StatusCode, loc)
	}
	rt := e.post("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.str("refresh_token")}}, "app-a", secretA)
	if rt.status != http.StatusBadRequest || rt.str("error") != "invalid_grant" {
		t.Errorf("refresh of a pending IdP's user = %d %v, want 400 invalid_grant", rt.status, rt.body)
	}
}

// unsolicitedIdP accepts every IdP-initiated response.
type unsolicitedIdP struct {
	*fakeIdP
	calls atomic.Int32
}

func (f *unsolicitedIdP) Unsolicited(string) (string, bool) { return "https://app-a.example/", true }

func (f *unsolicitedIdP) HandleUnsolicited(context.Context, *http.Request) (providers.Identity, error) {
	f.calls.Add(1)
	return f.ident, nil
}

// TestPendingIdP_SAMLIdPInitiated: an IdP-initiated response at a pending
// IdP's ACS is never taken: no session, no redirect to the target.
func TestPendingIdP_SAMLIdPInitiated(t *testing.T) {
	var idp *unsolicitedIdP
	e := newEnv(t, func(c *broker.Config) {
		for i := range c.IdPs {
			if c.IdPs[i].ID == "acme-idp" {
				idp = &unsolicitedIdP{fakeIdP: c.IdPs[i].Connector.(*fakeIdP)}
				c.IdPs[i].Connector = idp
			}
		}
	})
	acs := e.issuer + "/saml/acme-idp/acs"
	form := url.Values{"SAMLResponse": {"PHJlc3BvbnNlLz4="}}
	if resp, _ := e.browser().postForm(acs, form); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("active: IdP-initiated POST = %d, want 303 to the target", resp.StatusCode)
	}
	d := e.pendingDirectory("acme-idp")
	for i := range d.IdPs {
		if d.IdPs[i].ID == "acme-idp" {
			d.IdPs[i].Connector = idp
		}
	}
	if err := e.broker.Reconfigure(d); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	resp, _ := b.postForm(acs, form)
	if resp.StatusCode == http.StatusSeeOther || resp.StatusCode/100 == 2 {
		t.Fatalf("pending: IdP-initiated POST = %d %q, want refused", resp.StatusCode, resp.Header.Get("Location"))
	}
	if n := idp.calls.Load(); n != 1 {
		t.Errorf("the pending IdP's unsolicited response reached the connector (%d calls, want 1: the active one)", n)
	}
	for _, ck := range b.c.Jar.Cookies(mustURL(t, e.issuer)) {
		if ck.Name == "rg_session" {
			t.Error("a session was created from a pending IdP's response")
		}
	}
}

// TestPendingIdP_Activation: the same IdP with Pending false, through
// Reconfigure, serves its users; a directory whose IdP and resolver
// disagree on pending is refused.
func TestPendingIdP_Activation(t *testing.T) {
	e := newEnv(t)
	e.setPending("acme-idp")
	_, challenge := pkce()
	if resp, body := e.browser().getBody(e.authorizeURL(authParams(challenge))); !strings.Contains(body, noSignInMethod) {
		t.Fatalf("pending: authorize = %d, want %q", resp.StatusCode, noSignInMethod)
	}
	e.setPending() // activated
	verifier, challenge := pkce()
	q := e.login(e.browser(), authParams(challenge))
	if tr := e.exchange(q.Get("code"), verifier); tr.status != http.StatusOK {
		t.Fatalf("after activation: token = %d %v", tr.status, tr.body)
	}
	d := e.pendingDirectory("acme-idp")
	for i := range d.IdPs {
		d.IdPs[i].Pending = false
	}
	if err := e.broker.Reconfigure(d); err == nil || !strings.Contains(err.Error(), "pending") {
		t.Errorf("Reconfigure with pending only in the resolver: %v, want an error", err)
	}
}
