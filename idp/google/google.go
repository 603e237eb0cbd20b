// Package google registers the "google" IdP type: Google's OpenID Connect
// sign-in, optionally limited to one Google Workspace domain.
package google

import (
	"cmp"

	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/idp"
	"github.com/realmgate/realmgate/providers"
	conn "github.com/realmgate/realmgate/providers/oidc"
)

// Name is the type's name in providers[].type.
const Name = "google"

// Issuer is Google's OpenID issuer.
const Issuer = "https://accounts.google.com"

func init() {
	idp.Register(idp.Type{
		ProviderType: config.ProviderType{Name: Name, DisplayName: "Google", OpenID: true,
			Fields: []string{"client_id", "client_secret", "scopes", "hosted_domain", "token_exchange"},
			Check: func(c *config.ProviderCheck) {
				c.Required("client_secret", c.P.ClientSecret)
				if h := c.P.HostedDomain; h != "" && !config.IsDomainName(h) {
					c.Problem("hosted_domain", "%q is not a domain name like example.com", h)
				}
			}},
		// Google's issuer is fixed (a Provider built in code may override it
		// for tests). The hd claim stays in the upstream claims for rules;
		// hosted_domain makes it mandatory.
		New: func(p *config.Provider, env idp.Env) (providers.Connector, error) {
			return conn.New(conn.Config{ID: p.ID, HTTPClient: env.HTTP, Issuer: cmp.Or(p.Issuer, Issuer), ClientID: p.ClientID,
				ClientSecret: p.ClientSecret, Scopes: p.Scopes, HostedDomain: p.HostedDomain, Logger: env.Logger})
		},
	})
}
