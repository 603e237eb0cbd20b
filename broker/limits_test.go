package broker_test

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/realmgate/realmgate/broker"
)

// pendingRequests counts the distinct pending auth requests ("ar:" keys)
// written to the store so far, and the bytes of their largest version.
func (e *env) pendingRequests() (keys, largest int) {
	e.store.mu.Lock()
	defer e.store.mu.Unlock()
	seen := map[string]bool{}
	for i := 0; i+1 < len(e.store.writes); i++ {
		if k := e.store.writes[i]; strings.HasPrefix(k, "ar:") {
			seen[k] = true
			largest = max(largest, len(e.store.writes[i+1]))
		}
	}
	return len(seen), largest
}

// send makes an anonymous request, as a script would: no cookies, no
// redirects followed, from ip through the trusted proxy when ip is set.
func (e *env) send(method, path, body, ip string) (*http.Response, string) {
	e.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, e.issuer+path, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if ip != "" {
		fromIP(ip)(req)
	}
	resp, err := e.browser().c.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestAuthorize_S72_OversizedParamsRefused: every parameter an anonymous
// /authorize could make the broker keep for ten minutes has a limit; over
// it the client gets invalid_request naming the parameter, and nothing is
// stored.
func TestAuthorize_S72_OversizedParamsRefused(t *testing.T) {
	e := newEnv(t)
	_, challenge := pkce()
	long := func(n int) string { return strings.Repeat("a", n) }
	for _, tc := range []struct {
		param, value, inError string
	}{
		{"state", long(2049), "state is too long"},
		{"nonce", long(513), "nonce is too long"},
		{"scope", "openid " + strings.Repeat("x ", 1100), "scope is too long"},
		{"scope", "openid" + strings.Repeat(" s", 40), "too many scopes"},
		{"scope", "openid " + long(300), "a scope is too long"},
		{"tenant", long(65), "tenant is too long"},
		{"login_hint", long(320) + "@acme.test", "login_hint is too long"},
		{"acr_values", long(513), "acr_values is too long"},
		{"prompt", strings.Repeat("login ", 20), "prompt is too long"},
		{"code_challenge", long(129), "code_challenge is too long"},
		{"idp_hint", long(129), "idp_hint is too long"},
		{"domain_hint", long(254), "domain_hint is too long"},
		{"max_age", long(11), "max_age is too long"},
	} {
		t.Run(tc.param+"/"+tc.inError, func(t *testing.T) {
			before, _ := e.pendingRequests()
			v := authParams(challenge)
			v.Del("login_hint") // else the sign-in would start upstream before any stored value matters
			v.Set(tc.param, tc.value)
			resp := e.browser().get(e.authorizeURL(v))
			loc := resp.Header.Get("Location")
			if !strings.HasPrefix(loc, appCB+"?") {
				t.Fatalf("authorize(%s of %d bytes) = %d %q, want a redirect to the client", tc.param, len(tc.value), resp.StatusCode, loc)
			}
			q := mustQuery(t, loc)
			if q.Get("error") != "invalid_request" || !strings.Contains(q.Get("error_description"), tc.inError) {
				t.Errorf("authorize(%s of %d bytes) = %v, want invalid_request saying %q", tc.param, len(tc.value), q, tc.inError)
			}
			wantState := "st-123"
			if tc.param == "state" {
				wantState = "" // an oversized state is not echoed
			}
			if q.Get("state") != wantState || q.Get("iss") != e.issuer {
				t.Errorf("authorize(%s) redirect state = %.20q, iss = %q; want %q and the issuer", tc.param, q.Get("state"), q.Get("iss"), wantState)
			}
			if after, _ := e.pendingRequests(); after != before {
				t.Errorf("authorize(%s too long) stored %d pending requests, want none", tc.param, after-before)
			}
		})
	}
	t.Run("at the limits", func(t *testing.T) {
		v := authParams(challenge)
		v.Del("login_hint")
		v.Set("state", long(2048))
		v.Set("nonce", long(512))
		v.Set("tenant", long(64))
		v.Set("scope", "openid"+strings.Repeat(" "+long(50), 31))
		resp := e.browser().get(e.authorizeURL(v))
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.Contains(loc, "/login?r=") {
			t.Fatalf("authorize at the limits = %d %q, want the discovery page", resp.StatusCode, loc)
		}
	})
}

// TestAuthorize_S72_BodyCap: the attack, anonymous POSTs of ~61 KB
// to /authorize, and an oversized query, are refused with 413 before
// anything is read into a pending request; /login and /tenant have the same
// cap, and their fields their limits.
func TestAuthorize_S72_BodyCap(t *testing.T) {
	e := newEnv(t)
	_, challenge := pkce()
	attack := authParams(challenge)
	attack.Del("login_hint")
	attack.Set("scope", "openid "+strings.Repeat("x", 30<<10))
	attack.Set("tenant", strings.Repeat("t", 30<<10))
	padded := authParams(challenge)
	padded.Del("login_hint")
	padded.Set("x-padding", strings.Repeat("p", 20<<10)) // not stored, but over the cap
	for _, tc := range []struct{ name, method, path, body string }{
		{"POST /authorize 61 KB", http.MethodPost, "/authorize", attack.Encode()},
		{"POST /authorize 20 KiB", http.MethodPost, "/authorize", padded.Encode()},
		{"GET /authorize 20 KiB query", http.MethodGet, "/authorize?" + padded.Encode(), ""},
		{"POST /login 20 KiB", http.MethodPost, "/login", "r=x&email=a%40acme.test&x=" + strings.Repeat("p", 20<<10)},
		{"POST /tenant 20 KiB", http.MethodPost, "/tenant", "r=x&tenant=" + strings.Repeat("t", 20<<10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.send(tc.method, tc.path, tc.body, "")
			if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "too large") {
				t.Errorf("%s = %d, want 413 with a readable page: %.200q", tc.name, resp.StatusCode, body)
			}
		})
	}
	t.Run("POST /authorize 61 KB chunked", func(t *testing.T) {
		// No Content-Length: the cap applies while reading.
		req, _ := http.NewRequest(http.MethodPost, e.issuer+"/authorize", io.MultiReader(strings.NewReader(attack.Encode())))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if req.ContentLength != 0 || resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "too large") {
			t.Errorf("chunked POST = %d, want 413 with a readable page: %.200q", resp.StatusCode, body)
		}
	})
	if n, _ := e.pendingRequests(); n != 0 {
		t.Errorf("oversized requests stored %d pending requests, want none", n)
	}
	for _, tc := range []struct{ name, body string }{
		{"POST /login long email", "r=x&email=" + strings.Repeat("e", 400) + "%40acme.test"},
		{"POST /login long idp", "r=x&idp=" + strings.Repeat("i", 200)},
		{"POST /tenant long tenant", "r=x&tenant=" + strings.Repeat("t", 100)},
	} {
		path := "/" + strings.Fields(tc.name)[1][1:]
		if resp, body := e.send(http.MethodPost, path, tc.body, ""); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "is too long") {
			t.Errorf("%s = %d, want 400 naming the field: %.300q", tc.name, resp.StatusCode, body)
		}
	}
	// Under the cap, an unknown parameter is ignored as before.
	padded.Set("x-padding", strings.Repeat("p", 8<<10))
	if resp, _ := e.send(http.MethodPost, "/authorize", padded.Encode(), ""); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("POST /authorize of 8 KiB = %d, want 303 to the discovery page", resp.StatusCode)
	}
}

