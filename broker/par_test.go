package broker_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/realmgate/realmgate/broker"
)

const requestURIPrefix = "urn:ietf:params:oauth:request_uri:"

// push posts an authorization request of app-a to the PAR endpoint.
func (e *env) push(v url.Values, proofs ...string) tokenResp {
	e.t.Helper()
	return e.sendDPoP(http.MethodPost, "/par", v, "app-a", secretA, "", proofs...)
}

// pushedAuthorize follows /authorize?client_id&request_uri to the upstream
// and back, and returns the client's redirect query.
func (e *env) pushedAuthorize(b *browser, clientID, requestURI, redirectURI string) url.Values {
	e.t.Helper()
	idp, state := e.upstreamState(b, url.Values{"client_id": {clientID}, "request_uri": {requestURI}})
	resp := b.get(e.issuer + "/callback/" + idp + "?code=upstream-code&state=" + url.QueryEscape(state))
	return e.clientRedirect(resp, redirectURI)
}

// TestPAR_SignIn: a pushed request signs in like a plain one (RFC 9126
// §2, §4): 201 with a request_uri, /authorize with client_id and
// request_uri only, the pushed state and nonce carried through.
func TestPAR_SignIn(t *testing.T) {
	e := newEnv(t)
	verifier, challenge := pkce()
	v := authParams(challenge)
	v.Del("client_id") // client_secret_basic identifies the client
	r := e.push(v)
	uri := r.str("request_uri")
	if r.status != http.StatusCreated || !strings.HasPrefix(uri, requestURIPrefix) || r.body["expires_in"] != float64(60) {
		t.Fatalf("PAR = %d %v, want 201 with a request_uri and expires_in 60", r.status, r.body)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("PAR Cache-Control = %q, want no-store", cc)
	}
	q := e.pushedAuthorize(e.browser(), "app-a", uri, appCB)
	if q.Get("state") != "st-123" {
		t.Errorf("state = %q, want the pushed st-123", q.Get("state"))
	}
	tr := e.exchange(q.Get("code"), verifier)
	if tr.status != http.StatusOK {
		t.Fatalf("token = %d %v", tr.status, tr.body)
	}
	if _, id := claimsOf(t, tr.str("id_token")); id["nonce"] != "n-0S6_WzA2Mj" {
		t.Errorf("ID token nonce = %v, want the pushed nonce", id["nonce"])
	}
	// The client secret is never kept with the pushed parameters.
	post := authParams(challenge)
	post.Set("client_secret", secretA)
	if r := e.sendDPoP(http.MethodPost, "/par", post, "", "", ""); r.status != http.StatusCreated {
		t.Fatalf("PAR with client_secret_post = %d %v", r.status, r.body)
	}
	e.store.mu.Lock()
	defer e.store.mu.Unlock()
	for _, w := range e.store.writes {
		if strings.Contains(w, secretA) {
			t.Fatalf("the store holds the client secret: %q", w)
		}
	}
}

