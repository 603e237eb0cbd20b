package config

import (
	"fmt"
	"slices"
	"strings"
)

// Subject token kinds an IdP may accept for exchange.
const (
	ExchangeIDToken = "id_token"
	ExchangeJWT     = "jwt"
)

// maxExchangeAudiences bounds token_exchange.audiences.
const maxExchangeAudiences = 32

// TokenExchange is an OIDC provider's opt-in to token exchange from outside
// (RFC 8693, docs/device-flow.md): a client of realmgate posts a token
// this IdP issued (an ID token, or a JWT access token such as Entra issues
// for an API) to the token endpoint with
// grant_type=urn:ietf:params:oauth:grant-type:token-exchange and gets a
// realmgate access token for this provider's tenant, the tenant's rules
// applied. The token is checked against the IdP's keys and issuer, and its
// aud, exp, nbf and iat.
type TokenExchange struct {
	// Enabled turns the exchange on for this provider. Off by default.
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Accept lists the subject token kinds taken: id_token (aud must be
	// this provider's client_id) and jwt (a JWT access token whose aud is
	// one of audiences). Default [id_token].
	Accept []string `yaml:"accept,omitempty" json:"accept,omitempty"`
	// Audiences are the aud values a JWT access token may carry: the
	// tenant's API registrations at the IdP (e.g. api://realmgate). Required
	// when accept lists jwt.
	Audiences []string `yaml:"audiences,omitempty" json:"audiences,omitempty"`
}

// AcceptKinds is the effective accept list.
func (te *TokenExchange) AcceptKinds() []string {
	if len(te.Accept) == 0 {
		return []string{ExchangeIDToken}
	}
	return te.Accept
}

// tokenExchange checks a provider's token_exchange section.
func (k *checker) tokenExchange(te *TokenExchange, path string) {
	if te == nil {
		return
	}
	path += ".token_exchange"
	for j, a := range te.Accept {
		if a != ExchangeIDToken && a != ExchangeJWT {
			k.add(fmt.Sprintf("%s.accept[%d]", path, j), "unknown token kind %q (want id_token or jwt)", a)
		}
	}
	if slices.Contains(te.Accept, ExchangeJWT) && len(te.Audiences) == 0 {
		k.add(path+".audiences", "is required when accept lists jwt: the aud values this tenant's access tokens carry")
	}
	if len(te.Audiences) > maxExchangeAudiences {
		k.add(path+".audiences", "at most %d audiences", maxExchangeAudiences)
	}
	for j, a := range te.Audiences {
		if a == "" || len(a) > 512 || strings.ContainsFunc(a, func(r rune) bool { return r <= 0x20 || r == 0x7f }) {
			k.add(fmt.Sprintf("%s.audiences[%d]", path, j), "%q is not an audience", a)
		}
	}
}
