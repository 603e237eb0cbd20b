package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
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
{{if .AdminAddr}}admin_api:
  listen: {{.AdminAddr}}
  tokens:
    - name: acme-admin
      token: "{{.AdminToken}}"
      tenant: acme
{{end}}tenants:
  - id: acme
    name: ACME Corporation
    domains: ["acme.test"]
    rules:
      - name: machines sync orders
        if: client == "acme-sync" || client == "acme-signer" || client.startsWith("dcr-")
        add:
          roles: '"orders-sync"'
`))

type m2mConfig struct {
	Issuer, Secret, APISecret, ClientSecret, JWKS string
	AdminAddr, AdminToken                         string // the admin API, for dynamic registration
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

// TestE2E_DynamicClientRegistration: a tenant admin creates an initial
// access token through the admin API; a developer registers an API client
// with it (RFC 7591) at the discovered registration_endpoint, obtains a
// client_credentials token with x/oauth2/clientcredentials carrying the
// tenant, reads and updates the registration and deletes it with the
// registration access token (RFC 7592); the deleted client gets no token.
func TestE2E_DynamicClientRegistration(t *testing.T) {
	e2etest.Need(t)
	addr, adminAddr := e2etest.FreeAddr(t), e2etest.FreeAddr(t)
	issuer := "http://" + addr
	cfg := m2mConfig{Issuer: issuer, Secret: randomString(t, 32), APISecret: randomString(t, 24),
		ClientSecret: randomString(t, 24), JWKS: `{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`,
		AdminAddr: adminAddr, AdminToken: randomString(t, 40)}
	path := e2etest.WriteConfig(t, m2mConfigTemplate, cfg)
	p := e2etest.Start(t, "realmgate", exec.Command(env.binary, "serve", "--config", path, "--listen", addr, "--log-format", "text"))
	p.WaitReady(t, issuer+"/readyz")

	call := func(t *testing.T, method, u, token string, body any, out any) int {
		t.Helper()
		var r io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			r = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, u, r)
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if out != nil && len(raw) > 0 {
			if err := json.Unmarshal(raw, out); err != nil {
				t.Fatalf("%s %s: %q is not JSON", method, u, raw)
			}
		}
		return resp.StatusCode
	}
	var disc struct {
		Registration string `json:"registration_endpoint"`
	}
	call(t, "GET", issuer+"/.well-known/openid-configuration", "", nil, &disc)
	if disc.Registration != issuer+"/register" {
		t.Fatalf("registration_endpoint = %q, want %s/register", disc.Registration, issuer)
	}
	var iat struct {
		Token    string `json:"token"`
		Endpoint string `json:"registration_endpoint"`
	}
	if code := call(t, "POST", "http://"+adminAddr+"/v1/tenants/acme/registration-tokens", cfg.AdminToken, map[string]any{"expires_in": 3600}, &iat); code != http.StatusCreated || iat.Token == "" {
		t.Fatalf("create initial access token = %d %+v", code, iat)
	}
	if iat.Endpoint != issuer+"/register/acme" {
		t.Errorf("registration_endpoint of the token = %q, want %s/register/acme", iat.Endpoint, issuer)
	}
	meta := map[string]any{"grant_types": []string{"client_credentials"}, "scope": "orders.read", "client_name": "nightly export"}
	if code := call(t, "POST", disc.Registration, "", meta, nil); code != http.StatusUnauthorized {
		t.Errorf("registration without a token = %d, want 401", code)
	}
	if code := call(t, "POST", issuer+"/register/globex", iat.Token, meta, nil); code != http.StatusUnauthorized {
		t.Errorf("registration for another tenant = %d, want 401", code)
	}
	var bad map[string]any
	if code := call(t, "POST", disc.Registration, iat.Token, map[string]any{"redirect_uris": []string{"http://evil.example/cb"}}, &bad); code != http.StatusBadRequest || bad["error"] != "invalid_redirect_uri" {
		t.Errorf("registration with an http redirect URI = %d %v, want 400 invalid_redirect_uri", code, bad)
	}
	var reg struct {
		ClientID, ClientSecret, RegistrationAccessToken, RegistrationClientURI string
		GrantTypes                                                             []string `json:"grant_types"`
	}
	var raw map[string]any
	if code := call(t, "POST", disc.Registration, iat.Token, meta, &raw); code != http.StatusCreated {
		t.Fatalf("registration = %d %v, want 201", code, raw)
	}
	b, _ := json.Marshal(raw)
	_ = json.Unmarshal(b, &struct {
		ClientID                *string `json:"client_id"`
		ClientSecret            *string `json:"client_secret"`
		RegistrationAccessToken *string `json:"registration_access_token"`
		RegistrationClientURI   *string `json:"registration_client_uri"`
	}{&reg.ClientID, &reg.ClientSecret, &reg.RegistrationAccessToken, &reg.RegistrationClientURI})
	if reg.ClientID == "" || reg.ClientSecret == "" || reg.RegistrationAccessToken == "" || !strings.HasPrefix(reg.RegistrationClientURI, issuer+"/register/acme/") {
		t.Fatalf("registration response = %v", raw)
	}
	// The registered client is live on the broker once the admin state is applied.
	cc := clientcredentials.Config{ClientID: reg.ClientID, ClientSecret: reg.ClientSecret, TokenURL: issuer + "/token"}
	var tok *oauth2.Token
	var err error
	eventually(t, 10*time.Second, "the registered client gets a token", func() bool {
		tok, err = cc.Token(context.Background())
		return err == nil
	})
	claims := jwtClaims(t, tok.AccessToken)
	checkClaims(t, "registered client's token", claims, map[string]any{"sub": reg.ClientID, "tid": "acme", "scope": "orders.read"})
	checkRoles(t, "registered client's token", claims, "orders-sync")

	var read map[string]any
	if code := call(t, "GET", reg.RegistrationClientURI, reg.RegistrationAccessToken, nil, &read); code != http.StatusOK || read["client_id"] != reg.ClientID {
		t.Errorf("RFC 7592 read = %d %v", code, read)
	}
	if code := call(t, "GET", reg.RegistrationClientURI, iat.Token, nil, nil); code != http.StatusUnauthorized {
		t.Errorf("read with the initial access token = %d, want 401", code)
	}
	upd := map[string]any{"client_id": reg.ClientID, "grant_types": []string{"client_credentials"}, "scope": "orders.read orders.write"}
	if code := call(t, "PUT", reg.RegistrationClientURI, reg.RegistrationAccessToken, upd, &read); code != http.StatusOK || read["scope"] != "orders.read orders.write" {
		t.Errorf("RFC 7592 update = %d %v", code, read)
	}
	if code := call(t, "DELETE", reg.RegistrationClientURI, reg.RegistrationAccessToken, nil, nil); code != http.StatusNoContent {
		t.Errorf("RFC 7592 delete = %d, want 204", code)
	}
	eventually(t, 10*time.Second, "the deleted client gets no token", func() bool {
		_, err := cc.Token(context.Background())
		return err != nil && strings.Contains(err.Error(), "invalid_client")
	})
	if code := call(t, "GET", reg.RegistrationClientURI, reg.RegistrationAccessToken, nil, nil); code != http.StatusUnauthorized {
		t.Errorf("read after delete = %d, want 401", code)
	}
}

// jwtClaims decodes a JWT's payload without verifying it (the tests above
// verify realmgate's tokens with openid-client and jose).
func jwtClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("%q is not a JWT", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// eventually polls cond until it holds or the generous deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
