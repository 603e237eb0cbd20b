package e2e

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// goRP is a minimal relying party on coreos/go-oidc and x/oauth2, the way a
// Go SaaS app would trust realmgate.
type goRP struct {
	issuer   string
	provider *oidc.Provider
	conf     oauth2.Config
	verifier *oidc.IDTokenVerifier
	ctx      context.Context // carries the HTTP client for go-oidc and oauth2
}

// rgClaims are the realmgate claims the tests read from ID tokens and userinfo.
type rgClaims struct {
	Subject       string   `json:"sub"`
	Tenant        string   `json:"tid"`
	IdP           string   `json:"idp"`
	Roles         []string `json:"roles"`
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	Name          string   `json:"name"`
	Nonce         string   `json:"nonce"`
}

// login is one authorization request's secrets, kept by the RP.
type login struct {
	state, nonce, verifier string
}

func newGoRP(t *testing.T, issuer, clientSecret string) *goRP {
	t.Helper()
	ctx := oidc.ClientContext(t.Context(), &http.Client{Timeout: 10 * time.Second})
	p, err := oidc.NewProvider(ctx, issuer) // checks discovery's issuer equals issuer (S13)
	if err != nil {
		t.Fatalf("go-oidc discovery of %s: %v", issuer, err)
	}
	ep := p.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInHeader // client_secret_basic
	return &goRP{issuer: issuer, provider: p, ctx: ctx,
		conf: oauth2.Config{ClientID: rpClientID, ClientSecret: clientSecret, Endpoint: ep,
			RedirectURL: rpRedirectURI, Scopes: []string{oidc.ScopeOpenID, "profile", "email"}},
		verifier: p.Verifier(&oidc.Config{ClientID: rpClientID})}
}

// authURL starts a login with PKCE S256, state and nonce.
func (rp *goRP) authURL(t *testing.T, opts ...oauth2.AuthCodeOption) (string, login) {
	t.Helper()
	l := login{state: randomString(t, 16), nonce: randomString(t, 16), verifier: oauth2.GenerateVerifier()}
	opts = append(opts, oidc.Nonce(l.nonce), oauth2.S256ChallengeOption(l.verifier))
	return rp.conf.AuthCodeURL(l.state, opts...), l
}

// redeem checks the authorization response (state, RFC 9207 iss) and
// exchanges its code at tokenURL ("" for the discovered endpoint), then
// verifies the ID token: signature, iss, aud, exp, nonce and at_hash.
func (rp *goRP) redeem(t *testing.T, callback string, l login, tokenURL string) (*oauth2.Token, *oidc.IDToken, rgClaims) {
	t.Helper()
	cb, err := url.Parse(callback)
	if err != nil {
		t.Fatalf("callback %q: %v", callback, err)
	}
	q := cb.Query()
	if q.Get("error") != "" {
		t.Fatalf("authorization error at the app: %s: %s", q.Get("error"), q.Get("error_description"))
	}
	if q.Get("state") != l.state {
		t.Fatalf("callback state = %q, want %q", q.Get("state"), l.state)
	}
	if q.Get("iss") != rp.issuer { // RFC 9207 §2.4 (S05)
		t.Fatalf("callback iss = %q, want %q", q.Get("iss"), rp.issuer)
	}
	conf := rp.conf
	if tokenURL != "" {
		conf.Endpoint.TokenURL = tokenURL
	}
	tok, err := conf.Exchange(rp.ctx, q.Get("code"), oauth2.VerifierOption(l.verifier))
	if err != nil {
		t.Fatalf("code exchange at %s: %v", conf.Endpoint.TokenURL, err)
	}
	idt, claims := rp.verifyID(t, tok)
	if idt.Nonce != l.nonce {
		t.Errorf("ID token nonce = %q, want %q", idt.Nonce, l.nonce)
	}
	return tok, idt, claims
}

// verifyID verifies the ID token of a token response and its at_hash.
func (rp *goRP) verifyID(t *testing.T, tok *oauth2.Token) (*oidc.IDToken, rgClaims) {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatalf("token response has no id_token")
	}
	idt, err := rp.verifier.Verify(rp.ctx, raw)
	if err != nil {
		t.Fatalf("go-oidc ID token verification: %v", err)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	var c rgClaims
	if err := idt.Claims(&c); err != nil {
		t.Fatalf("ID token claims: %v", err)
	}
	return idt, c
}

// refresh redeems a refresh token at tokenURL ("" for the discovered one).
func (rp *goRP) refresh(refreshToken, tokenURL string) (*oauth2.Token, error) {
	conf := rp.conf
	if tokenURL != "" {
		conf.Endpoint.TokenURL = tokenURL
	}
	return conf.TokenSource(rp.ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
}

// userinfo calls the discovered userinfo endpoint.
func (rp *goRP) userinfo(t *testing.T, tok *oauth2.Token) rgClaims {
	t.Helper()
	ui, err := rp.provider.UserInfo(rp.ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("go-oidc userinfo: %v", err)
	}
	var c rgClaims
	if err := ui.Claims(&c); err != nil {
		t.Fatalf("userinfo claims: %v", err)
	}
	return c
}

// oauthErrorCode returns the OAuth error code of a failed token request.
func oauthErrorCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

// checkAlice asserts the claims realmgate issues for alice of ACME.
func checkAlice(t *testing.T, what string, c rgClaims) {
	t.Helper()
	if c.Tenant != "acme" || c.IdP != idpID {
		t.Errorf("%s: tid, idp = %q, %q; want acme, %s", what, c.Tenant, c.IdP, idpID)
	}
	if c.Email != "alice@acme.test" || !c.EmailVerified {
		t.Errorf("%s: email, email_verified = %q, %v; want alice@acme.test, true", what, c.Email, c.EmailVerified)
	}
	roles := map[string]any{"roles": toAny(c.Roles)}
	checkRoles(t, what, roles, "admin", "member")
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
