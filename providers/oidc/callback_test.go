package oidc

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/realmgate/realmgate/providers"
)

func TestCallback_HappyPathUserinfoMerge(t *testing.T) {
	op := newOP(t)
	authTime := time.Now().Add(-time.Minute).Truncate(time.Second)
	tests := []struct {
		name   string
		method jwt.SigningMethod
		key    any
		kid    string
	}{
		{"RS256", jwt.SigningMethodRS256, rsaKey, "rsa-1"},
		{"ES256", jwt.SigningMethodES256, ecKey, "ec-1"},
	}
	c := op.connector(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newLoginRequest(t)
			cl := op.claims(req)
			cl["email"] = "alice@idtoken.example"
			cl["name"] = "Alice Liddell"
			cl["amr"] = []string{"pwd", "mfa"}
			cl["acr"] = "urn:acr:mfa"
			cl["auth_time"] = authTime.Unix()
			op.set(func(op *fakeOP) {
				op.userinfo = map[string]any{
					"sub":            "alice-sub",
					"email":          "alice@userinfo.example", // the ID token's wins
					"email_verified": "true",                   // string form (Cognito, some AD FS)
					"given_name":     "Alice",
					"family_name":    "Liddell",
					"upn":            "alice@contoso.example",
					"groups":         []string{"g1", "g2"},
				}
			})
			id, err := op.callback(t, c, req, sign(t, tt.method, tt.key, tt.kid, cl, nil), nil)
			if err != nil {
				t.Fatalf("HandleCallback = %v, want success", err)
			}
			checks := []struct{ field, got, want string }{
				{"Issuer", id.Issuer, op.issuer},
				{"Subject", id.Subject, "alice-sub"},
				{"Email", id.Email, "alice@idtoken.example"},
				{"Name", id.Name, "Alice Liddell"},
				{"GivenName", id.GivenName, "Alice"},
				{"FamilyName", id.FamilyName, "Liddell"},
				{"PreferredUsername", id.PreferredUsername, "alice@contoso.example"},
				{"ACR", id.ACR, "urn:acr:mfa"},
			}
			for _, ck := range checks {
				if ck.got != ck.want {
					t.Errorf("Identity.%s = %q, want %q", ck.field, ck.got, ck.want)
				}
			}
			if !id.EmailVerified {
				t.Errorf("Identity.EmailVerified = false, want true (from userinfo \"true\")")
			}
			if !slices.Equal(id.AMR, []string{"pwd", "mfa"}) {
				t.Errorf("Identity.AMR = %q, want [pwd mfa]", id.AMR)
			}
			if !id.AuthTime.Equal(authTime) {
				t.Errorf("Identity.AuthTime = %v, want %v", id.AuthTime, authTime)
			}
			if _, ok := id.Claims["groups"]; !ok {
				t.Errorf("Identity.Claims lacks userinfo claim groups: %v", id.Claims)
			}
			if got := id.Claims["email"]; got != "alice@idtoken.example" {
				t.Errorf("Claims[email] = %v, want the ID token's value", got)
			}
		})
	}
	if n := op.discoveryHits.Load(); n != 1 {
		t.Errorf("discovery fetched %d times over two logins, want 1 (cached)", n)
	}
}

func TestCallback_S20_WrongIssuer(t *testing.T) {
	op := newOP(t)
	c := op.connector(t)
	for _, iss := range []string{"https://evil.example", op.issuer + "/", ""} {
		req := newLoginRequest(t)
		cl := op.claims(req)
		cl["iss"] = iss
		_, err := op.callback(t, c, req, signRS(t, cl), nil)
		wantErr(t, "iss "+iss, err, providers.ErrInvalidResponse, "issue")
	}
}

func TestCallback_S20_AudienceWithoutClient(t *testing.T) {
	op := newOP(t)
	c := op.connector(t)
	tests := []struct {
		name   string
		aud    any
		azp    any
		wantOK bool
	}{
		{"other audience", "other-client", nil, false},
		{"other audiences", []string{"a", "b"}, nil, false},
		{"no audience", nil, nil, false},
		{"several audiences without azp", []string{testClientID, "other"}, nil, false},
		{"several audiences azp other", []string{testClientID, "other"}, "other", false},
		{"single audience azp other", testClientID, "other", false},
		{"several audiences azp ours", []string{testClientID, "other"}, testClientID, true},
		{"single audience", testClientID, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newLoginRequest(t)
			cl := op.claims(req)
			cl["aud"] = tt.aud
			if tt.aud == nil {
				delete(cl, "aud")
			}
			if tt.azp != nil {
				cl["azp"] = tt.azp
			}
			_, err := op.callback(t, c, req, signRS(t, cl), nil)
			if tt.wantOK {
				if err != nil {
					t.Fatalf("aud %v azp %v: HandleCallback = %v, want success", tt.aud, tt.azp, err)
				}
				return
			}
			wantErr(t, tt.name, err, providers.ErrInvalidResponse, "")
		})
	}
}

