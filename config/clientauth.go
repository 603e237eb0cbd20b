package config

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/realmgate/realmgate/internal/clientkeys"
)

// Grant types a client may list in grant_types (RFC 7591 §2).
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
	GrantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
)

// Token endpoint authentication methods (RFC 7591 §2, RFC 7523 §2.2).
const (
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
	AuthPrivateKeyJWT     = "private_key_jwt"
	AuthNone              = "none"
)

// Limits of a client's machine-to-machine settings.
const (
	maxClientScopes    = 64
	maxClientAudiences = 32
)

var knownGrants = []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, GrantTokenExchange, GrantDeviceCode}

// MachineOnly reports whether the client's only grant is
// client_credentials: it never signs users in and needs no redirect URI.
func (cl *Client) MachineOnly() bool {
	return len(cl.GrantTypes) > 0 && !slices.ContainsFunc(cl.GrantTypes, func(g string) bool { return g != GrantClientCredentials })
}

// ParseJWKS parses a client's inline key set, refusing anything but public
// asymmetric signing keys (clientkeys.Parse).
func ParseJWKS(set *JWKS) (*jose.JSONWebKeySet, error) {
	raw, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("config: jwks: %w", err)
	}
	return clientkeys.Parse(raw)
}

// clientAuth checks a client's grant types, machine-to-machine settings
// and token endpoint authentication.
func (k *checker) clientAuth(cl *Client, path string, tenantIDs map[string]bool) {
	for j, g := range cl.GrantTypes {
		if !slices.Contains(knownGrants, g) {
			k.add(fmt.Sprintf("%s.grant_types[%d]", path, j), "unknown grant type %q (want one of %s)", g, strings.Join(knownGrants, ", "))
		}
	}
	method := cl.TokenEndpointAuthMethod
	switch method {
	case "":
	case AuthClientSecretBasic, AuthClientSecretPost:
		if cl.Secret == "" {
			k.add(path+".token_endpoint_auth_method", "%s needs a secret", method)
		}
	case AuthPrivateKeyJWT:
		if cl.Secret != "" {
			k.add(path+".secret", "a private_key_jwt client has no secret")
		}
		if (cl.JWKS == nil) == (cl.JWKSURI == "") {
			k.add(path+".token_endpoint_auth_method", "private_key_jwt needs exactly one of jwks and jwks_uri")
		}
	case AuthNone:
		if cl.Secret != "" {
			k.add(path+".secret", "a client with token_endpoint_auth_method none has no secret")
		}
	default:
		k.add(path+".token_endpoint_auth_method", "unknown method %q (want client_secret_basic, client_secret_post, private_key_jwt or none)", method)
	}
	if method != AuthPrivateKeyJWT && (cl.JWKS != nil || cl.JWKSURI != "") {
		k.add(path+".jwks", "jwks and jwks_uri are used only with token_endpoint_auth_method private_key_jwt")
	}
	if cl.JWKS != nil {
		if _, err := ParseJWKS(cl.JWKS); err != nil {
			k.add(path+".jwks", "%s", strings.TrimPrefix(err.Error(), clientkeys.ErrInvalid.Error()+": "))
		}
	}
	if cl.JWKSURI != "" {
		if u, err := url.Parse(cl.JWKSURI); err != nil || (u.Scheme != "https" && u.Scheme != "http") {
			k.add(path+".jwks_uri", "%q must be an https URL", cl.JWKSURI)
		} else if msg := checkRedirectURI(cl.JWKSURI); msg != "" {
			k.add(path+".jwks_uri", "%s", msg)
		}
	}
	public := cl.Secret == "" && (method == "" || method == AuthNone) // other methods' problems are reported above
	if slices.Contains(cl.GrantTypes, GrantClientCredentials) && public {
		// RFC 6749 §4.4: only a confidential client may use client_credentials.
		k.add(path+".grant_types", "client_credentials needs an authenticated client: a secret or private_key_jwt")
	}
	if (len(cl.Scopes) > 0 || len(cl.Audiences) > 0) && !slices.Contains(cl.GrantTypes, GrantClientCredentials) {
		k.add(path+".scopes", "scopes and audiences apply to client_credentials, which grant_types does not list")
	}
	if len(cl.Scopes) > maxClientScopes {
		k.add(path+".scopes", "at most %d scopes", maxClientScopes)
	}
	for j, s := range cl.Scopes {
		if s == "" || len(s) > 128 || strings.ContainsFunc(s, func(r rune) bool { return r <= 0x20 || r == '"' || r == '\\' || r >= 0x7f }) {
			k.add(fmt.Sprintf("%s.scopes[%d]", path, j), "%q is not a scope token (RFC 6749 §3.3)", s)
		}
		if s == "openid" || s == "offline_access" {
			k.add(fmt.Sprintf("%s.scopes[%d]", path, j), "%q: client_credentials issues no ID token and no refresh token (RFC 6749 §4.4.3)", s)
		}
	}
	if len(cl.Audiences) > maxClientAudiences {
		k.add(path+".audiences", "at most %d audiences", maxClientAudiences)
	}
	for j, a := range cl.Audiences {
		if a == "" || len(a) > 512 || strings.ContainsFunc(a, func(r rune) bool { return r <= 0x20 || r == 0x7f }) {
			k.add(fmt.Sprintf("%s.audiences[%d]", path, j), "%q is not an audience: a client id or a URI without spaces", a)
		}
	}
	if cl.Tenant != "" {
		if !tenantIDs[cl.Tenant] {
			k.add(path+".tenant", "unknown tenant %q", cl.Tenant)
		}
		if slices.ContainsFunc(cl.AllowedTenants, func(t string) bool { return t != cl.Tenant }) {
			// A tenant's client never reaches another tenant's users.
			k.add(path+".allowed_tenants", "a client of tenant %q may allow only that tenant", cl.Tenant)
		}
	}
}
