package broker_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/realm"
	"github.com/realmgate/realmgate/transform"
)

// withClient registers one more client on app-a's redirect URI.
func withClient(c broker.Client) envOpt {
	return func(cfg *broker.Config) {
		c.Secret, c.RedirectURIs = secretA, []string{appCB}
		cfg.Clients = append(cfg.Clients, c)
	}
}

// paramsFor is authParams for another client on app-a's redirect URI.
func paramsFor(client, hint string) url.Values {
	v := authParams(s256(authVerifier))
	v.Set("client_id", client)
	if hint == "" {
		v.Del("login_hint")
	} else {
		v.Set("login_hint", hint)
	}
	return v
}

// codeOrNil returns the code of a redirect to the client, or "" when the
// response went anywhere else (the upstream, a page, an error).
func codeOrNil(resp *http.Response) string {
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, appCB+"?") {
		return ""
	}
	u, _ := url.Parse(loc)
	return u.Query().Get("code")
}

// redeem exchanges a code of client (secret secretA) for tokens.
func (e *env) redeem(client, code string) tokenResp {
	return e.post("/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {appCB}, "code_verifier": {authVerifier}}, client, secretA)
}

// TestAuthz_S66_SSOHonoursAllowedIdPs: a browser with an SSO session from
// an IdP the client may not use gets no code from that session, whichever
// IdP or tenant it is: the review's acme-idp2 and social cases.
func TestAuthz_S66_SSOHonoursAllowedIdPs(t *testing.T) {
	e := newEnv(t, withClient(broker.Client{ID: "initech-a-only", AllowedTenants: []string{"initech"}, AllowedIdPs: []string{"initech-a"}}))
	cases := []struct {
		name, hint, client, wantNot string
	}{
		{"social session, client without social", "someone@gmail.example", "no-social", "social"},
		{"second IdP of the tenant, client limited to the first", "peter@initech.test", "initech-a-only", "initech-b"},
		{"other tenant's session, client of one tenant", "carol@globex.test", "acme-only", "globex-idp"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := e.browser()
			// The session: a sign-in through the IdP the client may not use.
			v := authParams(s256(authVerifier))
			v.Set("login_hint", tc.hint)
			if tc.wantNot == "initech-b" {
				v.Del("login_hint")
				v.Set("idp_hint", "initech-b")
			}
			e.login(b, v)
			// The attacker's request: the restricted client, no hint at all.
			resp := b.get(e.authorizeURL(paramsFor(tc.client, "")))
			if code := codeOrNil(resp); code != "" {
				tr := e.redeem(tc.client, code)
				_, c := claimsOf(t, tr.str("id_token"))
				t.Fatalf("%s got a code from the %s session: idp %v tid %v", tc.client, tc.wantNot, c["idp"], c["tid"])
			}
			if up := upstreamOf(resp); up == tc.wantNot {
				t.Fatalf("%s was sent to %s, which it may not use", tc.client, up)
			}
		})
	}
}

// TestAuthz_S66_ExchangeHonoursAudienceLimits: carol (globex) cannot sign in
// to acme-only, and exchanging her token for that audience is refused too.
func TestAuthz_S66_ExchangeHonoursAudienceLimits(t *testing.T) {
	e := newEnv(t, allowExchange("app-a", "acme-only"))
	carol := func() string {
		v := authParams(s256(authVerifier))
		v.Set("login_hint", "carol@globex.test")
		q := e.login(e.browser(), v)
		return e.exchange(q.Get("code"), authVerifier).str("access_token")
	}()
	v := exchangeParams(carol)
	v.Set("audience", "acme-only")
	if r := e.post("/token", v, "app-a", secretA); r.status == http.StatusOK || r.str("error") != "invalid_target" {
		t.Fatalf("exchange of carol@globex for acme-only = %d %v, want invalid_target", r.status, r.body)
	}
	alice, _ := e.signIn()
	v = exchangeParams(alice.str("access_token"))
	v.Set("audience", "acme-only")
	if r := e.post("/token", v, "app-a", secretA); r.status != http.StatusOK {
		t.Fatalf("exchange of alice@acme for acme-only = %d %v, want 200", r.status, r.body)
	}
}

