package oidc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"time"

	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/providers/oidc"
)

// Example starts a login at an upstream OpenID Provider. New makes no network
// call; the first LoginURL fetches (and caches) the OP's discovery document.
// The broker then stores req server-side and hands it back, with the
// callback request, to HandleCallback.
func Example() {
	// A stand-in OP that only serves its discovery document.
	var op *httptest.Server
	op = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                 op.URL,
			"authorization_endpoint": op.URL + "/authorize",
			"token_endpoint":         op.URL + "/token",
			"jwks_uri":               op.URL + "/jwks",
		})
	}))
	defer op.Close()

	c, err := oidc.New(oidc.Config{
		ID:           "fabrikam-okta",
		Issuer:       op.URL,
		ClientID:     "realmgate",
		ClientSecret: "secret",
		Timeout:      5 * time.Second,
	})
	if err != nil {
		fmt.Println("config:", err)
		return
	}
	req := providers.LoginRequest{
		State: "state-from-crypto-rand",
		Nonce: "nonce-from-crypto-rand",
		// The verifier of RFC 7636 Appendix B, so the challenge below is known.
		CodeVerifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
		CallbackURL:  "https://id.example.com/callback/fabrikam-okta",
		ForceLogin:   true,
	}
	loginURL, _, err := c.LoginURL(context.Background(), req)
	if err != nil {
		fmt.Println("login:", err)
		return
	}
	u, _ := url.Parse(loginURL)
	q := u.Query()
	for _, k := range []string{"response_type", "scope", "code_challenge_method", "code_challenge", "nonce", "prompt"} {
		fmt.Printf("%s=%s\n", k, q.Get(k))
	}
	// Output:
	// response_type=code
	// scope=openid profile email
	// code_challenge_method=S256
	// code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM
	// nonce=nonce-from-crypto-rand
	// prompt=login
}
