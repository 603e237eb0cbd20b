// Command example is a web app that signs its users in with realmgate, using
// coreos/go-oidc and golang.org/x/oauth2 (docs/integration.md). It starts the
// authorization code flow with PKCE at /, and at /callback checks the state,
// redeems the code, verifies the ID token and its nonce, and shows the claims.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"log"
	"net/http"
	"net/url"
	"os"
	"sync"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

type pending struct{ verifier, nonce string }

func main() {
	issuer := env("ISSUER", "http://127.0.0.1:8080")
	redirectURI := env("REDIRECT_URI", "http://127.0.0.1:3000/callback")
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, issuer) // discovery: <issuer>/.well-known/openid-configuration
	if err != nil {
		log.Fatal(err)
	}
	conf := oauth2.Config{
		ClientID:     env("CLIENT_ID", "example-app"),
		ClientSecret: env("CLIENT_SECRET", "example-app-secret-do-not-use-in-production"),
		RedirectURL:  redirectURI,
		Endpoint:     provider.Endpoint(),
		Scopes:       []string{oidc.ScopeOpenID, "email", "profile", "roles"},
	}
	verifier := provider.Verifier(&oidc.Config{ClientID: conf.ClientID})

	var mu sync.Mutex
	states := map[string]pending{} // a real app keeps these in its session
	cb, err := url.Parse(redirectURI)
	if err != nil {
		log.Fatal(err)
	}

	http.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		state, p := rand.Text(), pending{verifier: oauth2.GenerateVerifier(), nonce: rand.Text()}
		mu.Lock()
		states[state] = p
		mu.Unlock()
		opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(p.verifier), oidc.Nonce(p.nonce)}
		if email := r.URL.Query().Get("email"); email != "" {
			opts = append(opts, oauth2.SetAuthURLParam("login_hint", email)) // straight to the user's IdP
		}
		http.Redirect(w, r, conf.AuthCodeURL(state, opts...), http.StatusFound)
	})
	http.HandleFunc(cb.Path, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		mu.Lock()
		p, ok := states[q.Get("state")]
		delete(states, q.Get("state"))
		mu.Unlock()
		if !ok {
			http.Error(w, "unknown state", http.StatusBadRequest)
			return
		}
		if q.Get("iss") != issuer { // RFC 9207: the response comes from realmgate
			http.Error(w, "wrong issuer", http.StatusBadRequest)
			return
		}
		tok, err := conf.Exchange(r.Context(), q.Get("code"), oauth2.VerifierOption(p.verifier))
		if err != nil {
			http.Error(w, "token: "+err.Error(), http.StatusBadGateway)
			return
		}
		raw, _ := tok.Extra("id_token").(string)
		idt, err := verifier.Verify(r.Context(), raw)
		if err != nil || idt.Nonce != p.nonce {
			http.Error(w, "invalid ID token", http.StatusBadGateway)
			return
		}
		var claims map[string]any // tid, roles, email, ...
		if err := idt.Claims(&claims); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(claims)
	})
	log.Printf("listening on http://%s", cb.Host)
	log.Fatal(http.ListenAndServe(cb.Host, nil))
}
