package broker_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/store"
)

// batchingRecorder is a recordingStore whose store batches and redeems
// codes in one step (memstore does): every harness test then runs the
// sign-in steps as the production stores run them, and the recorder sees
// every key and value they write.
type batchingRecorder struct{ *recordingStore }

var (
	_ store.Batcher      = batchingRecorder{}
	_ store.CodeRedeemer = batchingRecorder{}
)

// batchingRecorderFor reports whether r's store batches and redeems.
func batchingRecorderFor(r *recordingStore) bool {
	_, b := r.Store.(store.Batcher)
	_, c := r.Store.(store.CodeRedeemer)
	return b && c
}

func (b batchingRecorder) Batch(ctx context.Context, ops []store.Op) ([]store.Result, error) {
	if err := b.fail(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.batches++
	b.mu.Unlock()
	res, err := b.Store.(store.Batcher).Batch(ctx, ops)
	for _, op := range ops[:len(res)] { // the ops that ran
		if op.Kind == store.OpPut || op.Kind == store.OpIndex {
			b.rec(op.Key, string(op.Value))
		}
	}
	return res, err
}

func (b batchingRecorder) RedeemCode(ctx context.Context, r store.Redemption) ([]byte, error) {
	if err := b.fail(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.redeems++
	b.mu.Unlock()
	b.rec(r.Used, r.Family, r.Token)
	return b.Store.(store.CodeRedeemer).RedeemCode(ctx, r)
}

// storeCalls returns the recorder's counts: batches, code redemptions and
// calls of one record.
func (r *recordingStore) storeCalls() [3]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return [3]int{r.batches, r.redeems, r.calls}
}

// TestSignIn_OneStoreStepEach: each step of a brokered sign-in is one
// store step: /authorize one batch (start counters, auth request, upstream
// state), the callback one take of the upstream state and one batch (the
// auth request's consumption, session, index, code), the code exchange one
// redemption (code, use marker, family).
func TestSignIn_OneStoreStepEach(t *testing.T) {
	e := newEnv(t, withLimits(broker.RateLimits{StartsPerIP: perMinute(100), StartsPerTenant: perMinute(100)}, nil))
	b := e.browser()
	verifier, challenge := pkce()
	step := func(name string, want [3]int, f func()) {
		t.Helper()
		before := e.store.storeCalls()
		f()
		after := e.store.storeCalls()
		got := [3]int{after[0] - before[0], after[1] - before[1], after[2] - before[2]}
		if got != want {
			t.Fatalf("%s: store steps (batches, redemptions, single calls) = %v, want %v", name, got, want)
		}
	}
	var idp, state string
	step("authorize", [3]int{1, 0, 0}, func() { idp, state = e.upstreamState(b, authParams(challenge)) })
	var q url.Values
	step("callback", [3]int{1, 0, 1}, func() {
		resp := b.get(e.issuer + "/callback/" + idp + "?code=upstream-code&state=" + url.QueryEscape(state))
		q = e.clientRedirect(resp, appCB)
	})
	if !strings.Contains(q.Get("code"), broker.FamilySeparator) {
		t.Fatalf("code %q is not a session code <sid>~<random>", q.Get("code"))
	}
	step("token", [3]int{0, 1, 0}, func() {
		if tr := e.exchange(q.Get("code"), verifier); tr.status != http.StatusOK {
			t.Fatalf("token exchange = %d %v", tr.status, tr.body)
		}
	})
}

// TestCallback_AuthRequestSignsInOnce: two upstream logins started for one
// auth request (the email page submitted twice) both come back: the first
// signs the user in, the second finds the request consumed (the upstream
// state carries a copy of it, the callback's batch takes the request
// itself) and gets the expired page, no code.
func TestCallback_AuthRequestSignsInOnce(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	_, challenge := pkce()
	v := authParams(challenge)
	v.Del("login_hint")
	resp := b.get(e.authorizeURL(v))
	loc, _ := url.Parse(resp.Header.Get("Location"))
	id := loc.Query().Get("r")
	if resp.StatusCode != http.StatusFound || id == "" {
		t.Fatalf("authorize without a hint = %d %q, want a redirect to the email page", resp.StatusCode, loc)
	}
	start := func() string {
		resp, _ := b.postForm(e.issuer+"/login", url.Values{"r": {id}, "email": {"alice@acme.test"}})
		u, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther || u.Query().Get("state") == "" {
			t.Fatalf("email page = %d %q, want a redirect upstream", resp.StatusCode, u)
		}
		return u.Query().Get("state")
	}
	first, second := start(), start()
	resp = b.get(e.issuer + "/callback/acme-idp?code=c1&state=" + url.QueryEscape(first))
	if q := e.clientRedirect(resp, appCB); q.Get("code") == "" {
		t.Fatal("first callback gave no code")
	}
	resp, body := b.getBody(e.issuer + "/callback/acme-idp?code=c2&state=" + url.QueryEscape(second))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "expired") {
		t.Fatalf("second callback of the request = %d %q, want the expired page", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestToken_S07_CodeOfLoggedOutSession: a code redeemed after its session
// was logged out is refused at once (the redemption checks the session's
// marker in the same step), and a second redemption of a code still
// revokes what the first issued.
func TestToken_S07_CodeOfLoggedOutSession(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	verifier, challenge := pkce()
	q := e.login(b, authParams(challenge))
	code := q.Get("code")
	sid, _, _ := strings.Cut(code, broker.FamilySeparator)
	if err := e.store.Put(context.Background(), "sx:{"+sid+"}", []byte("1"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if tr := e.exchange(code, verifier); tr.status != http.StatusBadRequest || tr.str("error") != "invalid_grant" {
		t.Fatalf("code of a logged-out session = %d %v, want invalid_grant", tr.status, tr.body)
	}

	// Reuse (S07): the second redemption revokes the first one's tokens.
	verifier, challenge = pkce()
	q = e.login(e.browser(), authParams(challenge))
	tr := e.exchange(q.Get("code"), verifier)
	if tr.status != http.StatusOK {
		t.Fatalf("exchange = %d %v", tr.status, tr.body)
	}
	if again := e.exchange(q.Get("code"), verifier); again.status != http.StatusBadRequest {
		t.Fatalf("second redemption = %d, want 400", again.status)
	}
	if r := e.refresh(tr.str("refresh_token"), "app-a", secretA); r.status != http.StatusBadRequest {
		t.Fatalf("refresh after the code's reuse = %d %v, want 400 (family revoked)", r.status, r.body)
	}
}

// TestToken_S08_OneStepRedemptionStillChecked: with the family started in
// the redemption's step, a wrong verifier, client or redirect URI is still
// refused, and the family started for it is revoked (a retry with the
// right verifier finds the code used).
func TestToken_S08_OneStepRedemptionStillChecked(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		form func(code, verifier string) (url.Values, string, string)
	}{
		{"wrong verifier", func(code, _ string) (url.Values, string, string) {
			other, _ := pkce()
			return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appCB}, "code_verifier": {other + "x"}}, "app-a", secretA
		}},
		{"other client", func(code, verifier string) (url.Values, string, string) {
			return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appCB}, "code_verifier": {verifier}}, "app-b", secretB
		}},
		{"other redirect uri", func(code, verifier string) (url.Values, string, string) {
			return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"http://127.0.0.1:9000/cb"}, "code_verifier": {verifier}}, "app-a", secretA
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			verifier, challenge := pkce()
			q := e.login(e.browser(), authParams(challenge))
			form, user, pass := tc.form(q.Get("code"), verifier)
			if tr := e.post("/token", form, user, pass); tr.status != http.StatusBadRequest {
				t.Fatalf("exchange = %d %v, want 400", tr.status, tr.body)
			}
			if tr := e.exchange(q.Get("code"), verifier); tr.status != http.StatusBadRequest {
				t.Fatalf("retry with the right values = %d %v, want 400 (the code is used)", tr.status, tr.body)
			}
		})
	}
}