// TestPAR_RequestURIRefused: a request_uri works once, within its
// lifetime, for the client that pushed it, with nothing else beside it.
func TestPAR_RequestURIRefused(t *testing.T) {
	e := newEnv(t)
	fresh := func() string {
		_, challenge := pkce()
		r := e.push(authParams(challenge))
		if r.status != http.StatusCreated {
			t.Fatalf("PAR = %d %v", r.status, r.body)
		}
		return r.str("request_uri")
	}
	refused := func(t *testing.T, v url.Values) {
		t.Helper()
		resp, body := e.browser().getBody(e.authorizeURL(v))
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Fatalf("authorize = %d Location %q, want a 400 page, no redirect", resp.StatusCode, resp.Header.Get("Location"))
		}
		if !strings.Contains(body, "sign-in request") {
			t.Errorf("page does not say what is wrong: %s", body)
		}
	}
	t.Run("reuse", func(t *testing.T) {
		uri := fresh()
		e.pushedAuthorize(e.browser(), "app-a", uri, appCB)
		refused(t, url.Values{"client_id": {"app-a"}, "request_uri": {uri}})
	})
	t.Run("expired", func(t *testing.T) {
		uri := fresh()
		e.clock.advance(61 * time.Second)
		refused(t, url.Values{"client_id": {"app-a"}, "request_uri": {uri}})
	})
	t.Run("another client", func(t *testing.T) {
		uri := fresh()
		refused(t, url.Values{"client_id": {"app-b"}, "request_uri": {uri}})
		// Not consumed by the attempt: its own client can still use it.
		e.pushedAuthorize(e.browser(), "app-a", uri, appCB)
	})
	t.Run("extra parameters", func(t *testing.T) {
		uri := fresh()
		refused(t, url.Values{"client_id": {"app-a"}, "request_uri": {uri}, "redirect_uri": {"https://evil.example/cb"}})
		refused(t, url.Values{"client_id": {"app-a"}, "request_uri": {uri}, "scope": {"openid"}})
	})
	t.Run("unknown", func(t *testing.T) {
		refused(t, url.Values{"client_id": {"app-a"}, "request_uri": {requestURIPrefix + strings.Repeat("A", 43)}})
		refused(t, url.Values{"client_id": {"app-a"}, "request_uri": {"https://app-a.example/request.jwt"}})
	})
}

// TestPAR_PushChecks: the PAR endpoint authenticates the client as /token
// does and checks the parameters as /authorize does (RFC 9126 §2.1, §2.3).
func TestPAR_PushChecks(t *testing.T) {
	e := newEnv(t)
	_, challenge := pkce()
	with := func(k, v string) url.Values {
		p := authParams(challenge)
		if v == "" {
			p.Del(k)
		} else {
			p.Set(k, v)
		}
		return p
	}
	for _, tc := range []struct {
		name       string
		form       url.Values
		user, pass string
		status     int
		wantError  string
	}{
		{"wrong secret", authParams(challenge), "app-a", "wrong", http.StatusUnauthorized, "invalid_client"},
		{"unknown client", with("client_id", "nobody"), "", "", http.StatusUnauthorized, "invalid_client"},
		{"unregistered redirect_uri", with("redirect_uri", "https://evil.example/cb"), "app-a", secretA, 400, "invalid_request"},
		{"no redirect_uri", with("redirect_uri", ""), "app-a", secretA, 400, "invalid_request"},
		{"no PKCE", with("code_challenge", ""), "app-a", secretA, 400, "invalid_request"},
		{"plain PKCE", with("code_challenge_method", "plain"), "app-a", secretA, 400, "invalid_request"},
		{"implicit", with("response_type", "token"), "app-a", secretA, 400, "unsupported_response_type"},
		{"no openid scope", with("scope", "email"), "app-a", secretA, 400, "invalid_scope"},
		{"request_uri pushed", with("request_uri", requestURIPrefix+"x"), "app-a", secretA, 400, "invalid_request"},
		{"request object", with("request", "eyJ.x.y"), "app-a", secretA, 400, "request_not_supported"},
		{"bad prompt", with("prompt", "sometimes"), "app-a", secretA, 400, "invalid_request"},
		{"state too long", with("state", strings.Repeat("s", 5000)), "app-a", secretA, 400, "invalid_request"},
		{"bad dpop_jkt", with("dpop_jkt", "short"), "app-a", secretA, 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.sendDPoP(http.MethodPost, "/par", tc.form, tc.user, tc.pass, "")
			if r.status != tc.status || r.str("error") != tc.wantError {
				t.Fatalf("PAR = %d %v, want %d %s", r.status, r.body, tc.status, tc.wantError)
			}
		})
	}
	t.Run("public client", func(t *testing.T) {
		p := with("client_id", "pub")
		p.Set("redirect_uri", "http://127.0.0.1:7000/cb")
		if r := e.sendDPoP(http.MethodPost, "/par", p, "", "", ""); r.status != http.StatusCreated {
			t.Fatalf("PAR of a public client = %d %v, want 201", r.status, r.body)
		}
	})
	t.Run("GET", func(t *testing.T) {
		resp, _ := e.browser().getBody(e.issuer + "/par?" + authParams(challenge).Encode())
		if resp.StatusCode != http.StatusMethodNotAllowed && resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET /par = %d, want 405 or 404", resp.StatusCode)
		}
	})
}

