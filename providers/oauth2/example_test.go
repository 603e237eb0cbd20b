package oauth2_test

import (
	"context"
	"fmt"
	"net/url"

	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/providers/oauth2"
)

func Example() {
	c, err := oauth2.New(oauth2.Config{ID: "acme", ClientID: "realmgate", ClientSecret: "s",
		AuthURL: "https://auth.acme.example/authorize", TokenURL: "https://auth.acme.example/token",
		UserInfoURL: "https://api.acme.example/me", Mapping: oauth2.Mapping{Subject: "id", Email: "mail"}})
	if err != nil {
		panic(err)
	}
	u, _, _ := c.LoginURL(context.Background(), providers.LoginRequest{State: "st", CodeVerifier: "v",
		CallbackURL: "https://login.example.test/callback/acme"})
	p, _ := url.Parse(u)
	fmt.Println(p.Host, p.Query().Get("response_type"), p.Query().Get("code_challenge_method"))
	// Output: auth.acme.example code S256
}