func TestCallback_S20_MissingSub(t *testing.T) {
	op := newOP(t)
	c := op.connector(t)
	for _, sub := range []any{nil, "", 42} {
		req := newLoginRequest(t)
		cl := op.claims(req)
		if sub == nil {
			delete(cl, "sub")
		} else {
			cl["sub"] = sub
		}
		_, err := op.callback(t, c, req, signRS(t, cl), nil)
		if err == nil || !errors.Is(err, providers.ErrInvalidResponse) {
			t.Fatalf("sub %v: HandleCallback = %v, want ErrInvalidResponse", sub, err)
		}
	}
}

func TestCallback_S20_MissingIat(t *testing.T) {
	op := newOP(t)
	c := op.connector(t)
	tests := []struct {
		name string
		iat  any
	}{
		{"absent", nil},
		{"zero", 0},
		{"far future", time.Now().Add(time.Hour).Unix()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newLoginRequest(t)
			cl := op.claims(req)
			if tt.iat == nil {
				delete(cl, "iat")
			} else {
				cl["iat"] = tt.iat
			}
			_, err := op.callback(t, c, req, signRS(t, cl), nil)
			wantErr(t, "iat "+tt.name, err, providers.ErrInvalidResponse, "iat")
		})
	}
}

func TestCallback_S20_BadSignature(t *testing.T) {
	op := newOP(t)
	c := op.connector(t)
	t.Run("tampered payload", func(t *testing.T) {
		req := newLoginRequest(t)
		tok := signRS(t, op.claims(req))
		parts := strings.Split(tok, ".")
		cl := op.claims(req)
		cl["sub"] = "mallory"
		b, _ := json.Marshal(cl)
		parts[1] = base64.RawURLEncoding.EncodeToString(b)
		_, err := op.callback(t, c, req, strings.Join(parts, "."), nil)
		wantErr(t, "tampered", err, providers.ErrInvalidResponse, "")
	})
	t.Run("attacker key with the OP's kid", func(t *testing.T) {
		req := newLoginRequest(t)
		tok := sign(t, jwt.SigningMethodRS256, attackerKey, "rsa-1", op.claims(req), nil)
		_, err := op.callback(t, c, req, tok, nil)
		wantErr(t, "attacker key", err, providers.ErrInvalidResponse, "")
	})
	t.Run("expired", func(t *testing.T) {
		req := newLoginRequest(t)
		cl := op.claims(req)
		cl["exp"] = time.Now().Add(-time.Minute).Unix()
		_, err := op.callback(t, c, req, signRS(t, cl), nil)
		wantErr(t, "expired", err, providers.ErrInvalidResponse, "expired")
	})
}

func TestCallback_S20_AlgNone(t *testing.T) {
	op := newOP(t)
	c := op.connector(t)
	req := newLoginRequest(t)
	// Unsecured JWS (RFC 7519 §6): empty signature part.
	none := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "rsa-1", op.claims(req), nil)
	_, err := op.callback(t, c, req, none, nil)
	wantErr(t, "alg none", err, providers.ErrInvalidResponse, "")
	// alg none with a non-empty signature part reaches the alg allow-list.
	parts := strings.Split(none, ".")
	_, err = op.callback(t, c, req, parts[0]+"."+parts[1]+".c2ln", nil)
	wantErr(t, "alg none with signature", err, providers.ErrInvalidResponse, `alg "none" not allowed`)
	// Even when the OP (wrongly) advertises none.
	op.set(func(op *fakeOP) { op.algs = []string{"RS256", "none"} })
	c2 := op.connector(t)
	_, err = op.callback(t, c2, req, parts[0]+"."+parts[1]+".c2ln", nil)
	wantErr(t, "alg none advertised", err, providers.ErrInvalidResponse, `alg "none" not allowed`)
}

func TestCallback_S20_WrongNonce(t *testing.T) {
	op := newOP(t)
	c := op.connector(t)
	for _, nonce := range []any{"other-nonce", nil, ""} {
		req := newLoginRequest(t)
		cl := op.claims(req)
		if nonce == nil {
			delete(cl, "nonce")
		} else {
			cl["nonce"] = nonce
		}
		_, err := op.callback(t, c, req, signRS(t, cl), nil)
		wantErr(t, "nonce", err, providers.ErrInvalidResponse, "oidc: id token nonce mismatch")
	}
}

