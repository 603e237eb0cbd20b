package broker

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/oauth"
)

// Pushed authorization requests (RFC 9126). A client posts its
// authorization parameters to the PAR endpoint, authenticated as at /token;
// they are checked as /authorize checks them (parseAuthorize) and kept in
// the store for a short time under a random request_uri that only this
// client can use, once. The browser then carries only client_id and
// request_uri to /authorize, so the parameters can be neither read nor
// altered on the way, and they come from an authenticated client.

// PAROptions configures pushed authorization requests (RFC 9126).
type PAROptions struct {
	// Require makes /authorize accept every client's requests only through
	// a request_uri from the PAR endpoint (RFC 9126 §5); a client can also
	// require it for itself (Client.RequirePushedAuthorizationRequests).
	Require bool
	// RequestURILifetime is how long a request_uri can be used; zero means
	// DefaultRequestURILifetime.
	RequestURILifetime time.Duration
}

// DefaultRequestURILifetime is how long a request_uri lives by default
// (RFC 9126 §2.2: short, "5 to 600 seconds").
const DefaultRequestURILifetime = 60 * time.Second

// requestURIPrefix starts every request_uri the PAR endpoint issues
// (RFC 9126 §2.2).
const requestURIPrefix = "urn:ietf:params:oauth:request_uri:"

// pushedRecord is a pushed request in the store.
type pushedRecord struct {
	Params  url.Values `json:"p"`
	Created time.Time  `json:"t"`
}

// parResponse is the RFC 9126 §2.2 success response.
type parResponse struct {
	RequestURI string `json:"request_uri"`
	ExpiresIn  int    `json:"expires_in"`
}

// clientAuthParams are the token-endpoint client authentication parameters:
// never part of the pushed authorization request kept in the store.
var clientAuthParams = []string{"client_secret", "client_assertion", "client_assertion_type"}

func (s *Server) requestURILifetime() time.Duration {
	if s.cfg.PAR.RequestURILifetime > 0 {
		return s.cfg.PAR.RequestURILifetime
	}
	return DefaultRequestURILifetime
}

// requirePAR reports whether cl's authorization requests must be pushed.
func (s *Server) requirePAR(cl *client) bool {
	return s.cfg.PAR.Require || cl.RequirePushedAuthorizationRequests
}

// pushedKey is the store key of a request_uri: its client is part of it,
// so another client's request_uri is simply not found (and not consumed).
func (s *Server) pushedKey(clientID, id string) string {
	return s.keyer.key("pr", clientID+"\x00"+id)
}

// pushAuthorization is the pushed authorization request endpoint (RFC 9126 §2).
func (s *Server) pushAuthorization(c echo.Context) error {
	v, err := formValues(c)
	if err != nil {
		return oauth.New(oauth.InvalidRequest, err.Error())
	}
	if err := s.limitToken(c); err != nil { // S60: failures count as at /token
		return err
	}
	// §2: the client authenticates exactly as at the token endpoint.
	cl, terr := s.authenticateClient(c, v)
	if terr != nil {
		s.auditEvent(c, "refused", "client_authentication", attrs{client: v.Get("client_id")})
		return terr
	}
	if cl.SAML != nil {
		return oauth.New(oauth.UnauthorizedClient, "a SAML application cannot push OIDC authorization requests")
	}
	if v.Has("request_uri") { // §2.1
		return oauth.New(oauth.InvalidRequest, "request_uri cannot be pushed")
	}
	for _, k := range clientAuthParams {
		v.Del(k)
	}
	if err := checkSignInParams(v); err != nil { // S72, as at /authorize
		return oauth.New(oauth.InvalidRequest, err.Error())
	}
	if ru := v.Get("redirect_uri"); ru == "" || !cl.hasRedirect(ru) { // S01
		s.auditEvent(c, "refused", "redirect_uri_mismatch", attrs{client: cl.ID})
		return oauth.New(oauth.InvalidRequest, "redirect_uri is not registered for this client")
	}
	if _, _, e := s.parseAuthorize(cl, v); e != nil { // the checks of /authorize
		s.auditEvent(c, "refused", e.Code, attrs{client: cl.ID})
		return e
	}
	// RFC 9449 §10.1: a DPoP proof here binds the code to its key.
	jkt, err := s.dpopProof(c, dpopCheck{method: http.MethodPost, url: s.url("/par")})
	if err != nil {
		return err
	}
	if jkt != "" {
		if want := v.Get("dpop_jkt"); want != "" && want != jkt {
			return dpopError("dpop_jkt is not the thumbprint of the DPoP proof's key")
		}
		v.Set("dpop_jkt", jkt)
	}
	v.Set("client_id", cl.ID) // a client_secret_basic client may leave it out
	id := randomToken(tokenBytes)
	life := s.requestURILifetime()
	rec := pushedRecord{Params: v, Created: s.now()}
	if err := s.putJSON(c.Request().Context(), s.pushedKey(cl.ID, id), rec, life); err != nil {
		return s.tokenUnavailable(c, err)
	}
	return c.JSON(http.StatusCreated, parResponse{RequestURI: requestURIPrefix + id, ExpiresIn: int(life / time.Second)})
}

// pushedRequest resolves the request_uri of an authorization request of cl
// into the parameters pushed (RFC 9126 §4): once, within its lifetime, for
// the client that pushed it. Besides client_id and request_uri the request
// may carry nothing. Failures are pages: no redirect_uri is known good yet.
func (s *Server) pushedRequest(c echo.Context, cl *client, v url.Values) (url.Values, error) {
	invalid := func(reason, msg string) (url.Values, error) {
		s.auditEvent(c, "refused", reason, attrs{client: cl.ID})
		return nil, s.renderError(c, http.StatusBadRequest, "Invalid sign-in request", msg)
	}
	for k := range v {
		if k != "client_id" && k != "request_uri" {
			return invalid("request_uri_extra_parameters",
				"A pushed sign-in request may carry only client_id and request_uri. Go back to the application and start again.")
		}
	}
	id, ok := strings.CutPrefix(v.Get("request_uri"), requestURIPrefix)
	expired := "This sign-in request has expired or was already used. Go back to the application and start again."
	if !ok || len(id) != 43 {
		return invalid("request_uri_invalid", expired)
	}
	var rec pushedRecord
	// Take: of two uses, concurrent or not, one gets the parameters.
	err := s.takeJSON(c.Request().Context(), s.pushedKey(cl.ID, id), &rec)
	if errors.Is(err, ErrNotFound) {
		return invalid("request_uri_invalid", expired)
	} else if err != nil {
		return nil, err
	}
	if s.now().Sub(rec.Created) > s.requestURILifetime() || rec.Params.Get("client_id") != cl.ID {
		return invalid("request_uri_expired", expired)
	}
	return rec.Params, nil
}
