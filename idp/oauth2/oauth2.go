// Package oauth2 registers the "oauth2" IdP type: a generic OAuth 2.0
// provider that describes the user at a userinfo endpoint.
package oauth2

import (
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/idp"
	"github.com/realmgate/realmgate/providers"
	conn "github.com/realmgate/realmgate/providers/oauth2"
)

// Name is the type's name in providers[].type.
const Name = "oauth2"

func init() {
	idp.Register(idp.Type{
		ProviderType: config.ProviderType{Name: Name,
			Fields: []string{"client_id", "client_secret", "scopes", "auth_url", "token_url", "userinfo_url"},
			Check: func(c *config.ProviderCheck) {
				for _, f := range []struct{ name, v string }{{"auth_url", c.P.AuthURL}, {"token_url", c.P.TokenURL}, {"userinfo_url", c.P.UserInfoURL}} {
					if f.v == "" {
						c.Problem(f.name, "is required for type oauth2")
					}
				}
			},
			Warn: idp.WarnPublicClient},
		New: func(p *config.Provider, env idp.Env) (providers.Connector, error) {
			return conn.New(conn.Config{ID: p.ID, HTTPClient: env.HTTP, ClientID: p.ClientID, ClientSecret: p.ClientSecret,
				Scopes: p.Scopes, AuthURL: p.AuthURL, TokenURL: p.TokenURL, UserInfoURL: p.UserInfoURL, Logger: env.Logger})
		},
	})
}