// TestCallback_S20_UnknownKid: an ID token with a kid the cached JWKS lacks
// fails; the JWKS is fetched again for it only when the last fetch is at
// least jwksMinRefresh old (S63: forged tokens cannot make the broker fetch
// the JWKS at will), and then finds a rotated key.
func TestCallback_S20_UnknownKid(t *testing.T) {
	op := newOP(t)
	c := op.connector(t)
	clock := withClock(c)
	// Warm the key cache with a good login.
	req := newLoginRequest(t)
	if _, err := op.callback(t, c, req, signRS(t, op.claims(req)), nil); err != nil {
		t.Fatalf("first login: %v", err)
	}
	before := op.jwksHits.Load()

	for range 10 {
		req = newLoginRequest(t)
		tok := sign(t, jwt.SigningMethodRS256, rsaKey2, "rsa-2", op.claims(req), nil)
		_, err := op.callback(t, c, req, tok, nil)
		wantErr(t, "unknown kid", err, providers.ErrInvalidResponse, "")
	}
	if got := op.jwksHits.Load() - before; got != 0 {
		t.Errorf("jwks fetched %d times for unknown kids right after a fetch, want 0", got)
	}
	clock.advance(jwksMinRefresh)
	req = newLoginRequest(t)
	tok := sign(t, jwt.SigningMethodRS256, rsaKey2, "rsa-2", op.claims(req), nil)
	_, err := op.callback(t, c, req, tok, nil)
	wantErr(t, "unknown kid", err, providers.ErrInvalidResponse, "")
	if got := op.jwksHits.Load() - before; got != 1 {
		t.Errorf("jwks fetched %d times for an unknown kid after the interval, want exactly 1 refresh", got)
	}

	// The OP rotates: rsa-2 appears in its JWKS; the next refresh finds it.
	op.set(func(op *fakeOP) {
		op.jwks = append(op.jwks, jose.JSONWebKey{Key: &rsaKey2.PublicKey, KeyID: "rsa-2", Algorithm: "RS256", Use: "sig"})
	})
	clock.advance(jwksMinRefresh)
	req = newLoginRequest(t)
	tok = sign(t, jwt.SigningMethodRS256, rsaKey2, "rsa-2", op.claims(req), nil)
	if _, err := op.callback(t, c, req, tok, nil); err != nil {
		t.Fatalf("rotated key after refresh: HandleCallback = %v, want success", err)
	}
	// And it is cached: no further fetch for the next login with it.
	before = op.jwksHits.Load()
	req = newLoginRequest(t)
	tok = sign(t, jwt.SigningMethodRS256, rsaKey2, "rsa-2", op.claims(req), nil)
	if _, err := op.callback(t, c, req, tok, nil); err != nil {
		t.Fatalf("rotated key cached: %v", err)
	}
	if got := op.jwksHits.Load() - before; got != 0 {
		t.Errorf("jwks fetched %d times for a cached key, want 0", got)
	}
}

func TestCallback_S20_UserinfoSubMismatch(t *testing.T) {
	op := newOP(t)
	c := op.connector(t)
	for _, ui := range []map[string]any{
		{"sub": "mallory", "email": "m@example"},
		{"email": "nosub@example"},
	} {
		op.set(func(op *fakeOP) { op.userinfo = ui })
		req := newLoginRequest(t)
		_, err := op.callback(t, c, req, signRS(t, op.claims(req)), nil)
		wantErr(t, "userinfo sub", err, providers.ErrInvalidResponse, "userinfo sub")
	}
	// SkipUserinfo: the endpoint is not called at all.
	c2 := op.connector(t, func(cfg *Config) { cfg.SkipUserinfo = true })
	before := op.userinfoHits.Load()
	req := newLoginRequest(t)
	if _, err := op.callback(t, c2, req, signRS(t, op.claims(req)), nil); err != nil {
		t.Fatalf("SkipUserinfo: %v", err)
	}
	if op.userinfoHits.Load() != before {
		t.Errorf("SkipUserinfo: userinfo endpoint was called")
	}
}

func TestCallback_AtHashMismatch(t *testing.T) {
	op := newOP(t)
	c := op.connector(t)
	req := newLoginRequest(t)
	cl := op.claims(req)
	cl["at_hash"] = "AAAAAAAAAAAAAAAAAAAAAA"
	op.set(func(op *fakeOP) { op.userinfo = map[string]any{"sub": "alice-sub"} })
	_, err := op.callback(t, c, req, signRS(t, cl), nil)
	wantErr(t, "at_hash", err, providers.ErrInvalidResponse, "at_hash")

	sum := sha256.Sum256([]byte(testAccessToken))
	cl["at_hash"] = base64.RawURLEncoding.EncodeToString(sum[:16])
	if _, err := op.callback(t, c, req, signRS(t, cl), nil); err != nil {
		t.Fatalf("correct at_hash: %v", err)
	}
}

