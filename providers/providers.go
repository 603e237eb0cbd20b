// Package providers defines the contract between the broker and the upstream
// identity providers it chains to: what a connector must do to start a login,
// validate the answer, and describe the user it authenticated.
package providers

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Sentinel errors a connector returns (wrapped) from HandleCallback. The broker
// translates them into protocol errors at its HTTP edge.
var (
	// ErrAccessDenied means the upstream IdP or the user refused the login
	// (OAuth error=access_denied, SAML status Requester/AuthnFailed).
	ErrAccessDenied = errors.New("providers: upstream denied the login")
	// ErrInvalidResponse means the upstream answer failed validation: a bad
	// signature, issuer, audience, nonce, state or anything else the broker
	// must not trust.
	ErrInvalidResponse = errors.New("providers: invalid upstream response")
	// ErrUnavailable means the upstream IdP could not be reached or answered
	// with a server error or timeout.
	ErrUnavailable = errors.New("providers: upstream unavailable")
)

// Identity is what an upstream IdP asserted about a user, after the connector
// validated it. The broker derives the tenant from the IdP that produced it,
// never from anything the user typed (SECURITY S50).
type Identity struct {
	// Issuer is the validated upstream issuer (OIDC iss, SAML entityID).
	Issuer string
	// Subject is the upstream subject (OIDC sub, SAML NameID), unique per Issuer.
	Subject string
	// Email is the user's email address as asserted upstream, if any.
	Email string
	// EmailVerified says whether the upstream IdP vouches for Email.
	EmailVerified bool
	// Name is the user's full display name.
	Name string
	// GivenName is the user's given (first) name.
	GivenName string
	// FamilyName is the user's family (last) name.
	FamilyName string
	// PreferredUsername is a short handle, such as a UPN or a login.
	PreferredUsername string
	// AMR lists the authentication methods used upstream (RFC 8176).
	AMR []string
	// ACR is the authentication context class reference asserted upstream.
	ACR string
	// AuthTime is when the user actually authenticated upstream; zero if unknown.
	AuthTime time.Time
	// Claims holds every raw claim or attribute the IdP returned (ID token
	// claims merged with userinfo for OIDC; attributes for SAML).
	Claims map[string]any
}

// LoginRequest carries the per-login values the broker generates and keeps
// server-side for the duration of one upstream round trip. The same values
// are handed back to HandleCallback so the connector can check them.
type LoginRequest struct {
	// State is the opaque value sent upstream and expected back (OAuth state,
	// SAML RelayState). It has at least 128 bits from crypto/rand.
	State string
	// Nonce is sent upstream in OIDC requests and must come back in the ID token.
	Nonce string
	// CodeVerifier is the PKCE verifier (RFC 7636) whose S256 challenge is sent upstream.
	CodeVerifier string
	// CallbackURL is this IdP's callback on the broker: <issuer>/callback/<idp>.
	CallbackURL string
	// LoginHint is passed upstream when the user already typed an identifier.
	LoginHint string
	// ForceLogin asks the IdP to re-authenticate the user (OIDC prompt=login).
	ForceLogin bool
	// MaxAge, when positive, is the client's max_age (OIDC Core §3.1.2.1):
	// the IdP must re-authenticate a user who authenticated longer ago. OIDC
	// sends it as max_age; SAML, which cannot say it, as ForceAuthn.
	// max_age=0 arrives as ForceLogin.
	MaxAge time.Duration
	// ACRValues asks the IdP for an authentication context, such as
	// multi-factor (OIDC acr_values, OIDC Core §3.1.2.1; SAML
	// RequestedAuthnContext). Empty: the IdP's default.
	ACRValues []string
}

// LogoutClaims is what a verified upstream logout token says (OIDC
// Back-Channel Logout 1.0 §2.4): end the sessions of Subject, or the one
// session SID, at the IdP that sent it.
type LogoutClaims struct {
	// Subject is the upstream subject (sub), if present.
	Subject string
	// SID is the upstream session id (sid), if present.
	SID string
	// JTI identifies the token; the broker refuses a second use (S64).
	JTI string
	// Expiry is when the token stops being valid.
	Expiry time.Time
}

// MFA reports whether the authentication methods amr (RFC 8176) include
// more than one factor: "mfa" itself, or a password or knowledge factor
// combined with a possession or inherence factor.
func MFA(amr []string) bool {
	var know, have bool
	for _, m := range amr {
		switch m {
		case "mfa":
			return true
		case "pwd", "pin", "kba":
			know = true
		case "otp", "hwk", "swk", "sms", "tel", "sc", "pop", "face", "fpt", "iris", "retina", "vbm", "user":
			have = true
		}
	}
	return know && have
}

// Connector is one configured upstream IdP. Implementations must be safe for
// concurrent use.
type Connector interface {
	// LoginURL returns where to send the browser to start the upstream login,
	// and connector-private data that the broker stores with the state and
	// returns unchanged to HandleCallback.
	LoginURL(ctx context.Context, req LoginRequest) (url string, data []byte, err error)
	// HandleCallback validates the upstream response carried by r for the
	// login described by req and data, and returns the authenticated identity.
	HandleCallback(ctx context.Context, req LoginRequest, data []byte, r *http.Request) (Identity, error)
}
