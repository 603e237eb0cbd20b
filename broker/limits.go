package broker

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
)

// Bounded state for unauthenticated requests (SECURITY S72). Whatever an
// anonymous request makes the broker keep (a pending auth request for
// authRequestTTL, a logout target) is built from parameters with the length
// limits below, from a request of at most maxSignInBytes; and every request
// that stores a pending sign-in counts against the per-IP start limit
// (RateLimits.StartsPerIP, see saveRequest). So one address keeps at most
// StartsPerIP x (authRequestTTL / window) pending requests of a few KiB.

// maxSignInBytes bounds the query (GET) or body (POST) of the sign-in
// endpoints: /authorize, /login, /tenant. A legitimate request is well
// under 4 KiB.
const maxSignInBytes = 16 << 10

// Limits of a scope parameter (RFC 6749 §3.3): the whole value, the number
// of scopes and each scope.
const (
	maxScopeBytes = 2048
	maxScopes     = 32
	maxScopeLen   = 256
)

// signInParamLimits are the longest values, in bytes, of the parameters the
// sign-in endpoints and logout read and may store. redirect_uri and
// post_logout_redirect_uri are matched exactly against the registration,
// client_id against the directory, so they are bounded there.
var signInParamLimits = []struct {
	name  string
	limit int
}{
	{"state", 2048}, // first: an oversized state is not echoed (authorize)
	{"nonce", 512},
	{"scope", maxScopeBytes},
	{"login_hint", 320}, // an email (at most 254) or an IdP's user name
	{"email", 320},      // typed on the discovery page
	{"acr_values", 512},
	{"claims", 2048},        // OIDC Core §5.5; only acrs is kept (conditional.go)
	{"prompt", 64},          // four known values
	{"max_age", 10},         // decimal seconds
	{"code_challenge", 128}, // exactly 43 when valid (RFC 7636 §4.2)
	{"tenant", 64},          // a tenant id
	{"idp_hint", 128},
	{"kc_idp_hint", 128},
	{"idp", 128}, // a provider button on the discovery page
	{"domain_hint", 253},
	{"whr", 253},
	{"ui_locales", 128},
	{"r", 128}, // a pending request's id
}

// errRequestTooLarge is a sign-in request over maxSignInBytes.
var errRequestTooLarge = errors.New("the request is too large")

// paramTooLongError names a parameter over its limit.
type paramTooLongError struct {
	name  string
	limit int
	what  string // "bytes", or a description for scopes
}

func (e *paramTooLongError) Error() string {
	if e.what != "" {
		return fmt.Sprintf("%s: %s", e.name, e.what)
	}
	return fmt.Sprintf("%s is too long (at most %d bytes)", e.name, e.limit)
}

// signInForm reads the parameters of a sign-in endpoint with its query or
// body bounded to maxSignInBytes (S72), else as formValues does.
func signInForm(c echo.Context) (url.Values, error) {
	req := c.Request()
	if len(req.URL.RawQuery) > maxSignInBytes || req.ContentLength > maxSignInBytes {
		return nil, errRequestTooLarge
	}
	if req.Body != nil {
		req.Body = http.MaxBytesReader(c.Response(), req.Body, maxSignInBytes)
	}
	return formValues(c)
}

// checkSignInParams refuses a parameter over its limit in
// signInParamLimits, and a scope with too many or too long scopes (S72). The
// error names the parameter and the limit, for the person or the client.
func checkSignInParams(v url.Values) error {
	for _, p := range signInParamLimits {
		if len(v.Get(p.name)) > p.limit {
			return &paramTooLongError{name: p.name, limit: p.limit}
		}
	}
	scopes := strings.Fields(v.Get("scope"))
	if len(scopes) > maxScopes {
		return &paramTooLongError{name: "scope", what: fmt.Sprintf("too many scopes (at most %d)", maxScopes)}
	}
	for _, sc := range scopes {
		if len(sc) > maxScopeLen {
			return &paramTooLongError{name: "scope", what: fmt.Sprintf("a scope is too long (at most %d bytes)", maxScopeLen)}
		}
	}
	return nil
}

// tooLongParam returns the name of the parameter err is about, if any.
func tooLongParam(err error) string {
	var p *paramTooLongError
	if errors.As(err, &p) {
		return p.name
	}
	return ""
}

// formError shows the page for a sign-in form that could not be read: 413
// when it was too large, 400 otherwise.
func (s *Server) formError(c echo.Context, title string, err error) error {
	if errors.Is(err, errRequestTooLarge) {
		return s.renderError(c, http.StatusRequestEntityTooLarge, title,
			"The request is too large. Go back to the application and start again.")
	}
	return s.renderError(c, http.StatusBadRequest, title, err.Error())
}