func TestLogin_S21_PKCEAndNonce(t *testing.T) {
	op := newOP(t)
	c := op.connector(t, func(cfg *Config) {
		cfg.Scopes = []string{"profile", "email"}
		cfg.ExtraAuthParams = map[string]string{"domain_hint": "contoso.example"}
	})
	for _, force := range []bool{false, true} {
		req := newLoginRequest(t)
		req.LoginHint = "alice@contoso.example"
		req.ForceLogin = force
		raw, data, err := c.LoginURL(context.Background(), req)
		if err != nil {
			t.Fatalf("LoginURL = %v", err)
		}
		if data != nil {
			t.Errorf("LoginURL data = %q, want none", data)
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("LoginURL returned %q: %v", raw, err)
		}
		if got := u.Scheme + "://" + u.Host + u.Path; got != op.srv.URL+"/authorize" {
			t.Errorf("authorize endpoint = %q, want %q", got, op.srv.URL+"/authorize")
		}
		q := u.Query()
		sum := sha256.Sum256([]byte(req.CodeVerifier)) // RFC 7636 §4.2
		prompt := ""
		if force {
			prompt = "login"
		}
		want := map[string]string{
			"tenant":                "x", // the endpoint's own query survives
			"response_type":         "code",
			"client_id":             testClientID,
			"redirect_uri":          req.CallbackURL,
			"scope":                 "openid profile email",
			"state":                 req.State,
			"nonce":                 req.Nonce,
			"code_challenge_method": "S256",
			"code_challenge":        base64.RawURLEncoding.EncodeToString(sum[:]),
			"login_hint":            "alice@contoso.example",
			"prompt":                prompt,
			"domain_hint":           "contoso.example",
		}
		for k, v := range want {
			if got := q.Get(k); got != v {
				t.Errorf("force=%v: authorize %s = %q, want %q", force, k, got, v)
			}
		}
		if strings.Contains(raw, req.CodeVerifier) {
			t.Errorf("authorize URL leaks the code verifier: %s", raw)
		}
	}

	// The token request carries the verifier, the code and the redirect_uri,
	// with client_secret_basic.
	req := newLoginRequest(t)
	if _, err := op.callback(t, c, req, signRS(t, op.claims(req)), nil); err != nil {
		t.Fatalf("HandleCallback = %v", err)
	}
	op.mu.Lock()
	form, authOK := op.tokenForms[len(op.tokenForms)-1], op.tokenAuthOK[len(op.tokenAuthOK)-1]
	op.mu.Unlock()
	for k, v := range map[string]string{
		"grant_type":    "authorization_code",
		"code":          "code-123",
		"code_verifier": req.CodeVerifier,
		"redirect_uri":  req.CallbackURL,
	} {
		if got := form.Get(k); got != v {
			t.Errorf("token request %s = %q, want %q", k, got, v)
		}
	}
	if !authOK {
		t.Errorf("token request did not authenticate the client")
	}
	if form.Get("client_secret") != "" {
		t.Errorf("client_secret sent in the body, want client_secret_basic")
	}
}

func TestLogin_InvalidRequest(t *testing.T) {
	op := newOP(t)
	c := op.connector(t)
	tests := []struct {
		name string
		mod  func(*providers.LoginRequest)
	}{
		{"no state", func(r *providers.LoginRequest) { r.State = "" }},
		{"no nonce", func(r *providers.LoginRequest) { r.Nonce = "" }},
		{"short verifier", func(r *providers.LoginRequest) { r.CodeVerifier = "abc" }},
		{"verifier bad chars", func(r *providers.LoginRequest) { r.CodeVerifier = strings.Repeat("a+", 30) }},
		{"relative callback", func(r *providers.LoginRequest) { r.CallbackURL = "/callback/x" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newLoginRequest(t)
			tt.mod(&req)
			if u, _, err := c.LoginURL(context.Background(), req); err == nil {
				t.Fatalf("LoginURL(%s) = %q, want error", tt.name, u)
			}
		})
	}
}