// TestAuthz_S67_StrongerRequestsNeverCompletedFromSession: with a live
// session, a request asking for prompt=login, max_age=0 or multi-factor
// posted to the tenant picker (or sent to /authorize) goes upstream; it never
// gets a code from the old session.
func TestAuthz_S67_StrongerRequestsNeverCompletedFromSession(t *testing.T) {
	e := newEnv(t, withMemberships)
	// carol (globex, single factor) holds the session.
	b := e.browser()
	v := authParams(s256(authVerifier))
	v.Set("login_hint", "carol@globex.test")
	e.login(b, v)
	cases := []struct {
		name  string
		param url.Values
		check func(t *testing.T)
	}{
		{"prompt=login", url.Values{"prompt": {"login"}}, func(t *testing.T) {
			if !e.globex.last.ForceLogin {
				t.Errorf("upstream request without ForceLogin")
			}
		}},
		{"max_age=0", url.Values{"max_age": {"0"}}, func(t *testing.T) {
			if !e.globex.last.ForceLogin {
				t.Errorf("upstream request without ForceLogin")
			}
		}},
		{"acr_values mfa", url.Values{"acr_values": {broker.ACRMFA}}, func(t *testing.T) {
			if len(e.globex.last.ACRValues) == 0 {
				t.Errorf("upstream request without acr_values")
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := authParams(s256(authVerifier))
			req.Del("login_hint")
			req.Set("prompt", "select_account")
			for k := range tc.param {
				req.Set(k, strings.TrimSpace(req.Get(k)+" "+tc.param.Get(k)))
			}
			// No hint, select_account: the discovery page, whose form carries the pending request.
			resp, page := b.getBody(e.authorizeURL(req))
			r := formField(page, "r")
			if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, "/login?") {
				r = mustQuery(t, loc).Get("r")
			}
			if r == "" {
				t.Fatalf("authorize = %d %q, want the discovery page with a pending request", resp.StatusCode, resp.Header.Get("Location"))
			}
			// The attack: post that request to the tenant picker.
			pick, _ := b.postForm(e.issuer+"/tenant", url.Values{"r": {r}, "tenant": {"globex"}})
			if code := codeOrNil(pick); code != "" {
				_, c := claimsOf(t, e.exchange(code, authVerifier).str("id_token"))
				t.Fatalf("the picker completed a %s request from the old session: acr %v auth_time %v", tc.name, c["acr"], c["auth_time"])
			}
			if up := upstreamOf(pick); up != "globex-idp" {
				t.Fatalf("picker answer = %d %q, want a new upstream sign-in at globex-idp", pick.StatusCode, pick.Header.Get("Location"))
			}
			tc.check(t)
		})
	}
}

// TestAuthz_S67_MaxAgeForwardedAndAuthTimeFromUpstream: max_age goes
// upstream; auth_time is the upstream's, and with none stated the tokens
// carry none (the broker's clock is never passed off as one).
func TestAuthz_S67_MaxAgeForwardedAndAuthTimeFromUpstream(t *testing.T) {
	e := newEnv(t)
	v := authParams(s256(authVerifier))
	v.Set("max_age", "300")
	b := e.browser()
	idp, state := e.upstreamState(b, v)
	if e.acme.last.MaxAge != 300*time.Second {
		t.Fatalf("LoginRequest.MaxAge = %v, want 5m0s", e.acme.last.MaxAge)
	}
	q := e.clientRedirect(b.get(e.issuer+"/callback/"+idp+"?code=x&state="+url.QueryEscape(state)), appCB)
	if _, c := claimsOf(t, e.exchange(q.Get("code"), authVerifier).str("id_token")); c["auth_time"] == nil {
		t.Fatalf("ID token after max_age lacks auth_time: %v", c)
	}

	// An upstream that states no authentication time.
	e.acme.now = nil
	stated := e.acme.ident.AuthTime
	if !stated.IsZero() {
		t.Fatal("fixture states an auth time")
	}
	tr, _ := e.signIn()
	_, c := claimsOf(t, tr.str("id_token"))
	if c["auth_time"] != nil {
		t.Errorf("auth_time = %v with no upstream authentication time, want none", c["auth_time"])
	}
	if _, ac := claimsOf(t, tr.str("access_token")); ac["auth_time"] != nil {
		t.Errorf("access token auth_time = %v with no upstream authentication time, want none", ac["auth_time"])
	}
	// max_age cannot be met by an unknown time: the broker says so.
	v = authParams(s256(authVerifier))
	v.Set("max_age", "300")
	b = e.browser()
	idp, state = e.upstreamState(b, v)
	resp := b.get(e.issuer + "/callback/" + idp + "?code=x&state=" + url.QueryEscape(state))
	if q := e.clientRedirect(resp, appCB); q.Get("error") != "login_required" {
		t.Fatalf("max_age with an unknown upstream auth time = %v, want error login_required", q)
	}
}

