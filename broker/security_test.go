package broker_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/broker/memstore"
)

func TestStore_S17_NoRawSecretsAndEntropy(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	verifier, challenge := pkce()
	v := authParams(challenge)
	v.Del("login_hint")
	resp := b.get(e.authorizeURL(v))
	_, page := b.getBody(e.issuer + resp.Header.Get("Location"))
	arID := formField(page, "r")
	post, _ := b.postForm(e.issuer+"/login", url.Values{"r": {arID}, "email": {"alice@acme.test"}})
	up, _ := url.Parse(post.Header.Get("Location"))
	state := up.Query().Get("state")
	cb := b.get(e.issuer + "/callback/acme-idp?code=x&state=" + url.QueryEscape(state))
	code := e.clientRedirect(cb, appCB).Get("code")
	tr := e.exchange(code, verifier)
	rt := tr.str("refresh_token")
	r2 := e.refresh(rt, "app-a", secretA)
	issuerURL, _ := url.Parse(e.issuer)
	secrets := map[string]string{"auth request id": arID, "upstream state": state, "code": code,
		"refresh token": rt, "rotated refresh token": r2.str("refresh_token"),
		"refresh secret": strings.SplitN(rt, ".", 2)[1], "upstream nonce": e.acme.last.Nonce,
		"upstream PKCE verifier": e.acme.last.CodeVerifier}
	for _, ck := range b.c.Jar.Cookies(issuerURL) {
		if ck.Name != "rg_idp" { // the remembered IdP id is public by design (S53)
			secrets["cookie "+ck.Name] = ck.Value
		}
	}
	if len(secrets) < 10 {
		t.Fatalf("expected session and binding cookies, got %v", secrets)
	}
	for name, s := range secrets {
		raw, err := base64.RawURLEncoding.DecodeString(s)
		if name == "refresh token" || name == "rotated refresh token" {
			raw, err = base64.RawURLEncoding.DecodeString(strings.SplitN(s, ".", 2)[1])
		}
		if _, secret, ok := strings.Cut(s, broker.FamilySeparator); ok && name == "code" {
			// A session code "<sid>~<random>" (redeem.go): the sid is public
			// (the sid claim), the random part is the secret.
			raw, err = base64.RawURLEncoding.DecodeString(secret)
		}
		if err != nil || len(raw) < 16 {
			t.Errorf("%s = %q: %d bytes of entropy, want >= 16 (128 bits)", name, s, len(raw))
		}
	}
	e.store.mu.Lock()
	defer e.store.mu.Unlock()
	for _, w := range e.store.writes {
		for name, s := range secrets {
			if name == "upstream nonce" || name == "upstream PKCE verifier" {
				continue // kept server-side on purpose, keyed by HMAC of the state
			}
			if strings.Contains(w, s) {
				t.Errorf("the store received the raw %s in %q", name, w)
			}
		}
	}
}

func TestJWT_S30_AlgorithmConfusion(t *testing.T) {
	e := newEnv(t, func(c *brokerConfig) { c.Algorithm = "RS256" })
	tr, _ := e.signIn()
	h, c := claimsOf(t, tr.str("access_token"))
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	getJSON(t, e.issuer+"/jwks", &set)
	pub, _ := jwkPublic(t, set.Keys[0])
	der, _ := x509.MarshalPKIXPublicKey(pub)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	mk := func(method jwt.SigningMethod, key any) string {
		tok := jwt.NewWithClaims(method, jwt.MapClaims(c))
		tok.Header["kid"], tok.Header["typ"] = h["kid"], "at+jwt"
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tc := range []struct{ name, token string }{
		{"alg none", mk(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType)},
		{"HS256 with the RSA public key", mk(jwt.SigningMethodHS256, pemKey)},
		{"HS256 with the DER public key", mk(jwt.SigningMethodHS256, der)},
		{"ES256 header on an RS256 key", mk(jwt.SigningMethodES256, ecKey)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if st, _ := e.userinfo(tc.token); st != http.StatusUnauthorized {
				t.Errorf("userinfo(%s) = %d, want 401", tc.name, st)
			}
			if r := e.post("/introspect", url.Values{"token": {tc.token}}, "app-a", secretA); r.body["active"] != false {
				t.Errorf("introspect(%s) = %v, want inactive", tc.name, r.body)
			}
		})
	}
}