func TestCallback_S21_StateMismatch(t *testing.T) {
	op := newOP(t)
	c := op.connector(t)
	req := newLoginRequest(t)
	other := newLoginRequest(t)
	tests := []struct {
		name   string
		params url.Values
	}{
		{"another browser's state", url.Values{"state": {other.State}}},
		{"no state", url.Values{"state": nil}},
		{"empty state", url.Values{"state": {""}}},
		{"state twice", url.Values{"state": {req.State, req.State}}},
		{"error with wrong state", url.Values{"state": {other.State}, "error": {"access_denied"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := op.tokenHits.Load()
			_, err := op.callback(t, c, req, signRS(t, op.claims(req)), tt.params)
			wantErr(t, tt.name, err, providers.ErrInvalidResponse, "")
			if errors.Is(err, providers.ErrAccessDenied) {
				t.Errorf("%s: err = %v, an unbound response must not be reported as a denial", tt.name, err)
			}
			if op.tokenHits.Load() != before {
				t.Errorf("%s: the code was redeemed despite the state mismatch", tt.name)
			}
		})
	}
	// A connector-level empty expected state is refused even if the response has none.
	empty := req
	empty.State = ""
	_, err := op.callback(t, c, empty, signRS(t, op.claims(req)), url.Values{"state": nil})
	wantErr(t, "empty expected state", err, providers.ErrInvalidResponse, "state")
}

func TestCallback_S22_IssParamMismatch(t *testing.T) {
	op := newOP(t)
	t.Run("present and wrong", func(t *testing.T) {
		c := op.connector(t)
		req := newLoginRequest(t)
		before := op.tokenHits.Load()
		_, err := op.callback(t, c, req, signRS(t, op.claims(req)), url.Values{"iss": {"https://other-idp.example"}})
		wantErr(t, "iss param", err, providers.ErrInvalidResponse, "iss")
		if op.tokenHits.Load() != before {
			t.Errorf("code redeemed at the wrong IdP's response")
		}
	})
	t.Run("present and right", func(t *testing.T) {
		c := op.connector(t)
		req := newLoginRequest(t)
		if _, err := op.callback(t, c, req, signRS(t, op.claims(req)), url.Values{"iss": {op.issuer}}); err != nil {
			t.Fatalf("iss param = issuer: %v", err)
		}
	})
	t.Run("advertised and missing", func(t *testing.T) {
		op.set(func(op *fakeOP) { op.issParam = true })
		defer op.set(func(op *fakeOP) { op.issParam = false })
		c := op.connector(t)
		req := newLoginRequest(t)
		_, err := op.callback(t, c, req, signRS(t, op.claims(req)), url.Values{"iss": nil})
		wantErr(t, "iss missing", err, providers.ErrInvalidResponse, "without iss")
		// And the same OP with iss present is accepted.
		if _, err := op.callback(t, c, req, signRS(t, op.claims(req)), nil); err != nil {
			t.Fatalf("iss advertised and present: %v", err)
		}
	})
	t.Run("error response with wrong iss", func(t *testing.T) {
		c := op.connector(t)
		req := newLoginRequest(t)
		_, err := op.callback(t, c, req, "", url.Values{"iss": {"https://other-idp.example"}, "error": {"access_denied"}})
		wantErr(t, "error + iss", err, providers.ErrInvalidResponse, "iss")
	})
}

func TestLogin_S23_DiscoveryIssuerMismatch(t *testing.T) {
	op := newOP(t)
	for _, bad := range []string{op.issuer + "/", "https://evil.example"} {
		op.set(func(op *fakeOP) { op.discoveryIssuer = bad })
		c := op.connector(t)
		_, _, err := c.LoginURL(context.Background(), newLoginRequest(t))
		wantErr(t, "discovery issuer "+bad, err, providers.ErrInvalidResponse, "differs from configured issuer")
		// A callback is refused the same way.
		req := newLoginRequest(t)
		_, err = op.callback(t, c, req, signRS(t, op.claims(req)), nil)
		wantErr(t, "callback with bad discovery", err, providers.ErrInvalidResponse, "discovery issuer")
	}
}

func TestCallback_S23_EntraMultiTenant(t *testing.T) {
	op := newOP(t)
	template := op.srv.URL + "/{tenantid}/v2.0"
	op.set(func(op *fakeOP) {
		op.issuer = template
		op.discoveryBase = "/organizations/v2.0" // where Entra's tenant-independent document lives
	})
	const (
		tidA = "11111111-2222-3333-4444-555555555555"
		tidB = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
	)
	issOf := func(tid string) string { return op.srv.URL + "/" + tid + "/v2.0" }
	entraClaims := func(req providers.LoginRequest, tid, iss string) map[string]any {
		cl := op.claims(req)
		cl["tid"] = tid
		cl["iss"] = iss
		cl["preferred_username"] = "alice@contoso.example"
		return cl
	}
	allowed := op.connector(t, func(cfg *Config) { cfg.AllowedTenants = []string{tidA} })
	anyTenant := op.connector(t)
	if got := allowed.Issuer(); got != template {
		t.Errorf("Issuer() = %q, want the template %q", got, template)
	}

	tests := []struct {
		name    string
		c       *Connector
		tid     string
		iss     string
		issPar  string
		wantErr string // empty: accepted
	}{
		{"allowed tenant", allowed, tidA, issOf(tidA), "", ""},
		{"allowed tenant with iss param", allowed, tidA, issOf(tidA), issOf(tidA), ""},
		{"any tenant", anyTenant, tidB, issOf(tidB), "", ""},
		{"iss of another tenant than tid", anyTenant, tidA, issOf(tidB), "", "issuer"},
		{"iss is the template", anyTenant, tidA, template, "", "issuer"},
		{"tenant not allowed", allowed, tidB, issOf(tidB), "", "not allowed"},
		{"tid not a guid", anyTenant, "common", op.srv.URL + "/common/v2.0", "", "not a tenant id"},
		{"tid missing", anyTenant, "", issOf(tidA), "", "not a tenant id"},
		{"iss param other tenant", anyTenant, tidA, issOf(tidA), issOf(tidB), "iss"},
		{"iss param not allowed", allowed, tidA, issOf(tidA), issOf(tidB), "iss"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newLoginRequest(t)
			var params url.Values
			if tt.issPar != "" {
				params = url.Values{"iss": {tt.issPar}}
			}
			id, err := op.callback(t, tt.c, req, signRS(t, entraClaims(req, tt.tid, tt.iss)), params)
			if tt.wantErr != "" {
				wantErr(t, tt.name, err, providers.ErrInvalidResponse, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("%s: HandleCallback = %v, want success", tt.name, err)
			}
			if id.Issuer != tt.iss {
				t.Errorf("Identity.Issuer = %q, want the tenant issuer %q", id.Issuer, tt.iss)
			}
			if id.Claims["tid"] != tt.tid {
				t.Errorf("Claims[tid] = %v, want %q", id.Claims["tid"], tt.tid)
			}
		})
	}

	// Discovery whose issuer is not the template is refused.
	op.set(func(op *fakeOP) { op.discoveryIssuer = issOf(tidA) })
	c := op.connector(t)
	_, _, err := c.LoginURL(context.Background(), newLoginRequest(t))
	wantErr(t, "entra discovery issuer", err, providers.ErrInvalidResponse, "differs")
}

func TestPackage_S24_NoInsecureOptions(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, bad := range []string{"InsecureSkipSignatureCheck", "SkipIssuerCheck", "InsecureIssuerURLContext"} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s uses %s (S24)", f, bad)
			}
		}
	}
	if checked < 3 {
		t.Fatalf("checked %d non-test files, want the package's sources", checked)
	}
}

