package broker

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/claims"
	"github.com/realmgate/realmgate/oauth"
	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/transform"
)

// clientCredentials is the client credentials grant (RFC 6749 §4.4): a
// confidential client obtains an access token for itself, within the
// scopes and audiences it registered. A tenant's client gets the tenant's
// id as tid and the tenant's rules run with the client as the subject.
// No ID token and no refresh token (§4.4.3).
func (s *Server) clientCredentials(c echo.Context, cl *client, v url.Values) error {
	if cl.public() {
		return oauth.New(oauth.UnauthorizedClient, "client_credentials needs an authenticated client")
	}
	scopes := cl.Scopes
	if sc := v.Get("scope"); sc != "" {
		scopes = strings.Fields(sc)
		for _, x := range scopes {
			if !slices.Contains(cl.Scopes, x) { // RFC 6749 §3.3
				return oauth.New(oauth.InvalidScope, "the client may not request scope "+clip(x, 64))
			}
		}
	}
	aud, terr := ccAudience(cl, v)
	if terr != nil {
		return terr
	}
	at := attrs{client: cl.ID, tenant: cl.Tenant, subject: cl.ID}
	var roles []any
	var extra map[string]any
	if cl.Tenant != "" {
		d := s.dir()
		if _, ok := d.resolver.Tenant(cl.Tenant); !ok {
			s.auditEvent(c, "refused", "client_tenant_unknown", at)
			return oauth.New(oauth.UnauthorizedClient, "the client's tenant does not exist")
		}
		// The tenant's rules see the client as the subject: upstream.client_id,
		// client, tenant; idp is empty.
		all, err := claims.Pipeline{Rules: d.rules[cl.Tenant], Domains: d.resolver}.Apply(c.Request().Context(), claims.Request{
			Identity: providers.Identity{Subject: cl.ID, Claims: map[string]any{"sub": cl.ID, "client_id": cl.ID, "grant_type": grantClientCredentials}},
			Tenant:   cl.Tenant, Client: cl.ID})
		if err != nil {
			var denied *transform.DeniedError
			if errors.As(err, &denied) {
				s.auditEvent(c, "denied", "rule: "+denied.Rule, at)
				return oauth.New(oauth.UnauthorizedClient, "access denied: "+denied.Message)
			}
			s.log.Error("claims rules on client_credentials", "request_id", requestID(c), "tenant", cl.Tenant, "err", err)
			s.auditEvent(c, "failure", "rule_error", at)
			return oauth.New(oauth.ServerError, "the tenant's rules failed")
		}
		// Roles are what rules give the client; other claims only as
		// the client's registration releases them (S75).
		if r := claims.Roles(all); len(r) > 0 {
			roles = r
		}
		extra, _ = release(cl, all, scopes)
		for _, k := range []string{"name", "given_name", "family_name", "preferred_username", "email", "email_verified", "amr", "acr"} {
			delete(extra, k) // a machine has no profile
		}
	}
	now := s.now()
	exp := now.Add(s.cfg.AccessTokenLifetime)
	scope := strings.Join(scopes, " ")
	cnf, tokenType := tokenBinding(c) // RFC 9449 §5: a DPoP proof binds the token to its key
	cc := &ccClaims{Iss: s.cfg.Issuer, Sub: cl.ID, Aud: aud, ClientID: cl.ID, Iat: now.Unix(), Exp: exp.Unix(),
		Jti: randomToken(16), Scope: scope, Tid: cl.Tenant, Roles: roles, Cnf: cnf}
	var tok any = cc // a struct encodes several times cheaper than a map
	if len(extra) > 0 {
		m := jwt.MapClaims{}
		for k, x := range extra {
			m[k] = x
		}
		raw, _ := json.Marshal(cc)
		_ = json.Unmarshal(raw, &m) // reserved claims last: no rule overrides them
		tok = m
	}
	// RFC 9068 §2.1: typ at+jwt (S12).
	access, err := s.keys.sign(tok, "at+jwt")
	if err != nil {
		return err
	}
	s.auditEvent(c, "success", "client_credentials", at)
	c.Response().Header().Set("Pragma", "no-cache")
	return c.JSON(http.StatusOK, &ccResponse{AccessToken: access, TokenType: tokenType,
		ExpiresIn: int(exp.Sub(now) / time.Second), Scope: scope})
}

// ccClaims are the claims of a client_credentials access token (RFC 9068
// §2.2): the client is the subject.
type ccClaims struct {
	Iss      string `json:"iss"`
	Sub      string `json:"sub"`
	Aud      string `json:"aud"`
	ClientID string `json:"client_id"`
	Iat      int64  `json:"iat"`
	Exp      int64  `json:"exp"`
	Jti      string `json:"jti"`
	Scope    string `json:"scope,omitempty"`
	Tid      string `json:"tid,omitempty"`
	Roles    []any  `json:"roles,omitzero"`
	// Cnf binds the token to the DPoP key of the request (RFC 9449 §6.1).
	Cnf *confirmation `json:"cnf,omitempty"`
}

// ccResponse is the RFC 6749 §4.4.3 response: no refresh token.
type ccResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

// ccAudience is the audience of a client_credentials token: the one the
// audience (RFC 8693 §2.1) or resource (RFC 8707 §2) parameter asks for,
// which the client must have registered, else its first audience, else the
// client itself.
func ccAudience(cl *client, v url.Values) (string, *oauth.Error) {
	aud, res := v.Get("audience"), v.Get("resource")
	if aud != "" && res != "" && aud != res {
		return "", oauth.New(oauth.InvalidTarget, "audience and resource differ")
	}
	if aud == "" {
		aud = res
	}
	switch {
	case aud == "" && len(cl.Audiences) > 0:
		return cl.Audiences[0], nil
	case aud == "":
		return cl.ID, nil
	case slices.Contains(cl.Audiences, aud) || len(cl.Audiences) == 0 && aud == cl.ID:
		return aud, nil
	}
	return "", oauth.New(oauth.InvalidTarget, "the client may not obtain tokens for this audience")
}

// machineToken verifies a client_credentials access token: ours, of no
// grant family, and its client still registered for client_credentials in
// the tenant it names (a deleted or changed client's tokens end).
func (s *Server) machineToken(token string) (jwt.MapClaims, error) {
	claims, err := s.keys.verify(token, "at+jwt")
	if err != nil {
		return nil, err
	}
	sub := stringClaim(claims, "sub")
	cl := s.dir().clients[sub]
	switch {
	case stringClaim(claims, "iss") != s.cfg.Issuer, stringClaim(claims, "gid") != "", stringClaim(claims, "client_id") != sub,
		cl == nil, !cl.grants(grantClientCredentials), stringClaim(claims, "tid") != cl.Tenant:
		return nil, errBadToken
	}
	return claims, nil
}