// TestPAR_Required: per client (require_pushed_authorization_requests) and
// server-wide, a plain authorization request is refused (RFC 9126 §5, §6).
func TestPAR_Required(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opt       func(*broker.Config)
		plainOK   string // a client whose plain requests still work
		discovery bool
	}{
		{"per client", func(c *broker.Config) { c.Clients[0].RequirePushedAuthorizationRequests = true }, "app-b", false},
		{"server-wide", func(c *broker.Config) { c.PAR.Require = true }, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.opt)
			_, challenge := pkce()
			resp := e.browser().get(e.authorizeURL(authParams(challenge)))
			q := e.clientRedirect(resp, appCB)
			if q.Get("error") != "invalid_request" || q.Get("state") != "st-123" {
				t.Fatalf("plain authorize = %v, want error=invalid_request with the state", q)
			}
			r := e.push(authParams(challenge))
			e.pushedAuthorize(e.browser(), "app-a", r.str("request_uri"), appCB)
			if tc.plainOK != "" {
				v := authParams(challenge)
				v.Set("client_id", tc.plainOK)
				v.Set("redirect_uri", "https://app-b.example/callback")
				e.upstreamState(e.browser(), v)
			}
			var doc map[string]any
			getJSON(t, e.issuer+"/.well-known/openid-configuration", &doc)
			if doc["require_pushed_authorization_requests"] != tc.discovery || doc["pushed_authorization_request_endpoint"] != e.issuer+"/par" {
				t.Errorf("discovery: require_pushed_authorization_requests %v, pushed_authorization_request_endpoint %v; want %v and %s/par",
					doc["require_pushed_authorization_requests"], doc["pushed_authorization_request_endpoint"], tc.discovery, e.issuer)
			}
		})
	}
}

