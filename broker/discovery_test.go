package broker_test

import (
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/providers"
)

// startAt runs /authorize with extra params and request tweaks and returns
// where the browser is sent.
func (e *env) startAt(b *browser, set map[string]string, tweak func(*http.Request)) (*http.Response, string) {
	e.t.Helper()
	v := authParams(s256(authVerifier))
	v.Del("login_hint")
	for k, val := range set {
		if val == "" {
			v.Del(k)
		} else {
			v.Set(k, val)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, e.authorizeURL(v), nil)
	if tweak != nil {
		tweak(req)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if req.Host != "" {
		// Model cookies scoped to the base domain (shared by the tenant
		// subdomain and the issuer host); the jar keys on the URL host.
		b.c.Jar.SetCookies(req.URL, resp.Cookies())
	}
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp, sb.String()
}

func upstreamOf(resp *http.Response) string {
	loc := resp.Header.Get("Location")
	if rest, ok := strings.CutPrefix(loc, "https://idp.example/"); ok {
		return strings.SplitN(rest, "/", 2)[0]
	}
	return ""
}

func TestDiscovery_SourcesThroughHTTP(t *testing.T) {
	e := newEnv(t, func(c *brokerConfig) { c.TrustedProxies = mustPrefixes("127.0.0.0/8") })
	for _, tc := range []struct {
		name  string
		set   map[string]string
		tweak func(*http.Request)
		want  string
	}{
		{"idp_hint", map[string]string{"idp_hint": "globex-idp"}, nil, "globex-idp"},
		{"kc_idp_hint", map[string]string{"kc_idp_hint": "initech-b"}, nil, "initech-b"},
		{"domain_hint", map[string]string{"domain_hint": "globex.test"}, nil, "globex-idp"},
		{"whr", map[string]string{"whr": "sub.globex.test"}, nil, "globex-idp"},
		{"login_hint", map[string]string{"login_hint": "x@acme.test"}, nil, "acme-idp"},
		{"login_hint unknown domain goes to the default tenant", map[string]string{"login_hint": "x@gmail.example"}, nil, "social"},
		{"idp_hint beats login_hint", map[string]string{"idp_hint": "acme-idp", "login_hint": "x@globex.test"}, nil, "acme-idp"},
		{"unknown idp_hint falls to login_hint", map[string]string{"idp_hint": "nope", "login_hint": "x@globex.test"}, nil, "globex-idp"},
		{"subdomain host", map[string]string{"domain_hint": ""}, func(r *http.Request) { r.Host = "globex.login.test" }, ""},
		{"ip range via trusted proxy", nil, func(r *http.Request) { r.Header.Set("X-Forwarded-For", "198.51.100.7") }, "choose:initech"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.startAt(e.browser(), tc.set, tc.tweak)
			switch {
			case tc.want == "":
				// globex has no subdomain: the host names nothing, discovery page.
				if !strings.HasPrefix(resp.Header.Get("Location"), "/login?") {
					t.Fatalf("authorize(%s) = %d %q, want the discovery page", tc.name, resp.StatusCode, resp.Header.Get("Location"))
				}
			case strings.HasPrefix(tc.want, "choose:"):
				if resp.StatusCode != http.StatusOK || !strings.Contains(body, `value="initech-a"`) || !strings.Contains(body, `value="initech-b"`) {
					t.Fatalf("authorize(%s) = %d, want initech's choice page; body %q", tc.name, resp.StatusCode, body)
				}
			default:
				if got := upstreamOf(resp); got != tc.want {
					t.Fatalf("authorize(%s) went to %q (%q), want %q", tc.name, got, resp.Header.Get("Location"), tc.want)
				}
			}
		})
	}
	t.Run("subdomain of a tenant with one", func(t *testing.T) {
		resp, body := e.startAt(e.browser(), nil, func(r *http.Request) { r.Host = "initech.login.test" })
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `value="initech-b"`) {
			t.Fatalf("authorize on initech.login.test = %d, want initech's choice page", resp.StatusCode)
		}
	})
	t.Run("untrusted forwarded header ignored", func(t *testing.T) {
		plain := newEnv(t)
		resp, _ := plain.startAt(plain.browser(), nil, func(r *http.Request) { r.Header.Set("X-Forwarded-For", "198.51.100.7") })
		if !strings.HasPrefix(resp.Header.Get("Location"), "/login?") {
			t.Fatalf("X-Forwarded-For without trusted proxies routed to %q, want the discovery page", resp.Header.Get("Location"))
		}
	})
}

func mustPrefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestDiscovery_ClientLimitsEverySource(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		set  map[string]string
	}{
		{"idp_hint to a forbidden idp", map[string]string{"client_id": "no-social", "idp_hint": "social"}},
		{"idp_hint to a forbidden idp of an allowed tenant", map[string]string{"client_id": "no-social", "idp_hint": "initech-b"}},
		{"idp_hint to a forbidden tenant", map[string]string{"client_id": "acme-only", "idp_hint": "globex-idp"}},
		{"domain_hint to a forbidden tenant", map[string]string{"client_id": "acme-only", "domain_hint": "globex.test"}},
		{"login_hint to a forbidden tenant", map[string]string{"client_id": "acme-only", "login_hint": "x@globex.test"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := e.startAt(e.browser(), tc.set, nil)
			if got := upstreamOf(resp); got != "" {
				t.Fatalf("authorize(%s) reached IdP %q", tc.name, got)
			}
		})
	}
	t.Run("choice narrowed to allowed idps", func(t *testing.T) {
		resp, _ := e.startAt(e.browser(), map[string]string{"client_id": "no-social", "login_hint": "p@initech.test"}, nil)
		if got := upstreamOf(resp); got != "initech-a" {
			t.Fatalf("no-social with an initech user went to %q, want straight to initech-a (the only allowed one)", got)
		}
	})
	t.Run("discovery page hides forbidden buttons and refuses forged choices", func(t *testing.T) {
		b := e.browser()
		resp, _ := e.startAt(b, map[string]string{"client_id": "no-social"}, nil)
		page, body := b.getBody(e.issuer + resp.Header.Get("Location"))
		if page.StatusCode != http.StatusOK || strings.Contains(body, `value="social"`) {
			t.Fatalf("discovery page for no-social offers the social IdP")
		}
		post, _ := b.postForm(e.issuer+"/login", url.Values{"r": {formField(body, "r")}, "idp": {"social"}})
		if upstreamOf(post) != "" {
			t.Fatalf("forged idp=social reached the upstream")
		}
		post, _ = b.postForm(e.issuer+"/login", url.Values{"r": {formField(body, "r")}, "idp": {"globex-idp"}})
		if upstreamOf(post) != "" {
			t.Fatalf("idp=globex-idp (not offered: no email typed) reached the upstream")
		}
	})
}

