package broker_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestAuthorize_S01_RedirectURIExactMatch(t *testing.T) {
	e := newEnv(t)
	_, challenge := pkce()
	for _, tc := range []struct{ name, uri string }{
		{"path", "https://app-a.example/callbackx"},
		{"query", appCB + "?x=1"},
		{"fragment", appCB + "#f"},
		{"trailing slash", appCB + "/"},
		{"port", "https://app-a.example:8443/callback"},
		{"case", "https://APP-A.example/callback"},
		{"scheme", "http://app-a.example/callback"},
		{"other client's", "https://app-b.example/callback"},
		{"missing", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := authParams(challenge)
			v.Set("redirect_uri", tc.uri)
			resp, body := e.browser().getBody(e.authorizeURL(v))
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Fatalf("authorize(redirect_uri=%q) = %d Location %q, want 400 without redirect", tc.uri, resp.StatusCode, resp.Header.Get("Location"))
			}
			if !strings.Contains(body, "Invalid redirect address") {
				t.Errorf("error page does not explain the problem: %q", body)
			}
		})
	}
}

func TestAuthorize_S02_UnknownClientNoRedirect(t *testing.T) {
	e := newEnv(t)
	_, challenge := pkce()
	for _, id := range []string{"nope", "", "app-a ", "<script>"} {
		v := authParams(challenge)
		v.Set("client_id", id)
		resp, body := e.browser().getBody(e.authorizeURL(v))
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("authorize(client_id=%q) = %d Location %q, want 400 without redirect", id, resp.StatusCode, resp.Header.Get("Location"))
		}
		if strings.Contains(body, "<script>") {
			t.Errorf("client id echoed unescaped")
		}
	}
}

func TestAuthorize_S03_PKCERequired(t *testing.T) {
	e := newEnv(t)
	_, challenge := pkce()
	for _, tc := range []struct {
		name string
		mod  func(url.Values)
	}{
		{"no challenge", func(v url.Values) { v.Del("code_challenge"); v.Del("code_challenge_method") }},
		{"plain", func(v url.Values) { v.Set("code_challenge_method", "plain") }},
		{"no method", func(v url.Values) { v.Del("code_challenge_method") }},
		{"short challenge", func(v url.Values) { v.Set("code_challenge", "abc") }},
		{"public client without PKCE", func(v url.Values) {
			v.Set("client_id", "pub")
			v.Set("redirect_uri", "http://127.0.0.1:7000/cb")
			v.Del("code_challenge")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := authParams(challenge)
			tc.mod(v)
			resp := e.browser().get(e.authorizeURL(v))
			q := e.clientRedirect(resp, v.Get("redirect_uri"))
			if q.Get("error") != "invalid_request" || q.Get("iss") != e.issuer || q.Get("state") != "st-123" {
				t.Fatalf("authorize(%s) redirect = %v, want error=invalid_request with iss and state", tc.name, q)
			}
		})
	}
}

func TestToken_S03_VerifierChecks(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ name, verifier string }{
		{"missing", ""},
		{"wrong", strings.Repeat("a", 43)},
		{"too short", strings.Repeat("a", 42)},
		{"too long", strings.Repeat("a", 129)},
		{"reserved chars", strings.Repeat("a", 42) + "/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := e.browser()
			_, challenge := pkce()
			q := e.login(b, authParams(challenge))
			tr := e.exchange(q.Get("code"), tc.verifier)
			if tr.status != http.StatusBadRequest || tr.str("error") != "invalid_grant" {
				t.Fatalf("token(verifier %s) = %d %v, want invalid_grant", tc.name, tr.status, tr.body)
			}
		})
	}
	t.Run("verifier of 128 unreserved chars accepted", func(t *testing.T) {
		b := e.browser()
		verifier := strings.Repeat("A-._~", 25) + "abc"
		v := authParams(s256(verifier))
		q := e.login(b, v)
		if tr := e.exchange(q.Get("code"), verifier); tr.status != http.StatusOK {
			t.Fatalf("token = %d %v, want 200", tr.status, tr.body)
		}
	})
}

