package oidc

import (
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/realmgate/realmgate/providers"
)

// oauth2AuthURL is how LoginURL built the authorization request before
// authURL: oauth2.Config.AuthCodeURL with the same options.
func oauth2AuthURL(c *Connector, endpoint string, req providers.LoginRequest) string {
	conf := oauth2.Config{ClientID: c.clientID, Endpoint: oauth2.Endpoint{AuthURL: endpoint},
		RedirectURL: req.CallbackURL, Scopes: c.scopes}
	var opts []oauth2.AuthCodeOption
	for k, v := range c.extra {
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}
	opts = append(opts, oauth2.S256ChallengeOption(req.CodeVerifier), gooidc.Nonce(req.Nonce))
	if req.LoginHint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", req.LoginHint))
	}
	if req.ForceLogin {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "login"))
	}
	if req.MaxAge > 0 {
		opts = append(opts, oauth2.SetAuthURLParam("max_age", "7"))
	}
	if len(req.ACRValues) > 0 {
		opts = append(opts, oauth2.SetAuthURLParam("acr_values", "a b"))
	}
	return conf.AuthCodeURL(req.State, opts...)
}

// TestAuthURL_SameAsOAuth2: the authorization request LoginURL sends is
// byte for byte what oauth2.Config.AuthCodeURL built, extra parameters
// (which may replace ours, as before) and escapes included.
func TestAuthURL_SameAsOAuth2(t *testing.T) {
	base := providers.LoginRequest{State: "st&=ate", Nonce: "n+/ nce", CodeVerifier: "v-._~verifier0123456789012345678901234567",
		CallbackURL: "https://rg.test/callback/acme?x=1 é"}
	full := base
	full.LoginHint, full.ForceLogin, full.MaxAge, full.ACRValues = "alice@acme.test", true, 7*time.Second, []string{"a", "b"}
	tests := []struct {
		name     string
		c        *Connector
		endpoint string
		req      providers.LoginRequest
	}{
		{"minimal", &Connector{clientID: "app", scopes: []string{"openid"}}, "https://idp.test/authorize", base},
		{"every option", &Connector{clientID: "app id", scopes: []string{"openid", "email", "profile"}}, "https://idp.test/authorize", full},
		{"endpoint with a query", &Connector{clientID: "app"}, "https://idp.test/auth?tenant=acme", full},
		{"no scopes", &Connector{clientID: "app"}, "https://idp.test/authorize", base},
		{"extra parameters", &Connector{clientID: "app", scopes: []string{"openid"},
			extra: map[string]string{"domain_hint": "acme.test", "resource": "urn:x y", "audience": "api"}}, "https://idp.test/authorize", full},
		{"extra parameters replacing ours", &Connector{clientID: "app", scopes: []string{"openid"},
			extra: map[string]string{"client_id": "other", "scope": "openid x", "prompt": "consent", "response_type": "code id_token"}},
			"https://idp.test/authorize", base},
		{"extra parameter our option replaces", &Connector{clientID: "app", extra: map[string]string{"prompt": "consent", "nonce": "x"}},
			"https://idp.test/authorize", full},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := oauth2AuthURL(tt.c, tt.endpoint, tt.req)
			if got := tt.c.authURL(tt.endpoint, tt.req); got != want {
				t.Errorf("authURL =\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func BenchmarkAuthURL(b *testing.B) {
	c := &Connector{clientID: "bench-client", scopes: []string{"openid", "profile", "email"}}
	req := providers.LoginRequest{State: randomState(), Nonce: randomState(), CodeVerifier: randomState() + randomState(),
		CallbackURL: "http://127.0.0.1:8080/callback/bench-idp"}
	b.Run("authURL", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = c.authURL("http://127.0.0.1:9000/authorize", req)
		}
	})
	b.Run("oauth2", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = oauth2AuthURL(c, "http://127.0.0.1:9000/authorize", req)
		}
	})
}

func randomState() string { return "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"[:43] }
