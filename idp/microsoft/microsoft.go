// Package microsoft registers the "microsoft" IdP type: Microsoft's
// OpenID Connect sign-in (Entra ID work or school accounts, personal
// Microsoft accounts), multi-tenant unless an issuer pins one directory.
package microsoft

import (
	"fmt"
	"strings"

	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/idp"
	idpoidc "github.com/realmgate/realmgate/idp/oidc"
	"github.com/realmgate/realmgate/providers"
	conn "github.com/realmgate/realmgate/providers/oidc"
)

// Name is the type's name in providers[].type.
const Name = "microsoft"

// Values of Provider.Accounts.
const (
	// AccountsAny takes work or school accounts and personal Microsoft
	// accounts through the common endpoint (the default).
	AccountsAny = "any"
	// AccountsWork takes work or school accounts only (the organizations endpoint).
	AccountsWork = "work"
	// AccountsPersonal takes personal Microsoft accounts only.
	AccountsPersonal = "personal"
)

// ConsumerTenant is the Entra tenant id (tid) of every personal Microsoft account.
const ConsumerTenant = "9188040d-6c67-4c5b-b112-36a304b66dad"

// Issuer is the Entra ID v2.0 multi-tenant issuer template.
const Issuer = "https://login.microsoftonline.com/" + conn.TenantPlaceholder + "/v2.0"

func init() {
	idp.Register(idp.Type{
		ProviderType: config.ProviderType{Name: Name, DisplayName: "Microsoft", OpenID: true,
			Fields: []string{"issuer", "client_id", "client_secret", "scopes", "allowed_tenants", "accounts", "token_exchange"},
			Check:  check},
		New: func(p *config.Provider, env idp.Env) (providers.Connector, error) {
			return conn.New(Config(p, env))
		},
	})
}

// multiTenant reports whether p signs in users of many Entra tenants: no
// pinned issuer, or an issuer with {tenantid}.
func multiTenant(p *config.Provider) bool {
	return p.Issuer == "" || strings.Contains(p.Issuer, conn.TenantPlaceholder)
}

func check(c *config.ProviderCheck) {
	p := c.P
	c.Required("client_secret", p.ClientSecret)
	multi := multiTenant(p)
	idpoidc.CheckAllowedTenants(c, multi)
	switch p.Accounts {
	case "", AccountsAny:
	case AccountsWork:
		for i, t := range p.AllowedTenants {
			if strings.EqualFold(t, ConsumerTenant) {
				c.Problem(fmt.Sprintf("allowed_tenants[%d]", i), "is the personal-accounts tenant, which accounts: work refuses")
			}
		}
	case AccountsPersonal:
		if len(p.AllowedTenants) > 0 {
			c.Problem("allowed_tenants", "has no effect with accounts: personal (one tenant, %s)", ConsumerTenant)
		}
	default:
		c.Problem("accounts", "unknown value %q: want any, work or personal", p.Accounts)
	}
	if p.Accounts != "" && !multi {
		c.Problem("accounts", "needs a multi-tenant issuer with %s (a pinned issuer is one tenant already)", conn.TenantPlaceholder)
	}
}

// Config maps a microsoft provider onto the OIDC connector. Without a
// pinned issuer it is Entra's multi-tenant template, checked against each
// token's tid (S23): accounts "any" (default) goes through the common
// endpoint and takes personal accounts too, "work" through organizations,
// and "personal" is the consumer tenant's own issuer.
func Config(p *config.Provider, env idp.Env) conn.Config {
	cfg := conn.Config{ID: p.ID, HTTPClient: env.HTTP, Issuer: p.Issuer, ClientID: p.ClientID, ClientSecret: p.ClientSecret,
		Scopes: p.Scopes, AllowedTenants: p.AllowedTenants, Logger: env.Logger}
	if cfg.Issuer == "" {
		cfg.Issuer = Issuer
	}
	if !strings.Contains(cfg.Issuer, conn.TenantPlaceholder) {
		return cfg // one pinned directory
	}
	switch p.Accounts {
	case "", AccountsAny:
		cfg.PersonalAccounts = true
	case AccountsPersonal:
		cfg.Issuer = strings.Replace(cfg.Issuer, conn.TenantPlaceholder, ConsumerTenant, 1)
		cfg.AllowedTenants = nil
	}
	return cfg
}
