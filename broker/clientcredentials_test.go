package broker_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/broker/redisstore"
	"github.com/realmgate/realmgate/internal/redistest"
	"github.com/realmgate/realmgate/transform"
)

const secretM = "secret-for-machine-0123456789"

// withClients adds clients to the env's configuration.
func withClients(cls ...broker.Client) envOpt {
	return func(c *broker.Config) { c.Clients = append(c.Clients, cls...) }
}

// withRules sets a tenant's rules.
func withRules(t *testing.T, tenant string, rules ...transform.Rule) envOpt {
	t.Helper()
	eng, err := transform.Compile(nil, rules, transform.Options{Tenant: tenant})
	if err != nil {
		t.Fatal(err)
	}
	return func(c *broker.Config) {
		if c.Rules == nil {
			c.Rules = map[string]*transform.Engine{}
		}
		c.Rules[tenant] = eng
	}
}

func ccParams(extra ...string) url.Values {
	v := url.Values{"grant_type": {"client_credentials"}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return v
}

func TestClientCredentials_RFC6749_4_4(t *testing.T) {
	e := newEnv(t,
		withClients(
			broker.Client{ID: "acme-sync", Secret: secretM, Claims: []string{"cost_center"}, Machine: broker.Machine{Tenant: "acme",
				GrantTypes: []string{"client_credentials"}, Scopes: []string{"read", "write"}, Audiences: []string{"https://api.acme.test", "app-b"}}},
			broker.Client{ID: "global-job", Secret: secretM, Machine: broker.Machine{GrantTypes: []string{"client_credentials"}, Scopes: []string{"jobs"}}},
		),
		withRules(t, "acme", transform.Rule{Name: "sync role", If: `client == "acme-sync" && upstream.client_id == "acme-sync"`,
			Add: []transform.Assignment{{Claim: "roles", Expr: `"directory-sync"`}},
			Set: []transform.Assignment{{Claim: "cost_center", Expr: `"cc-1"`}, {Claim: "secret_note", Expr: `"not released"`}}}),
	)
	r := e.post("/token", ccParams(), "acme-sync", secretM)
	if r.status != http.StatusOK {
		t.Fatalf("client_credentials = %d %v", r.status, r.body)
	}
	if _, ok := r.body["refresh_token"]; ok {
		t.Errorf("response has a refresh_token; RFC 6749 §4.4.3 says none")
	}
	if _, ok := r.body["id_token"]; ok {
		t.Errorf("response has an id_token")
	}
	h, c := claimsOf(t, r.str("access_token"))
	roles, _ := c["roles"].([]any)
	if h["typ"] != "at+jwt" || c["sub"] != "acme-sync" || c["client_id"] != "acme-sync" || c["tid"] != "acme" ||
		c["aud"] != "https://api.acme.test" || c["scope"] != "read write" || !slices.Contains(roles, any("directory-sync")) {
		t.Fatalf("token header %v claims %v, want sub and client_id acme-sync, tid acme, default audience, all scopes, the rule's role", h, c)
	}
	if c["cost_center"] != "cc-1" || c["secret_note"] != nil {
		t.Errorf("token claims %v, want the registered custom claim cost_center only (S75)", c)
	}
	if r.str("scope") != "read write" || r.str("token_type") != "Bearer" {
		t.Errorf("response %v, want scope and token_type Bearer", r.body)
	}
	// RFC 9449 §5: a proof binds the token to the client's key.
	t.Run("dpop", func(t *testing.T) {
		k := newDPoPKey(t)
		r := e.sendDPoP(http.MethodPost, "/token", ccParams(), "acme-sync", secretM, "", k.proof(http.MethodPost, e.issuer+"/token"))
		if r.status != http.StatusOK || r.str("token_type") != "DPoP" {
			t.Fatalf("client_credentials with a DPoP proof = %d %v, want 200 token_type DPoP", r.status, r.body)
		}
		_, c := claimsOf(t, r.str("access_token"))
		if cnf, _ := c["cnf"].(map[string]any); cnf["jkt"] != k.jkt() {
			t.Errorf("cnf = %v, want jkt %s", c["cnf"], k.jkt())
		}
	})
	// The API it is for may introspect it (RFC 7662); another client sees it inactive.
	t.Run("introspection", func(t *testing.T) {
		v := ccParams("audience", "app-b")
		tok := e.post("/token", v, "acme-sync", secretM).str("access_token")
		in := e.post("/introspect", url.Values{"token": {tok}}, "app-b", secretB)
		if in.body["active"] != true || in.body["sub"] != "acme-sync" || in.body["tid"] != "acme" {
			t.Errorf("introspection by app-b = %v, want active, sub acme-sync, tid acme", in.body)
		}
		if in := e.post("/introspect", url.Values{"token": {tok}}, "app-a", secretA); in.body["active"] != false {
			t.Errorf("introspection by app-a = %v, want inactive", in.body)
		}
		if code, _ := e.userinfo(tok); code != http.StatusUnauthorized {
			t.Errorf("userinfo with a client_credentials token = %d, want 401 (no user)", code)
		}
	})

	tests := []struct {
		name, client, secret string
		params               url.Values
		wantErr              string
		check                func(t *testing.T, c map[string]any)
	}{
		{"narrower scope", "acme-sync", secretM, ccParams("scope", "read"), "",
			func(t *testing.T, c map[string]any) {
				if c["scope"] != "read" {
					t.Errorf("scope = %v, want read", c["scope"])
				}
			}},
		{"chosen audience", "acme-sync", secretM, ccParams("audience", "app-b"), "",
			func(t *testing.T, c map[string]any) {
				if c["aud"] != "app-b" {
					t.Errorf("aud = %v, want app-b", c["aud"])
				}
			}},
		{"resource parameter", "acme-sync", secretM, ccParams("resource", "app-b"), "",
			func(t *testing.T, c map[string]any) {
				if c["aud"] != "app-b" {
					t.Errorf("aud = %v, want app-b", c["aud"])
				}
			}},
		{"client without tenant", "global-job", secretM, ccParams(), "",
			func(t *testing.T, c map[string]any) {
				if _, ok := c["tid"]; ok || c["aud"] != "global-job" || c["roles"] != nil {
					t.Errorf("claims %v, want no tid, no roles, aud the client itself", c)
				}
			}},
		{"wider scope", "acme-sync", secretM, ccParams("scope", "read admin"), "invalid_scope", nil},
		{"openid scope", "acme-sync", secretM, ccParams("scope", "openid"), "invalid_scope", nil},
		{"unregistered audience", "acme-sync", secretM, ccParams("audience", "app-a"), "invalid_target", nil},
		{"audience and resource differ", "acme-sync", secretM, ccParams("audience", "app-b", "resource", "https://api.acme.test"), "invalid_target", nil},
		{"client not registered for the grant", "app-a", secretA, ccParams(), "unauthorized_client", nil},
		{"public client", "pub", "", ccParams("client_id", "pub"), "unauthorized_client", nil},
		{"wrong secret", "acme-sync", secretA, ccParams(), "invalid_client", nil},
		{"machine client cannot redeem codes", "acme-sync", secretM, url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}, "unauthorized_client", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user := tt.client
			if tt.secret == "" {
				user = ""
			}
			r := e.post("/token", tt.params, user, tt.secret)
			if tt.wantErr != "" {
				if r.str("error") != tt.wantErr {
					t.Fatalf("POST /token = %d %v, want %s", r.status, r.body, tt.wantErr)
				}
				return
			}
			if r.status != http.StatusOK {
				t.Fatalf("POST /token = %d %v, want 200", r.status, r.body)
			}
			_, c := claimsOf(t, r.str("access_token"))
			tt.check(t, c)
		})
	}

	t.Run("rule deny refuses", func(t *testing.T) {
		e := newEnv(t, withClients(broker.Client{ID: "acme-sync", Secret: secretM, Machine: broker.Machine{Tenant: "acme",
			GrantTypes: []string{"client_credentials"}}}),
			withRules(t, "acme", transform.Rule{Name: "no machines", If: `upstream.grant_type == "client_credentials"`, Deny: "no machines here"}))
		if r := e.post("/token", ccParams(), "acme-sync", secretM); r.str("error") != "unauthorized_client" {
			t.Fatalf("client_credentials under a deny rule = %d %v, want unauthorized_client", r.status, r.body)
		}
	})
}

