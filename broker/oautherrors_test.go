package broker_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestOAuthErrors_OneWriter: every direct OAuth error response is written
// by the one writer: the code's status, its challenge, no caching, a JSON
// body with the code and a description, and nothing internal.
func TestOAuthErrors_OneWriter(t *testing.T) {
	e := newEnv(t)
	tr, _ := e.signIn()
	form := func(v url.Values, user, pass string) func() *http.Request {
		return func() *http.Request {
			req, _ := http.NewRequest(http.MethodPost, e.issuer+"/token", strings.NewReader(v.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if user != "" {
				req.SetBasicAuth(user, pass)
			}
			return req
		}
	}
	get := func(path, bearer string) func() *http.Request {
		return func() *http.Request {
			req, _ := http.NewRequest(http.MethodGet, e.issuer+path, nil)
			if bearer != "" {
				req.Header.Set("Authorization", "Bearer "+bearer)
			}
			return req
		}
	}
	cases := []struct {
		name      string
		req       func() *http.Request
		down      bool
		status    int
		code      string
		challenge string
	}{
		{"missing grant_type", form(url.Values{}, "app-a", secretA), false, 400, "invalid_request", ""},
		{"wrong client secret", form(url.Values{"grant_type": {"refresh_token"}}, "app-a", "wrong"), false, 401, "invalid_client", `Basic realm="realmgate"`},
		{"unknown refresh token", form(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x.y"}}, "app-a", secretA), false, 400, "invalid_grant", ""},
		{"unsupported grant", form(url.Values{"grant_type": {"password"}}, "app-a", secretA), false, 400, "unsupported_grant_type", ""},
		{"userinfo without token", get("/userinfo", ""), false, 401, "invalid_request", `Bearer realm="realmgate"`},
		{"userinfo with an ID token", get("/userinfo", tr.str("id_token")), false, 401, "invalid_token", `error="invalid_token"`},
		{"store down at refresh", form(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.str("refresh_token")}}, "app-a", secretA), true, 503, "temporarily_unavailable", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.store.down.Store(tc.down)
			defer e.store.down.Store(false)
			resp, err := http.DefaultClient.Do(tc.req())
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var body map[string]string
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("body %q is not a JSON error: %v", raw, err)
			}
			if resp.StatusCode != tc.status || body["error"] != tc.code || body["error_description"] == "" {
				t.Fatalf("response = %d %v, want %d with error %q and a description", resp.StatusCode, body, tc.status, tc.code)
			}
			if got := resp.Header.Get("WWW-Authenticate"); !strings.Contains(got, tc.challenge) || (tc.challenge == "") != (got == "") {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tc.challenge)
			}
			if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Pragma") != "no-cache" {
				t.Errorf("Cache-Control %q Pragma %q, want no-store and no-cache", resp.Header.Get("Cache-Control"), resp.Header.Get("Pragma"))
			}
			if tc.status == 503 && resp.Header.Get("Retry-After") == "" {
				t.Errorf("503 without Retry-After")
			}
			if strings.Contains(string(raw), "store") || strings.Contains(string(raw), "broker:") {
				t.Errorf("body leaks internal detail: %s", raw)
			}
		})
	}
}