func TestAuthorize_S04_ImplicitHybridRefused(t *testing.T) {
	e := newEnv(t)
	_, challenge := pkce()
	for _, rt := range []string{"token", "id_token", "id_token token", "code id_token", "code token", "code id_token token", "none", ""} {
		v := authParams(challenge)
		v.Set("response_type", rt)
		q := e.clientRedirect(e.browser().get(e.authorizeURL(v)), appCB)
		if q.Get("error") != "unsupported_response_type" {
			t.Errorf("authorize(response_type=%q) error = %q, want unsupported_response_type", rt, q.Get("error"))
		}
	}
	for _, gt := range []string{"password", "implicit", "urn:ietf:params:oauth:grant-type:jwt-bearer"} {
		tr := e.post("/token", url.Values{"grant_type": {gt}, "username": {"a"}, "password": {"b"}}, "app-a", secretA)
		if tr.str("error") != "unsupported_grant_type" {
			t.Errorf("token(grant_type=%q) = %v, want unsupported_grant_type", gt, tr.body)
		}
	}
	// client_credentials exists (clientcredentials.go) but only for clients
	// registered for it.
	tr := e.post("/token", url.Values{"grant_type": {"client_credentials"}}, "app-a", secretA)
	if tr.str("error") != "unauthorized_client" {
		t.Errorf("token(grant_type=client_credentials) by app-a = %v, want unauthorized_client", tr.body)
	}
}

func TestAuthorize_S05_IssInEveryResponse(t *testing.T) {
	e := newEnv(t)
	_, challenge := pkce()
	ok := e.login(e.browser(), authParams(challenge))
	if ok.Get("iss") != e.issuer || ok.Get("code") == "" {
		t.Errorf("success response = %v, want code and iss=%s", ok, e.issuer)
	}
	v := authParams(challenge)
	v.Set("scope", "profile")
	bad := e.clientRedirect(e.browser().get(e.authorizeURL(v)), appCB)
	if bad.Get("iss") != e.issuer || bad.Get("error") != "invalid_scope" {
		t.Errorf("error response = %v, want error with iss", bad)
	}
	denied := e.browser()
	idp, state := e.upstreamState(denied, authParams(challenge))
	q := e.clientRedirect(denied.get(e.issuer+"/callback/"+idp+"?error=access_denied&state="+state), appCB)
	if q.Get("error") != "access_denied" || q.Get("iss") != e.issuer {
		t.Errorf("upstream denial response = %v, want access_denied with iss", q)
	}
	var meta map[string]any
	getJSON(t, e.issuer+"/.well-known/openid-configuration", &meta)
	if meta["authorization_response_iss_parameter_supported"] != true {
		t.Errorf("metadata authorization_response_iss_parameter_supported = %v, want true", meta["authorization_response_iss_parameter_supported"])
	}
}

func TestPages_S06_NoFramingAnd303(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	_, challenge := pkce()
	v := authParams(challenge)
	v.Del("login_hint")
	resp := b.get(e.authorizeURL(v))
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize without hint = %d, want 302 to the email page", resp.StatusCode)
	}
	page, body := b.getBody(e.issuer + resp.Header.Get("Location"))
	if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("email page CSP = %q, want frame-ancestors 'none'", csp)
	}
	if page.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("X-Frame-Options = %q, want DENY", page.Header.Get("X-Frame-Options"))
	}
	r := formField(body, "r")
	post, _ := b.postForm(e.issuer+"/login", url.Values{"r": {r}, "email": {"alice@acme.test"}})
	if post.StatusCode != http.StatusSeeOther || !strings.HasPrefix(post.Header.Get("Location"), "https://idp.example/acme-idp/") {
		t.Fatalf("POST /login = %d %q, want 303 to the acme IdP", post.StatusCode, post.Header.Get("Location"))
	}
}
