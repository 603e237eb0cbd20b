package config_test

import (
	"errors"
	"strings"
	"testing"

	. "github.com/realmgate/realmgate/config"
)

const testJWKX, testJWKY = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"

func TestValidate_ClientAuth(t *testing.T) {
	ecKey := JWK{Kty: "EC", Crv: "P-256", X: testJWKX, Y: testJWKY, Kid: "k1", Alg: "ES256"}
	machine := func(c *Config) *Client {
		c.Clients = append(c.Clients, Client{ID: "sync", Secret: "0123456789abcdef0123456789abcdef",
			GrantTypes: []string{GrantClientCredentials}, Scopes: []string{"orders.read"}, Audiences: []string{"app"}})
		return &c.Clients[len(c.Clients)-1]
	}
	tests := []struct {
		name      string
		mutate    func(c *Config)
		wantField string // "" means valid
		wantMsg   string
	}{
		{"machine client without redirect URIs", func(c *Config) { machine(c) }, "", ""},
		{"tenant client", func(c *Config) { machine(c).Tenant = "acme" }, "", ""},
		{"tenant client allowing its tenant", func(c *Config) {
			cl := machine(c)
			cl.Tenant, cl.AllowedTenants = "acme", []string{"acme"}
		}, "", ""},
		{"tenant client allowing another tenant", func(c *Config) {
			cl := machine(c)
			cl.Tenant, cl.AllowedTenants = "acme", []string{"*"}
		}, "clients[1].allowed_tenants", "may allow only that tenant"},
		{"unknown tenant", func(c *Config) { machine(c).Tenant = "nope" }, "clients[1].tenant", `unknown tenant "nope"`},
		{"unknown grant", func(c *Config) {
			cl := machine(c)
			cl.GrantTypes, cl.RedirectURIs = []string{GrantClientCredentials, "password"}, []string{"https://app.example.com/cb"}
		}, "clients[1].grant_types[1]", `unknown grant type "password"`},
		{"public client_credentials", func(c *Config) { machine(c).Secret = "" }, "clients[1].grant_types", "needs an authenticated client"},
		{"scopes without client_credentials", func(c *Config) { c.Clients[0].Scopes = []string{"x"} }, "clients[0].scopes", "client_credentials"},
		{"openid scope", func(c *Config) { machine(c).Scopes = []string{"openid"} }, "clients[1].scopes[0]", "no ID token"},
		{"scope with a space", func(c *Config) { machine(c).Scopes = []string{"a b"} }, "clients[1].scopes[0]", "not a scope token"},
		{"unknown method", func(c *Config) { machine(c).TokenEndpointAuthMethod = "tls_client_auth" }, "clients[1].token_endpoint_auth_method", "unknown method"},
		{"secret method without secret", func(c *Config) {
			cl := machine(c)
			cl.Secret, cl.TokenEndpointAuthMethod = "", AuthClientSecretPost
		}, "clients[1].token_endpoint_auth_method", "needs a secret"},
		{"none with a secret", func(c *Config) { c.Clients[0].TokenEndpointAuthMethod = AuthNone }, "clients[0].secret", "has no secret"},
		{"private_key_jwt with jwks", func(c *Config) {
			cl := machine(c)
			cl.Secret, cl.TokenEndpointAuthMethod, cl.JWKS = "", AuthPrivateKeyJWT, &JWKS{Keys: []JWK{ecKey}}
		}, "", ""},
		{"private_key_jwt with jwks_uri", func(c *Config) {
			cl := machine(c)
			cl.Secret, cl.TokenEndpointAuthMethod, cl.JWKSURI = "", AuthPrivateKeyJWT, "https://sync.example/jwks"
		}, "", ""},
		{"private_key_jwt without keys", func(c *Config) {
			cl := machine(c)
			cl.Secret, cl.TokenEndpointAuthMethod = "", AuthPrivateKeyJWT
		}, "clients[1].token_endpoint_auth_method", "exactly one of jwks and jwks_uri"},
		{"private_key_jwt with a secret", func(c *Config) {
			cl := machine(c)
			cl.TokenEndpointAuthMethod, cl.JWKSURI = AuthPrivateKeyJWT, "https://sync.example/jwks"
		}, "clients[1].secret", "has no secret"},
		{"jwks without private_key_jwt", func(c *Config) { machine(c).JWKS = &JWKS{Keys: []JWK{ecKey}} }, "clients[1].jwks", "only with"},
		{"jwks_uri http", func(c *Config) {
			cl := machine(c)
			cl.Secret, cl.TokenEndpointAuthMethod, cl.JWKSURI = "", AuthPrivateKeyJWT, "http://sync.example/jwks"
		}, "clients[1].jwks_uri", "must use https"},
		{"symmetric key", func(c *Config) {
			cl := machine(c)
			cl.Secret, cl.TokenEndpointAuthMethod, cl.JWKS = "", AuthPrivateKeyJWT, &JWKS{Keys: []JWK{{Kty: "oct"}}}
		}, "clients[1].jwks", ""},
		{"broken key", func(c *Config) {
			k := ecKey
			k.Y = "AAAA"
			cl := machine(c)
			cl.Secret, cl.TokenEndpointAuthMethod, cl.JWKS = "", AuthPrivateKeyJWT, &JWKS{Keys: []JWK{k}}
		}, "clients[1].jwks", ""},
		{"encryption key", func(c *Config) {
			k := ecKey
			k.Use = "enc"
			cl := machine(c)
			cl.Secret, cl.TokenEndpointAuthMethod, cl.JWKS = "", AuthPrivateKeyJWT, &JWKS{Keys: []JWK{k}}
		}, "clients[1].jwks", "want sig"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mutate(c)
			err := c.Validate()
			if tc.wantField == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v, want *ValidationError", err)
			}
			if len(ve.Problems) != 1 {
				t.Errorf("Validate() reported %d problems, want 1:\n%v", len(ve.Problems), err)
			}
			if p := ve.Problems[0]; p.Field != tc.wantField || !strings.Contains(p.Message, tc.wantMsg) {
				t.Errorf("Validate() = %q, want %s: ...%s...", p, tc.wantField, tc.wantMsg)
			}
		})
	}
}