// signer signs client assertions with one key.
type signer struct {
	key  any
	kid  string
	alg  jwt.SigningMethod
	jwks *jose.JSONWebKeySet
}

func newECSigner(t *testing.T, kid string) *signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &signer{key: k, kid: kid, alg: jwt.SigningMethodES256,
		jwks: &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"}}}}
}

func (s *signer) sign(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(s.alg, claims)
	if s.kid != "" {
		tok.Header["kid"] = s.kid
	}
	out, err := tok.SignedString(s.key)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func assertionClaims(e *env, client string) jwt.MapClaims {
	now := e.clock.now()
	return jwt.MapClaims{"iss": client, "sub": client, "aud": e.issuer, "iat": now.Unix(),
		"exp": now.Add(time.Minute).Unix(), "jti": randomJTI()}
}

func randomJTI() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func assertionParams(assertion string, extra ...string) url.Values {
	v := ccParams(extra...)
	v.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	v.Set("client_assertion", assertion)
	return v
}

func TestClientAuth_S30_PrivateKeyJWT(t *testing.T) {
	sg := newECSigner(t, "k1")
	other := newECSigner(t, "k1") // same kid, another key
	e := newEnv(t, withClients(
		broker.Client{ID: "pkj", Machine: broker.Machine{GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"},
			AuthMethod: "private_key_jwt", JWKS: sg.jwks}},
		broker.Client{ID: "sec", Secret: secretM, Machine: broker.Machine{GrantTypes: []string{"client_credentials"}, AuthMethod: "client_secret_post"}},
	))
	ok := e.post("/token", assertionParams(sg.sign(t, assertionClaims(e, "pkj"))), "", "")
	if ok.status != http.StatusOK {
		t.Fatalf("private_key_jwt = %d %v, want 200", ok.status, ok.body)
	}
	if _, c := claimsOf(t, ok.str("access_token")); c["sub"] != "pkj" {
		t.Fatalf("token sub = %v, want pkj", c["sub"])
	}

	t.Run("jti replay", func(t *testing.T) {
		a := sg.sign(t, assertionClaims(e, "pkj"))
		if r := e.post("/token", assertionParams(a), "", ""); r.status != http.StatusOK {
			t.Fatalf("first use = %d %v", r.status, r.body)
		}
		if r := e.post("/token", assertionParams(a), "", ""); r.str("error") != "invalid_client" {
			t.Fatalf("replayed assertion = %d %v, want invalid_client", r.status, r.body)
		}
	})
	t.Run("token endpoint audience accepted", func(t *testing.T) {
		c := assertionClaims(e, "pkj")
		c["aud"] = []string{e.issuer + "/token"}
		if r := e.post("/token", assertionParams(sg.sign(t, c)), "", ""); r.status != http.StatusOK {
			t.Fatalf("aud = token endpoint: %d %v, want 200", r.status, r.body)
		}
	})

	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, assertionClaims(e, "pkj"))
	hs.Header["kid"] = "k1"
	pub, _ := x509.MarshalPKIXPublicKey(&sg.key.(*ecdsa.PrivateKey).PublicKey)
	pubJSON, _ := json.Marshal(sg.jwks.Keys[0])
	hsPEM, _ := hs.SignedString(pub)
	hsJSON, _ := hs.SignedString(pubJSON)
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, assertionClaims(e, "pkj")).SignedString(jwt.UnsafeAllowNoneSignatureType)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsSigner := &signer{key: rsaKey, kid: "k1", alg: jwt.SigningMethodRS256}

	mod := func(f func(c jwt.MapClaims)) string {
		c := assertionClaims(e, "pkj")
		f(c)
		return sg.sign(t, c)
	}
	now := e.clock.now()
	tests := []struct {
		name   string
		params url.Values
		user   string
		pass   string
	}{
		{"wrong aud", assertionParams(mod(func(c jwt.MapClaims) { c["aud"] = "https://other.example" })), "", ""},
		{"aud of the userinfo endpoint", assertionParams(mod(func(c jwt.MapClaims) { c["aud"] = e.issuer + "/userinfo" })), "", ""},
		{"expired", assertionParams(mod(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() })), "", ""},
		{"exp too far ahead", assertionParams(mod(func(c jwt.MapClaims) { c["exp"] = now.Add(time.Hour).Unix() })), "", ""},
		{"no exp", assertionParams(mod(func(c jwt.MapClaims) { delete(c, "exp") })), "", ""},
		{"issued in the future", assertionParams(mod(func(c jwt.MapClaims) { c["iat"] = now.Add(3 * time.Minute).Unix() })), "", ""},
		{"not yet valid", assertionParams(mod(func(c jwt.MapClaims) { c["nbf"] = now.Add(3 * time.Minute).Unix() })), "", ""},
		{"no jti", assertionParams(mod(func(c jwt.MapClaims) { delete(c, "jti") })), "", ""},
		{"iss differs from sub", assertionParams(mod(func(c jwt.MapClaims) { c["iss"] = "sec" })), "", ""},
		{"client_id differs from sub", assertionParams(sg.sign(t, assertionClaims(e, "pkj")), "client_id", "sec"), "", ""},
		{"alg none", assertionParams(none), "", ""},
		{"HS256 keyed with the public key (DER)", assertionParams(hsPEM), "", ""},
		{"HS256 keyed with the public JWK", assertionParams(hsJSON), "", ""},
		{"another key with the same kid", assertionParams(other.sign(t, assertionClaims(e, "pkj"))), "", ""},
		{"RS256 where the key is EC", assertionParams(rsSigner.sign(t, assertionClaims(e, "pkj"))), "", ""},
		{"wrong assertion type", func() url.Values {
			v := assertionParams(sg.sign(t, assertionClaims(e, "pkj")))
			v.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
			return v
		}(), "", ""},
		{"garbage assertion", assertionParams("a.b.c"), "", ""},
		{"secret to a private_key_jwt client", ccParams("client_id", "pkj", "client_secret", secretM), "", ""},
		{"basic to a private_key_jwt client", ccParams(), "pkj", secretM},
		{"assertion by a client_secret_post client", assertionParams(sg.sign(t, assertionClaims(e, "sec"))), "", ""},
		{"basic by a client_secret_post client", ccParams(), "sec", secretM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.post("/token", tt.params, tt.user, tt.pass)
			if r.status == http.StatusOK || (r.str("error") != "invalid_client" && r.str("error") != "invalid_request") {
				t.Fatalf("POST /token = %d %v, want invalid_client", r.status, r.body)
			}
		})
	}
	t.Run("client_secret_post client with its method", func(t *testing.T) {
		if r := e.post("/token", ccParams("client_id", "sec", "client_secret", secretM), "", ""); r.status != http.StatusOK {
			t.Fatalf("client_secret_post = %d %v, want 200", r.status, r.body)
		}
	})
	t.Run("introspection with private_key_jwt", func(t *testing.T) {
		c := assertionClaims(e, "pkj")
		c["aud"] = e.issuer + "/introspect"
		v := url.Values{"token": {"x"}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion": {sg.sign(t, c)}}
		if r := e.post("/introspect", v, "", ""); r.status != http.StatusOK || r.body["active"] != false {
			t.Fatalf("introspect with private_key_jwt = %d %v, want 200 inactive", r.status, r.body)
		}
	})
}

