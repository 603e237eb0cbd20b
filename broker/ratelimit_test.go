package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/broker/redisstore"
	"github.com/realmgate/realmgate/internal/e2etest"
	"github.com/realmgate/realmgate/internal/redistest"
	"github.com/realmgate/realmgate/store"
)

// withLimits sets rate limits and trusts X-Forwarded-For from loopback, so
// a test can speak from any client IP.
func withLimits(rl broker.RateLimits, tenants map[string]broker.TenantLimits) envOpt {
	return func(c *broker.Config) {
		c.RateLimits, c.TenantRateLimits = rl, tenants
		c.TrustedProxies = mustPrefixes("127.0.0.0/8")
	}
}

func perMinute(n int64) broker.RateLimit { return broker.RateLimit{Limit: n, Window: time.Minute} }

// fromIP makes a request appear to come from ip (through a trusted proxy).
func fromIP(ip string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("X-Forwarded-For", ip) }
}

// startFrom sends a browser from ip to /authorize with a login hint of the
// given email: a sign-in start that goes upstream.
func (e *env) startFrom(ip, email string) (*http.Response, string) {
	e.t.Helper()
	return e.startAt(e.browser(), map[string]string{"login_hint": email}, fromIP(ip))
}

// wantStarted fails unless resp sends the browser upstream.
// forgedCallbackFrom sends a callback with a state nobody issued from ip
// (a failure counted against the IP, S60).
func (e *env) forgedCallbackFrom(ip string) *http.Response {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.issuer+"/callback/acme-idp?code=x&state=forged-state", nil)
	fromIP(ip)(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func wantStarted(t *testing.T, what string, resp *http.Response) {
	t.Helper()
	if (resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther) || upstreamOf(resp) == "" {
		t.Fatalf("%s = %d %q, want a redirect to the upstream IdP", what, resp.StatusCode, resp.Header.Get("Location"))
	}
}

// wantThrottled fails unless resp is a readable 429 page with a Retry-After
// of 1 second up to window plus a tenth (an event stays counted in a
// sliding window for up to 1.1 times its length, store.Window).
func wantThrottled(t *testing.T, what string, resp *http.Response, body string, window int) {
	t.Helper()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("%s = %d %q, want 429", what, resp.StatusCode, resp.Header.Get("Location"))
	}
	maxWait := window + window/10
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > maxWait {
		t.Errorf("%s: Retry-After = %q, want 1..%d seconds", what, resp.Header.Get("Retry-After"), maxWait)
	}
	if !strings.Contains(body, "Too many sign-in attempts") || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("%s: body is not the readable 429 page: %.200q", what, body)
	}
}

// alignWindows moves the test clocks to one second past a multiple of w
// since the epoch (where a fixed window would start), so the buckets of a
// sliding window of length w (a tenth of it each) start there too and a
// test's Retry-After values are the same in every run.
func alignWindows(w time.Duration, envs ...*env) {
	now := envs[0].clock.now()
	d := now.Truncate(w).Add(w + time.Second).Sub(now)
	for _, e := range envs {
		e.clock.advance(d)
	}
}

// twoInstances returns two brokers on one store, as two processes would be.
func twoInstances(t *testing.T, store broker.Store, opts ...envOpt) (*env, *env) {
	t.Helper()
	shared := &recordingStore{Store: store}
	return newEnvOn(t, shared, opts...), newEnvOn(t, shared, opts...)
}

func TestRateLimit_S60_StartsPerIPAcrossInstances(t *testing.T) {
	ms := memstore.New()
	t.Cleanup(func() { ms.Close() })
	a, b := twoInstances(t, ms, withLimits(broker.RateLimits{StartsPerIP: perMinute(3)}, nil))
	alignWindows(time.Minute, a, b)
	for i, e := range []*env{a, b, a} {
		resp, _ := e.startFrom("203.0.113.7", "alice@acme.test")
		wantStarted(t, "start "+strconv.Itoa(i+1)+" of 3", resp)
	}
	resp, body := b.startFrom("203.0.113.7", "carol@globex.test")
	wantThrottled(t, "4th start on the other instance, another tenant", resp, body, 60)
	if !strings.Contains(body, "from your network") {
		t.Errorf("per-IP 429 page does not say the limit is the network's: %.300q", body)
	}
	if resp, _ := a.startFrom("203.0.113.8", "alice@acme.test"); resp.StatusCode != http.StatusFound {
		t.Errorf("another IP = %d, want 302: the limit is per IP", resp.StatusCode)
	}
	// IPv6 addresses of one /64 share a counter.
	for i := range 3 {
		resp, _ := a.startFrom("2001:db8:1:2::"+strconv.Itoa(i+1), "alice@acme.test")
		wantStarted(t, "IPv6 start", resp)
	}
	resp, body = b.startFrom("2001:db8:1:2:ffff::9", "alice@acme.test")
	wantThrottled(t, "4th start from the same IPv6 /64", resp, body, 60)

	a.clock.advance(time.Minute + time.Minute/10) // the bucket of the starts has left the window
	b.clock.advance(time.Minute + time.Minute/10)
	if resp, _ := b.startFrom("203.0.113.7", "alice@acme.test"); resp.StatusCode != http.StatusFound {
		t.Errorf("start after the window = %d, want 302", resp.StatusCode)
	}
}

