package oidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// benchOP serves discovery and a JWKS with one key, for benchmarks (the
// fakeOP of the tests needs a *testing.T).
func benchOP(b *testing.B, pub crypto.PublicKey, alg string) *httptest.Server {
	b.Helper()
	var srv *httptest.Server
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": srv.URL, "authorization_endpoint": srv.URL + "/authorize", "token_endpoint": srv.URL + "/token",
			"jwks_uri": srv.URL + "/jwks", "id_token_signing_alg_values_supported": []string{alg},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: "k1", Algorithm: alg, Use: "sig"}}})
	})
	srv = httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	return srv
}

// BenchmarkVerifyIDToken measures upstream ID token validation as the
// callback does it (S20, S30, S32 checks, go-oidc signature verification,
// nonce, aud, azp, at_hash) for the two algorithms upstreams use most.
func BenchmarkVerifyIDToken(b *testing.B) {
	ecPriv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	rsaPriv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		alg    string
		method jwt.SigningMethod
		priv   crypto.Signer
	}{
		{"ES256", jwt.SigningMethodES256, ecPriv},
		{"RS256", jwt.SigningMethodRS256, rsaPriv},
	} {
		b.Run(tc.alg, func(b *testing.B) {
			srv := benchOP(b, tc.priv.Public(), tc.alg)
			c, err := New(Config{ID: "bench", Issuer: srv.URL, ClientID: "realmgate", ClientSecret: "secret"})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			md, err := c.discover(ctx)
			if err != nil {
				b.Fatal(err)
			}
			const accessToken = "upstream-access-token-0123456789"
			sum := sha256.Sum256([]byte(accessToken))
			now := time.Now()
			tok := jwt.NewWithClaims(tc.method, jwt.MapClaims{
				"iss": srv.URL, "sub": "acme-u-1001", "aud": "realmgate", "exp": now.Add(10 * time.Minute).Unix(),
				"iat": now.Unix(), "auth_time": now.Unix(), "nonce": "n-0123456789abcdef0123456789abcdef",
				"at_hash": base64.RawURLEncoding.EncodeToString(sum[:16]), "email": "alice@acme.test",
				"email_verified": true, "name": "Alice Anders", "groups": []string{"Finance-Admins"},
			})
			tok.Header["kid"] = "k1"
			raw, err := tok.SignedString(tc.priv)
			if err != nil {
				b.Fatal(err)
			}
			// The first verification fetches the JWKS.
			if _, err := c.verifyIDToken(ctx, md, raw, "n-0123456789abcdef0123456789abcdef", accessToken); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.verifyIDToken(ctx, md, raw, "n-0123456789abcdef0123456789abcdef", accessToken); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