// TestAuthorize_S72_StoringRequestsCountPerIP: anonymous requests that only
// reach the sign-in page (no upstream start) still store a pending request,
// so they count against the per-IP start limit: past it they get 429 and
// the store holds no more pending requests, whatever the number sent.
func TestAuthorize_S72_StoringRequestsCountPerIP(t *testing.T) {
	const limit = 5
	e := newEnv(t, withLimits(broker.RateLimits{StartsPerIP: perMinute(limit)}, nil))
	alignWindows(time.Minute, e)
	_, challenge := pkce()
	v := authParams(challenge)
	v.Del("login_hint")
	// As large as the limits allow: what an attacker would send.
	v.Set("state", strings.Repeat("s", 2048))
	v.Set("nonce", strings.Repeat("n", 512))
	v.Set("scope", "openid"+strings.Repeat(" "+strings.Repeat("x", 60), 31))
	v.Set("tenant", strings.Repeat("t", 64))
	v.Set("acr_values", strings.Repeat("a", 512))
	const sent = 40
	throttled := 0
	for i := range sent {
		method, path, body := http.MethodGet, "/authorize?"+v.Encode(), ""
		if i%2 == 1 {
			method, path, body = http.MethodPost, "/authorize", v.Encode()
		}
		resp, page := e.send(method, path, body, "203.0.113.9")
		switch {
		case i < limit && strings.Contains(resp.Header.Get("Location"), "/login?r="):
		case i >= limit && resp.StatusCode == http.StatusTooManyRequests:
			throttled++
			if i == limit {
				wantThrottled(t, "authorize past the limit", resp, page, 60)
			}
		default:
			t.Fatalf("request %d of %d = %d %q", i+1, sent, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	keys, largest := e.pendingRequests()
	if keys != limit {
		t.Errorf("store holds %d pending requests after %d anonymous requests from one IP, want %d (the limit)", keys, sent, limit)
	}
	if largest > 8<<10 {
		t.Errorf("largest pending request is %d bytes, want at most 8 KiB", largest)
	}
	if throttled != sent-limit {
		t.Errorf("%d requests throttled, want %d", throttled, sent-limit)
	}
	// Another address is not affected.
	if resp, _ := e.send(http.MethodGet, "/authorize?"+v.Encode(), "", "203.0.113.10"); !strings.Contains(resp.Header.Get("Location"), "/login?r=") {
		t.Errorf("another IP = %d %q, want the discovery page", resp.StatusCode, resp.Header.Get("Location"))
	}
	t.Logf("%d requests from one IP: %d pending requests stored, largest %s bytes", sent, keys, strconv.Itoa(largest))
}

// TestLogout_S72_StateBounded: the state of an RP-initiated logout is kept
// with its target while the IdP logs out; it has the authorize limit.
func TestLogout_S72_StateBounded(t *testing.T) {
	e := newEnv(t)
	q := url.Values{"client_id": {"app-b"}, "post_logout_redirect_uri": {"https://app-b.example/bye"}, "state": {strings.Repeat("s", 3000)}}
	resp, body := e.send(http.MethodGet, "/logout?"+q.Encode(), "", "")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "state is too long") {
		t.Errorf("logout with a 3000-byte state = %d, want 400 naming state: %.300q", resp.StatusCode, body)
	}
}
