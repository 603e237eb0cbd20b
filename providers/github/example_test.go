package github_test

import (
	"context"
	"fmt"
	"net/url"

	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/providers/github"
)

func Example() {
	c, err := github.New(github.Config{ID: "github", ClientID: "Iv1.abc", ClientSecret: "secret"})
	if err != nil {
		panic(err)
	}
	u, _, _ := c.LoginURL(context.Background(), providers.LoginRequest{State: "st", CodeVerifier: "v",
		CallbackURL: "https://login.example.test/callback/github"})
	p, _ := url.Parse(u)
	fmt.Println(p.Host, p.Path, p.Query().Get("scope"))
	// Output: github.com /login/oauth/authorize read:user user:email
}