// TestRateLimit_S60_RefusedStartMakesNoUpstreamRequest: at /authorize the
// start counters go with the step's writes, after the upstream request is
// made; once a start was refused, the next ones from that IP are refused
// before any upstream request is made (no OIDC discovery, no signed SAML
// request) and without writing anything, until the Retry-After.
func TestRateLimit_S60_RefusedStartMakesNoUpstreamRequest(t *testing.T) {
	e := newEnv(t, withLimits(broker.RateLimits{StartsPerIP: perMinute(1)}, nil))
	last := func() string {
		e.acme.mu.Lock()
		defer e.acme.mu.Unlock()
		return e.acme.last.State
	}
	wantStarted(t, "first start", first(e.startFrom("198.51.100.7", "alice@acme.test")))
	resp, body := e.startFrom("198.51.100.7", "alice@acme.test")
	wantThrottled(t, "second start", resp, body, 60)
	before, calls := last(), e.store.storeCalls()
	resp, body = e.startFrom("198.51.100.7", "alice@acme.test")
	wantThrottled(t, "third start", resp, body, 60)
	if last() != before {
		t.Fatal("a start refused from the instance's memory made an upstream request URL")
	}
	if got := e.store.storeCalls(); got != calls {
		t.Fatalf("a start refused from the instance's memory used the store: %v, then %v", calls, got)
	}
	wantStarted(t, "another IP", first(e.startFrom("198.51.100.8", "alice@acme.test")))
}
