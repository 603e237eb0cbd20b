// Package github registers the "github" IdP type: GitHub's OAuth 2.0
// sign-in (not OpenID Connect).
package github

import (
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/idp"
	"github.com/realmgate/realmgate/providers"
	conn "github.com/realmgate/realmgate/providers/github"
)

// Name is the type's name in providers[].type.
const Name = "github"

func init() {
	idp.Register(idp.Type{
		ProviderType: config.ProviderType{Name: Name, DisplayName: "GitHub",
			Fields: []string{"client_id", "client_secret", "scopes"},
			Check:  func(c *config.ProviderCheck) { c.Required("client_secret", c.P.ClientSecret) }},
		New: func(p *config.Provider, env idp.Env) (providers.Connector, error) {
			return conn.New(conn.Config{ID: p.ID, HTTPClient: env.HTTP, ClientID: p.ClientID, ClientSecret: p.ClientSecret,
				Scopes: p.Scopes, Logger: env.Logger})
		},
	})
}
