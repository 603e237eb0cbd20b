package oidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/realmgate/realmgate/providers"
)

// Test keys, made once per test binary with crypto/rand (RSA 2048 is slow
// enough on two cores that every test making its own would add seconds).
var (
	keysOnce                     sync.Once
	rsaKey, rsaKey2, attackerKey *rsa.PrivateKey
	ecKey                        *ecdsa.PrivateKey
)

func testKeys(t *testing.T) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		for _, k := range []**rsa.PrivateKey{&rsaKey, &rsaKey2, &attackerKey} {
			if *k, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
				panic(err)
			}
		}
		if ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
	})
}

const (
	testClientID     = "realmgate-client"
	testClientSecret = "s3cr3t/+&="
	testAccessToken  = "at-0123456789"
)

// fakeOP is an OpenID Provider on httptest with knobs to misbehave.
type fakeOP struct {
	t   *testing.T
	srv *httptest.Server

	mu              sync.Mutex
	issuer          string // what tokens and (by default) discovery say
	discoveryIssuer string // overrides the discovery document's issuer when set
	discoveryBase   string // where discovery is served (path prefix); default: issuer path
	algs            []string
	issParam        bool // advertise RFC 9207 iss parameter support
	authMethods     []string
	noUserinfo      bool
	jwks            []jose.JSONWebKey
	discoveryStatus int
	jwksStatus      int
	tokenStatus     int
	tokenBody       string
	tokenHang       bool
	discoveryHang   bool
	userinfoStatus  int
	idToken         string
	userinfo        map[string]any
	tokenForms      []url.Values
	tokenAuthOK     []bool

	stop chan struct{} // closed at cleanup

	discoveryHits, jwksHits, tokenHits, userinfoHits, evilHits atomic.Int32
}

func newOP(t *testing.T) *fakeOP {
	t.Helper()
	testKeys(t)
	op := &fakeOP{t: t, algs: []string{"RS256", "ES256"}}
	op.srv = httptest.NewServer(http.HandlerFunc(op.serve))
	t.Cleanup(op.srv.Close)
	// Runs before srv.Close (cleanups are LIFO): releases hanging handlers.
	op.stop = make(chan struct{})
	t.Cleanup(func() { close(op.stop) })
	op.issuer = op.srv.URL
	op.userinfo = map[string]any{"sub": "alice-sub"}
	op.jwks = []jose.JSONWebKey{
		{Key: &rsaKey.PublicKey, KeyID: "rsa-1", Algorithm: "RS256", Use: "sig"},
		{Key: &ecKey.PublicKey, KeyID: "ec-1", Algorithm: "ES256", Use: "sig"},
	}
	return op
}

// set changes knobs under the lock.
func (op *fakeOP) set(f func(op *fakeOP)) {
	op.mu.Lock()
	defer op.mu.Unlock()
	f(op)
}

func (op *fakeOP) serve(w http.ResponseWriter, r *http.Request) {
	op.mu.Lock()
	defer op.mu.Unlock()
	writeJSON := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	base := op.discoveryBase
	if base == "" {
		u, _ := url.Parse(op.issuer)
		base = u.Path
	}
	switch {
	case r.URL.Path == base+"/.well-known/openid-configuration":
		op.discoveryHits.Add(1)
		if op.discoveryHang {
			op.mu.Unlock()
			select {
			case <-r.Context().Done():
			case <-op.stop:
			}
			op.mu.Lock()
			return
		}
		if op.discoveryStatus != 0 {
			w.WriteHeader(op.discoveryStatus)
			return
		}
		iss := op.issuer
		if op.discoveryIssuer != "" {
			iss = op.discoveryIssuer
		}
		doc := map[string]any{
			"issuer":                                iss,
			"authorization_endpoint":                op.srv.URL + "/authorize?tenant=x",
			"token_endpoint":                        op.srv.URL + "/token",
			"jwks_uri":                              op.srv.URL + "/jwks",
			"id_token_signing_alg_values_supported": op.algs,
			"response_types_supported":              []string{"code"},
		}
		if !op.noUserinfo {
			doc["userinfo_endpoint"] = op.srv.URL + "/userinfo"
		}
		if op.issParam {
			doc["authorization_response_iss_parameter_supported"] = true
		}
		if op.authMethods != nil {
			doc["token_endpoint_auth_methods_supported"] = op.authMethods
		}
		writeJSON(http.StatusOK, doc)
	case r.URL.Path == "/jwks":
		op.jwksHits.Add(1)
		if op.jwksStatus != 0 {
			w.WriteHeader(op.jwksStatus)
			return
		}
		writeJSON(http.StatusOK, jose.JSONWebKeySet{Keys: op.jwks})
	case r.URL.Path == "/token":
		op.tokenHits.Add(1)
		if op.tokenHang {
			op.mu.Unlock()
			select {
			case <-r.Context().Done():
			case <-op.stop:
			}
			op.mu.Lock()
			return
		}
		_ = r.ParseForm()
		op.tokenForms = append(op.tokenForms, r.PostForm)
		user, pass, ok := r.BasicAuth()
		if ok {
			user, _ = url.QueryUnescape(user)
			pass, _ = url.QueryUnescape(pass)
		} else {
			user, pass = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		authOK := user == testClientID && pass == testClientSecret
		op.tokenAuthOK = append(op.tokenAuthOK, authOK)
		switch {
		case op.tokenStatus != 0:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(op.tokenStatus)
			_, _ = w.Write([]byte(op.tokenBody))
		case !authOK:
			writeJSON(http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		default:
			writeJSON(http.StatusOK, map[string]any{
				"access_token": testAccessToken,
				"token_type":   "Bearer",
				"expires_in":   300,
				"id_token":     op.idToken,
			})
		}
	case r.URL.Path == "/userinfo":
		op.userinfoHits.Add(1)
		switch {
		case op.userinfoStatus != 0:
			w.WriteHeader(op.userinfoStatus)
		case r.Header.Get("Authorization") != "Bearer "+testAccessToken:
			w.WriteHeader(http.StatusUnauthorized)
		default:
			writeJSON(http.StatusOK, op.userinfo)
		}
	case r.URL.Path == "/evil":
		op.evilHits.Add(1)
		writeJSON(http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &attackerKey.PublicKey, KeyID: "attacker", Algorithm: "RS256", Use: "sig"},
		}})
	default:
		http.NotFound(w, r)
	}
}

