package config_test

import (
	"fmt"

	"github.com/realmgate/realmgate/config"
)

func ExampleParse() {
	const file = `
issuer: https://login.example.com
clients:
  - id: notes
    secret: ${NOTES_SECRET}
    redirect_uris: ["https://notes.example.com/callback"]
    allowed_tenants: ["*"]
tenants:
  - id: contoso
    domains: ["contoso.com"]
    providers:
      - id: contoso-entra
        type: oidc
        issuer: https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/v2.0
        client_id: realmgate
        client_secret: ${ENTRA_SECRET}
`
	env := map[string]string{"NOTES_SECRET": "a-long-random-client-secret-0123456789", "ENTRA_SECRET": "entra"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	cfg, err := config.Parse("realmgate.yaml", []byte(file), lookup)
	if err != nil {
		fmt.Println(err)
		return
	}
	tenant, idp := cfg.Provider("contoso-entra")
	fmt.Println(cfg.Store.Type, cfg.Keys.Algorithm, cfg.Tokens.AccessTokenLifetime, cfg.Tokens.RefreshTokenLifetime)
	fmt.Println(tenant.ID, idp.ClientSecret, idp.Scopes)

	// Every problem at once, each with file, line and field.
	const bad = `issuer: http://login.example.com
listen: nowhere
keys:
  algoritm: ES256
tenants:
  - id: contoso
    providers:
      - id: contoso-entra
        type: oidc
        client_secret: ${ENTRA_SECRET}
`
	_, err = config.Parse("bad.yaml", []byte(bad), nil)
	fmt.Println(err)
	// Output:
	// memory ES256 10m 720h
	// contoso entra [openid profile email]
	// bad.yaml:1: issuer: "http://login.example.com" must use https (http is allowed only on 127.0.0.1, [::1] or localhost)
	// bad.yaml:2: listen: "nowhere" is not host:port, like 127.0.0.1:8080
	// bad.yaml:4: keys.algoritm: unknown field "algoritm" (did you mean "algorithm"?)
	// bad.yaml:8: tenants[0].providers[0].client_id: is required for type "oidc"
	// bad.yaml:8: tenants[0].providers[0].issuer: is required for type oidc
	// bad.yaml:10: tenants[0].providers[0].client_secret: environment variable ENTRA_SECRET is not set
}
