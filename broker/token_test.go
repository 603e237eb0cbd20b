package broker_test

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestToken_S07_CodeReuse(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	verifier, challenge := pkce()
	q := e.login(b, authParams(challenge))
	first := e.exchange(q.Get("code"), verifier)
	if first.status != http.StatusOK {
		t.Fatalf("first redemption = %d %v", first.status, first.body)
	}
	second := e.exchange(q.Get("code"), verifier)
	if second.status != http.StatusBadRequest || second.str("error") != "invalid_grant" {
		t.Fatalf("second redemption = %d %v, want invalid_grant", second.status, second.body)
	}
	if st, _ := e.userinfo(first.str("access_token")); st != http.StatusUnauthorized {
		t.Errorf("userinfo with the first redemption's access token = %d, want 401 (revoked)", st)
	}
	if tr := e.refresh(first.str("refresh_token"), "app-a", secretA); tr.str("error") != "invalid_grant" {
		t.Errorf("refresh with the first redemption's refresh token = %v, want invalid_grant (revoked)", tr.body)
	}
}

func TestToken_S07_ConcurrentRedemptionOnce(t *testing.T) {
	e := newEnv(t)
	verifier, challenge := pkce()
	q := e.login(e.browser(), authParams(challenge))
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if tr := e.exchange(q.Get("code"), verifier); tr.status == http.StatusOK {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ok != 1 {
		t.Fatalf("%d of 20 concurrent redemptions succeeded, want exactly 1", ok)
	}
}

func TestToken_S08_CodeBinding(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		run  func(code, verifier string) tokenResp
	}{
		{"other client", func(code, verifier string) tokenResp {
			return e.post("/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {appCB}, "code_verifier": {verifier}}, "app-b", secretB)
		}},
		{"other redirect_uri", func(code, verifier string) tokenResp {
			return e.post("/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {"http://127.0.0.1:9000/cb"}, "code_verifier": {verifier}}, "app-a", secretA)
		}},
		{"no redirect_uri", func(code, verifier string) tokenResp {
			return e.post("/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"code_verifier": {verifier}}, "app-a", secretA)
		}},
		{"after 61 s", func(code, verifier string) tokenResp {
			e.clock.advance(61 * time.Second)
			return e.exchange(code, verifier)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			verifier, challenge := pkce()
			q := e.login(e.browser(), authParams(challenge))
			if tr := tc.run(q.Get("code"), verifier); tr.status != http.StatusBadRequest || tr.str("error") != "invalid_grant" {
				t.Fatalf("redeem (%s) = %d %v, want invalid_grant", tc.name, tr.status, tr.body)
			}
			// The code is burned: the right client cannot use it afterwards either.
			if tr := e.exchange(q.Get("code"), verifier); tr.status == http.StatusOK {
				t.Fatalf("code still redeemable after a refused redemption")
			}
		})
	}
}

func TestToken_S09_RefreshRotationAndReuse(t *testing.T) {
	e := newEnv(t)
	tr, _ := e.signIn()
	rt1 := tr.str("refresh_token")
	r2 := e.refresh(rt1, "app-a", secretA)
	if r2.status != http.StatusOK || r2.str("refresh_token") == rt1 || r2.str("refresh_token") == "" {
		t.Fatalf("refresh = %d %v, want a new refresh token", r2.status, r2.body)
	}
	r3 := e.refresh(r2.str("refresh_token"), "app-a", secretA)
	if r3.status != http.StatusOK {
		t.Fatalf("second rotation = %d %v", r3.status, r3.body)
	}
	// Replaying rt1 (already rotated) revokes the whole family, including r3's token.
	if replay := e.refresh(rt1, "app-a", secretA); replay.str("error") != "invalid_grant" {
		t.Fatalf("replay = %v, want invalid_grant", replay.body)
	}
	if after := e.refresh(r3.str("refresh_token"), "app-a", secretA); after.str("error") != "invalid_grant" {
		t.Fatalf("current token after replay = %v, want invalid_grant (family revoked)", after.body)
	}
	if st, _ := e.userinfo(r3.str("access_token")); st != http.StatusUnauthorized {
		t.Errorf("access token of a revoked family at userinfo = %d, want 401", st)
	}
	t.Run("stolen by another client", func(t *testing.T) {
		tr, _ := e.signIn()
		if r := e.refresh(tr.str("refresh_token"), "app-b", secretB); r.str("error") != "invalid_grant" {
			t.Fatalf("refresh by app-b = %v, want invalid_grant", r.body)
		}
	})
	t.Run("scope cannot widen", func(t *testing.T) {
		tr, _ := e.signIn()
		r := e.post("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.str("refresh_token")},
			"scope": {"openid offline_access admin"}}, "app-a", secretA)
		if r.str("error") != "invalid_scope" {
			t.Fatalf("widening refresh = %v, want invalid_scope", r.body)
		}
	})
}

func TestToken_S10_AudienceBound(t *testing.T) {
	e := newEnv(t)
	tr, _ := e.signIn()
	at := tr.str("access_token")
	_, c := claimsOf(t, at)
	if c["aud"] != "app-a" {
		t.Fatalf("access token aud = %v, want app-a", c["aud"])
	}
	if r := e.post("/introspect", url.Values{"token": {at}}, "app-b", secretB); r.body["active"] != false || len(r.body) != 1 {
		t.Errorf("introspection by app-b = %v, want only active=false", r.body)
	}
	if r := e.post("/revoke", url.Values{"token": {at}}, "app-b", secretB); r.status != http.StatusOK {
		t.Errorf("revocation by app-b = %d, want 200", r.status)
	}
	if st, _ := e.userinfo(at); st != http.StatusOK {
		t.Errorf("after app-b tried to revoke app-a's token, userinfo = %d, want 200", st)
	}
	if r := e.post("/introspect", url.Values{"token": {at}}, "app-a", secretA); r.body["active"] != true {
		t.Errorf("introspection by app-a = %v, want active", r.body)
	}
}

func TestToken_S11_IDTokenClaims(t *testing.T) {
	for _, alg := range []string{"ES256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			e := newEnv(t, func(c *brokerConfig) { c.Algorithm = alg })
			b := e.browser()
			verifier, challenge := pkce()
			v := authParams(challenge)
			v.Set("nonce", "nønce with ünicode & spaces")
			q := e.login(b, v)
			tr := e.exchange(q.Get("code"), verifier)
			idt := tr.str("id_token")
			h, c := claimsOf(t, idt)
			if h["alg"] != alg || h["kid"] == nil || h["kid"] == "" {
				t.Errorf("header = %v, want alg %s and a kid", h, alg)
			}
			if c["iss"] != e.issuer || c["aud"] != "app-a" || c["azp"] != "app-a" {
				t.Errorf("iss/aud/azp = %v/%v/%v", c["iss"], c["aud"], c["azp"])
			}
			if c["nonce"] != "nønce with ünicode & spaces" {
				t.Errorf("nonce = %q, want it echoed byte for byte", c["nonce"])
			}
			for _, k := range []string{"exp", "iat", "auth_time"} {
				if _, ok := c[k].(float64); !ok {
					t.Errorf("claim %s = %v, want a number", k, c[k])
				}
			}
			sum := sha256.Sum256([]byte(tr.str("access_token")))
			if want := base64.RawURLEncoding.EncodeToString(sum[:16]); c["at_hash"] != want {
				t.Errorf("at_hash = %v, want %s", c["at_hash"], want)
			}
			if c["tid"] != "acme" || c["idp"] != "acme-idp" || c["email"] != "alice@acme.test" || c["name"] != "Alice Anders" {
				t.Errorf("normalized claims = %v", c)
			}
			if sub, _ := c["sub"].(string); sub == "" || strings.Contains(sub, "alice") {
				t.Errorf("sub = %q, want opaque", sub)
			}
			verifyWithJWKS(t, e, idt, alg)
			// Refresh: same sub, auth_time kept, no nonce (OIDC Core §12.2).
			r := e.refresh(tr.str("refresh_token"), "app-a", secretA)
			_, rc := claimsOf(t, r.str("id_token"))
			if rc["sub"] != c["sub"] || rc["auth_time"] != c["auth_time"] || rc["nonce"] != nil {
				t.Errorf("refreshed id token = %v", rc)
			}
		})
	}
}