func TestCallback_S30_HS256WithRSAPublicKey(t *testing.T) {
	op := newOP(t)
	// Even an OP that advertises HS256 does not get it on the allow-list.
	op.set(func(op *fakeOP) { op.algs = []string{"RS256", "HS256"} })
	c := op.connector(t)
	der, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	for name, secret := range map[string][]byte{"pem": pemKey, "der": der, "n": rsaKey.N.Bytes()} {
		req := newLoginRequest(t)
		tok := sign(t, jwt.SigningMethodHS256, secret, "rsa-1", op.claims(req), nil)
		_, err := op.callback(t, c, req, tok, nil)
		wantErr(t, "HS256 with "+name, err, providers.ErrInvalidResponse, `alg "HS256" not allowed`)
	}
}

func TestCallback_S30_AlgNotAllowed(t *testing.T) {
	op := newOP(t)
	t.Run("alg not advertised", func(t *testing.T) {
		op.set(func(op *fakeOP) { op.algs = []string{"RS256"} })
		defer op.set(func(op *fakeOP) { op.algs = []string{"RS256", "ES256"} })
		c := op.connector(t)
		req := newLoginRequest(t)
		tok := sign(t, jwt.SigningMethodES256, ecKey, "ec-1", op.claims(req), nil)
		_, err := op.callback(t, c, req, tok, nil)
		wantErr(t, "ES256 not advertised", err, providers.ErrInvalidResponse, `alg "ES256" not allowed`)
	})
	t.Run("no algs advertised means RS256 only", func(t *testing.T) {
		op.set(func(op *fakeOP) { op.algs = nil })
		defer op.set(func(op *fakeOP) { op.algs = []string{"RS256", "ES256"} })
		c := op.connector(t)
		req := newLoginRequest(t)
		tok := sign(t, jwt.SigningMethodES256, ecKey, "ec-1", op.claims(req), nil)
		_, err := op.callback(t, c, req, tok, nil)
		wantErr(t, "ES256 default", err, providers.ErrInvalidResponse, "not allowed")
		req = newLoginRequest(t)
		if _, err := op.callback(t, c, req, signRS(t, op.claims(req)), nil); err != nil {
			t.Fatalf("RS256 default: %v", err)
		}
	})
	t.Run("header alg differs from the JWK alg", func(t *testing.T) {
		// PS256 is allowed for the OP, but key rsa-1's JWK says RS256.
		op.set(func(op *fakeOP) { op.algs = []string{"RS256", "PS256"} })
		defer op.set(func(op *fakeOP) { op.algs = []string{"RS256", "ES256"} })
		c := op.connector(t)
		clock := withClock(c)
		req := newLoginRequest(t)
		tok := sign(t, jwt.SigningMethodPS256, rsaKey, "rsa-1", op.claims(req), nil)
		_, err := op.callback(t, c, req, tok, nil)
		wantErr(t, "PS256 with an RS256 key", err, providers.ErrInvalidResponse, "")
		// Control: the same key published without alg accepts PS256.
		op.set(func(op *fakeOP) {
			op.jwks = append(op.jwks, jose.JSONWebKey{Key: &rsaKey2.PublicKey, KeyID: "rsa-noalg", Use: "sig"})
		})
		clock.advance(jwksMinRefresh) // the next unknown kid fetches the JWKS again
		req = newLoginRequest(t)
		tok = sign(t, jwt.SigningMethodPS256, rsaKey2, "rsa-noalg", op.claims(req), nil)
		if _, err := op.callback(t, c, req, tok, nil); err != nil {
			t.Fatalf("PS256 with a key without alg: %v", err)
		}
	})
}