func TestClientAuth_S70_JWKSURIRefreshOnUnknownKid(t *testing.T) {
	first, second := newECSigner(t, "k1"), newECSigner(t, "k2")
	var current atomic.Pointer[jose.JSONWebKeySet]
	current.Store(first.jwks)
	var fetches atomic.Int32
	keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		_ = json.NewEncoder(w).Encode(current.Load())
	}))
	t.Cleanup(keys.Close)
	e := newEnv(t, withClients(broker.Client{ID: "pkj", Machine: broker.Machine{GrantTypes: []string{"client_credentials"},
		AuthMethod: "private_key_jwt", JWKSURI: keys.URL}}),
		func(c *broker.Config) { c.HTTPClient = keys.Client() }) // the test server is on loopback
	if r := e.post("/token", assertionParams(first.sign(t, assertionClaims(e, "pkj"))), "", ""); r.status != http.StatusOK {
		t.Fatalf("assertion with k1 = %d %v", r.status, r.body)
	}
	if r := e.post("/token", assertionParams(first.sign(t, assertionClaims(e, "pkj"))), "", ""); r.status != http.StatusOK || fetches.Load() != 1 {
		t.Fatalf("second assertion = %d %v after %d fetches, want 200 from the cache (1 fetch)", r.status, r.body, fetches.Load())
	}
	// The client rotates to k2: the unknown kid fetches the set again, but
	// not more often than the rate limit allows.
	current.Store(second.jwks)
	if r := e.post("/token", assertionParams(second.sign(t, assertionClaims(e, "pkj"))), "", ""); r.str("error") != "invalid_client" {
		t.Fatalf("k2 within the refetch limit = %d %v, want invalid_client", r.status, r.body)
	}
	e.clock.advance(31 * time.Second)
	if r := e.post("/token", assertionParams(second.sign(t, assertionClaims(e, "pkj"))), "", ""); r.status != http.StatusOK {
		t.Fatalf("k2 after the refetch limit = %d %v, want 200", r.status, r.body)
	}
	if n := fetches.Load(); n != 2 {
		t.Errorf("jwks_uri fetched %d times, want 2", n)
	}
}

