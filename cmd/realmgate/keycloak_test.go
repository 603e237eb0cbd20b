package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/idp"
	"github.com/realmgate/realmgate/internal/devidp"
	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/providers/oidc"
)

// keycloakType is a whole IdP type, as a type's package holds it: a
// Keycloak realm is an OpenID Provider at <base_url>/realms/<realm>, so
// the type takes those two settings, checks them, and derives the issuer.
// In the tree it would be package idp/keycloak, whose init is the
// Register call below, and one blank import line in idp/builtin: nothing
// else changes (config, assemble, admin, openapi name no type).
var keycloakType = idp.Type{
	ProviderType: config.ProviderType{Name: "keycloak", DisplayName: "Keycloak", OpenID: true,
		Fields: []string{"client_id", "client_secret", "scopes"}, Settings: []string{"base_url", "realm"},
		Check: func(c *config.ProviderCheck) {
			c.Required("settings.base_url", c.P.Settings["base_url"])
			c.URL("settings.base_url", c.P.Settings["base_url"])
			if r := c.P.Settings["realm"]; r == "" || strings.ContainsAny(r, "/?#% ") {
				c.Problem("settings.realm", "want the realm's name, like acme, got %q", r)
			}
		}},
	New: func(p *config.Provider, env idp.Env) (providers.Connector, error) {
		return oidc.New(oidc.Config{ID: p.ID, HTTPClient: env.HTTP, Issuer: keycloakIssuer(p), ClientID: p.ClientID,
			ClientSecret: p.ClientSecret, Scopes: p.Scopes, Logger: env.Logger})
	},
}

// keycloakIssuer is the realm's issuer.
func keycloakIssuer(p *config.Provider) string {
	return strings.TrimSuffix(p.Settings["base_url"], "/") + "/realms/" + p.Settings["realm"]
}

func init() { idp.Register(keycloakType) }

// keycloakFile is a configuration with one keycloak provider.
const keycloakFile = `issuer: %s
outbound:
  allow_loopback: true # the fake Keycloak is on loopback
clients:
  - id: app
    secret: %s
    redirect_uris: [%q]
    allowed_tenants: ["*"]
tenants:
  - id: kc
    domains: [kc.test]
    providers:
      - id: kc-idp
        type: keycloak
        client_id: realmgate
        client_secret: kc-upstream-secret
        settings:
          base_url: %s
          realm: %s
`

// TestIdPRegistry_NewTypeInOnePackage: a type registered by its own code
// alone is validated (its settings, at file:line), built, offered for
// onboarding, and signs users in, through a fake Keycloak on loopback
// whose realm lives at <base>/realms/acme.
func TestIdPRegistry_NewTypeInOnePackage(t *testing.T) {
	ctx := context.Background()
	lnB, lnIdP := listen(t), listen(t)
	issuer, base := "http://"+lnB.Addr().String(), "http://"+lnIdP.Addr().String()
	kc, err := devidp.New(devidp.Options{BaseURL: base + "/realms", DevMode: true, AutoApprove: "*", Algorithm: "ES256",
		Realms: []devidp.Realm{{Name: "acme", Clients: []devidp.Client{{ID: "realmgate", Secret: "kc-upstream-secret",
			RedirectURIs: []string{issuer + "/callback/kc-idp"}}},
			Users: []devidp.User{{Subject: "kim-1", Email: "kim@kc.test", EmailVerified: true, Name: "Kim"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, lnIdP, kc.Handler())
	load := func(realm string) (*config.Config, error) {
		path := filepath.Join(t.TempDir(), "realmgate.yaml")
		if err := os.WriteFile(path, fmt.Appendf(nil, keycloakFile, issuer, appSecret, appCallback, base, realm), 0o600); err != nil {
			t.Fatal(err)
		}
		return config.Load(path)
	}

	t.Run("validated by its own checks", func(t *testing.T) {
		_, err := load("a/b")
		var ve *config.ValidationError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), "realmgate.yaml:19: tenants[0].providers[0].settings.realm: want the realm's name") {
			t.Fatalf("Load(realm a/b) = %v, want the type's problem at its line", err)
		}
	})

	cfg, err := load("acme")
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.Tenants[0].Providers[0]; p.Name != "Keycloak" || !slices.Equal(p.Scopes, config.DefaultScopes) {
		t.Errorf("defaults: name %q, scopes %v; want Keycloak and the OpenID defaults", p.Name, p.Scopes)
	}
	o, ok := idpOnboarder{}.Onboarding(issuer, cfg.Tenants[0].Providers[0])
	if !ok || o.RedirectURI != issuer+"/callback/kc-idp" || len(o.Scopes) == 0 {
		t.Errorf("onboarding = %+v, %v; want the callback and scopes", o, ok)
	}
	srv, err := buildBroker(ctx, cfg, memstore.New(), slog.New(slog.NewTextHandler(io.Discard, nil)), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	serve(t, lnB, srv.Handler())
	claims, err := signIn(issuer, "kim@kc.test")
	if err != nil {
		t.Fatalf("sign-in through the keycloak type: %v", err)
	}
	if claims["email"] != "kim@kc.test" || claims["tid"] != "kc" || claims["idp"] != "kc-idp" {
		t.Errorf("ID token claims %v: want kim@kc.test of tenant kc through kc-idp", claims)
	}
}