// harnessDirectory is the env's directory, changed by mod.
func (e *env) harnessDirectory(mod func(tenants *[]realm.Tenant, idps *[]broker.IdP, d *broker.Directory)) broker.Directory {
	e.t.Helper()
	tenants, idps := harnessTenants(), e.harnessIdPs()
	d := broker.Directory{}
	mod(&tenants, &idps, &d)
	res, err := realm.New(tenants, realm.Options{BaseDomain: "login.test"})
	if err != nil {
		e.t.Fatal(err)
	}
	d.Resolver, d.IdPs = res, idps
	return d
}

// TestAuthz_S68_RefreshOutlivesNothing: refresh re-checks membership,
// tenant, IdP and client at every use and runs the current rules.
func TestAuthz_S68_RefreshOutlivesNothing(t *testing.T) {
	memberRefresh := func(e *env) (string, *browser) {
		b := e.browser()
		v := authParams(s256(authVerifier))
		v.Set("tenant", "globex")
		q := e.login(b, v)
		tr := e.exchange(q.Get("code"), authVerifier)
		if _, c := claimsOf(t, tr.str("id_token")); c["tid"] != "globex" {
			t.Fatalf("member sign-in tid = %v, want globex", c["tid"])
		}
		return tr.str("refresh_token"), b
	}
	keepRules := func(e *env) map[string]*transform.Engine {
		eng, err := transform.Compile(nil, []transform.Rule{{Name: "consultants", Add: []transform.Assignment{{Claim: "roles", Expr: `"consultant"`}}}},
			transform.Options{Tenant: "globex"})
		if err != nil {
			t.Fatal(err)
		}
		return map[string]*transform.Engine{"globex": eng}
	}
	homeRefresh := func(e *env) (string, *browser) {
		b := e.browser()
		v := authParams(s256(authVerifier))
		v.Set("tenant", "acme") // alice is a member elsewhere too: no picker
		q := e.login(b, v)
		return e.exchange(q.Get("code"), authVerifier).str("refresh_token"), b
	}
	withoutTenant := func(id, idp string) func(*env, *[]realm.Tenant, *[]broker.IdP, *broker.Directory) {
		return func(_ *env, tenants *[]realm.Tenant, idps *[]broker.IdP, _ *broker.Directory) {
			*tenants = slicesDelete(*tenants, func(t realm.Tenant) bool { return t.ID == id })
			*idps = slicesDelete(*idps, func(p broker.IdP) bool { return p.ID == idp })
		}
	}
	cases := []struct {
		name   string
		signIn func(e *env) (string, *browser)
		mod    func(e *env, tenants *[]realm.Tenant, idps *[]broker.IdP, d *broker.Directory)
	}{
		{"membership removed", memberRefresh, func(e *env, _ *[]realm.Tenant, _ *[]broker.IdP, d *broker.Directory) {
			d.Rules = keepRules(e) // globex and its rules stay; only the membership goes
		}},
		{"guest tenant deleted", memberRefresh, withoutTenant("globex", "globex-idp")},
		{"home tenant deleted", homeRefresh, withoutTenant("acme", "acme-idp")},
		{"IdP removed from its tenant", homeRefresh, func(_ *env, tenants *[]realm.Tenant, idps *[]broker.IdP, _ *broker.Directory) {
			for i := range *tenants {
				if (*tenants)[i].ID == "acme" {
					(*tenants)[i].IdPs = nil
				}
			}
			*idps = slicesDelete(*idps, func(p broker.IdP) bool { return p.ID == "acme-idp" })
		}},
		{"client narrowed to another tenant", homeRefresh, func(_ *env, _ *[]realm.Tenant, _ *[]broker.IdP, d *broker.Directory) {
			d.Clients = []broker.Client{{ID: "app-a", Secret: secretA, RedirectURIs: []string{appCB}, AllowedTenants: []string{"globex"},
				Claims: []string{"roles"}}}
		}},
		{"tenant deleted and created again under its id", homeRefresh, func(_ *env, _ *[]realm.Tenant, _ *[]broker.IdP, d *broker.Directory) {
			d.Policies = map[string]broker.TenantPolicy{"acme": {Incarnation: "created-again"}}
		}},
		{"tenant now requires MFA", func(e *env) (string, *browser) {
			v := authParams(s256(authVerifier))
			v.Set("login_hint", "carol@globex.test") // single factor
			q := e.login(e.browser(), v)
			return e.exchange(q.Get("code"), authVerifier).str("refresh_token"), nil
		}, func(_ *env, _ *[]realm.Tenant, _ *[]broker.IdP, d *broker.Directory) {
			d.Policies = map[string]broker.TenantPolicy{"globex": {RequireMFA: true}}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, withMemberships)
			rt, _ := tc.signIn(e)
			if r := e.refresh(rt, "app-a", secretA); r.status != http.StatusOK {
				t.Fatalf("refresh before the change = %d %v", r.status, r.body)
			} else {
				rt = r.str("refresh_token")
			}
			if err := e.broker.Reconfigure(e.harnessDirectory(func(ts *[]realm.Tenant, ps *[]broker.IdP, d *broker.Directory) {
				tc.mod(e, ts, ps, d)
			})); err != nil {
				t.Fatal(err)
			}
			r := e.refresh(rt, "app-a", secretA)
			if r.status == http.StatusOK {
				_, c := claimsOf(t, r.str("id_token"))
				t.Fatalf("refresh after %s = 200 with tid %v, want invalid_grant", tc.name, c["tid"])
			}
			if r.str("error") != "invalid_grant" {
				t.Fatalf("refresh after %s = %v, want invalid_grant", tc.name, r.body)
			}
		})
	}
	t.Run("current rules", func(t *testing.T) {
		e := newEnv(t)
		tr, _ := e.signIn()
		eng, err := transform.Compile(nil, []transform.Rule{{Name: "now admins", Add: []transform.Assignment{{Claim: "roles", Expr: `"auditor"`}}}},
			transform.Options{Tenant: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.broker.Reconfigure(e.harnessDirectory(func(_ *[]realm.Tenant, _ *[]broker.IdP, d *broker.Directory) {
			d.Rules = map[string]*transform.Engine{"acme": eng}
		})); err != nil {
			t.Fatal(err)
		}
		r := e.refresh(tr.str("refresh_token"), "app-a", secretA)
		_, c := claimsOf(t, r.str("access_token"))
		if got := strings.Join(toStrings(c["roles"]), ","); got != "auditor" {
			t.Fatalf("roles after refresh = %q, want the current rules' %q", got, "auditor")
		}
		deny, err := transform.Compile(nil, []transform.Rule{{Name: "offboarded", Deny: "access revoked"}}, transform.Options{Tenant: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.broker.Reconfigure(e.harnessDirectory(func(_ *[]realm.Tenant, _ *[]broker.IdP, d *broker.Directory) {
			d.Rules = map[string]*transform.Engine{"acme": deny}
		})); err != nil {
			t.Fatal(err)
		}
		if r := e.refresh(r.str("refresh_token"), "app-a", secretA); r.str("error") != "invalid_grant" {
			t.Fatalf("refresh after a deny rule = %v, want invalid_grant", r.body)
		}
	})
}

func slicesDelete[T any](s []T, del func(T) bool) []T {
	out := s[:0:0]
	for _, x := range s {
		if !del(x) {
			out = append(out, x)
		}
	}
	return out
}

// TestAuthz_S69_ImpersonationOfIssuedSubjectsOnly: an operator of acme
// cannot name a globex user as acme/<sub>, and an actor token must belong to
// the client presenting it.
func TestAuthz_S69_ImpersonationOfIssuedSubjectsOnly(t *testing.T) {
	e := newEnv(t, allowExchange("app-a", "app-b"), func(c *broker.Config) {
		c.Policies = map[string]broker.TenantPolicy{"acme": {Impersonation: &broker.ImpersonationPolicy{OperatorRoles: []string{"support"}}}}
		eng, err := transform.Compile(nil, []transform.Rule{{Name: "support", Add: []transform.Assignment{{Claim: "roles", Expr: `"support"`}}}},
			transform.Options{Tenant: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		c.Rules = map[string]*transform.Engine{"acme": eng}
	})
	operator, _ := e.signIn() // alice, acme support
	_, oc := claimsOf(t, operator.str("access_token"))
	v := authParams(s256(authVerifier))
	v.Set("login_hint", "carol@globex.test")
	q := e.login(e.browser(), v)
	carol := e.exchange(q.Get("code"), authVerifier)
	_, cc := claimsOf(t, carol.str("id_token"))
	impersonate := func(subject, actor, client, secret string) tokenResp {
		return e.post("/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
			"subject_token": {subject}, "subject_token_type": {"urn:realmgate:params:oauth:token-type:user"},
			"actor_token": {actor}, "actor_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
			"audience": {"app-b"}}, client, secret)
	}
	r := impersonate("acme/"+cc["sub"].(string), operator.str("access_token"), "app-a", secretA)
	if r.status == http.StatusOK {
		_, c := claimsOf(t, r.str("access_token"))
		t.Fatalf("acme operator impersonated carol@globex: sub %v tid %v", c["sub"], c["tid"])
	}
	if r.str("error") != "invalid_grant" {
		t.Fatalf("impersonating a subject never issued for acme = %v, want invalid_grant", r.body)
	}
	// Control: a subject issued for acme (the operator's own) is accepted.
	if r := impersonate("acme/"+oc["sub"].(string), operator.str("access_token"), "app-a", secretA); r.status != http.StatusOK {
		t.Fatalf("impersonating an acme subject = %d %v, want 200", r.status, r.body)
	}
	t.Run("actor token of another client", func(t *testing.T) {
		// app-b presents app-a's operator token as its actor.
		ex := exchangeParams(carol.str("access_token"))
		ex.Set("actor_token", operator.str("access_token"))
		ex.Set("actor_token_type", "urn:ietf:params:oauth:token-type:access_token")
		// app-a exchanges carol's token with an actor token issued to app-a: accepted.
		if r := e.post("/token", ex, "app-a", secretA); r.status != http.StatusOK {
			t.Fatalf("exchange with the client's own actor token = %d %v", r.status, r.body)
		}
		// The same actor token, now issued to app-b (an exchanged token for app-b), is refused.
		foreign := e.post("/token", exchangeParams(operator.str("access_token")), "app-a", secretA).str("access_token")
		ex.Set("actor_token", foreign)
		r := e.post("/token", ex, "app-a", secretA)
		if r.status == http.StatusOK {
			_, c := claimsOf(t, r.str("access_token"))
			t.Fatalf("actor token issued to app-b accepted from app-a: act %v", c["act"])
		}
		if r.str("error") != "invalid_grant" {
			t.Fatalf("foreign actor token = %v, want invalid_grant", r.body)
		}
		if r := impersonate("acme/"+oc["sub"].(string), foreign, "app-a", secretA); r.str("error") != "invalid_grant" {
			t.Fatalf("impersonation with a foreign actor token = %v, want invalid_grant", r.body)
		}
	})
}

// TestClaims_S75_ReleasedPerClient: custom claims only to clients
// registered for them by name; roles with the roles scope or by registration;
// the same filter for ID token, access token, userinfo and introspection.
func TestClaims_S75_ReleasedPerClient(t *testing.T) {
	e := newEnv(t,
		withClient(broker.Client{ID: "plain", AllowedTenants: []string{"*"}}),
		withClient(broker.Client{ID: "hr-app", AllowedTenants: []string{"*"}, Claims: []string{"department", "roles"}}),
		func(c *broker.Config) {
			eng, err := transform.Compile(nil, []transform.Rule{{Name: "hr", Set: []transform.Assignment{
				{Claim: "department", Expr: `"finance"`}, {Claim: "salary_band", Expr: `"B7"`}},
				Add: []transform.Assignment{{Claim: "roles", Expr: `"admin"`}}}}, transform.Options{Tenant: "acme"})
			if err != nil {
				t.Fatal(err)
			}
			c.Rules = map[string]*transform.Engine{"acme": eng}
		})
	cases := []struct {
		client, scope       string
		wantDept, wantRoles bool
	}{
		{"plain", "openid profile email", false, false},
		{"plain", "openid profile email roles", false, true},
		{"hr-app", "openid", true, true},
	}
	for _, tc := range cases {
		t.Run(tc.client+" "+tc.scope, func(t *testing.T) {
			v := paramsFor(tc.client, "alice@acme.test")
			v.Set("scope", tc.scope)
			q := e.login(e.browser(), v)
			tr := e.redeem(tc.client, q.Get("code"))
			if tr.status != http.StatusOK {
				t.Fatalf("token = %d %v", tr.status, tr.body)
			}
			_, id := claimsOf(t, tr.str("id_token"))
			_, at := claimsOf(t, tr.str("access_token"))
			_, ui := e.userinfo(tr.str("access_token"))
			in := e.post("/introspect", url.Values{"token": {tr.str("access_token")}}, tc.client, secretA).body
			for name, got := range map[string]map[string]any{"id token": id, "access token": at, "userinfo": ui, "introspection": in} {
				if got["salary_band"] != nil {
					t.Errorf("%s carries salary_band, registered by no client", name)
				}
				if has := got["roles"] != nil; has != tc.wantRoles {
					t.Errorf("%s roles = %v, want present %v", name, got["roles"], tc.wantRoles)
				}
				if name == "access token" || name == "introspection" {
					continue // custom claims stay out of access tokens
				}
				if has := got["department"] == "finance"; has != tc.wantDept {
					t.Errorf("%s department = %v, want present %v", name, got["department"], tc.wantDept)
				}
			}
		})
	}
}