func TestDiscovery_ClientAuthMetadata(t *testing.T) {
	e := newEnv(t)
	var doc map[string]any
	getJSON(t, e.issuer+"/.well-known/openid-configuration", &doc)
	has := func(field, want string) {
		t.Helper()
		list, _ := doc[field].([]any)
		if !slices.Contains(list, any(want)) {
			t.Errorf("%s = %v, want it to contain %q", field, doc[field], want)
		}
	}
	has("grant_types_supported", "client_credentials")
	has("token_endpoint_auth_methods_supported", "private_key_jwt")
	has("token_endpoint_auth_signing_alg_values_supported", "ES256")
	has("token_endpoint_auth_signing_alg_values_supported", "RS256")
	for _, a := range doc["token_endpoint_auth_signing_alg_values_supported"].([]any) {
		if a == "none" || a == "HS256" {
			t.Errorf("token_endpoint_auth_signing_alg_values_supported lists %v", a)
		}
	}
}

// TestClientAuth_AssertionReplayAcrossInstances: two brokers share a real
// Redis; an assertion used at one is refused at the other, since the jti is
// recorded in the store (RFC 7523 §3 item 7), and a store down refuses
// assertions with 503 instead of accepting them unrecorded.
func TestClientAuth_AssertionReplayAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	sg := newECSigner(t, "k1")
	withPKJ := withClients(broker.Client{ID: "pkj", Machine: broker.Machine{GrantTypes: []string{"client_credentials"},
		AuthMethod: "private_key_jwt", JWKS: sg.jwks}})
	open := func() *recordingStore {
		rs, err := redisstore.New(redisstore.Options{Addrs: []string{srv.Addr()}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rs.Close() })
		return &recordingStore{Store: rs}
	}
	a, b := newEnvOn(t, open(), withPKJ), newEnvOn(t, open(), withPKJ)
	assertion := func(e *env, jti string) string {
		c := assertionClaims(e, "pkj")
		c["aud"], c["jti"] = []string{a.issuer, b.issuer}, jti
		return sg.sign(t, c)
	}
	jti := randomJTI()
	if r := a.post("/token", assertionParams(assertion(a, jti)), "", ""); r.status != http.StatusOK {
		t.Fatalf("assertion at instance A = %d %v", r.status, r.body)
	}
	if r := b.post("/token", assertionParams(assertion(b, jti)), "", ""); r.str("error") != "invalid_client" {
		t.Fatalf("the same jti at instance B = %d %v, want invalid_client", r.status, r.body)
	}
	b.store.down.Store(true)
	if r := b.post("/token", assertionParams(assertion(b, randomJTI())), "", ""); r.status != http.StatusServiceUnavailable {
		t.Fatalf("assertion with the store down = %d %v, want 503", r.status, r.body)
	}
}
