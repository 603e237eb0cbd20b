package config_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	. "github.com/realmgate/realmgate/config"
)

// teBase is a tenant whose OIDC provider has token_exchange set to %s.
func teBase(provider, te string) string {
	return `issuer: https://login.example.com
tenants:
  - id: acme
    domains: [acme.example]
    providers:
      - id: acme-idp
` + provider + `        token_exchange:
` + te
}

const teOIDC = `        type: oidc
        issuer: https://idp.acme.example
        client_id: rg
        client_secret: s
`

func TestTokenExchange_Parse(t *testing.T) {
	c, err := Parse("te.yaml", []byte(teBase(teOIDC, "          enabled: true\n          accept: [id_token, jwt]\n          audiences: [api://acme]\n")), lookupMap(nil))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	te := c.Tenants[0].Providers[0].TokenExchange
	if te == nil || !te.Enabled || !slices.Equal(te.AcceptKinds(), []string{"id_token", "jwt"}) || te.Audiences[0] != "api://acme" {
		t.Fatalf("token_exchange = %+v", te)
	}
	c, err = Parse("te.yaml", []byte(teBase(teOIDC, "          enabled: true\n")), lookupMap(nil))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got := c.Tenants[0].Providers[0].TokenExchange.AcceptKinds(); !slices.Equal(got, []string{"id_token"}) {
		t.Errorf("default accept = %v, want [id_token]", got)
	}
}

func TestTokenExchange_Problems(t *testing.T) {
	saml := "        type: saml\n        metadata_url: https://idp.acme.example/metadata\n"
	for _, tc := range []struct {
		name, provider, te, field, msg string
	}{
		{"unknown kind", teOIDC, "          enabled: true\n          accept: [saml2]\n", "token_exchange.accept[0]", "unknown token kind"},
		{"jwt without audiences", teOIDC, "          enabled: true\n          accept: [jwt]\n", "token_exchange.audiences", "required"},
		{"not an oidc type", saml, "          enabled: true\n", "token_exchange", "not used by providers of type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("te.yaml", []byte(teBase(tc.provider, tc.te)), lookupMap(nil))
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Parse = %v, want a ValidationError", err)
			}
			for _, p := range ve.Problems {
				if strings.HasSuffix(p.Field, tc.field) && strings.Contains(p.Message, tc.msg) {
					return
				}
			}
			t.Errorf("Parse problems = %v, want ...%s: ...%s...", err, tc.field, tc.msg)
		})
	}
}
