package broker_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/internal/mmdbtest"
	"github.com/realmgate/realmgate/risk"
	"github.com/realmgate/realmgate/store"
	"github.com/realmgate/realmgate/users"
)

// Remember passes the conditional-access history through (store.HistoryStore).
func (r *recordingStore) Remember(ctx context.Context, key string, value []byte, members []string, max int, ttl time.Duration) ([]byte, []bool, error) {
	if err := r.fail(); err != nil {
		return nil, nil, err
	}
	hs, ok := r.Store.(store.HistoryStore)
	if !ok {
		return nil, nil, broker.ErrUnavailable
	}
	r.rec(key, string(value))
	return hs.Remember(ctx, key, value, members, max, ttl)
}

// Client IPs of the test GeoIP database.
const (
	ipBerlin  = "198.51.100.7"
	ipNewYork = "203.0.113.200"
	ipParis   = "203.0.113.5"
)

// testSensor reads a tiny GeoIP database built by the test.
func testSensor(t testing.TB) *risk.Sensor {
	t.Helper()
	city := func(cc string, lat, lon float64) map[string]any {
		return map[string]any{"country": map[string]any{"iso_code": cc}, "location": map[string]any{"latitude": lat, "longitude": lon},
			"autonomous_system_number": map[string]uint64{"DE": 3320, "FR": 3215, "US": 7922}[cc]}
	}
	db, err := mmdbtest.Build("GeoLite2-City", []mmdbtest.Network{
		{Prefix: "198.51.100.0/24", Record: city("DE", 52.52, 13.405)},
		{Prefix: "203.0.113.0/25", Record: city("FR", 48.8566, 2.3522)},
		{Prefix: "203.0.113.128/25", Record: city("US", 40.7128, -74.006)},
	})
	if err != nil {
		t.Fatal(err)
	}
	g, err := risk.GeoFromBytes(db)
	if err != nil {
		t.Fatal(err)
	}
	return &risk.Sensor{Geo: g, Locations: []risk.Location{{Name: "hq", Prefixes: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/28")}, Trusted: true}}}
}

// accessEnv is the harness with trusted proxies on loopback (the test sets
// the client IP with X-Forwarded-For), the test GeoIP database, and the
// given conditional access per tenant.
func accessEnv(t *testing.T, tenants map[string]*broker.TenantConditional, opts ...envOpt) *env {
	t.Helper()
	sensor := testSensor(t)
	all := append([]envOpt{func(c *broker.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		c.Conditional.Sensor = sensor
		if c.Policies == nil {
			c.Policies = map[string]broker.TenantPolicy{}
		}
		for id, ta := range tenants {
			p := c.Policies[id]
			p.Conditional = ta
			c.Policies[id] = p
		}
	}}, opts...)
	ms := memstore.New()
	t.Cleanup(func() { ms.Close() })
	e := newEnvOn(t, &recordingStore{Store: &countingStore{Store: ms}}, all...)
	e.acme.ident.AMR = []string{"pwd"} // single factor unless a test says otherwise
	return e
}

func compileAccess(t testing.TB, pols []risk.Policy, ctxs risk.Contexts) *broker.TenantConditional {
	t.Helper()
	set, err := risk.Compile(nil, pols, ctxs)
	if err != nil {
		t.Fatal(err)
	}
	return &broker.TenantConditional{Set: set}
}

// fromIP is a browser whose requests come, through the trusted proxy,
// from *ip.
func (e *env) fromIP(ip *string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: e.t, c: &http.Client{Jar: jar, Transport: xffTransport{ip: ip},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type xffTransport struct{ ip *string }

func (x xffTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", *x.ip)
	return http.DefaultTransport.RoundTrip(r)
}

// signInFrom runs a sign-in of app-a from ip in a new browser and returns
// the last response (the redirect to the app, a page, or to the IdP).
func (e *env) signInFrom(ip string, v url.Values) (*http.Response, string, *browser) {
	e.t.Helper()
	b := e.fromIP(&ip)
	_, state := e.upstreamState(b, v)
	resp, body := b.getBody(e.issuer + "/callback/acme-idp?code=c&state=" + url.QueryEscape(state))
	return resp, body, b
}

// followUpstream completes a redirect to the fake IdP.
func (e *env) followUpstream(b *browser, resp *http.Response) (*http.Response, string) {
	e.t.Helper()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc == nil || loc.Host != "idp.example" {
		e.t.Fatalf("response %d Location %q, want a redirect to the IdP", resp.StatusCode, resp.Header.Get("Location"))
	}
	return b.getBody(e.issuer + "/callback/acme-idp?code=c&state=" + url.QueryEscape(loc.Query().Get("state")))
}

func isAppRedirect(resp *http.Response) bool {
	return strings.HasPrefix(resp.Header.Get("Location"), appCB+"?")
}

// TestConditional_MFAStepUpOnNewCountry: a policy requiring MFA for a first
// sign-in from a country sends a single-factor user back to the IdP for
// MFA (the upstream step-up), and admits them once the IdP did it.
func TestConditional_MFAStepUpOnNewCountry(t *testing.T) {
	e := accessEnv(t, map[string]*broker.TenantConditional{
		"acme": compileAccess(t, []risk.Policy{{Name: "new-country-mfa", If: "signals.new_country", Action: risk.ActionMFA}}, nil)})
	_, challenge := pkce()
	resp, _, _ := e.signInFrom(ipBerlin, authParams(challenge))
	if !isAppRedirect(resp) {
		t.Fatalf("first sign-in from Berlin = %d %q, want the app", resp.StatusCode, resp.Header.Get("Location"))
	}
	e.clock.advance(48 * time.Hour) // no impossible travel
	resp, _, b := e.signInFrom(ipNewYork, authParams(challenge))
	if isAppRedirect(resp) {
		t.Fatal("sign-in from a new country without MFA reached the app, want a step-up")
	}
	if got := e.acme.last.ACRValues; len(got) == 0 {
		t.Fatalf("upstream request ACRValues = %v, want the MFA step-up", got)
	}
	e.acme.mu.Lock()
	e.acme.ident.AMR = []string{"pwd", "mfa"}
	e.acme.mu.Unlock()
	resp, _ = e.followUpstream(b, resp)
	if !isAppRedirect(resp) {
		t.Fatalf("after MFA = %d %q, want the app", resp.StatusCode, resp.Header.Get("Location"))
	}
	// A single-factor answer to the step-up is refused, not retried.
	e.acme.mu.Lock()
	e.acme.ident.AMR = []string{"pwd"}
	e.acme.mu.Unlock()
	resp, _, b = e.signInFrom(ipParis, authParams(challenge))
	resp, body := e.followUpstream(b, resp)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Multi-factor") {
		t.Errorf("single-factor answer to the policy's step-up = %d, want 403 Multi-factor page", resp.StatusCode)
	}
}

// TestConditional_Deny: a deny policy shows its message and is audited with
// the policy and the risk level; other tenants are not affected.
func TestConditional_Deny(t *testing.T) {
	e := accessEnv(t, map[string]*broker.TenantConditional{
		"acme": compileAccess(t, []risk.Policy{{Name: "no-us", If: `signals.country == "US"`, Action: risk.ActionDeny, Message: "Sign-in from the US is blocked."}}, nil)})
	var events []broker.RiskEvent
	var mu sync.Mutex
	e.broker.OnRisk(broker.RiskListenerFunc(func(_ context.Context, ev broker.RiskEvent) {
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	}))
	_, challenge := pkce()
	resp, body, _ := e.signInFrom(ipNewYork, authParams(challenge))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Sign-in from the US is blocked.") {
		t.Fatalf("sign-in from the US = %d, want 403 with the policy's message", resp.StatusCode)
	}
	resp, _, _ = e.signInFrom(ipBerlin, authParams(challenge))
	if !isAppRedirect(resp) {
		t.Errorf("sign-in from Germany = %d, want the app", resp.StatusCode)
	}
	if !auditHas(t, e, "acme", func(ev broker.AuditEvent) bool {
		return ev.Outcome == "denied" && ev.Reason == "policy: no-us" && ev.Risk != ""
	}) {
		t.Error("the tenant's audit stream has no denied event with reason policy: no-us and a risk level")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) == 0 || events[0].Kind != broker.RiskDenied || events[0].Country != "US" {
		t.Errorf("risk events = %+v, want policy_denied from US", events)
	}
}

// TestConditional_TenantIsolation: one tenant's policies never decide another
// tenant's sign-ins.
func TestConditional_TenantIsolation(t *testing.T) {
	e := accessEnv(t, map[string]*broker.TenantConditional{
		"globex": compileAccess(t, []risk.Policy{{Name: "deny-all", Action: risk.ActionDeny, Message: "Globex is closed."}}, nil)})
	_, challenge := pkce()
	resp, _, _ := e.signInFrom(ipBerlin, authParams(challenge)) // acme
	if !isAppRedirect(resp) {
		t.Errorf("acme sign-in = %d, want the app (globex's policy must not apply)", resp.StatusCode)
	}
	v := authParams(challenge)
	v.Set("login_hint", "carol@globex.test")
	ip := ipBerlin
	b := e.fromIP(&ip)
	_, state := e.upstreamState(b, v)
	resp, body := b.getBody(e.issuer + "/callback/globex-idp?code=c&state=" + url.QueryEscape(state))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Globex is closed.") {
		t.Errorf("globex sign-in = %d, want 403 Globex is closed.", resp.StatusCode)
	}
}

// TestConditional_FreshLoginOverSSO: a fresh_login policy for one app does not
// let an SSO session through: the IdP is asked to sign the user in again.
func TestConditional_FreshLoginOverSSO(t *testing.T) {
	e := accessEnv(t, map[string]*broker.TenantConditional{
		"acme": compileAccess(t, []risk.Policy{{Name: "b-fresh", If: `client == "app-b"`, Action: risk.ActionFreshLogin}}, nil)})
	_, challenge := pkce()
	resp, _, b := e.signInFrom(ipBerlin, authParams(challenge))
	if !isAppRedirect(resp) {
		t.Fatal("first sign-in did not reach app-a")
	}
	// SSO to app-a still works.
	if resp := b.get(e.authorizeURL(authParams(challenge))); !isAppRedirect(resp) {
		t.Errorf("SSO to app-a = %d %q, want the app", resp.StatusCode, resp.Header.Get("Location"))
	}
	v := authParams(challenge)
	v.Set("client_id", "app-b")
	v.Set("redirect_uri", "https://app-b.example/callback")
	resp = b.get(e.authorizeURL(v))
	if !strings.HasPrefix(resp.Header.Get("Location"), "https://idp.example/") || !e.acme.last.ForceLogin {
		t.Fatalf("SSO to app-b = %d %q (ForceLogin %v), want a forced sign-in at the IdP", resp.StatusCode, resp.Header.Get("Location"), e.acme.last.ForceLogin)
	}
	resp, _ = e.followUpstream(b, resp)
	if !strings.HasPrefix(resp.Header.Get("Location"), "https://app-b.example/callback?") {
		t.Errorf("after the fresh sign-in = %d %q, want app-b", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestConditional_AuthContextACRS: an app asks for authentication context c1
// with the claims parameter; the tenant maps c1 to MFA; the ID token and
// the access token carry acrs ["c1"] once the user did MFA.
func TestConditional_AuthContextACRS(t *testing.T) {
	ta := compileAccess(t, nil, risk.Contexts{"c1": {MFA: true}})
	ta.RiskClaim = true
	e := accessEnv(t, map[string]*broker.TenantConditional{"acme": ta}, func(c *broker.Config) {
		c.Clients[0].Claims = append(c.Clients[0].Claims, "risk_level") // app-a is registered for it (S75)
	})
	verifier, challenge := pkce()
	v := authParams(challenge)
	v.Set("claims", `{"id_token":{"acrs":{"essential":true,"value":"c1"}}}`)
	resp, _, b := e.signInFrom(ipBerlin, v)
	if isAppRedirect(resp) {
		t.Fatal("c1 without MFA reached the app, want a step-up")
	}
	e.acme.mu.Lock()
	e.acme.ident.AMR = []string{"pwd", "mfa"}
	e.acme.mu.Unlock()
	resp, _ = e.followUpstream(b, resp)
	q := e.clientRedirect(resp, appCB)
	tr := e.exchange(q.Get("code"), verifier)
	if tr.status != http.StatusOK {
		t.Fatalf("token = %d %v", tr.status, tr.body)
	}
	_, id := claimsOf(t, tr.str("id_token"))
	if acrs, _ := id["acrs"].([]any); len(acrs) != 1 || acrs[0] != "c1" {
		t.Errorf("id_token acrs = %v, want [c1]", id["acrs"])
	}
	if id["risk_level"] != "low" {
		t.Errorf("id_token risk_level = %v, want low", id["risk_level"])
	}
	_, at := claimsOf(t, tr.str("access_token"))
	if acrs, _ := at["acrs"].([]any); len(acrs) != 1 || acrs[0] != "c1" {
		t.Errorf("access token acrs = %v, want [c1]", at["acrs"])
	}
	// The refresh keeps acrs.
	rt := e.refresh(tr.str("refresh_token"), "app-a", secretA)
	if _, id := claimsOf(t, rt.str("id_token")); id["acrs"] == nil {
		t.Errorf("refreshed id_token acrs = %v, want [c1]", id["acrs"])
	}
	// Without the claims parameter: no acrs.
	verifier, challenge = pkce()
	resp, _, _ = e.signInFrom(ipBerlin, authParams(challenge))
	tr = e.exchange(e.clientRedirect(resp, appCB).Get("code"), verifier)
	if _, id := claimsOf(t, tr.str("id_token")); id["acrs"] != nil {
		t.Errorf("id_token acrs = %v without a request, want none", id["acrs"])
	}
	// A malformed claims parameter is a clear error.
	v = authParams(challenge)
	v.Set("claims", `{"id_token":`)
	r := e.browser().get(e.authorizeURL(v))
	if loc := r.Header.Get("Location"); !strings.Contains(loc, "error=invalid_request") {
		t.Errorf("malformed claims = %d %q, want invalid_request", r.StatusCode, loc)
	}
}

// TestConditional_DiscoveryAdvertisesACRS: claims_parameter_supported and acrs
// in claims_supported.
func TestConditional_DiscoveryAdvertisesACRS(t *testing.T) {
	e := newEnv(t)
	var doc map[string]any
	getJSON(t, e.issuer+"/.well-known/openid-configuration", &doc)
	cs, _ := doc["claims_supported"].([]any)
	if doc["claims_parameter_supported"] != true || !slices.Contains(cs, any("acrs")) {
		t.Errorf("discovery claims_parameter_supported %v claims_supported %v, want true and acrs", doc["claims_parameter_supported"], cs)
	}
}

// TestConditional_NotifyAndShortenSession: notify reaches the listeners with
// the policy; shorten_session caps the refresh-token family.
func TestConditional_NotifyAndShortenSession(t *testing.T) {
	ta := compileAccess(t, []risk.Policy{
		{Name: "watch", If: `signals.risk != "low" || signals.first_sign_in`, Action: risk.ActionNotify},
		{Name: "short", Action: risk.ActionShortenSession, SessionLifetime: 10 * time.Minute}}, nil)
	ta.RiskClaim = true // but app-a is not registered for risk_level (S75)
	e := accessEnv(t, map[string]*broker.TenantConditional{"acme": ta})
	var got atomic.Value
	e.broker.OnRisk(broker.RiskListenerFunc(func(_ context.Context, ev broker.RiskEvent) { got.Store(ev) }))
	verifier, challenge := pkce()
	resp, _, _ := e.signInFrom(ipBerlin, authParams(challenge))
	tr := e.exchange(e.clientRedirect(resp, appCB).Get("code"), verifier)
	if _, id := claimsOf(t, tr.str("id_token")); id["risk_level"] != nil {
		t.Errorf("id_token risk_level = %v for a client not registered for it, want none (S75)", id["risk_level"])
	}
	ev, _ := got.Load().(broker.RiskEvent)
	if ev.Kind != broker.RiskNotify || !slices.Equal(ev.Policies, []string{"watch"}) || ev.Tenant != "acme" || ev.Subject == "" {
		t.Errorf("risk event = %+v, want policy_notify [watch] for acme", ev)
	}
	if !auditHas(t, e, "acme", func(ev broker.AuditEvent) bool {
		return ev.Outcome == "notify" && ev.Reason == "policy: watch" && ev.Risk == "low"
	}) {
		t.Error("the tenant's audit stream has no notify event for policy watch")
	}
	// The family lives 10 minutes, not the default refresh lifetime.
	fam := strings.SplitN(tr.str("refresh_token"), ".", 2)[0]
	if fam == "" {
		t.Fatal("no refresh token")
	}
	if ttl := familyTTL(t, e, fam); ttl <= 0 || ttl > 10*time.Minute {
		t.Errorf("refresh family TTL = %v, want at most 10m (shorten_session)", ttl)
	}
}

// familyTTL is the TTL the refresh family was created with (recorded by
// the test store).
func familyTTL(t *testing.T, e *env, fam string) time.Duration {
	t.Helper()
	v, ok := familyTTLs.Load(fam)
	if !ok {
		return 0
	}
	return v.(time.Duration)
}

var familyTTLs sync.Map

// TestConditional_Compromised: confirming a user compromised ends their
// sessions at once and refuses their next sign-in; dismissing the risk
// lets them in again; the listener hears both.
func TestConditional_Compromised(t *testing.T) {
	e := accessEnv(t, nil)
	var kinds []string
	var mu sync.Mutex
	e.broker.OnRisk(broker.RiskListenerFunc(func(_ context.Context, ev broker.RiskEvent) {
		mu.Lock()
		kinds = append(kinds, ev.Kind)
		mu.Unlock()
	}))
	verifier, challenge := pkce()
	resp, _, b := e.signInFrom(ipBerlin, authParams(challenge))
	tr := e.exchange(e.clientRedirect(resp, appCB).Get("code"), verifier)
	u, err := e.broker.Users().UserByLink(t.Context(), "acme", "acme-idp", "alice-upstream")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.broker.ConfirmCompromised(t.Context(), "admin:sec", "acme", u.ID); err != nil {
		t.Fatal(err)
	}
	if rt := e.refresh(tr.str("refresh_token"), "app-a", secretA); rt.status == http.StatusOK {
		t.Error("refresh after confirmed compromise succeeded, want invalid_grant")
	}
	if resp := b.get(e.authorizeURL(authParams(challenge))); isAppRedirect(resp) {
		t.Error("SSO after confirmed compromise reached the app")
	}
	resp, body, _ := e.signInFrom(ipBerlin, authParams(challenge))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "security event") {
		t.Errorf("sign-in of a compromised user = %d, want 403 (the tenant's compromised action)", resp.StatusCode)
	}
	risky, err := e.broker.RiskyUsers(t.Context(), "acme", 100)
	if err != nil || len(risky) != 1 || risky[0].ID != u.ID {
		t.Errorf("RiskyUsers = %v, %v; want alice", risky, err)
	}
	if _, err := e.broker.DismissRisk(t.Context(), "admin:sec", "acme", u.ID); err != nil {
		t.Fatal(err)
	}
	if resp, _, _ := e.signInFrom(ipBerlin, authParams(challenge)); !isAppRedirect(resp) {
		t.Errorf("sign-in after the risk was dismissed = %d, want the app", resp.StatusCode)
	}
	if risky, _ := e.broker.RiskyUsers(t.Context(), "acme", 100); len(risky) != 0 {
		t.Errorf("RiskyUsers after dismiss = %v, want none", risky)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(kinds, broker.RiskCompromised) || !slices.Contains(kinds, broker.RiskDismissed) {
		t.Errorf("risk events = %v, want user_compromised and risk_dismissed", kinds)
	}
}

// TestConditional_ImpossibleTravelMarksUserAtRisk: a high-risk sign-in marks
// the user at risk (listed for the tenant admin) and the audit event
// carries risk high.
func TestConditional_ImpossibleTravelMarksUserAtRisk(t *testing.T) {
	e := accessEnv(t, map[string]*broker.TenantConditional{
		"acme": compileAccess(t, []risk.Policy{{Name: "travel", If: "signals.impossible_travel", Action: risk.ActionMFA}}, nil)})
	_, challenge := pkce()
	e.signInFrom(ipBerlin, authParams(challenge))
	e.clock.advance(time.Hour) // Berlin -> New York in an hour
	resp, _, _ := e.signInFrom(ipNewYork, authParams(challenge))
	if isAppRedirect(resp) {
		t.Error("impossible travel without MFA reached the app")
	}
	risky, err := e.broker.RiskyUsers(t.Context(), "acme", 100)
	if err != nil || len(risky) != 1 || risky[0].Risk.State != users.RiskAtRisk || !strings.Contains(risky[0].Risk.Detail, "impossible_travel") {
		t.Errorf("RiskyUsers = %+v, %v; want alice at risk for impossible travel", risky, err)
	}
}

// countingStore counts every store call a request makes: one call is one
// round trip. Audit appends are left out: the audit writer batches them in
// the background, off the request path.
type countingStore struct {
	*memstore.Store
	n atomic.Int64
}

func (c *countingStore) Put(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	c.n.Add(1)
	return c.Store.Put(ctx, k, v, ttl)
}
func (c *countingStore) Create(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	c.n.Add(1)
	return c.Store.Create(ctx, k, v, ttl)
}
func (c *countingStore) Get(ctx context.Context, k string) ([]byte, error) {
	c.n.Add(1)
	return c.Store.Get(ctx, k)
}
func (c *countingStore) Take(ctx context.Context, k string) ([]byte, error) {
	c.n.Add(1)
	return c.Store.Take(ctx, k)
}
func (c *countingStore) Delete(ctx context.Context, k string) error {
	c.n.Add(1)
	return c.Store.Delete(ctx, k)
}
func (c *countingStore) Touch(ctx context.Context, k string, ttl time.Duration) error {
	c.n.Add(1)
	return c.Store.Touch(ctx, k, ttl)
}
func (c *countingStore) Incr(ctx context.Context, k string, ttl time.Duration) (int64, error) {
	c.n.Add(1)
	return c.Store.Incr(ctx, k, ttl)
}
func (c *countingStore) SlidingWindow(ctx context.Context, k string, w store.Window, op store.WindowOp, now time.Time) (time.Duration, error) {
	c.n.Add(1)
	return c.Store.SlidingWindow(ctx, k, w, op, now)
}
func (c *countingStore) CreateFamily(ctx context.Context, f, tok string, g []byte, ttl time.Duration) error {
	c.n.Add(1)
	familyTTLs.Store(f, ttl)
	return c.Store.CreateFamily(ctx, f, tok, g, ttl)
}
func (c *countingStore) DirFind(ctx context.Context, space string, keys []store.IndexEntry, stamp []byte) (store.DirRecord, error) {
	c.n.Add(1)
	return c.Store.DirFind(ctx, space, keys, stamp)
}
func (c *countingStore) DirGet(ctx context.Context, space, id string) (store.DirRecord, error) {
	c.n.Add(1)
	return c.Store.DirGet(ctx, space, id)
}
func (c *countingStore) DirPut(ctx context.Context, space string, rec store.DirRecord, expect int64) (int64, error) {
	c.n.Add(1)
	return c.Store.DirPut(ctx, space, rec, expect)
}
func (c *countingStore) AddToIndex(ctx context.Context, key, member string, max int, ttl time.Duration) error {
	c.n.Add(1)
	return c.Store.AddToIndex(ctx, key, member, max, ttl)
}
func (c *countingStore) Remember(ctx context.Context, key string, value []byte, members []string, max int, ttl time.Duration) ([]byte, []bool, error) {
	c.n.Add(1)
	return c.Store.Remember(ctx, key, value, members, max, ttl)
}

// TestConditional_CostOneRoundTrip: signals and policies add exactly one store
// round trip to a sign-in (the history; issue 16: at most one).
func TestConditional_CostOneRoundTrip(t *testing.T) {
	count := func(tenants map[string]*broker.TenantConditional) int64 {
		ms := memstore.New()
		t.Cleanup(func() { ms.Close() })
		cs := &countingStore{Store: ms}
		e := newEnvOn(t, &recordingStore{Store: cs}, func(c *broker.Config) {
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
			c.Conditional.Sensor = testSensor(t)
			c.Policies = map[string]broker.TenantPolicy{}
			for id, ta := range tenants {
				c.Policies[id] = broker.TenantPolicy{Conditional: ta}
			}
		})
		_, challenge := pkce()
		e.signInFrom(ipBerlin, authParams(challenge)) // the user's record exists from now on
		_, challenge = pkce()
		before := cs.n.Load()
		resp, _, _ := e.signInFrom(ipBerlin, authParams(challenge))
		if !isAppRedirect(resp) {
			t.Fatalf("sign-in = %d, want the app", resp.StatusCode)
		}
		return cs.n.Load() - before
	}
	without := count(nil)
	with := count(map[string]*broker.TenantConditional{"acme": compileAccess(t, []risk.Policy{
		{Name: "deny-anon", If: "signals.anonymizer || signals.denied_ip", Action: risk.ActionDeny, Message: "no"},
		{Name: "new-country", If: "signals.new_country || signals.impossible_travel", Action: risk.ActionMFA},
		{Name: "night", If: "signals.hour < 5 && signals.hour > 4", Action: risk.ActionFreshLogin},
	}, nil)})
	t.Logf("store round trips per sign-in: %d without conditional access, %d with", without, with)
	if with-without != 1 {
		t.Errorf("conditional access adds %d round trips to a sign-in, want 1", with-without)
	}
}

// TestConditional_NotifyWebhook: a notify reaches the tenant's webhook as JSON
// through the outbound client.
func TestConditional_NotifyWebhook(t *testing.T) {
	got := make(chan broker.RiskEvent, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev broker.RiskEvent
		if r.Method == http.MethodPost && r.Header.Get("Content-Type") == "application/json" && json.NewDecoder(r.Body).Decode(&ev) == nil {
			got <- ev
		}
	}))
	t.Cleanup(hook.Close)
	ta := compileAccess(t, []risk.Policy{{Name: "watch", Action: risk.ActionNotify}}, nil)
	ta.Webhook = hook.URL + "/risk"
	e := accessEnv(t, map[string]*broker.TenantConditional{"acme": ta}, func(c *broker.Config) { c.HTTPClient = hook.Client() })
	_, challenge := pkce()
	if resp, _, _ := e.signInFrom(ipParis, authParams(challenge)); !isAppRedirect(resp) {
		t.Fatalf("sign-in = %d, want the app", resp.StatusCode)
	}
	select {
	case ev := <-got:
		if ev.Kind != broker.RiskNotify || ev.Tenant != "acme" || ev.Country != "FR" || !slices.Equal(ev.Policies, []string{"watch"}) {
			t.Errorf("webhook event = %+v, want policy_notify for acme from FR by watch", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the webhook received nothing within 10 s")
	}
}

// TestConditional_RecentFailures: sign-ins a policy refused count as failures
// in the user's history; the next sign-in sees them (signals.failures).
func TestConditional_RecentFailures(t *testing.T) {
	e := accessEnv(t, map[string]*broker.TenantConditional{
		"acme": compileAccess(t, []risk.Policy{
			{Name: "no-us", If: `signals.country == "US"`, Action: risk.ActionDeny, Message: "Blocked."},
			{Name: "after failures", If: `signals.failures >= 2`, Action: risk.ActionDeny, Message: "Too many failed sign-ins."}}, nil)})
	_, challenge := pkce()
	for range 2 {
		if resp, _, _ := e.signInFrom(ipNewYork, authParams(challenge)); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("sign-in from the US = %d, want 403", resp.StatusCode)
		}
		e.clock.advance(48 * time.Hour)
	}
	resp, body, _ := e.signInFrom(ipBerlin, authParams(challenge))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Too many failed sign-ins.") {
		t.Errorf("sign-in after two refusals = %d, want 403 Too many failed sign-ins.", resp.StatusCode)
	}
}

// auditHas reports whether the tenant's audit stream gets an event
// matching want within 10 s (the stream is written in the background).
func auditHas(t *testing.T, e *env, tenant string, want func(broker.AuditEvent) bool) bool {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		recs, _, err := e.broker.ReadAudit(t.Context(), tenant, "", broker.MaxAuditRead)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			var ev broker.AuditEvent
			if json.Unmarshal(r.Event, &ev) == nil && want(ev) {
				return true
			}
		}
	}
	return false
}

// TestConditional_CompromiseToldToReceivers: confirming a user compromised
// tells the shared-signals receivers (CAEP session-revoked for the user),
// as the revocation it is.
func TestConditional_CompromiseToldToReceivers(t *testing.T) {
	rcv, uri := newSETReceiver(t)
	e := newEnv(t, withReceiver(uri))
	rcv.issuer = e.issuer
	tr, _ := e.signIn()
	_, idc := claimsOf(t, tr.str("id_token"))
	u, err := e.broker.Users().UserByLink(t.Context(), "acme", "acme-idp", "alice-upstream")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.broker.ConfirmCompromised(t.Context(), "admin:sec", "acme", u.ID); err != nil {
		t.Fatal(err)
	}
	checkSET(t, rcv.wait(1)[0], e.issuer, idc["sub"].(string), broker.CAEPSessionRevoked)
}
