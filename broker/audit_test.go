package broker_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/internal/e2etest"
	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/transform"
)

// auditSink captures the audit log stream as JSON lines.
type auditSink struct{ e2etest.SyncBuffer }

func withAuditSink(a *auditSink) envOpt {
	return func(c *broker.Config) { c.Audit = slog.New(slog.NewJSONHandler(a, nil)) }
}

// events returns every audit event written so far.
func (a *auditSink) events(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(a.String()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("audit line is not JSON: %q", sc.Text())
		}
		out = append(out, m)
	}
	return out
}

// forRequest returns the events of one request id.
func (a *auditSink) forRequest(t *testing.T, rid string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, ev := range a.events(t) {
		if ev["request_id"] == rid {
			out = append(out, ev)
		}
	}
	return out
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

// do sends req from browser b (nil: no cookies) and returns the response
// with its body read.
func do(t *testing.T, b *browser, req *http.Request) *http.Response {
	t.Helper()
	c := http.DefaultClient
	if b != nil {
		c = b.c
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func get(t *testing.T, b *browser, u string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("User-Agent", "audit-test/1.0")
	return do(t, b, req)
}

func postForm(t *testing.T, b *browser, u string, v url.Values) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "audit-test/1.0")
	return do(t, b, req)
}

// toUpstream starts a sign-in for email in browser b and returns the
// upstream state.
func (e *env) toUpstream(b *browser, email string) string {
	e.t.Helper()
	v := authParams(s256(authVerifier))
	v.Set("login_hint", email)
	resp := get(e.t, b, e.authorizeURL(v))
	if upstreamOf(resp) == "" {
		e.t.Fatalf("authorize = %d %q, want a redirect upstream", resp.StatusCode, resp.Header.Get("Location"))
	}
	return mustQuery(e.t, resp.Header.Get("Location")).Get("state")
}

func denyRule(t *testing.T, tenant string) envOpt {
	eng, err := transform.Compile(nil, []transform.Rule{{Name: "contractors-out", Deny: "Contractors cannot sign in here."}},
		transform.Options{Tenant: tenant})
	if err != nil {
		t.Fatal(err)
	}
	return func(c *broker.Config) { c.Rules = map[string]*transform.Engine{tenant: eng} }
}

// TestAudit_S61_EveryOutcomeOneEvent drives each sign-in outcome and checks
// that its request wrote exactly one event with the expected fields.
func TestAudit_S61_EveryOutcomeOneEvent(t *testing.T) {
	var sink auditSink
	e := newEnv(t, withAuditSink(&sink), denyRule(t, "globex"), requireMFA("initech"),
		withLimits(broker.RateLimits{StartsPerTenant: perMinute(1000)}, map[string]broker.TenantLimits{"consumers": {StartsPerTenant: &broker.RateLimit{Limit: 1, Window: time.Hour}}}))
	setErr := func(f *fakeIdP, err error) {
		f.mu.Lock()
		f.err = err
		f.mu.Unlock()
	}
	type want struct {
		outcome, reason, tenant, idp, client string
		subject                              bool
	}
	for _, tc := range []struct {
		name string
		run  func(t *testing.T) *http.Response
		want want
	}{
		{"started", func(t *testing.T) *http.Response {
			v := authParams(s256(authVerifier))
			return get(t, e.browser(), e.authorizeURL(v))
		}, want{outcome: "started", tenant: "acme", idp: "acme-idp", client: "app-a"}},
		{"success", func(t *testing.T) *http.Response {
			b := e.browser()
			state := e.toUpstream(b, "alice@acme.test")
			return get(t, b, e.issuer+"/callback/acme-idp?code=c&state="+url.QueryEscape(state))
		}, want{outcome: "success", tenant: "acme", idp: "acme-idp", client: "app-a", subject: true}},
		{"upstream unavailable", func(t *testing.T) *http.Response {
			b := e.browser()
			state := e.toUpstream(b, "alice@acme.test")
			setErr(e.acme, providers.ErrUnavailable)
			defer setErr(e.acme, nil)
			return get(t, b, e.issuer+"/callback/acme-idp?code=c&state="+url.QueryEscape(state))
		}, want{outcome: "failure", reason: "upstream_unavailable", tenant: "acme", idp: "acme-idp", client: "app-a"}},
		{"upstream invalid response", func(t *testing.T) *http.Response {
			b := e.browser()
			state := e.toUpstream(b, "alice@acme.test")
			setErr(e.acme, errors.New("bad signature"))
			defer setErr(e.acme, nil)
			return get(t, b, e.issuer+"/callback/acme-idp?code=c&state="+url.QueryEscape(state))
		}, want{outcome: "failure", reason: "upstream_invalid_response", tenant: "acme", idp: "acme-idp", client: "app-a"}},
		{"abort at the IdP", func(t *testing.T) *http.Response {
			b := e.browser()
			state := e.toUpstream(b, "alice@acme.test")
			return get(t, b, e.issuer+"/callback/acme-idp?error=access_denied&state="+url.QueryEscape(state))
		}, want{outcome: "abort", reason: "upstream_access_denied", tenant: "acme", idp: "acme-idp", client: "app-a"}},
		{"rule denial", func(t *testing.T) *http.Response {
			b := e.browser()
			state := e.toUpstream(b, "carol@globex.test")
			return get(t, b, e.issuer+"/callback/globex-idp?code=c&state="+url.QueryEscape(state))
		}, want{outcome: "denied", reason: "rule: contractors-out", tenant: "globex", idp: "globex-idp", client: "app-a", subject: true}},
		{"throttled", func(t *testing.T) *http.Response {
			v := authParams(s256(authVerifier))
			v.Del("login_hint")
			v.Set("idp_hint", "social")
			get(t, e.browser(), e.authorizeURL(v))
			return get(t, e.browser(), e.authorizeURL(v))
		}, want{outcome: "throttled", reason: "starts_per_tenant", tenant: "consumers", idp: "social", client: "app-a"}},
		{"refused: unknown client", func(t *testing.T) *http.Response {
			v := authParams(s256(authVerifier))
			v.Set("client_id", "nobody")
			return get(t, nil, e.authorizeURL(v))
		}, want{outcome: "refused", reason: "unknown_client", client: "nobody"}},
		{"refused: forged callback state", func(t *testing.T) *http.Response {
			return get(t, nil, e.issuer+"/callback/acme-idp?code=c&state=forged")
		}, want{outcome: "refused", reason: "unknown_state", tenant: "acme", idp: "acme-idp"}},
		{"refused without a handler event: expired request", func(t *testing.T) *http.Response {
			return postForm(t, e.browser(), e.issuer+"/login", url.Values{"r": {"gone"}, "email": {"alice@acme.test"}})
		}, want{outcome: "refused", reason: "bad_request"}},
		{"refused without a handler event: unknown IdP callback", func(t *testing.T) *http.Response {
			return get(t, nil, e.issuer+"/callback/no-such-idp?code=c&state=s")
		}, want{outcome: "refused", reason: "not_found"}},
		{"refused at the token endpoint", func(t *testing.T) *http.Response {
			return postForm(t, nil, e.issuer+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {"nope"},
				"client_id": {"pub"}, "redirect_uri": {"http://127.0.0.1:7000/cb"}, "code_verifier": {authVerifier}})
		}, want{outcome: "refused", reason: "invalid_grant", client: "pub"}},
		{"failure: store down at the callback", func(t *testing.T) *http.Response {
			b := e.browser()
			state := e.toUpstream(b, "alice@acme.test")
			e.store.down.Store(true)
			defer e.store.down.Store(false)
			return get(t, b, e.issuer+"/callback/acme-idp?code=c&state="+url.QueryEscape(state))
		}, want{outcome: "failure", reason: "unavailable", tenant: "acme", idp: "acme-idp"}},
		{"MFA step-up", func(t *testing.T) *http.Response {
			b := e.browser()
			v := authParams(s256(authVerifier))
			v.Set("login_hint", "carol@globex.test")
			v.Set("tenant", "initech") // a tenant that requires MFA names the sign-in; globex's IdP answers single-factor
			resp := get(t, b, e.authorizeURL(v))
			if upstreamOf(resp) != "globex-idp" {
				t.Fatalf("authorize = %d %q, want a redirect to globex-idp", resp.StatusCode, resp.Header.Get("Location"))
			}
			state := mustQuery(t, resp.Header.Get("Location")).Get("state")
			return get(t, b, e.issuer+"/callback/globex-idp?code=c&state="+url.QueryEscape(state))
		}, want{outcome: "started", reason: "mfa_step_up", tenant: "globex", idp: "globex-idp", client: "app-a"}},
		{"logout", func(t *testing.T) *http.Response {
			b := e.browser()
			state := e.toUpstream(b, "alice@acme.test")
			get(t, b, e.issuer+"/callback/acme-idp?code=c&state="+url.QueryEscape(state))
			return postForm(t, b, e.issuer+"/logout", url.Values{"confirm": {"yes"}})
		}, want{outcome: "logout", reason: "rp_initiated", tenant: "acme", idp: "acme-idp", subject: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := tc.run(t)
			rid := resp.Header.Get("X-Request-Id")
			evs := sink.forRequest(t, rid)
			if len(evs) != 1 {
				t.Fatalf("request %s (%d) wrote %d audit events, want exactly 1: %v", rid, resp.StatusCode, len(evs), evs)
			}
			ev := evs[0]
			got := want{outcome: str(ev, "outcome"), reason: str(ev, "reason"), tenant: str(ev, "tenant"),
				idp: str(ev, "idp"), client: str(ev, "client"), subject: str(ev, "subject") != ""}
			if got != tc.want {
				t.Errorf("event = %+v, want %+v", got, tc.want)
			}
			if str(ev, "ip") != "127.0.0.1" {
				t.Errorf("event ip = %q, want 127.0.0.1", str(ev, "ip"))
			}
			if str(ev, "msg") != "signin" || str(ev, "request_id") == "" {
				t.Errorf("event msg %q request_id %q, want signin and an id", str(ev, "msg"), str(ev, "request_id"))
			}
			for _, k := range []string{"outcome", "reason", "tenant", "idp", "subject", "client", "ip", "user_agent", "request_id"} {
				if _, ok := ev[k]; !ok {
					t.Errorf("event has no %q field: %v", k, ev)
				}
			}
		})
	}
	// The browser's user agent is recorded (all requests above send one).
	if evs := sink.events(t); len(evs) == 0 || str(evs[0], "user_agent") != "audit-test/1.0" {
		t.Errorf("user_agent not recorded: %v", evs)
	}
}