func TestDiscovery_S53_RememberedChoiceCookie(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	// Pick the social provider on the discovery page and sign in.
	resp, _ := e.startAt(b, nil, nil)
	_, body := b.getBody(e.issuer + resp.Header.Get("Location"))
	if !strings.Contains(body, `value="social"`) {
		t.Fatalf("discovery page lacks the default tenant's provider button")
	}
	post, _ := b.postForm(e.issuer+"/login", url.Values{"r": {formField(body, "r")}, "idp": {"social"}})
	state := mustQuery(t, post.Header.Get("Location")).Get("state")
	cb := b.get(e.issuer + "/callback/social?code=x&state=" + url.QueryEscape(state))
	var remember *http.Cookie
	for _, ck := range cb.Cookies() {
		if ck.Name == "rg_idp" {
			remember = ck
		}
	}
	if remember == nil {
		t.Fatal("no remembered-choice cookie after a successful sign-in")
	}
	if !remember.HttpOnly || remember.SameSite != http.SameSiteLaxMode || !strings.HasPrefix(remember.Value, "social.") {
		t.Errorf("cookie %+v, want HttpOnly, SameSite=Lax, holding only the IdP id and a signature", remember)
	}
	if strings.Contains(remember.Value, "someone") || strings.Contains(remember.Value, "gmail") {
		t.Errorf("cookie %q holds identity data", remember.Value)
	}
	// A new authorization (prompt=login so SSO does not answer) goes straight there.
	resp, _ = e.startAt(b, map[string]string{"prompt": "login"}, nil)
	if upstreamOf(resp) != "social" {
		t.Fatalf("with the cookie, authorize went to %q, want social", resp.Header.Get("Location"))
	}
	// select_account shows the page with "continue" and "use another account".
	resp, _ = e.startAt(b, map[string]string{"prompt": "select_account"}, nil)
	page, body := b.getBody(e.issuer + mustLocation(t, resp))
	if !strings.Contains(body, "Continue with GitHub") || !strings.Contains(body, "Use another account") {
		t.Fatalf("select_account page lacks the remembered choice: %d %q", page.StatusCode, body)
	}
	forget := formLink(body, "Use another account")
	fr := b.get(e.issuer + forget)
	if fr.StatusCode != http.StatusSeeOther {
		t.Fatalf("use another account = %d", fr.StatusCode)
	}
	resp, _ = e.startAt(b, map[string]string{"prompt": "login"}, nil)
	if !strings.HasPrefix(resp.Header.Get("Location"), "/login?") {
		t.Fatalf("after 'use another account', authorize = %q, want the discovery page", resp.Header.Get("Location"))
	}
	// A forged cookie (another IdP id with the old signature) is ignored.
	u, _ := url.Parse(e.issuer)
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "rg_idp", Value: "acme-idp." + strings.SplitN(remember.Value, ".", 2)[1], Path: "/"}})
	resp, _ = e.startAt(b, map[string]string{"prompt": "login"}, nil)
	if upstreamOf(resp) != "" {
		t.Fatalf("forged cookie routed to %q", upstreamOf(resp))
	}
}

func TestDiscovery_S54_HostileValuesEscaped(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	hostile := `"><script>alert(1)</script>@initech.test`
	resp, _ := e.startAt(b, nil, nil)
	_, body := b.getBody(e.issuer + resp.Header.Get("Location"))
	// The hostile address is no email (S74): the discovery page shows it
	// back, escaped; a real address of initech shows its choice page.
	_, again := b.postForm(e.issuer+"/login", url.Values{"r": {formField(body, "r")}, "email": {hostile}})
	_, choose := b.postForm(e.issuer+"/login", url.Values{"r": {formField(body, "r")}, "email": {"peter@initech.test"}})
	for _, page := range []string{again, choose} {
		for _, bad := range []string{"<script>", "<img src=x", `<b>`} {
			if strings.Contains(page, bad) {
				t.Errorf("page renders %q unescaped:\n%s", bad, page)
			}
		}
	}
	if !strings.Contains(again, "&#34;&gt;&lt;script&gt;") {
		t.Errorf("hostile email not shown back escaped:\n%s", again)
	}
	if !strings.Contains(choose, "&lt;img src=x onerror=alert(1)&gt; Initech") {
		t.Errorf("hostile tenant name not shown escaped:\n%s", choose)
	}
	// Upstream error text never reaches a page unescaped.
	e.acme.err = providers.ErrInvalidResponse
	idp, state := e.upstreamState(b, authParams(s256(strings.Repeat("a", 43))))
	_, errPage := b.getBody(e.issuer + "/callback/" + idp + "?state=" + url.QueryEscape(state) + "&error_description=" + url.QueryEscape("<script>x</script>"))
	if strings.Contains(errPage, "<script>") {
		t.Errorf("error page echoes upstream text unescaped")
	}
}