func TestCallback_S31_EmbeddedJWKIgnored(t *testing.T) {
	op := newOP(t)
	c := op.connector(t)
	tests := []struct {
		name string
		kid  string
		hdr  map[string]any
	}{
		{"jwk header, no kid", "", map[string]any{"jwk": publicJWK(t, &attackerKey.PublicKey, "attacker")}},
		{"jwk header, attacker kid", "attacker", map[string]any{"jwk": publicJWK(t, &attackerKey.PublicKey, "attacker")}},
		{"jwk header, OP kid", "rsa-1", map[string]any{"jwk": publicJWK(t, &attackerKey.PublicKey, "rsa-1")}},
		{"jku header", "attacker", map[string]any{"jku": op.srv.URL + "/evil"}},
		{"x5u header", "attacker", map[string]any{"x5u": op.srv.URL + "/evil"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newLoginRequest(t)
			tok := sign(t, jwt.SigningMethodRS256, attackerKey, tt.kid, op.claims(req), tt.hdr)
			_, err := op.callback(t, c, req, tok, nil)
			wantErr(t, tt.name, err, providers.ErrInvalidResponse, "")
		})
	}
	if n := op.evilHits.Load(); n != 0 {
		t.Errorf("jku/x5u URL fetched %d times, want 0", n)
	}
}

func TestCallback_S32_Oversized(t *testing.T) {
	op := newOP(t)
	c := op.connector(t)
	req := newLoginRequest(t)
	cl := op.claims(req)
	cl["pad"] = strings.Repeat("x", MaxTokenSize)
	_, err := op.callback(t, c, req, signRS(t, cl), nil)
	wantErr(t, "oversized", err, providers.ErrInvalidResponse, "exceeds")
	if n := op.jwksHits.Load(); n != 0 {
		t.Errorf("jwks fetched %d times for an oversized token, want 0 (refused before parsing)", n)
	}
	// Control: a large token under the limit is accepted.
	cl["pad"] = strings.Repeat("x", MaxTokenSize/2)
	if _, err := op.callback(t, c, req, signRS(t, cl), nil); err != nil {
		t.Fatalf("token under the limit: %v", err)
	}
}

func TestCallback_S32_Malformed(t *testing.T) {
	op := newOP(t)
	c := op.connector(t)
	req := newLoginRequest(t)
	good := strings.Split(signRS(t, op.claims(req)), ".")
	tests := []struct{ name, tok string }{
		{"two parts", good[0] + "." + good[1]},
		{"four parts", strings.Join(good, ".") + ".AAAA"},
		{"empty payload", good[0] + ".." + good[2]},
		{"empty header", "." + good[1] + "." + good[2]},
		{"empty signature", good[0] + "." + good[1] + "."},
		{"padding", good[0] + "=." + good[1] + "." + good[2]},
		{"standard base64", good[0] + "." + good[1] + "+/." + good[2]},
		{"json serialization", `{"payload":"` + good[1] + `","signatures":[]}`},
		{"spaces", good[0] + " ." + good[1] + "." + good[2]},
		{"header not json", "bm90IGpzb24." + good[1] + "." + good[2]},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := op.callback(t, c, req, tt.tok, nil)
			if tt.tok == "" {
				wantErr(t, tt.name, err, providers.ErrInvalidResponse, "without id_token")
				return
			}
			wantErr(t, tt.name, err, providers.ErrInvalidResponse, "malformed")
		})
	}
	if n := op.jwksHits.Load(); n != 0 {
		t.Errorf("jwks fetched %d times for malformed tokens, want 0", n)
	}
}

func TestCallback_AccessDenied(t *testing.T) {
	op := newOP(t)
	c := op.connector(t)
	tests := []struct {
		code   string
		target error
	}{
		{"access_denied", providers.ErrAccessDenied},
		{"invalid_scope", providers.ErrInvalidResponse},
		{"server_error", providers.ErrInvalidResponse},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			req := newLoginRequest(t)
			desc := "<script>alert(1)</script>\nline"
			_, err := op.callback(t, c, req, "", url.Values{"code": nil, "error": {tt.code}, "error_description": {desc}})
			wantErr(t, tt.code, err, tt.target, `"`+tt.code+`"`)
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error text %q carries a raw newline from upstream", err)
			}
		})
	}
	if n := op.tokenHits.Load(); n != 0 {
		t.Errorf("token endpoint called %d times for error responses", n)
	}
	// No code and no error.
	req := newLoginRequest(t)
	_, err := op.callback(t, c, req, "", url.Values{"code": nil})
	wantErr(t, "no code", err, providers.ErrInvalidResponse, "without code")
}

