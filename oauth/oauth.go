// Package oauth is the one typed form of the OAuth 2.0 and OpenID Connect
// error responses realmgate sends (RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3,
// OIDC Core §3.1.2.6, RFC 8693 §2.2.2, RFC 7009, RFC 7662): handlers return
// an *Error and one function at the HTTP edge writes it. The code and the
// description go to the client; the wrapped cause only to the log.
package oauth

import (
	"errors"
	"net/http"
)

// Error codes (the "error" member).
const (
	// InvalidRequest: a parameter is missing, repeated, malformed or too long (RFC 6749 §5.2).
	InvalidRequest = "invalid_request"
	// InvalidClient: client authentication failed (RFC 6749 §5.2).
	InvalidClient = "invalid_client"
	// InvalidGrant: the code, refresh token or subject token is invalid, expired, revoked or not the client's (RFC 6749 §5.2).
	InvalidGrant = "invalid_grant"
	// UnauthorizedClient: the client may not use this grant (RFC 6749 §5.2).
	UnauthorizedClient = "unauthorized_client"
	// UnsupportedGrantType: the grant type is not supported (RFC 6749 §5.2).
	UnsupportedGrantType = "unsupported_grant_type"
	// InvalidScope: the scope is unknown or wider than allowed (RFC 6749 §5.2).
	InvalidScope = "invalid_scope"
	// InvalidTarget: the audience or resource is not allowed (RFC 8693 §2.2.2).
	InvalidTarget = "invalid_target"
	// UnsupportedResponseType: only response_type=code is supported (RFC 6749 §4.1.2.1).
	UnsupportedResponseType = "unsupported_response_type"
	// AccessDenied: the user or a policy refused (RFC 6749 §4.1.2.1).
	AccessDenied = "access_denied"
	// TemporarilyUnavailable: a dependency is down; try again (RFC 6749 §4.1.2.1).
	TemporarilyUnavailable = "temporarily_unavailable"
	// ServerError: an unexpected condition (RFC 6749 §4.1.2.1).
	ServerError = "server_error"
	// LoginRequired: the user must sign in again (OIDC Core §3.1.2.6).
	LoginRequired = "login_required"
	// InteractionRequired: the request needs the user's interaction (OIDC Core §3.1.2.6).
	InteractionRequired = "interaction_required"
	// AccountSelectionRequired: the user must choose (OIDC Core §3.1.2.6).
	AccountSelectionRequired = "account_selection_required"
	// ConsentRequired: the user must consent first (OIDC Core §3.1.2.6).
	ConsentRequired = "consent_required"
	// RequestNotSupported: request objects are not supported (OIDC Core §3.1.2.6).
	RequestNotSupported = "request_not_supported"
	// RequestURINotSupported: request_uri is not supported (OIDC Core §3.1.2.6).
	RequestURINotSupported = "request_uri_not_supported"
	// InvalidToken: the bearer token is invalid, expired or revoked (RFC 6750 §3.1).
	InvalidToken = "invalid_token"
	// InvalidDPoPProof: the DPoP proof is missing, malformed, replayed or
	// does not match the request or the token (RFC 9449 §5, §7.1, §12.2).
	InvalidDPoPProof = "invalid_dpop_proof"
	// UseDPoPNonce: the proof must carry the nonce the server sends in the
	// DPoP-Nonce header (RFC 9449 §8, §9).
	UseDPoPNonce = "use_dpop_nonce"
	// AuthorizationPending: the user has not yet answered a device
	// authorization request (RFC 8628 §3.5).
	AuthorizationPending = "authorization_pending"
	// SlowDown: a device polls faster than its interval (RFC 8628 §3.5).
	SlowDown = "slow_down"
	// ExpiredToken: the device code has expired (RFC 8628 §3.5).
	ExpiredToken = "expired_token"
)

// Error is one OAuth 2.0 / OIDC error response.
type Error struct {
	// Code is the error code, one of the constants above.
	Code string
	// Description is error_description: for the client's developer, never
	// internal detail.
	Description string
	// Status is the HTTP status of a direct response (token, userinfo,
	// introspection, revocation); zero means the code's usual status
	// (StatusOf). Redirected errors have none.
	Status int
	// Err is the internal cause: logged, never sent.
	Err error
}

// New returns an error with code and description and the code's usual status.
func New(code, description string) *Error { return &Error{Code: code, Description: description} }

// WithStatus returns a copy of e answered with status.
func (e *Error) WithStatus(status int) *Error {
	c := *e
	c.Status = status
	return &c
}

// Wrap returns a copy of e caused by err (logged, never sent).
func (e *Error) Wrap(err error) *Error {
	c := *e
	c.Err = err
	return &c
}

// Error implements error.
func (e *Error) Error() string {
	s := "oauth: " + e.Code
	if e.Description != "" {
		s += ": " + e.Description
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// HTTPStatus is the status the error is answered with.
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	return StatusOf(e.Code)
}

// StatusOf is the usual status of a direct error response with code: 401
// for failed client authentication (RFC 6749 §5.2) and an invalid bearer
// token (RFC 6750 §3.1), 503 and 500 for the unavailable and server
// errors, 400 for the rest.
func StatusOf(code string) int {
	switch code {
	case InvalidClient, InvalidToken:
		return http.StatusUnauthorized
	case TemporarilyUnavailable:
		return http.StatusServiceUnavailable
	case ServerError:
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	if err == nil { // every answered request: errors.As's target escapes
		return nil, false
	}
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