// TestRateLimit_S60_OneCountPerRequest: showing the discovery page stores a
// pending request and counts once (S72); a POST /login that goes upstream
// counts once against the IP, although it both checks and starts.
func TestRateLimit_S60_OneCountPerRequest(t *testing.T) {
	e := newEnv(t, withLimits(broker.RateLimits{StartsPerIP: perMinute(3)}, nil))
	alignWindows(time.Minute, e)
	b := e.browser()
	resp, _ := e.startAt(b, nil, fromIP("198.18.0.1"))
	if resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "/login?r=") {
		t.Fatalf("authorize without hint = %d %q, want the discovery page", resp.StatusCode, resp.Header.Get("Location"))
	}
	r := mustQuery(t, resp.Header.Get("Location")).Get("r")
	post := func() *http.Response {
		req, _ := http.NewRequest(http.MethodPost, e.issuer+"/login",
			strings.NewReader(url.Values{"r": {r}, "email": {"alice@acme.test"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		fromIP("198.18.0.1")(req)
		resp, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	wantStarted(t, "first POST /login", post())
	wantStarted(t, "second POST /login", post())
	if resp := post(); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third POST /login = %d, want 429", resp.StatusCode)
	}
}

func TestRateLimit_S60_StartsPerTenantWithOverride(t *testing.T) {
	one := perMinute(1)
	e := newEnv(t, withLimits(broker.RateLimits{StartsPerTenant: perMinute(3)},
		map[string]broker.TenantLimits{"globex": {StartsPerTenant: &one}, "initech": {StartsPerTenant: &broker.RateLimit{}}}))
	alignWindows(time.Minute, e)
	for i, ip := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
		resp, _ := e.startFrom(ip, "alice@acme.test")
		wantStarted(t, "acme start "+strconv.Itoa(i+1), resp)
	}
	resp, body := e.startFrom("192.0.2.4", "alice@acme.test")
	wantThrottled(t, "4th acme start from a fresh IP", resp, body, 60)
	if !strings.Contains(body, "for your organization") {
		t.Errorf("per-tenant 429 page does not name the organization's limit: %.300q", body)
	}
	wantStarted(t, "first globex start", first(e.startFrom("192.0.2.5", "carol@globex.test")))
	resp, body = e.startFrom("192.0.2.6", "carol@globex.test")
	wantThrottled(t, "second globex start (override: 1 per minute)", resp, body, 60)
	for i := range 5 { // initech's override turns the limit off
		resp, _ := e.startAt(e.browser(), map[string]string{"login_hint": "peter@initech.test", "idp_hint": "initech-a"}, fromIP("192.0.2."+strconv.Itoa(10+i)))
		wantStarted(t, "initech start", resp)
	}
}

func first(r *http.Response, _ string) *http.Response { return r }

// TestRateLimit_S60_FailuresPerIP: refused callbacks and bad token requests
// from one IP stop its starts, callbacks and token requests; other IPs go on.
func TestRateLimit_S60_FailuresPerIP(t *testing.T) {
	ms := memstore.New()
	t.Cleanup(func() { ms.Close() })
	a, b := twoInstances(t, ms, withLimits(broker.RateLimits{FailuresPerIP: broker.RateLimit{Limit: 2, Window: 10 * time.Minute}}, nil))
	alignWindows(10*time.Minute, a, b)
	badCallback := func(e *env, ip string) *http.Response { return e.forgedCallbackFrom(ip) }
	for _, e := range []*env{a, b} {
		if resp := badCallback(e, "203.0.113.50"); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("forged callback = %d, want 400", resp.StatusCode)
		}
	}
	resp, body := a.startFrom("203.0.113.50", "alice@acme.test")
	wantThrottled(t, "start after 2 failures", resp, body, 600)
	if resp := badCallback(b, "203.0.113.50"); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("callback after 2 failures = %d, want 429", resp.StatusCode)
	}
	wantStarted(t, "start from another IP", first(b.startFrom("203.0.113.51", "alice@acme.test")))

	t.Run("token endpoint", func(t *testing.T) {
		post := func(e *env, ip string) tokenResp {
			req, _ := http.NewRequest(http.MethodPost, e.issuer+"/token", strings.NewReader(url.Values{
				"grant_type": {"authorization_code"}, "code": {"not-a-code"}, "redirect_uri": {appCB},
				"code_verifier": {authVerifier}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("app-a", secretA)
			fromIP(ip)(req)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			out := tokenResp{status: resp.StatusCode, header: resp.Header, body: map[string]any{}}
			_ = json.NewDecoder(resp.Body).Decode(&out.body)
			return out
		}
		for _, e := range []*env{a, b} {
			if r := post(e, "198.51.100.77"); r.str("error") != "invalid_grant" {
				t.Fatalf("bad code = %d %v, want invalid_grant", r.status, r.body)
			}
		}
		r := post(a, "198.51.100.77")
		if r.status != http.StatusTooManyRequests || r.str("error") != "temporarily_unavailable" || r.header.Get("Retry-After") == "" {
			t.Fatalf("token after 2 failures = %d %v Retry-After %q, want 429 temporarily_unavailable with Retry-After",
				r.status, r.body, r.header.Get("Retry-After"))
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("token 429 Content-Type = %q, want JSON", ct)
		}
	})
}

// TestRateLimit_S60_FailuresAcrossInstancesWithinASecond: an instance
// keeps a failure counter it read as under the limit for at most a second
// (ratelimit.go, underLimitCache), so failures counted by another instance
// are enforced here within that second; failures counted here are
// enforced at once.
func TestRateLimit_S60_FailuresAcrossInstancesWithinASecond(t *testing.T) {
	ms := memstore.New()
	t.Cleanup(func() { ms.Close() })
	a, b := twoInstances(t, ms, withLimits(broker.RateLimits{FailuresPerIP: broker.RateLimit{Limit: 2, Window: 10 * time.Minute}}, nil))
	alignWindows(10*time.Minute, a, b)
	const ip = "203.0.113.60"
	badCallback := func(e *env) int { return e.forgedCallbackFrom(ip).StatusCode }
	// b reads the counter (0: under the limit) and may believe it for a second.
	wantStarted(t, "start on b before any failure", first(b.startFrom(ip, "alice@acme.test")))
	for i := range 2 {
		if st := badCallback(a); st != http.StatusBadRequest {
			t.Fatalf("forged callback %d on a = %d, want 400", i+1, st)
		}
	}
	// On a, which counted the failures, the limit holds at once.
	resp, body := a.startFrom(ip, "alice@acme.test")
	wantThrottled(t, "start on a right after its 2 failures", resp, body, 600)
	// On b, within a second.
	time.Sleep(1100 * time.Millisecond)
	resp, body = b.startFrom(ip, "alice@acme.test")
	wantThrottled(t, "start on b a second after 2 failures on a", resp, body, 600)
}

// TestRateLimit_S60_FailuresPerTenant: upstream answers that fail validation
// count against the tenant; forged callbacks anybody can send do not, so
// nobody locks a tenant out by posting garbage.
func TestRateLimit_S60_FailuresPerTenant(t *testing.T) {
	e := newEnv(t, withLimits(broker.RateLimits{FailuresPerTenant: broker.RateLimit{Limit: 2, Window: 10 * time.Minute}}, nil))
	alignWindows(10*time.Minute, e)
	for i := range 5 {
		req, _ := http.NewRequest(http.MethodGet, e.issuer+"/callback/globex-idp?code=x&state=garbage", nil)
		fromIP("100.64.0." + strconv.Itoa(i+1))(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	wantStarted(t, "globex start after forged callbacks", first(e.startFrom("100.64.1.1", "carol@globex.test")))

	e.acme.mu.Lock()
	e.acme.err = errors.New("signature does not verify")
	e.acme.mu.Unlock()
	for i := range 2 {
		b := e.browser()
		resp, _ := e.startAt(b, map[string]string{"login_hint": "alice@acme.test"}, fromIP("100.64.2."+strconv.Itoa(i+1)))
		wantStarted(t, "acme start", resp)
		state := mustQuery(t, resp.Header.Get("Location")).Get("state")
		req, _ := http.NewRequest(http.MethodGet, e.issuer+"/callback/acme-idp?code=x&state="+url.QueryEscape(state), nil)
		fromIP("100.64.2." + strconv.Itoa(i+1))(req)
		cb, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		cb.Body.Close()
		if cb.StatusCode != http.StatusBadRequest {
			t.Fatalf("invalid upstream answer = %d, want 400", cb.StatusCode)
		}
	}
	resp, body := e.startFrom("100.64.3.1", "alice@acme.test")
	wantThrottled(t, "acme start after 2 invalid upstream answers", resp, body, 600)
	wantStarted(t, "globex start meanwhile", first(e.startFrom("100.64.3.1", "carol@globex.test")))
}

// failingCounters is a store whose counters are down while everything else works.
type failingCounters struct{ broker.Store }

func (f failingCounters) SlidingWindow(context.Context, string, store.Window, store.WindowOp, time.Time) (time.Duration, error) {
	return 0, broker.ErrUnavailable
}

// TestRateLimit_S60_FailsOpen: a limiter whose store fails lets sign-ins
// through and says so in the log.
func TestRateLimit_S60_FailsOpen(t *testing.T) {
	ms := memstore.New()
	t.Cleanup(func() { ms.Close() })
	var logs e2etest.SyncBuffer
	cfg := withLimits(broker.RateLimits{StartsPerIP: perMinute(1), StartsPerTenant: perMinute(1),
		FailuresPerIP: perMinute(1), FailuresPerTenant: perMinute(1)}, nil)
	e := newEnvOn(t, &recordingStore{Store: failingCounters{ms}}, cfg, func(c *broker.Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	for range 3 {
		wantStarted(t, "start with the limiter's store down", first(e.startFrom("203.0.113.9", "alice@acme.test")))
	}
	if !strings.Contains(logs.String(), "rate limiter store failure") {
		t.Errorf("no log line for the limiter's store failure; logs:\n%s", logs.String())
	}
}

// TestRateLimit_S60_AcrossInstancesOnRedis: two brokers on one real Redis
// share the counters.
func TestRateLimit_S60_AcrossInstancesOnRedis(t *testing.T) {
	srv := redistest.Start(t)
	rs, err := redisstore.New(redisstore.Options{Addrs: []string{srv.Addr()}, Prefix: "rl-test-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Close() })
	a, b := twoInstances(t, rs, withLimits(broker.RateLimits{StartsPerIP: perMinute(4), StartsPerTenant: perMinute(100)}, nil))
	alignWindows(time.Minute, a, b)
	for i := range 4 {
		e := []*env{a, b}[i%2]
		wantStarted(t, "start "+strconv.Itoa(i+1)+" of 4", first(e.startFrom("203.0.113.99", "alice@acme.test")))
	}
	for _, e := range []*env{a, b} {
		resp, body := e.startFrom("203.0.113.99", "alice@acme.test")
		wantThrottled(t, "start over the limit on either instance", resp, body, 60)
	}
}

// TestRateLimit_S60_PolicyOverridesLive: a tenant's policy (the directory,
// which the admin API reconfigures live) carries per-tenant limits that
// replace Config.TenantRateLimits, so a tenant created through the API has
// its own limits without a restart.
func TestRateLimit_S60_PolicyOverridesLive(t *testing.T) {
	one, five := perMinute(1), perMinute(5)
	e := newEnv(t, withLimits(broker.RateLimits{StartsPerTenant: perMinute(3)},
		map[string]broker.TenantLimits{"globex": {StartsPerTenant: &five}}),
		func(c *broker.Config) {
			c.Policies = map[string]broker.TenantPolicy{"globex": {RateLimits: &broker.TenantLimits{StartsPerTenant: &one}}}
		})
	alignWindows(time.Minute, e)
	wantStarted(t, "first globex start", first(e.startFrom("192.0.2.5", "carol@globex.test")))
	resp, body := e.startFrom("192.0.2.6", "carol@globex.test")
	wantThrottled(t, "second globex start (policy: 1 per minute, over the config's 5)", resp, body, 60)
}
