// Package oidc registers the "oidc" IdP type: any OpenID Connect provider
// (AD FS, Entra, Okta, Keycloak...), found by discovery at its issuer.
package oidc

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/idp"
	"github.com/realmgate/realmgate/providers"
	conn "github.com/realmgate/realmgate/providers/oidc"
)

// Name is the type's name in providers[].type.
const Name = "oidc"

// TenantPlaceholder marks a multi-tenant issuer template
// (https://login.microsoftonline.com/{tenantid}/v2.0).
const TenantPlaceholder = conn.TenantPlaceholder

func init() {
	idp.Register(idp.Type{
		ProviderType: config.ProviderType{Name: Name, OpenID: true,
			Fields: []string{"issuer", "client_id", "client_secret", "scopes", "allowed_tenants", "token_exchange", "userinfo"},
			Check: func(c *config.ProviderCheck) {
				if c.P.Issuer == "" {
					c.Problem("issuer", "is required for type oidc")
				}
				switch c.P.Userinfo {
				case "", conn.UserinfoAuto, conn.UserinfoAlways, conn.UserinfoNever:
				default:
					c.Problem("userinfo", "%q is not auto, always or never", c.P.Userinfo)
				}
				CheckAllowedTenants(c, strings.Contains(c.P.Issuer, TenantPlaceholder))
			},
			Warn: idp.WarnPublicClient},
		New: func(p *config.Provider, env idp.Env) (providers.Connector, error) {
			return conn.New(conn.Config{ID: p.ID, HTTPClient: env.HTTP, Issuer: p.Issuer, ClientID: p.ClientID,
				ClientSecret: p.ClientSecret, Scopes: p.Scopes, AllowedTenants: p.AllowedTenants, Userinfo: p.Userinfo, Logger: env.Logger})
		},
	})
}

// guidPattern matches an Entra tenant id.
var guidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// CheckAllowedTenants checks allowed_tenants: Entra directory ids, only
// with a multi-tenant issuer (multi).
func CheckAllowedTenants(c *config.ProviderCheck, multi bool) {
	if len(c.P.AllowedTenants) > 0 && !multi {
		c.Problem("allowed_tenants", "needs a multi-tenant issuer with %s (a pinned issuer is one tenant already)", TenantPlaceholder)
	}
	for i, t := range c.P.AllowedTenants {
		if !guidPattern.MatchString(t) {
			c.Problem(fmt.Sprintf("allowed_tenants[%d]", i), "%q is not an Entra tenant id (a GUID like 11111111-2222-3333-4444-555555555555)", t)
		}
	}
}