func TestJWT_S31_EmbeddedKeysIgnored(t *testing.T) {
	e := newEnv(t)
	tr, _ := e.signIn()
	h, c := claimsOf(t, tr.str("access_token"))
	attacker, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	b64 := func(i *big.Int) string {
		b := make([]byte, 32)
		i.FillBytes(b)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	for _, hdr := range []map[string]any{
		{"jwk": map[string]any{"kty": "EC", "crv": "P-256", "x": b64(attacker.X), "y": b64(attacker.Y)}},
		{"jku": "http://127.0.0.1:1/jwks"},
		{"x5u": "http://127.0.0.1:1/cert"},
	} {
		for _, kid := range []any{h["kid"], "attacker"} {
			tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims(c))
			tok.Header["kid"], tok.Header["typ"] = kid, "at+jwt"
			for k, v := range hdr {
				tok.Header[k] = v
			}
			s, _ := tok.SignedString(attacker)
			if st, _ := e.userinfo(s); st != http.StatusUnauthorized {
				t.Errorf("token with header %v and kid %v accepted", hdr, kid)
			}
		}
	}
}

func TestJWT_S32_OversizedAndMalformed(t *testing.T) {
	e := newEnv(t)
	tr, _ := e.signIn()
	at := tr.str("access_token")
	parts := strings.Split(at, ".")
	huge := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"pad":"`+strings.Repeat("A", 17<<10)+`"}`)) + "." + parts[2]
	for _, tc := range []struct{ name, token string }{
		{"oversized", huge},
		{"two parts", parts[0] + "." + parts[1]},
		{"four parts", at + ".x"},
		{"empty part", parts[0] + ".." + parts[2]},
		{"non-base64", parts[0] + ".%%%." + parts[2]},
		{"JSON serialization", `{"payload":"x","signatures":[]}`},
		{"whitespace", parts[0] + ". " + parts[1] + "." + parts[2]},
	} {
		if st, _ := e.userinfo(tc.token); st != http.StatusUnauthorized {
			t.Errorf("userinfo(%s) = %d, want 401", tc.name, st)
		}
	}
}

func TestSSO_SecondClientSkipsUpstream(t *testing.T) {
	e := newEnv(t)
	_, b := e.signIn()
	_, challenge := pkce()
	v := url.Values{"client_id": {"app-b"}, "redirect_uri": {"https://app-b.example/callback"}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"s2"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	q := e.clientRedirect(b.get(e.authorizeURL(v)), "https://app-b.example/callback")
	if q.Get("code") == "" || q.Get("state") != "s2" {
		t.Fatalf("SSO authorize = %v, want a code without visiting the IdP", q)
	}
	v.Set("prompt", "login")
	if resp := b.get(e.authorizeURL(v)); !strings.HasPrefix(resp.Header.Get("Location"), "/login") && !strings.HasPrefix(resp.Header.Get("Location"), "https://idp.example/") {
		t.Fatalf("prompt=login = %q, want a fresh login", resp.Header.Get("Location"))
	}
	v.Set("prompt", "none")
	if q := e.clientRedirect(e.browser().get(e.authorizeURL(v)), "https://app-b.example/callback"); q.Get("error") != "login_required" {
		t.Fatalf("prompt=none without session = %v, want login_required", q)
	}
	// A client limited to acme does not reuse a globex session.
	gb := e.browser()
	gv := authParams(challenge)
	gv.Set("login_hint", "carol@globex.test")
	e.login(gb, gv)
	av := authParams(challenge)
	av.Set("client_id", "acme-only")
	av.Del("login_hint")
	if resp := gb.get(e.authorizeURL(av)); !strings.HasPrefix(resp.Header.Get("Location"), "/login?") {
		t.Fatalf("acme-only client with a globex session = %q, want the email page", resp.Header.Get("Location"))
	}
}

func TestTenancy_S50_S52_TenantFromIdP(t *testing.T) {
	e := newEnv(t)
	// globex's IdP asserts an acme address: the tenant stays globex and the
	// foreign-domain email is dropped.
	e.globex.ident.Email = "alice@acme.test"
	verifier, challenge := pkce()
	v := authParams(challenge)
	v.Set("login_hint", "someone@globex.test")
	q := e.login(e.browser(), v)
	_, c := claimsOf(t, e.exchange(q.Get("code"), verifier).str("id_token"))
	if c["tid"] != "globex" || c["email"] != nil {
		t.Errorf("claims = %v, want tid globex and no acme email", c)
	}
	e.globex.ident.Email = "carol@unowned.example"
	q = e.login(e.browser(), v)
	_, c = claimsOf(t, e.exchange(q.Get("code"), verifier).str("id_token"))
	if c["email"] != "carol@unowned.example" || c["email_verified"] != false {
		t.Errorf("unverified-domain email = %v/%v, want kept but email_verified=false", c["email"], c["email_verified"])
	}
}

func TestStore_S62_OutageGives503AndRecovers(t *testing.T) {
	e := newEnv(t)
	e.store.down.Store(true)
	_, challenge := pkce()
	resp, body := e.browser().getBody(e.authorizeURL(authParams(challenge)))
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "temporarily unavailable") || resp.Header.Get("Retry-After") == "" {
		t.Errorf("authorize during outage = %d, want 503 page with Retry-After", resp.StatusCode)
	}
	if r := e.post("/token", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {appCB}, "code_verifier": {strings.Repeat("a", 43)}}, "app-a", secretA); r.status != http.StatusServiceUnavailable || r.str("error") != "temporarily_unavailable" {
		t.Errorf("token during outage = %d %v, want 503 temporarily_unavailable", r.status, r.body)
	}
	if r, _ := e.browser().getBody(e.issuer + "/readyz"); r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("readyz during outage = %d, want 503", r.StatusCode)
	}
	if r, _ := e.browser().getBody(e.issuer + "/jwks"); r.StatusCode != http.StatusOK {
		t.Errorf("jwks during outage = %d, want 200 from loaded keys", r.StatusCode)
	}
	e.store.down.Store(false)
	e.signIn()
}

func TestKeys_SharedAcrossInstancesAndRotation(t *testing.T) {
	ms := memstore.New()
	defer ms.Close()
	shared := &recordingStore{Store: ms}
	noSecret := func(c *brokerConfig) { c.Secret = nil; c.RotateEvery = time.Hour }
	a := newEnvOn(t, shared, noSecret)
	b := newEnvOn(t, shared, noSecret)
	kids := func(e *env) []string {
		var set struct {
			Keys []map[string]any `json:"keys"`
		}
		getJSON(t, e.issuer+"/jwks", &set)
		var out []string
		for _, k := range set.Keys {
			out = append(out, k["kid"].(string))
		}
		return out
	}
	ka, kb := kids(a), kids(b)
	if len(ka) != 1 || strings.Join(ka, ",") != strings.Join(kb, ",") {
		t.Fatalf("instances publish %v and %v, want one shared key", ka, kb)
	}
	old, _ := a.signIn()
	a.clock.advance(2 * time.Hour)
	rotated := kids(a)
	if len(rotated) != 2 || rotated[1] != ka[0] {
		t.Fatalf("after rotation JWKS = %v, want [new, %s]", rotated, ka[0])
	}
	b.clock.advance(2 * time.Hour)
	if kb2 := kids(b); strings.Join(kb2, ",") != strings.Join(rotated, ",") {
		t.Fatalf("other instance publishes %v, want %v", kb2, rotated)
	}
	verifyAgainst(t, b.issuer, a.issuer, old.str("id_token"), "ES256")
	fresh, _ := b.signIn()
	if h, _ := claimsOf(t, fresh.str("id_token")); h["kid"] != rotated[0] {
		t.Errorf("new token kid = %v, want the new key %s", h["kid"], rotated[0])
	}
	_ = context.Background
	_ = json.Marshal
	_ = broker.ErrNotFound
}