// connector returns a connector for op with cfg adjusted by mods.
func (op *fakeOP) connector(t *testing.T, mods ...func(*Config)) *Connector {
	t.Helper()
	cfg := Config{
		ID:           "test-idp",
		Issuer:       op.issuer,
		ClientID:     testClientID,
		ClientSecret: testClientSecret,
		Timeout:      2 * time.Second,
		Logger:       slog.New(slog.DiscardHandler),
	}
	for _, m := range mods {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v) = %v", cfg, err)
	}
	return c
}

// newLoginRequest returns per-login values as the broker makes them.
func newLoginRequest(t *testing.T) providers.LoginRequest {
	t.Helper()
	r := func() string {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return providers.LoginRequest{
		State:        r(),
		Nonce:        r(),
		CodeVerifier: r(),
		CallbackURL:  "https://broker.example/callback/test-idp",
	}
}

// claims returns valid ID token claims for req.
func (op *fakeOP) claims(req providers.LoginRequest) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss":   op.issuer,
		"sub":   "alice-sub",
		"aud":   testClientID,
		"exp":   now.Add(5 * time.Minute).Unix(),
		"iat":   now.Unix(),
		"nonce": req.Nonce,
	}
}

// sign makes a compact JWS of claims with method and key; extra headers are
// added (a nil value deletes a header).
func sign(t *testing.T, method jwt.SigningMethod, key any, kid string, claims map[string]any, hdr map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, jwt.MapClaims(claims))
	if kid != "" {
		tok.Header["kid"] = kid
	}
	for k, v := range hdr {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("signing: %v", err)
	}
	return s
}

func signRS(t *testing.T, claims map[string]any) string {
	return sign(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", claims, nil)
}

// callback simulates the browser coming back from the OP with a code for req,
// the OP then answering idToken at its token endpoint.
func (op *fakeOP) callback(t *testing.T, c *Connector, req providers.LoginRequest, idToken string, params url.Values) (providers.Identity, error) {
	t.Helper()
	op.set(func(op *fakeOP) { op.idToken = idToken })
	q := url.Values{"code": {"code-123"}, "state": {req.State}}
	if op.issParam {
		q.Set("iss", op.issuer)
	}
	for k, v := range params {
		if v == nil {
			q.Del(k)
		} else {
			q[k] = v
		}
	}
	r := httptest.NewRequest(http.MethodGet, req.CallbackURL+"?"+q.Encode(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.HandleCallback(ctx, req, nil, r)
}

// publicJWK returns the JWK (as a JSON object) of a public key, for headers.
func publicJWK(t *testing.T, pub crypto.PublicKey, kid string) map[string]any {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: "RS256", Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// wantErr fails unless err wraps target and its text contains substr.
func wantErr(t *testing.T, what string, err, target error, substr string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: err = nil, want %v", what, target)
	}
	if !errors.Is(err, target) {
		t.Fatalf("%s: err = %v, want it to wrap %v", what, err, target)
	}
	if substr != "" && !strings.Contains(err.Error(), substr) {
		t.Fatalf("%s: err = %q, want it to contain %q", what, err, substr)
	}
}
