package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/template"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/realmgate/realmgate/internal/e2etest"
)

// m2mConfigTemplate: tenant acme owns two API clients, one with a secret,
// one with private_key_jwt; the tenant's rule gives them a role. orders-api
// is the API they call, which introspects their tokens.
var m2mConfigTemplate = template.Must(template.New("m2m.yaml").Parse(`# written by the e2e tests
issuer: {{.Issuer}}
rate_limits:
  starts_per_ip: "off"
  failures_per_ip: "off"
ops:
  listen: 127.0.0.1:0
store:
  type: memory
keys:
  algorithm: ES256
  secret: "{{.Secret}}"
clients:
  - id: orders-api
    secret: "{{.APISecret}}"
    redirect_uris: ["https://orders.example/callback"]
  - id: acme-sync
    tenant: acme
    secret: "{{.ClientSecret}}"
    grant_types: [client_credentials]
    scopes: [orders.read, orders.write]
    audiences: [orders-api]
  - id: acme-signer
    tenant: acme
    grant_types: [client_credentials]
    token_endpoint_auth_method: private_key_jwt
    jwks: {{.JWKS}}
    scopes: [orders.read]
    audiences: [orders-api]
tenants:
  - id: acme
    name: ACME Corporation
    domains: ["acme.test"]
    rules:
      - name: machines sync orders
        if: client == "acme-sync" || client == "acme-signer"
        add:
          roles: '"orders-sync"'
`))

type m2mConfig struct {
	Issuer, Secret, APISecret, ClientSecret, JWKS string
}

// m2mResult is what m2m.mjs prints.
type m2mResult struct {
	Metadata struct {
		GrantTypes []string `json:"grant_types_supported"`
		Methods    []string `json:"token_endpoint_auth_methods_supported"`
		Algs       []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	} `json:"metadata"`
	Response map[string]any `json:"response"`
	Header   map[string]any `json:"header"`
	Payload  map[string]any `json:"payload"`
	SecondOK bool           `json:"second_ok"`
}

// TestE2E_ClientCredentials runs realmgate as a process and obtains
// client_credentials tokens with panva's openid-client (client_secret_basic
// and private_key_jwt; it verifies the tokens against the JWKS) and with
// Go's golang.org/x/oauth2/clientcredentials; the API introspects them.
func TestE2E_ClientCredentials(t *testing.T) {
	e2etest.Need(t)
	addr := e2etest.FreeAddr(t)
	issuer := "http://" + addr
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	priv := jose.JSONWebKey{Key: key, KeyID: "signer-1", Algorithm: "ES256", Use: "sig"}
	pubSet, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{priv.Public()}})
	privJSON, _ := json.Marshal(priv)
	privFile := filepath.Join(t.TempDir(), "signer.jwk")
	if err := os.WriteFile(privFile, privJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := m2mConfig{Issuer: issuer, Secret: randomString(t, 32), APISecret: randomString(t, 24),
		ClientSecret: randomString(t, 24), JWKS: string(pubSet)}
	path := e2etest.WriteConfig(t, m2mConfigTemplate, cfg)
	p := e2etest.Start(t, "realmgate", exec.Command(env.binary, "serve", "--config", path, "--listen", addr, "--log-format", "text"))
	p.WaitReady(t, issuer+"/readyz")

	check := func(t *testing.T, what string, claims map[string]any, sub, scope string) {
		t.Helper()
		checkClaims(t, what, claims, map[string]any{"iss": issuer, "sub": sub, "client_id": sub, "aud": "orders-api",
			"tid": "acme", "scope": scope})
		checkRoles(t, what, claims, "orders-sync")
	}

	t.Run("openid-client client_secret_basic", func(t *testing.T) {
		var res m2mResult
		runNode(t, &res, "m2m.mjs", "--issuer", issuer, "--client-id", "acme-sync", "--client-secret="+cfg.ClientSecret)
		if !slices.Contains(res.Metadata.GrantTypes, "client_credentials") || !slices.Contains(res.Metadata.Methods, "private_key_jwt") {
			t.Errorf("discovery metadata = %+v, want client_credentials and private_key_jwt", res.Metadata)
		}
		if res.Header["typ"] != "at+jwt" {
			t.Errorf("token header = %v, want typ at+jwt", res.Header)
		}
		check(t, "openid-client token", res.Payload, "acme-sync", "orders.read orders.write")
		for _, k := range []string{"refresh_token", "id_token"} {
			if _, ok := res.Response[k]; ok {
				t.Errorf("response has %s; RFC 6749 §4.4.3 says none", k)
			}
		}
		if !res.SecondOK {
			t.Errorf("second request gave no new token")
		}
	})
	t.Run("openid-client private_key_jwt", func(t *testing.T) {
		var res m2mResult
		runNode(t, &res, "m2m.mjs", "--issuer", issuer, "--client-id", "acme-signer", "--private-jwk", privFile, "--scope", "orders.read")
		check(t, "openid-client private_key_jwt token", res.Payload, "acme-signer", "orders.read")
		if !res.SecondOK {
			t.Errorf("second request (a fresh assertion) gave no new token")
		}
	})
	t.Run("x/oauth2 clientcredentials", func(t *testing.T) {
		cc := clientcredentials.Config{ClientID: "acme-sync", ClientSecret: cfg.ClientSecret, TokenURL: issuer + "/token",
			Scopes: []string{"orders.read"}, EndpointParams: url.Values{"audience": {"orders-api"}}}
		tok, err := cc.Token(context.Background())
		if err != nil {
			t.Fatalf("clientcredentials.Token: %v", err)
		}
		if tok.RefreshToken != "" || !strings.EqualFold(tok.TokenType, "bearer") || tok.Expiry.IsZero() {
			t.Errorf("token = type %q, refresh %q, expiry %v; want Bearer, none, set", tok.TokenType, tok.RefreshToken, tok.Expiry)
		}
		// The API introspects the token (RFC 7662) as a client of realmgate.
		resp, err := http.PostForm(issuer+"/introspect", url.Values{"token": {tok.AccessToken},
			"client_id": {"orders-api"}, "client_secret": {cfg.APISecret}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var in map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&in); err != nil {
			t.Fatal(err)
		}
		if in["active"] != true {
			t.Fatalf("introspection = %v, want active", in)
		}
		check(t, "introspection", in, "acme-sync", "orders.read")
		// An HTTP client from the same config carries the token.
		if c := cc.Client(context.Background()); c == nil {
			t.Fatal("clientcredentials.Client = nil")
		}
	})
	t.Run("x/oauth2 wrong secret", func(t *testing.T) {
		cc := clientcredentials.Config{ClientID: "acme-sync", ClientSecret: "wrong", TokenURL: issuer + "/token"}
		if _, err := cc.Token(context.Background()); err == nil || !strings.Contains(err.Error(), "invalid_client") {
			t.Fatalf("clientcredentials.Token with a wrong secret = %v, want invalid_client", err)
		}
	})
}
