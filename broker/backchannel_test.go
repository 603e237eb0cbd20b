package broker_test

import (
	"encoding/base64"
	"encoding/json"

	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/providers/oidc"
)

// countingOP is a loopback OpenID Provider that serves discovery and an
// empty JWKS and counts the fetches of each.
type countingOP struct {
	srv                 *httptest.Server
	discovery, jwksHits atomic.Int32
}

func newCountingOP(t *testing.T) *countingOP {
	t.Helper()
	op := &countingOP{}
	op.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			op.discovery.Add(1)
			_ = json.NewEncoder(w).Encode(map[string]any{"issuer": op.srv.URL,
				"authorization_endpoint": op.srv.URL + "/authorize", "token_endpoint": op.srv.URL + "/token",
				"jwks_uri": op.srv.URL + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256"}})
		case "/jwks":
			op.jwksHits.Add(1)
			_, _ = w.Write([]byte(`{"keys":[]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(op.srv.Close)
	return op
}

// forgedLogoutToken is a logout token with the right iss, aud and times
// and a kid the OP never published: what anybody can post. Its signature
// is junk; only a fetch of the OP's keys could tell.
func forgedLogoutToken(iss, aud, kid string, now time.Time) string {
	enc := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	return enc(map[string]string{"alg": "RS256", "kid": kid, "typ": "logout+jwt"}) + "." +
		enc(map[string]any{"iss": iss, "aud": aud, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
			"jti": kid, "sub": "alice-upstream", "events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}}) +
		"." + base64.RawURLEncoding.EncodeToString([]byte("not a signature"))
}

// TestBackchannel_S60_UnknownKidFetchesOnce: 60 anonymous POSTs to
// /backchannel/<idp>, each a logout token with a new unknown kid, make the
// broker fetch the IdP's JWKS at most twice (once a minute at most, S63),
// and past failures_per_ip the address gets 429 with Retry-After before
// its token is looked at (S60). Another address is still served.
func TestBackchannel_S60_UnknownKidFetchesOnce(t *testing.T) {
	op := newCountingOP(t)
	const limit = 20
	e := newEnv(t, withLimits(broker.RateLimits{FailuresPerIP: perMinute(limit)}, nil), func(cfg *broker.Config) {
		conn, err := oidc.New(oidc.Config{ID: "acme-idp", Issuer: op.srv.URL, ClientID: "realmgate-at-acme",
			Logger: slog.New(slog.DiscardHandler), Now: cfg.Now})
		if err != nil {
			t.Fatal(err)
		}
		for i := range cfg.IdPs {
			if cfg.IdPs[i].ID == "acme-idp" {
				cfg.IdPs[i].Connector = conn
			}
		}
	})
	alignWindows(time.Minute, e)
	post := func(ip string, i int) *http.Response {
		tok := forgedLogoutToken(op.srv.URL, "realmgate-at-acme", "kid-"+ip+"-"+strconv.Itoa(i), e.clock.now())
		req, _ := http.NewRequest(http.MethodPost, e.issuer+"/backchannel/acme-idp",
			strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		fromIP(ip)(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	const attacker = "203.0.113.9"
	for i := range 60 {
		resp := post(attacker, i)
		want := http.StatusBadRequest
		if i >= limit {
			want = http.StatusTooManyRequests
		}
		if resp.StatusCode != want {
			t.Fatalf("POST %d with an unknown kid = %d, want %d", i+1, resp.StatusCode, want)
		}
		if want == http.StatusTooManyRequests {
			if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 66 {
				t.Fatalf("POST %d: Retry-After = %q, want 1..66 seconds (a sliding minute)", i+1, resp.Header.Get("Retry-After"))
			}
		}
	}
	if n := op.jwksHits.Load(); n < 1 || n > 2 {
		t.Errorf("jwks fetched %d times for 60 anonymous logout tokens, want 1 or 2", n)
	}
	// The IdP's own address is not throttled by the attacker's failures.
	if resp := post("198.51.100.7", 0); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("POST from another address = %d, want 400 (looked at, not throttled)", resp.StatusCode)
	}
	if n := op.jwksHits.Load(); n > 2 {
		t.Errorf("jwks fetched %d times, want at most 2", n)
	}
	if n := op.discovery.Load(); n != 1 {
		t.Errorf("discovery fetched %d times, want 1", n)
	}
}
