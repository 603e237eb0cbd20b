package broker

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/oauth"
)

// Token exchange identifiers (RFC 8693 §2.1, §3).
const (
	grantTokenExchange  = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeAccess     = "urn:ietf:params:oauth:token-type:access_token"
	tokenTypeJWT        = "urn:ietf:params:oauth:token-type:jwt"
	maxExchangeAudience = 8
)

// tokenExchange is the RFC 8693 token exchange grant: a client that received
// a realmgate access token (the subject token) obtains a token for another
// audience it is allowed to call, never with a wider scope, carrying `act`
// to name who acts (§4.1). Policy is per client: Client.ExchangeAudiences.
func (s *Server) tokenExchange(c echo.Context, cl *client, v url.Values) error {
	if s.externalSubject(v) {
		return s.externalExchange(c, cl, v) // externalexchange.go: an upstream IdP's token
	}
	if cl.public() {
		return oauth.New(oauth.InvalidClient, "token exchange needs an authenticated client")
	}
	if len(cl.ExchangeAudiences) == 0 {
		return oauth.New(oauth.UnauthorizedClient, "this client may not exchange tokens")
	}
	if t := v.Get("requested_token_type"); t != "" && t != tokenTypeAccess {
		return oauth.New(oauth.InvalidRequest, "only access tokens can be requested")
	}
	if v.Get("subject_token_type") == tokenTypeUser {
		aud := v.Get("audience")
		if aud != cl.ID && !slices.Contains(cl.ExchangeAudiences, aud) || s.dir().clients[aud] == nil {
			return oauth.New(oauth.InvalidTarget, "the client may not obtain tokens for this audience")
		}
		return s.impersonate(c, cl, v, aud)
	}
	if t := v.Get("subject_token_type"); t != tokenTypeAccess && t != tokenTypeJWT {
		return oauth.New(oauth.InvalidRequest, "subject_token_type must be an access token type")
	}
	// §2.1: audience and resource name the target; formValues already
	// refused repeated parameters, so there is one audience.
	audience := v.Get("audience")
	if audience == "" {
		audience = v.Get("resource")
	}
	if audience == "" {
		return oauth.New(oauth.InvalidTarget, "audience is required")
	}
	if !slices.Contains(cl.ExchangeAudiences, audience) || s.dir().clients[audience] == nil {
		// §2.2.2: never a wider audience than the client's policy allows.
		s.auditEvent(c, "refused", "exchange_audience_not_allowed", attrs{client: cl.ID})
		return oauth.New(oauth.InvalidTarget, "the client may not obtain tokens for this audience")
	}
	subject, sg, err := s.accessToken(c, v.Get("subject_token"))
	if errors.Is(err, ErrUnavailable) {
		return s.tokenUnavailable(c, err)
	}
	if err != nil || stringClaim(subject, "aud") != cl.ID {
		// The subject token must have been issued to the client presenting it.
		return oauth.New(oauth.InvalidGrant, "the subject token is invalid, expired, revoked or not issued to this client")
	}
	if !presentedWithKey(c, subject) { // RFC 9449: a bound token needs its key's proof
		return oauth.New(oauth.InvalidGrant, "the subject token is DPoP-bound: send a DPoP proof by its key")
	}
	// S66: the target audience must itself be allowed the subject's tenant
	// and IdP; an exchange never reaches an API its user could not sign in to.
	d := s.dir()
	audCl := d.clients[audience]
	if err := d.authorizeFor(s.now(), audCl, stringClaim(subject, "tid"), grantSubject(sg), strength{maxAge: -1}); err != nil {
		s.auditEvent(c, "refused", "exchange_"+refusal(err), attrs{client: cl.ID, tenant: stringClaim(subject, "tid"),
			idp: stringClaim(subject, "idp"), subject: stringClaim(subject, "sub")})
		return oauth.New(oauth.InvalidTarget, "the audience may not receive tokens for this user")
	}
	scopes := strings.Fields(stringClaim(subject, "scope"))
	if sc := v.Get("scope"); sc != "" {
		asked := strings.Fields(sc)
		for _, x := range asked {
			if !slices.Contains(scopes, x) {
				return oauth.New(oauth.InvalidScope, "an exchange cannot widen the scope")
			}
		}
		scopes = asked
	}
	act := map[string]any{"sub": cl.ID, "client_id": cl.ID}
	if at := v.Get("actor_token"); at != "" {
		if t := v.Get("actor_token_type"); t != tokenTypeAccess && t != tokenTypeJWT {
			return oauth.New(oauth.InvalidRequest, "actor_token_type must be an access token type")
		}
		actor, _, err := s.accessToken(c, at)
		if errors.Is(err, ErrUnavailable) {
			return s.tokenUnavailable(c, err)
		}
		if err != nil || stringClaim(actor, "aud") != cl.ID {
			// S69: the actor token must have been issued to the client presenting it.
			return oauth.New(oauth.InvalidGrant, "the actor token is invalid or not issued to this client")
		}
		if !presentedWithKey(c, actor) {
			return oauth.New(oauth.InvalidGrant, "the actor token is DPoP-bound: send a DPoP proof by its key")
		}
		act = map[string]any{"sub": actor["sub"], "client_id": stringClaim(actor, "client_id")}
		if prior, ok := actor["act"].(map[string]any); ok {
			act["act"] = prior // §4.1: the chain of delegation
		}
	}
	if prior, ok := subject["act"].(map[string]any); ok && act["act"] == nil {
		act["act"] = prior
	}
	now := s.now()
	exp := now.Add(s.accessLifetime(audCl))
	if subExp, err := subject.GetExpirationTime(); err == nil && subExp != nil && subExp.Before(exp) {
		exp = subExp.Time // never outlive the token it came from
	}
	claims := jwt.MapClaims{
		"iss": s.cfg.Issuer, "sub": s.subjectFor(audCl, sg.Subject), "aud": audience, "client_id": cl.ID, // pairwise.go: the audience's sub
		"iat": now.Unix(), "exp": exp.Unix(), "jti": randomToken(16), "scope": strings.Join(scopes, " "),
		"tid": subject["tid"], "idp": subject["idp"], "auth_time": subject["auth_time"],
		"sid": subject["sid"], "gid": subject["gid"], "act": act,
	}
	if subject["auth_time"] == nil {
		delete(claims, "auth_time")
	}
	if _, roles := release(audCl, sg.Claims, scopes); roles != nil { // S75, for the audience
		claims["roles"] = roles
	}
	tokenType := bindClaims(c, claims) // RFC 9449 §5
	tok, err := s.keys.sign(claims, "at+jwt")
	if err != nil {
		return err
	}
	s.auditEvent(c, "exchanged", "audience "+audience, attrs{client: cl.ID, tenant: stringClaim(subject, "tid"),
		idp: stringClaim(subject, "idp"), subject: stringClaim(subject, "sub")})
	c.Response().Header().Set("Pragma", "no-cache")
	return c.JSON(http.StatusOK, map[string]any{
		"access_token": tok, "issued_token_type": tokenTypeAccess, "token_type": tokenType,
		"expires_in": int(exp.Sub(now) / time.Second), "scope": strings.Join(scopes, " "),
	})
}