// TestPAR_DPoPBindsCode: a DPoP proof at the PAR endpoint (or dpop_jkt)
// binds the authorization code to the key: it is redeemed only with a
// proof by that key (RFC 9449 §10).
func TestPAR_DPoPBindsCode(t *testing.T) {
	e := newEnv(t)
	k := newDPoPKey(t)
	redeem := func(code, verifier string, proofs ...string) tokenResp {
		return e.sendDPoP(http.MethodPost, "/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {appCB}, "code_verifier": {verifier}}, "app-a", secretA, "", proofs...)
	}
	for _, tc := range []struct {
		name   string
		push   func(challenge string) tokenResp
		proofs func() []string
		ok     bool
	}{
		{"proof at PAR, same key", func(ch string) tokenResp { return e.push(authParams(ch), k.proof("POST", e.issuer+"/par")) },
			func() []string { return []string{k.proof("POST", e.issuer+"/token")} }, true},
		{"proof at PAR, no proof at token", func(ch string) tokenResp { return e.push(authParams(ch), k.proof("POST", e.issuer+"/par")) },
			func() []string { return nil }, false},
		{"proof at PAR, another key at token", func(ch string) tokenResp { return e.push(authParams(ch), k.proof("POST", e.issuer+"/par")) },
			func() []string { return []string{newDPoPKey(t).proof("POST", e.issuer+"/token")} }, false},
		{"dpop_jkt pushed, another key at token", func(ch string) tokenResp {
			v := authParams(ch)
			v.Set("dpop_jkt", k.jkt())
			return e.push(v)
		}, func() []string { return []string{newDPoPKey(t).proof("POST", e.issuer+"/token")} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			verifier, challenge := pkce()
			r := tc.push(challenge)
			if r.status != http.StatusCreated {
				t.Fatalf("PAR = %d %v", r.status, r.body)
			}
			q := e.pushedAuthorize(e.browser(), "app-a", r.str("request_uri"), appCB)
			tr := redeem(q.Get("code"), verifier, tc.proofs()...)
			if tc.ok != (tr.status == http.StatusOK) {
				t.Fatalf("token = %d %v, want success %v", tr.status, tr.body, tc.ok)
			}
			if !tc.ok && tr.str("error") != "invalid_grant" {
				t.Errorf("token error = %v, want invalid_grant", tr.body)
			}
		})
	}
	t.Run("dpop_jkt and the proof's key differ", func(t *testing.T) {
		_, challenge := pkce()
		v := authParams(challenge)
		v.Set("dpop_jkt", newDPoPKey(t).jkt())
		if r := e.push(v, k.proof("POST", e.issuer+"/par")); r.str("error") != "invalid_dpop_proof" {
			t.Fatalf("PAR = %d %v, want invalid_dpop_proof", r.status, r.body)
		}
	})
	t.Run("dpop_jkt at /authorize", func(t *testing.T) {
		verifier, challenge := pkce()
		v := authParams(challenge)
		v.Set("dpop_jkt", k.jkt())
		q := e.login(e.browser(), v)
		if tr := redeem(q.Get("code"), verifier); tr.str("error") != "invalid_grant" {
			t.Fatalf("token without the bound key = %d %v, want invalid_grant", tr.status, tr.body)
		}
	})
}

// TestDPoPPAR_BadInput: garbage at the PAR endpoint, in request_uri and in
// DPoP headers gets a clear 4xx, never a 5xx, and echoes no script.
func TestDPoPPAR_BadInput(t *testing.T) {
	e := newEnv(t)
	const xss = `<script>alert(1)</script>`
	form := "application/x-www-form-urlencoded"
	for _, tc := range []struct {
		name, method, path, body, ctype, authz, dpop string
	}{
		{"PAR empty", "POST", "/par", "", form, "", ""},
		{"PAR garbage", "POST", "/par", "%%%", form, "", ""},
		{"PAR JSON", "POST", "/par", `{"client_id":"pub"}`, "application/json", "", ""},
		{"PAR huge", "POST", "/par", "client_id=pub&state=" + strings.Repeat("s", 70<<10), form, "", ""},
		{"PAR xss client", "POST", "/par", "client_id=" + url.QueryEscape(xss), form, "", ""},
		{"PAR duplicate", "POST", "/par", "client_id=pub&client_id=pub", form, "", ""},
		{"PAR DPoP garbage", "POST", "/par", "client_id=pub&response_type=code&redirect_uri=" + url.QueryEscape("http://127.0.0.1:7000/cb") +
			"&scope=openid&code_challenge_method=S256&code_challenge=" + strings.Repeat("a", 43), form, "", xss},
		{"authorize xss request_uri", "GET", "/authorize?client_id=app-a&request_uri=" + url.QueryEscape(requestURIPrefix+xss), "", "", "", ""},
		{"authorize huge request_uri", "GET", "/authorize?client_id=app-a&request_uri=" + strings.Repeat("u", 5000), "", "", "", ""},
		{"token DPoP huge", "POST", "/token", "grant_type=refresh_token&client_id=pub&refresh_token=x", form, "", strings.Repeat("a.", 6000)},
		{"token DPoP xss", "POST", "/token", "grant_type=refresh_token&client_id=pub&refresh_token=x", form, "", xss + "." + xss + "." + xss},
		{"userinfo DPoP garbage", "GET", "/userinfo", "", "", "DPoP " + xss, xss},
		{"userinfo DPoP empty", "GET", "/userinfo", "", "", "DPoP ", ""},
		{"introspect DPoP garbage", "POST", "/introspect", "token=x", form, "Basic YXBwLWE6c2VjcmV0LWZvci1hcHAtYS0wMTIzNDU2Nzg5", "x.y.z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, e.issuer+tc.path, strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			if tc.authz != "" {
				req.Header.Set("Authorization", tc.authz)
			}
			if tc.dpop != "" {
				req.Header.Set("DPoP", tc.dpop)
			}
			resp, err := e.browser().c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode < 400 || resp.StatusCode >= 500 {
				t.Fatalf("%s = %d %q, want a 4xx", tc.name, resp.StatusCode, body)
			}
			if strings.Contains(string(body), "<script>") {
				t.Fatalf("%s echoed script unescaped: %q", tc.name, body)
			}
		})
	}
}
