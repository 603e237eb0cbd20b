package providers

import (
	"context"
	"net/http"
	"time"
)

// Optional connector capabilities. A Connector only has to start a login and
// validate its answer; anything more an IdP type can do it offers by
// implementing one of the small interfaces below, which the broker finds
// with As (a type assertion that also looks through wrappers), never through
// a flag. Each connector package asserts at compile time which of them it
// implements, e.g.
//
//	var _ providers.LogoutTokenVerifier = (*Connector)(nil)

// Unwrapper is a connector that wraps another one, such as the broker's
// per-IdP bulkhead. As looks through it to the connector it wraps, so a
// wrapper never hides a capability.
type Unwrapper interface {
	// Unwrap returns the wrapped connector.
	Unwrap() Connector
}

// As finds the optional capability T on c or on any connector c wraps (each
// wrapper offering Unwrapper), as errors.As does for errors; the outermost
// match wins. It reports false when no connector in the chain has T.
func As[T any](c Connector) (T, bool) {
	for c != nil {
		if t, ok := c.(T); ok {
			return t, true
		}
		u, ok := c.(Unwrapper)
		if !ok {
			break
		}
		c = u.Unwrap()
	}
	var zero T
	return zero, false
}

// LogoutTokenVerifier is a connector that validates the logout tokens its
// IdP sends to the broker's back-channel logout endpoint (OIDC Back-Channel
// Logout 1.0 §2.6: signature, iss, aud, iat, jti, events, sub or sid, no
// nonce).
type LogoutTokenVerifier interface {
	// VerifyLogoutToken validates raw and returns what it says, or an error
	// wrapping ErrInvalidResponse (or ErrUnavailable when the keys could
	// not be fetched).
	VerifyLogoutToken(ctx context.Context, raw string) (LogoutClaims, error)
}

// EndSessionURLer is a connector whose IdP can end its own session (OIDC
// RP-Initiated Logout 1.0 §2: the end_session_endpoint).
type EndSessionURLer interface {
	// EndSessionURL returns where to send the browser to end the upstream
	// session, coming back to postLogoutRedirectURI with state (§3); false
	// when the IdP publishes no end_session_endpoint.
	EndSessionURL(ctx context.Context, postLogoutRedirectURI, state string) (url string, ok bool, err error)
}

// MetadataPublisher is a connector with SP metadata for the IdP's admin to
// import (SAML Metadata 2.0 §2.4.4, SPSSODescriptor).
type MetadataPublisher interface {
	// Metadata returns the EntityDescriptor document.
	Metadata(ctx context.Context) ([]byte, error)
}

// PostBinder is a connector that sends its request to the IdP with the
// HTTP-POST binding (SAML Bindings 2.0 §3.5) rather than a redirect.
type PostBinder interface {
	// PostForm returns the form action and hidden fields for the login data
	// that LoginURL returned and the broker kept with relayState.
	PostForm(ctx context.Context, data []byte, relayState string) (action string, fields map[string]string, err error)
}

// UnsolicitedHandler is a connector that may accept IdP-initiated responses
// (SAML Profiles 2.0 §4.1.5, unsolicited: no InResponseTo), under SECURITY
// S44.
type UnsolicitedHandler interface {
	// Unsolicited reports whether an ACS POST whose RelayState names no login
	// state may be handled as IdP-initiated, and where the browser then goes
	// (an allow-listed target).
	Unsolicited(relayState string) (target string, ok bool)
	// HandleUnsolicited validates the IdP-initiated response carried by r.
	// It talks to the upstream (metadata) like HandleCallback, so the broker
	// runs it inside the IdP's concurrency limit and timeout.
	HandleUnsolicited(ctx context.Context, r *http.Request) (Identity, error)
}

// ReplayCache remembers assertion and message ids until they expire
// (SECURITY S43). The broker implements it over its shared store so it holds
// across instances.
type ReplayCache interface {
	// Seen records key until the given time and reports whether it was
	// already recorded; of concurrent callers with one key, exactly one
	// gets false.
	Seen(ctx context.Context, key string, until time.Time) (bool, error)
}

// ReplayCacheUser is a connector that needs the broker's shared ReplayCache
// (S43). The broker attaches it before the connector serves any request.
type ReplayCacheUser interface {
	// SetReplayCache attaches the cache.
	SetReplayCache(ReplayCache)
}

// SingleLogout is a connector that speaks SAML Single Logout (SAML Profiles
// 2.0 §4.4), SP-initiated and IdP-initiated.
type SingleLogout interface {
	// LogoutRequestURL returns the HTTP-Redirect URL of a LogoutRequest for
	// the upstream session ident, and its ID; "" when the IdP has no SLO.
	LogoutRequestURL(ctx context.Context, ident Identity, relayState string) (to, requestID string, err error)
	// HandleLogoutResponse validates the LogoutResponse carried by r as the
	// answer to the LogoutRequest requestID (SAML Core 2.0 §3.7.2).
	HandleLogoutResponse(ctx context.Context, r *http.Request, requestID string) error
	// HandleLogoutRequest validates the IdP's LogoutRequest carried by r
	// (SAML Core 2.0 §3.7.1) and returns the sessions it names.
	HandleLogoutRequest(ctx context.Context, r *http.Request) (LogoutClaims, error)
	// LogoutResponseURL answers the LogoutRequest inResponseTo with Success
	// (SAML Core 2.0 §3.7.3.2).
	LogoutResponseURL(ctx context.Context, inResponseTo, relayState string) (string, error)
}

// Kinds of subject token an upstream may vouch for in a token exchange
// (RFC 8693 §3).
const (
	// SubjectIDToken is an ID token the IdP issued to its client (realmgate's
	// registration): its aud is that client id.
	SubjectIDToken = "id_token"
	// SubjectJWT is a JWT access token the IdP issued for an API: its aud
	// is one of the audiences the tenant configured.
	SubjectJWT = "jwt"
)

// SubjectTokenVerifier is a connector that validates a token its IdP
// issued, presented to the broker's token endpoint for exchange (RFC 8693,
// "chain of STSs"): signature with the IdP's keys and an allowed alg, iss,
// aud, exp, nbf and iat.
type SubjectTokenVerifier interface {
	// Issuer is the issuer the IdP's tokens carry.
	Issuer() string
	// VerifySubjectToken validates raw as a token of kind (SubjectIDToken or
	// SubjectJWT; for SubjectJWT its aud must contain one of audiences) and
	// returns the identity it names, or an error wrapping
	// ErrInvalidResponse (or ErrUnavailable when the keys could not be
	// fetched).
	VerifySubjectToken(ctx context.Context, raw, kind string, audiences []string) (Identity, error)
}
