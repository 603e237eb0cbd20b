package broker_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/realmgate/realmgate/broker"
)

type brokerConfig = broker.Config

func jwkPublic(t *testing.T, k map[string]any) (any, error) {
	t.Helper()
	raw := func(s any) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s.(string))
		if err != nil {
			t.Fatalf("jwk member: %v", err)
		}
		return b
	}
	dec := func(s any) *big.Int { return new(big.Int).SetBytes(raw(s)) }
	switch k["kty"] {
	case "EC":
		if k["crv"] != "P-256" {
			t.Fatalf("crv = %v", k["crv"])
		}
		// RFC 7518 §6.2.1.2-3: x and y are full-size coordinates, so
		// 0x04 || x || y is the SEC 1 uncompressed point.
		return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, raw(k["x"])...), raw(k["y"])...))
	case "RSA":
		return &rsa.PublicKey{N: dec(k["n"]), E: int(dec(k["e"]).Int64())}, nil
	}
	t.Fatalf("kty = %v", k["kty"])
	return nil, nil
}

func TestDiscovery_S13_IssuerAndJWKS(t *testing.T) {
	e := newEnv(t)
	var meta map[string]any
	resp := getJSON(t, e.issuer+"/.well-known/openid-configuration", &meta)
	if resp.StatusCode != http.StatusOK || meta["issuer"] != e.issuer {
		t.Fatalf("discovery issuer = %v, want %s", meta["issuer"], e.issuer)
	}
	scopes, _ := meta["scopes_supported"].([]any)
	if !slices.Contains(scopes, any("openid")) {
		t.Errorf("scopes_supported = %v, want openid", scopes)
	}
	if rt, _ := meta["response_types_supported"].([]any); len(rt) != 1 || rt[0] != "code" {
		t.Errorf("response_types_supported = %v", rt)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	getJSON(t, e.issuer+"/jwks", &set)
	if len(set.Keys) == 0 {
		t.Fatal("JWKS is empty")
	}
	for _, k := range set.Keys {
		if _, err := jwkPublic(t, k); err != nil || k["kid"] == "" || k["d"] != nil {
			t.Errorf("JWK %v does not parse or leaks private material", k)
		}
	}
	tr, _ := e.signIn()
	for _, tok := range []string{tr.str("id_token"), tr.str("access_token")} {
		if _, c := claimsOf(t, tok); c["iss"] != meta["issuer"] {
			t.Errorf("token iss = %v, discovery issuer = %v", c["iss"], meta["issuer"])
		}
	}
}

func TestRevoke_S14(t *testing.T) {
	e := newEnv(t)
	tr, _ := e.signIn()
	t.Run("needs client authentication", func(t *testing.T) {
		r := e.post("/revoke", url.Values{"token": {tr.str("refresh_token")}}, "", "")
		if r.status != http.StatusUnauthorized {
			t.Fatalf("unauthenticated revoke = %d, want 401", r.status)
		}
		r = e.post("/revoke", url.Values{"token": {tr.str("refresh_token")}}, "app-a", "wrong")
		if r.status != http.StatusUnauthorized {
			t.Fatalf("revoke with a wrong secret = %d, want 401", r.status)
		}
	})
	t.Run("another client's token does nothing", func(t *testing.T) {
		if r := e.post("/revoke", url.Values{"token": {tr.str("refresh_token")}}, "app-b", secretB); r.status != http.StatusOK {
			t.Fatalf("revoke = %d, want 200", r.status)
		}
		if st, _ := e.userinfo(tr.str("access_token")); st != http.StatusOK {
			t.Fatalf("token revoked by another client: userinfo = %d", st)
		}
	})
	t.Run("unknown token gets 200", func(t *testing.T) {
		for _, tok := range []string{"nope", "AAAAAAAAAAAAAAAAAAAAAA.bbbb", "a.b.c"} {
			if r := e.post("/revoke", url.Values{"token": {tok}}, "app-a", secretA); r.status != http.StatusOK {
				t.Errorf("revoke(%q) = %d, want 200", tok, r.status)
			}
		}
	})
	t.Run("revoking the refresh token revokes its access tokens", func(t *testing.T) {
		if r := e.post("/revoke", url.Values{"token": {tr.str("refresh_token")}, "token_type_hint": {"refresh_token"}}, "app-a", secretA); r.status != http.StatusOK {
			t.Fatalf("revoke = %d", r.status)
		}
		if st, _ := e.userinfo(tr.str("access_token")); st != http.StatusUnauthorized {
			t.Errorf("userinfo after revocation = %d, want 401", st)
		}
		if r := e.refresh(tr.str("refresh_token"), "app-a", secretA); r.str("error") != "invalid_grant" {
			t.Errorf("refresh after revocation = %v", r.body)
		}
	})
}

func TestIntrospect_S15(t *testing.T) {
	e := newEnv(t)
	tr, _ := e.signIn()
	at := tr.str("access_token")
	if r := e.post("/introspect", url.Values{"token": {at}}, "", ""); r.status != http.StatusUnauthorized {
		t.Errorf("unauthenticated introspection = %d, want 401", r.status)
	}
	if r := e.post("/introspect", url.Values{"token": {at}, "client_id": {"pub"}}, "", ""); r.status != http.StatusUnauthorized {
		t.Errorf("public-client introspection = %d, want 401", r.status)
	}
	r := e.post("/introspect", url.Values{"token": {at}}, "app-a", secretA)
	if r.body["active"] != true || r.body["tid"] != "acme" || r.body["client_id"] != "app-a" {
		t.Fatalf("introspection = %v", r.body)
	}
	onlyInactive := func(name string, r tokenResp) {
		t.Helper()
		if r.status != http.StatusOK || r.body["active"] != false || len(r.body) != 1 {
			t.Errorf("%s: introspection = %d %v, want exactly {\"active\":false}", name, r.status, r.body)
		}
	}
	onlyInactive("garbage", e.post("/introspect", url.Values{"token": {"garbage"}}, "app-a", secretA))
	onlyInactive("foreign", e.post("/introspect", url.Values{"token": {at}}, "app-b", secretB))
	e.post("/revoke", url.Values{"token": {tr.str("refresh_token")}}, "app-a", secretA)
	onlyInactive("revoked", e.post("/introspect", url.Values{"token": {at}}, "app-a", secretA))
	tr2, _ := e.signIn()
	e.clock.advance(11 * 60e9)
	onlyInactive("expired", e.post("/introspect", url.Values{"token": {tr2.str("access_token")}}, "app-a", secretA))
}

func TestClientAuth_S16(t *testing.T) {
	e := newEnv(t)
	verifier, challenge := pkce()
	q := e.login(e.browser(), authParams(challenge))
	for _, tc := range []struct{ name, user, pass string }{
		{"wrong secret", "app-a", secretA + "x"},
		{"prefix of secret", "app-a", secretA[:10]},
		{"empty secret", "app-a", ""},
		{"unknown client", "zzz", secretA},
	} {
		r := e.post("/token", url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
			"redirect_uri": {appCB}, "code_verifier": {verifier}}, tc.user, tc.pass)
		if r.status != http.StatusUnauthorized || r.str("error") != "invalid_client" || r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: token = %d %v, want 401 invalid_client with WWW-Authenticate", tc.name, r.status, r.body)
		}
	}
	// client_secret_post works as well as basic.
	r := e.post("/token", url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
		"redirect_uri": {appCB}, "code_verifier": {verifier}, "client_id": {"app-a"}, "client_secret": {secretA}}, "", "")
	if r.status != http.StatusOK {
		t.Errorf("client_secret_post = %d %v", r.status, r.body)
	}
}
