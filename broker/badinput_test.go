package broker_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestBadInput_NeverPanicsOr500 sends malformed and hostile requests to every
// endpoint: each gets a protocol error or a readable page, never a 5xx, a
// panic, an unescaped echo of the input, or a redirect to an unchecked URI.
func TestBadInput_NeverPanicsOr500(t *testing.T) {
	e := newEnv(t)
	xss := `"><script>alert(1)</script>`
	_, challenge := pkce()
	long := strings.Repeat("A", 70<<10)
	type req struct {
		name, method, path, body, ctype, auth string
	}
	reqs := []req{
		{"authorize no params", "GET", "/authorize", "", "", ""},
		{"authorize bad query", "GET", "/authorize?%zz=1&client_id=app-a", "", "", ""},
		{"authorize duplicate client_id", "GET", "/authorize?client_id=app-a&client_id=app-b", "", "", ""},
		{"authorize xss client", "GET", "/authorize?client_id=" + url.QueryEscape(xss), "", "", ""},
		{"authorize xss redirect", "GET", "/authorize?client_id=app-a&redirect_uri=" + url.QueryEscape("javascript:alert(1)"), "", "", ""},
		{"authorize xss hint", "GET", "/authorize?" + withHint(challenge, xss+"@acme.test"), "", "", ""},
		{"authorize hint without at", "GET", "/authorize?" + withHint(challenge, "nobody"), "", "", ""},
		{"authorize unknown domain", "GET", "/authorize?" + withHint(challenge, "x@unknown.example"), "", "", ""},
		{"authorize huge state", "GET", "/authorize?" + withState(challenge, strings.Repeat("s", 5000)), "", "", ""},
		{"authorize bad max_age", "GET", "/authorize?" + withParam(challenge, "max_age", "-1"), "", "", ""},
		{"authorize bad prompt", "GET", "/authorize?" + withParam(challenge, "prompt", "none login"), "", "", ""},
		{"authorize request object", "GET", "/authorize?" + withParam(challenge, "request", "eyJ.x.y"), "", "", ""},
		{"authorize POST garbage", "POST", "/authorize", "%%%", "application/x-www-form-urlencoded", ""},
		{"authorize POST huge", "POST", "/authorize", "client_id=" + long, "application/x-www-form-urlencoded", ""},
		{"login page unknown request", "GET", "/login?r=" + url.QueryEscape(xss), "", "", ""},
		{"login page no request", "GET", "/login", "", "", ""},
		{"login submit unknown", "POST", "/login", "r=abc&email=" + url.QueryEscape(xss), "application/x-www-form-urlencoded", ""},
		{"callback unknown idp", "GET", "/callback/" + url.PathEscape(xss) + "?state=x", "", "", ""},
		{"callback no state", "GET", "/callback/acme-idp", "", "", ""},
		{"callback unknown state", "GET", "/callback/acme-idp?state=abc&code=def", "", "", ""},
		{"callback huge state", "GET", "/callback/acme-idp?state=" + strings.Repeat("a", 4000), "", "", ""},
		{"callback error xss", "GET", "/callback/acme-idp?error=" + url.QueryEscape(xss) + "&error_description=" + url.QueryEscape(xss) + "&state=x", "", "", ""},
		{"token empty", "POST", "/token", "", "application/x-www-form-urlencoded", ""},
		{"token GET", "GET", "/token", "", "", ""},
		{"token JSON body", "POST", "/token", `{"grant_type":"authorization_code"}`, "application/json", ""},
		{"token bad basic", "POST", "/token", "grant_type=authorization_code", "application/x-www-form-urlencoded", "Basic !!!"},
		{"token basic bad escape", "POST", "/token", "grant_type=authorization_code", "application/x-www-form-urlencoded", "Basic JXp6OiV6eg=="},
		{"token duplicate grant", "POST", "/token", "grant_type=a&grant_type=b&client_id=pub", "application/x-www-form-urlencoded", ""},
		{"token unknown code", "POST", "/token", "grant_type=authorization_code&client_id=pub&code=" + xss + "&code_verifier=x", "application/x-www-form-urlencoded", ""},
		{"token huge code", "POST", "/token", "grant_type=authorization_code&client_id=pub&code=" + strings.Repeat("c", 5000), "application/x-www-form-urlencoded", ""},
		{"refresh garbage", "POST", "/token", "grant_type=refresh_token&client_id=pub&refresh_token=...", "application/x-www-form-urlencoded", ""},
		{"refresh long", "POST", "/token", "grant_type=refresh_token&client_id=pub&refresh_token=" + strings.Repeat("x.", 3000), "application/x-www-form-urlencoded", ""},
		{"userinfo no token", "GET", "/userinfo", "", "", ""},
		{"userinfo garbage", "GET", "/userinfo", "", "", "Bearer " + xss},
		{"userinfo basic", "GET", "/userinfo", "", "", "Basic abc"},
		{"revoke empty", "POST", "/revoke", "", "application/x-www-form-urlencoded", ""},
		{"introspect garbage", "POST", "/introspect", "token=" + url.QueryEscape(xss), "application/x-www-form-urlencoded", "Basic YXBwLWE6c2VjcmV0LWZvci1hcHAtYS0wMTIzNDU2Nzg5"},
		{"unknown path", "GET", "/" + url.PathEscape(xss), "", "", ""},
		{"method not allowed", "DELETE", "/authorize", "", "", ""},
	}
	for _, r := range reqs {
		t.Run(r.name, func(t *testing.T) {
			req, _ := http.NewRequest(r.method, e.issuer+r.path, strings.NewReader(r.body))
			if r.ctype != "" {
				req.Header.Set("Content-Type", r.ctype)
			}
			if r.auth != "" {
				req.Header.Set("Authorization", r.auth)
			}
			c := e.browser().c
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", r.method, r.path, err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode >= 500 {
				t.Fatalf("%s = %d, want a 4xx protocol error or page; body %q", r.name, resp.StatusCode, body)
			}
			if strings.Contains(string(body), "<script>") {
				t.Fatalf("%s echoed script unescaped: %q", r.name, body)
			}
			if loc := resp.Header.Get("Location"); loc != "" && !strings.HasPrefix(loc, appCB) &&
				!strings.HasPrefix(loc, "/login") && !strings.HasPrefix(loc, "https://idp.example/") {
				t.Fatalf("%s redirected to %q", r.name, loc)
			}
		})
	}
}

func withParam(challenge, k, v string) string {
	p := authParams(challenge)
	p.Set(k, v)
	return p.Encode()
}

func withHint(challenge, hint string) string   { return withParam(challenge, "login_hint", hint) }
func withState(challenge, state string) string { return withParam(challenge, "state", state) }