// TestTenancy_S50_S51_Property drives random combinations of hints, hosts,
// cookies and upstream claims: the token's tid is always the tenant of the
// IdP that authenticated the user.
func TestTenancy_S50_S51_Property(t *testing.T) {
	e := newEnv(t, func(c *brokerConfig) { c.TrustedProxies = mustPrefixes("127.0.0.0/8") })
	rng := rand.New(rand.NewPCG(1, 2))
	owner := map[string]string{"acme-idp": "acme", "globex-idp": "globex", "initech-a": "initech", "initech-b": "initech", "social": "consumers"}
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	fakes := map[string]*fakeIdP{"acme-idp": e.acme, "globex-idp": e.globex, "initech-a": e.initechA, "initech-b": e.initechB, "social": e.social}
	checked := 0
	for i := 0; i < 80; i++ {
		set := map[string]string{
			"idp_hint":    pick("", "acme-idp", "globex-idp", "initech-b", "social", "nope"),
			"domain_hint": pick("", "acme.test", "globex.test", "initech.test", "evil.example"),
			"login_hint":  pick("", "a@acme.test", "b@globex.test", "c@initech.test", "d@gmail.example"),
			"client_id":   pick("app-a", "no-social", "acme-only"),
		}
		host := pick("", "initech.login.test", "acme.login.test")
		xff := pick("", "198.51.100.9", "203.0.113.1")
		// Every IdP asserts claims pointing at another tenant.
		for _, f := range fakes {
			f.mu.Lock()
			f.ident.Email = pick("x@acme.test", "x@globex.test", "x@initech.test")
			f.ident.Claims = map[string]any{"tid": pick("acme", "globex"), "tenant": "globex"}
			f.mu.Unlock()
		}
		b := e.browser()
		resp, body := e.startAt(b, set, func(r *http.Request) {
			if host != "" {
				r.Host = host
			}
			if xff != "" {
				r.Header.Set("X-Forwarded-For", xff)
			}
		})
		idp := upstreamOf(resp)
		if idp == "" && resp.StatusCode == http.StatusOK && strings.Contains(body, `name="idp"`) {
			// The tenant's choice page: pick the first offered IdP.
			resp, _ = b.postForm(e.issuer+"/login", url.Values{"r": {formField(body, "r")}, "email": {formField(body, "email")}, "idp": {firstIdP(body)}})
			idp = upstreamOf(resp)
		}
		if idp == "" {
			continue // discovery page or refusal: no token to check
		}
		state := mustQuery(t, resp.Header.Get("Location")).Get("state")
		cb, page := b.getBody(e.issuer + "/callback/" + idp + "?code=x&state=" + url.QueryEscape(state))
		loc := cb.Header.Get("Location")
		q := mustQuery(t, loc)
		if q.Get("code") == "" {
			t.Fatalf("combination %v host %q xff %q: callback from %s = %d %q, want a code; %s", set, host, xff, idp, cb.StatusCode, loc, page)
		}
		redirect := strings.SplitN(loc, "?", 2)[0]
		tr := e.post("/token", url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {redirect},
			"code_verifier": {authVerifier}}, set["client_id"], secretA)
		if tr.status != http.StatusOK {
			t.Fatalf("token = %d %v", tr.status, tr.body)
		}
		_, c := claimsOf(t, tr.str("id_token"))
		if c["tid"] != owner[idp] || c["idp"] != idp {
			t.Fatalf("combination %v host %q xff %q: idp %s gave tid %v, want %s", set, host, xff, idp, c["tid"], owner[idp])
		}
		checked++
		if email, _ := c["email"].(string); email != "" && !strings.HasSuffix(email, "@"+owner[idp]+".test") {
			t.Fatalf("idp %s of tenant %s minted email %q in another tenant's domain (S52)", idp, owner[idp], email)
		}
	}
	if checked < 30 {
		t.Fatalf("only %d of 80 combinations produced a token; the property was not exercised", checked)
	}
}