func verifyWithJWKS(t *testing.T, e *env, token, alg string) {
	t.Helper()
	verifyAgainst(t, e.issuer, e.issuer, token, alg)
}

func verifyAgainst(t *testing.T, jwksFrom, issuer, token, alg string) {
	t.Helper()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	getJSON(t, jwksFrom+"/jwks", &set)
	_, err := jwt.Parse(token, func(tok *jwt.Token) (any, error) {
		for _, k := range set.Keys {
			if k["kid"] == tok.Header["kid"] {
				return jwkPublic(t, k)
			}
		}
		return nil, jwt.ErrTokenUnverifiable
	}, jwt.WithValidMethods([]string{alg}), jwt.WithIssuer(issuer))
	if err != nil {
		t.Fatalf("token does not verify against /jwks: %v", err)
	}
}

func TestToken_S12_AccessTokenTyped(t *testing.T) {
	e := newEnv(t)
	tr, _ := e.signIn()
	h, c := claimsOf(t, tr.str("access_token"))
	if h["typ"] != "at+jwt" {
		t.Errorf("access token typ = %v, want at+jwt (RFC 9068)", h["typ"])
	}
	for _, k := range []string{"iss", "sub", "aud", "exp", "iat", "jti", "client_id", "tid", "roles"} {
		if c[k] == nil {
			t.Errorf("access token lacks %s", k)
		}
	}
	if st, _ := e.userinfo(tr.str("id_token")); st != http.StatusUnauthorized {
		t.Errorf("ID token presented as access token at userinfo = %d, want 401", st)
	}
	if r := e.post("/introspect", url.Values{"token": {tr.str("id_token")}}, "app-a", secretA); r.body["active"] != false {
		t.Errorf("ID token introspected = %v, want inactive", r.body)
	}
	st, ui := e.userinfo(tr.str("access_token"))
	if st != http.StatusOK || ui["sub"] != c["sub"] || ui["email"] != "alice@acme.test" || ui["tid"] != "acme" {
		t.Errorf("userinfo = %d %v", st, ui)
	}
}

// keep the import of ecdsa used by jwkPublic in another file.
var _ = ecdsa.PublicKey{}