func TestCallback_Upstream(t *testing.T) {
	tests := []struct {
		name   string
		knob   func(op *fakeOP)
		target error
		substr string
	}{
		{"token 500", func(op *fakeOP) { op.tokenStatus = 500 }, providers.ErrUnavailable, "500"},
		{"token 503", func(op *fakeOP) { op.tokenStatus = 503 }, providers.ErrUnavailable, ""},
		{"token invalid_grant", func(op *fakeOP) {
			op.tokenStatus, op.tokenBody = 400, `{"error":"invalid_grant","error_description":"code used"}`
		}, providers.ErrInvalidResponse, "invalid_grant"},
		{"token not json", func(op *fakeOP) { op.tokenStatus, op.tokenBody = 200, "<html>" }, providers.ErrInvalidResponse, "not json"},
		{"userinfo 502", func(op *fakeOP) { op.userinfoStatus = 502 }, providers.ErrUnavailable, "userinfo"},
		{"userinfo 401", func(op *fakeOP) { op.userinfoStatus = 401 }, providers.ErrInvalidResponse, "userinfo"},
		{"jwks 500", func(op *fakeOP) { op.jwksStatus = 500 }, providers.ErrUnavailable, "jwks"},
		{"jwks 404", func(op *fakeOP) { op.jwksStatus = 404 }, providers.ErrInvalidResponse, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := newOP(t)
			op.set(func(op *fakeOP) { op.userinfo = map[string]any{"sub": "alice-sub"} })
			c := op.connector(t)
			op.set(tt.knob)
			req := newLoginRequest(t)
			_, err := op.callback(t, c, req, signRS(t, op.claims(req)), nil)
			wantErr(t, tt.name, err, tt.target, tt.substr)
		})
	}
}

func TestCallback_UpstreamHang(t *testing.T) {
	op := newOP(t)
	c := op.connector(t, func(cfg *Config) { cfg.Timeout = 300 * time.Millisecond })
	req := newLoginRequest(t)
	if _, _, err := c.LoginURL(context.Background(), req); err != nil {
		t.Fatalf("LoginURL: %v", err)
	}
	op.set(func(op *fakeOP) { op.tokenHang = true })
	start := time.Now()
	_, err := op.callback(t, c, req, signRS(t, op.claims(req)), nil)
	elapsed := time.Since(start)
	wantErr(t, "token hang", err, providers.ErrUnavailable, "")
	if elapsed > 5*time.Second { // under DefaultTimeout (10 s), with room for a busy machine
		t.Errorf("hanging token endpoint took %v to fail, want about the 300ms timeout", elapsed)
	}
}

func TestCallback_FormPost(t *testing.T) {
	op := newOP(t)
	c := op.connector(t)
	req := newLoginRequest(t)
	op.set(func(op *fakeOP) { op.idToken = signRS(t, op.claims(req)) })
	body := url.Values{"code": {"code-123"}, "state": {req.State}}.Encode()
	r := httptest.NewRequest(http.MethodPost, req.CallbackURL, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	id, err := c.HandleCallback(context.Background(), req, nil, r)
	if err != nil {
		t.Fatalf("form_post callback: %v", err)
	}
	if id.Subject != "alice-sub" {
		t.Errorf("Subject = %q, want alice-sub", id.Subject)
	}
}

func TestCallback_ClientSecretPost(t *testing.T) {
	op := newOP(t)
	op.set(func(op *fakeOP) { op.authMethods = []string{"client_secret_post"} })
	c := op.connector(t)
	req := newLoginRequest(t)
	if _, err := op.callback(t, c, req, signRS(t, op.claims(req)), nil); err != nil {
		t.Fatalf("client_secret_post: %v", err)
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	if got := op.tokenForms[0].Get("client_secret"); got != testClientSecret {
		t.Errorf("client_secret in body = %q, want the secret", got)
	}
}

// rewriteTransport sends every request to target, keeping path and query: it
// lets the fake OP stand in for an https issuer such as Google's.
type rewriteTransport struct{ target *url.URL }

func (rt rewriteTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host = rt.target.Scheme, rt.target.Host
	return http.DefaultTransport.RoundTrip(r)
}

func TestCallback_GoogleIssuerWithoutScheme(t *testing.T) {
	op := newOP(t)
	op.set(func(op *fakeOP) { op.issuer = googleIssuer })
	target, _ := url.Parse(op.srv.URL)
	c := op.connector(t, func(cfg *Config) {
		cfg.HTTPClient = &http.Client{Transport: rewriteTransport{target}}
	})
	tests := []struct {
		iss    string
		wantOK bool
	}{
		{googleIssuer, true},
		{googleIssuerNoScheme, true},
		{"accounts.google.com.evil.example", false},
		{"http://accounts.google.com", false},
	}
	for _, tt := range tests {
		req := newLoginRequest(t)
		cl := op.claims(req)
		cl["iss"] = tt.iss
		id, err := op.callback(t, c, req, signRS(t, cl), nil)
		if !tt.wantOK {
			wantErr(t, "iss "+tt.iss, err, providers.ErrInvalidResponse, "issue")
			continue
		}
		if err != nil {
			t.Fatalf("iss %q: HandleCallback = %v, want success", tt.iss, err)
		}
		if id.Issuer != googleIssuer {
			t.Errorf("iss %q: Identity.Issuer = %q, want %q", tt.iss, id.Issuer, googleIssuer)
		}
	}
}