// TestAudit_S61_NoSecretOrToken runs sign-in, token exchange, refresh,
// reuse, logout and bad requests carrying secrets, then scans the audit log
// stream and the stored audit streams for any secret or token.
func TestAudit_S61_NoSecretOrToken(t *testing.T) {
	var sink auditSink
	e := newEnv(t, withAuditSink(&sink))
	b := e.browser()
	verifier, challenge := pkce()
	v := authParams(challenge)
	v.Set("state", "client-state-SECRET-0123")
	idp, state := e.upstreamState(b, v)
	resp := b.get(e.issuer + "/callback/" + idp + "?code=upstream-code-SECRET&state=" + url.QueryEscape(state))
	q := e.clientRedirect(resp, appCB)
	tr := e.exchange(q.Get("code"), verifier)
	if tr.status != http.StatusOK {
		t.Fatalf("exchange = %d %v", tr.status, tr.body)
	}
	r2 := e.refresh(tr.str("refresh_token"), "app-a", secretA)
	e.refresh(tr.str("refresh_token"), "app-a", secretA) // reuse: refused and audited
	e.exchange(q.Get("code"), verifier)                  // code reuse: refused and audited
	e.post("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r2.str("refresh_token")}}, "app-a", "wrong-"+secretA)
	u, _ := url.Parse(e.issuer)
	secrets := map[string]string{
		"code": q.Get("code"), "state": state, "upstream code": "upstream-code-SECRET", "verifier": verifier,
		"access token": tr.str("access_token"), "id token": tr.str("id_token"), "refresh token": tr.str("refresh_token"),
		"rotated refresh token": r2.str("refresh_token"), "client secret": secretA, "wrong secret": "wrong-" + secretA,
		"nonce": v.Get("nonce"), "client state": v.Get("state"),
	}
	for _, ck := range b.c.Jar.Cookies(u) {
		secrets["cookie "+ck.Name] = ck.Value
	}
	postForm(t, b, e.issuer+"/logout", url.Values{"confirm": {"yes"}})
	if err := e.broker.Close(); err != nil { // writes the queued stream events
		t.Fatal(err)
	}
	var stored strings.Builder
	for _, tenant := range []string{"acme", broker.UnattributedTenant} {
		recs, ok, err := e.broker.ReadAudit(context.Background(), tenant, "", broker.MaxAuditRead)
		if err != nil || !ok {
			t.Fatalf("ReadAudit(%q) = %v, %v", tenant, ok, err)
		}
		for _, r := range recs {
			stored.Write(r.Event)
			stored.WriteByte('\n')
		}
	}
	logged := sink.String()
	if !strings.Contains(logged, `"outcome":"success"`) || !strings.Contains(stored.String(), `"outcome":"success"`) {
		t.Fatalf("the scan saw no success event; log:\n%s\nstored:\n%s", logged, stored.String())
	}
	for what, secret := range secrets {
		if len(secret) < 8 {
			t.Fatalf("%s %q is too short to scan for", what, secret)
		}
		for stream, text := range map[string]string{"log": logged, "store": stored.String()} {
			if strings.Contains(text, secret) {
				t.Errorf("the audit %s stream contains the %s", stream, what)
			}
		}
	}
}

// TestAudit_S61_StoredPerTenantWithRetention: events land in their
// tenant's stream (unattributed ones in their own), are read with a cursor,
// and only the newest AuditMaxLen are kept.
func TestAudit_S61_StoredPerTenantWithRetention(t *testing.T) {
	e := newEnv(t, func(c *broker.Config) { c.AuditMaxLen = 3 })
	for range 4 {
		e.signIn() // acme: started + success each
	}
	b := e.browser()
	state := e.toUpstream(b, "carol@globex.test")
	get(t, b, e.issuer+"/callback/globex-idp?code=c&state="+url.QueryEscape(state))
	get(t, nil, e.authorizeURL(url.Values{"client_id": {"nobody"}}))
	if err := e.broker.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	read := func(tenant, after string, limit int) []broker.AuditRecord {
		t.Helper()
		recs, ok, err := e.broker.ReadAudit(ctx, tenant, after, limit)
		if err != nil || !ok {
			t.Fatalf("ReadAudit(%q, %q) = %v, %v", tenant, after, ok, err)
		}
		return recs
	}
	acme := read("acme", "", 100)
	if len(acme) != 3 {
		t.Fatalf("acme stream holds %d events, want the newest 3", len(acme))
	}
	var last broker.AuditEvent
	if err := json.Unmarshal(acme[2].Event, &last); err != nil || last.Outcome != "success" || last.Tenant != "acme" {
		t.Errorf("newest acme event = %+v (%v), want a success of acme", last, err)
	}
	page := read("acme", acme[0].ID, 1)
	if len(page) != 1 || page[0].ID != acme[1].ID {
		t.Errorf("ReadAudit after %s limit 1 = %v, want [%s]", acme[0].ID, page, acme[1].ID)
	}
	if rest := read("acme", acme[2].ID, 10); len(rest) != 0 {
		t.Errorf("ReadAudit after the newest = %d events, want none", len(rest))
	}
	globex := read("globex", "", 100)
	if len(globex) != 2 {
		t.Errorf("globex stream holds %d events, want 2 (started, success)", len(globex))
	}
	none := read(broker.UnattributedTenant, "", 100)
	if len(none) != 1 || !strings.Contains(string(none[0].Event), `"unknown_client"`) {
		t.Errorf("unattributed stream = %v, want the unknown_client refusal", none)
	}
	if _, _, err := e.broker.ReadAudit(ctx, "acme", "not-an-id", 10); !errors.Is(err, broker.ErrBadAuditCursor) {
		t.Errorf("ReadAudit with a malformed cursor = %v, want ErrBadAuditCursor", err)
	}
}

// slowAudit is a store whose audit writes hang until their deadline.
type slowAudit struct{ *memstore.Store }

func (s slowAudit) AppendAudit(ctx context.Context, _ string, _ []byte, _ int64) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestAudit_S61_StreamWritesNeverBlockSignIn: with the audit stream hanging,
// sign-ins complete. The stream hangs until the request's context ends, so
// a sign-in that waited for it would not complete at all: the bound only
// has to be far from forever, not close to a sign-in's usual time.
func TestAudit_S61_StreamWritesNeverBlockSignIn(t *testing.T) {
	ms := memstore.New()
	t.Cleanup(func() { ms.Close() })
	e := newEnvOn(t, &recordingStore{Store: slowAudit{ms}})
	start := time.Now()
	for range 3 {
		e.signIn()
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("3 sign-ins with a hanging audit stream took %v: they wait for the stream, want them not to", took)
	}
}

// The harness's recordingStore passes the audit streams of the store it
// wraps through, so brokers under test keep them (memstore and redisstore
// both implement broker.AuditStore).
var _ broker.AuditStore = (*recordingStore)(nil)

func (r *recordingStore) AppendAudit(ctx context.Context, tenant string, event []byte, maxLen int64) error {
	if err := r.fail(); err != nil {
		return err
	}
	as, ok := r.Store.(broker.AuditStore)
	if !ok {
		return errors.New("test store keeps no audit streams")
	}
	return as.AppendAudit(ctx, tenant, event, maxLen)
}

func (r *recordingStore) ReadAudit(ctx context.Context, tenant, after string, limit int) ([]broker.AuditRecord, error) {
	if err := r.fail(); err != nil {
		return nil, err
	}
	as, ok := r.Store.(broker.AuditStore)
	if !ok {
		return nil, errors.New("test store keeps no audit streams")
	}
	return as.ReadAudit(ctx, tenant, after, limit)
}

// The harness's recordingStore passes the IndexStore capability through too.
var _ broker.IndexStore = (*recordingStore)(nil)

func (r *recordingStore) AddToIndex(ctx context.Context, key, member string, max int, ttl time.Duration) error {
	if err := r.fail(); err != nil {
		return err
	}
	ix, ok := r.Store.(broker.IndexStore)
	if !ok {
		return errors.New("test store keeps no indexes")
	}
	r.rec(key, member)
	return ix.AddToIndex(ctx, key, member, max, ttl)
}

func (r *recordingStore) IndexMembers(ctx context.Context, key string) ([]string, error) {
	if err := r.fail(); err != nil {
		return nil, err
	}
	ix, ok := r.Store.(broker.IndexStore)
	if !ok {
		return nil, errors.New("test store keeps no indexes")
	}
	return ix.IndexMembers(ctx, key)
}

// ... and SessionRotator.
var _ broker.SessionRotator = (*recordingStore)(nil)

func (r *recordingStore) RotateUnlessRevoked(ctx context.Context, f, old, next, marker string) ([]byte, error) {
	if err := r.fail(); err != nil {
		return nil, err
	}
	sr, ok := r.Store.(broker.SessionRotator)
	if !ok {
		return nil, errors.New("test store cannot check markers as it rotates")
	}
	r.rec(f, old, next)
	return sr.RotateUnlessRevoked(ctx, f, old, next, marker)
}

// TestAudit_S61_BurstKeptInOrder: a burst of sign-ins (two events each)
// reaches the tenant's stream whole and in order: one writer per tenant,
// batched, keeps up without dropping.
func TestAudit_S61_BurstKeptInOrder(t *testing.T) {
	e := newEnv(t, func(c *broker.Config) { c.AuditMaxLen = 10_000 })
	const n = 150
	for range n {
		e.signIn()
	}
	if err := e.broker.Close(); err != nil { // drains the queues
		t.Fatal(err)
	}
	recs, ok, err := e.broker.ReadAudit(context.Background(), "acme", "", 1000)
	if err != nil || !ok {
		t.Fatalf("ReadAudit = %v, %v", ok, err)
	}
	if len(recs) != 2*n {
		t.Fatalf("acme stream holds %d events after %d sign-ins, want %d", len(recs), n, 2*n)
	}
	for i, r := range recs {
		var ev broker.AuditEvent
		if err := json.Unmarshal(r.Event, &ev); err != nil {
			t.Fatal(err)
		}
		if want := map[bool]string{true: "started", false: "success"}[i%2 == 0]; ev.Outcome != want {
			t.Fatalf("event %d = %s, want %s (started, success, started, ...)", i, ev.Outcome, want)
		}
	}
}
