package broker

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/claims"
	"github.com/realmgate/realmgate/oauth"
	"github.com/realmgate/realmgate/transform"
)

// errTemporarilyUnavailable answers a request whose store or upstream is down.
var errTemporarilyUnavailable = oauth.New(oauth.TemporarilyUnavailable, "the service is temporarily unavailable")

// tokenUnavailable is the error of a token, userinfo, introspection or
// revocation request whose store is down: 503 with Retry-After (S62).
func (s *Server) tokenUnavailable(_ echo.Context, err error) error {
	s.ops.metrics.storeError("token")
	return errTemporarilyUnavailable.Wrap(err)
}

// oauthErrors is the one place an *oauth.Error a handler returns is
// written: a JSON error response (RFC 6749 §5.2) with the code's status and
// challenge, counted against the client's failure limit (S60), its cause
// logged and never sent. It runs inside the metrics and audit middleware, so
// they see the status written.
func (s *Server) oauthErrors(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		e, ok := oauth.As(err)
		if !ok || c.Response().Committed {
			return err
		}
		return s.writeOAuth(c, e)
	}
}

func (s *Server) writeOAuth(c echo.Context, e *oauth.Error) error {
	status := e.HTTPStatus()
	if e.Err != nil && status >= http.StatusInternalServerError {
		s.log.Error("oauth error", "request_id", requestID(c), "code", e.Code, "path", c.Path(), "err", e.Err)
	}
	s.tokenFailure(c, e.Code) // S60: invalid_grant / invalid_client count as failures
	h := c.Response().Header()
	switch {
	case dpopChallenge(c, e) != "" && status == http.StatusUnauthorized: // RFC 9449 §7.1
		h.Set("WWW-Authenticate", dpopChallenge(c, e))
	case e.Code == oauth.InvalidClient:
		h.Set("WWW-Authenticate", `Basic realm="realmgate", charset="UTF-8"`)
	case e.Code == oauth.InvalidToken: // RFC 6750 §3
		h.Set("WWW-Authenticate", `Bearer realm="realmgate", error="invalid_token"`)
	case status == http.StatusUnauthorized:
		h.Set("WWW-Authenticate", `Bearer realm="realmgate"`)
	}
	if status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "2")
	}
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	return c.JSON(status, map[string]string{"error": e.Code, "error_description": e.Description})
}

// authenticateClient implements client_secret_basic and client_secret_post
// (RFC 6749 §2.3.1) and public clients (client_id only). Exactly one method.
func (s *Server) authenticateClient(c echo.Context, v url.Values) (*client, *oauth.Error) {
	id, secret, basic := c.Request().BasicAuth()
	if v.Has("client_assertion") || v.Has("client_assertion_type") {
		return s.assertedClient(c, v, basic) // clientauth.go: private_key_jwt
	}
	if basic {
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return nil, oauth.New(oauth.InvalidClient, "malformed client credentials")
		}
		if v.Has("client_secret") {
			return nil, oauth.New(oauth.InvalidRequest, "use one client authentication method")
		}
		if v.Has("client_id") && v.Get("client_id") != id {
			return nil, oauth.New(oauth.InvalidRequest, "client_id does not match the credentials")
		}
	} else {
		id, secret = v.Get("client_id"), v.Get("client_secret")
	}
	cl := s.dir().clients[id]
	if cl == nil {
		return nil, oauth.New(oauth.InvalidClient, "client authentication failed")
	}
	if cl.public() {
		if secret != "" || basic || !cl.allowsMethod(authNone) {
			return nil, oauth.New(oauth.InvalidClient, "client authentication failed")
		}
		return cl, nil
	}
	if secret == "" || !cl.authenticate(secret) { // S16: constant time
		return nil, oauth.New(oauth.InvalidClient, "client authentication failed")
	}
	if method := authSecretPost; basic && !cl.allowsMethod(authSecretBasic) || !basic && !cl.allowsMethod(method) {
		// The client is registered for another token_endpoint_auth_method.
		return nil, oauth.New(oauth.InvalidClient, "client authentication failed: use the client's registered token_endpoint_auth_method")
	}
	return cl, nil
}

// token is the token endpoint (RFC 6749 §3.2).
func (s *Server) token(c echo.Context) error {
	v, err := formValues(c)
	if err != nil {
		return oauth.New(oauth.InvalidRequest, err.Error())
	}
	if err := s.limitToken(c); err != nil { // S60
		return err
	}
	cl, terr := s.authenticateClient(c, v)
	if terr != nil {
		s.auditEvent(c, "refused", "client_authentication", attrs{client: v.Get("client_id")})
		return terr
	}
	if gt := v.Get("grant_type"); !cl.grants(gt) && knownGrant(gt) { // clientauth.go
		return oauth.New(oauth.UnauthorizedClient, "the client is not registered for grant type "+gt)
	}
	if err := s.tokenDPoP(c, cl); err != nil { // RFC 9449 §5 (dpop.go)
		return err
	}
	switch v.Get("grant_type") {
	case "authorization_code":
		return s.codeGrant(c, cl, v)
	case "refresh_token":
		return s.refreshGrant(c, cl, v)
	case grantTokenExchange:
		return s.tokenExchange(c, cl, v)
	case grantClientCredentials:
		return s.clientCredentials(c, cl, v) // clientcredentials.go
	case grantDeviceCode:
		return s.deviceGrant(c, cl, v) // device.go
	case "":
		return oauth.New(oauth.InvalidRequest, "grant_type is required")
	default: // S04: no password, no implicit, nothing else
		return oauth.New(oauth.UnsupportedGrantType, "supported: authorization_code, refresh_token, client_credentials, token exchange, device_code")
	}
}

func (s *Server) codeGrant(c echo.Context, cl *client, v url.Values) error {
	ctx := c.Request().Context()
	code := v.Get("code")
	if code == "" || len(code) > 128 {
		return oauth.New(oauth.InvalidRequest, "code is required")
	}
	bad := oauth.New(oauth.InvalidGrant, "the code is invalid, expired or already used")
	var g grant
	rd, err := s.takeCode(ctx, cl, code, &g) // redeem.go: with its family in one step where the store can
	if errors.Is(err, ErrNotFound) {
		// S07: a second redemption revokes what the first one issued.
		if fam, ok := s.priorFamily(ctx, rd, code); ok {
			_ = s.store.RevokeFamily(ctx, fam)
			s.auditEvent(c, "refused", "code_reused", attrs{client: cl.ID})
		}
		return bad
	} else if err != nil {
		return s.tokenUnavailable(c, err)
	}
	issued := false
	if rd.fam != "" {
		defer func() { // a check below refused: end the family the store started
			if !issued {
				_ = s.store.RevokeFamily(ctx, rd.fam)
			}
		}()
	}
	// S08: bound to client, redirect_uri and a 60 s lifetime.
	if g.ClientID != cl.ID || v.Get("redirect_uri") != g.RedirectURI || s.now().Sub(g.Created) > codeTTL {
		s.auditEvent(c, "refused", "code_binding", attrs{client: cl.ID, tenant: g.Tenant})
		return bad
	}
	// S03: the verifier is required, well formed, and hashes to the challenge.
	verifier := v.Get("code_verifier")
	if !isCodeVerifier(verifier) {
		return oauth.New(oauth.InvalidGrant, "code_verifier is missing or malformed")
	}
	sum := sha256.Sum256([]byte(verifier))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(g.Challenge)) != 1 {
		return oauth.New(oauth.InvalidGrant, "code_verifier does not match the code_challenge")
	}
	// RFC 9449 §10: a code bound to a DPoP key is redeemed with a proof by
	// that key; a public client's refresh tokens are bound to the proof's
	// key (§5), a confidential client's by its authentication.
	if !boundKeyMatches(c, &g) {
		s.auditEvent(c, "refused", "code_dpop_key_mismatch", attrs{client: cl.ID, tenant: g.Tenant})
		return oauth.New(oauth.InvalidGrant, "the code is bound to another DPoP key")
	}
	g.JKT = ""
	if cl.public() {
		g.JKT = dpopJKT(c)
	}
	if rd.fam != "" {
		if g.JKT == rd.famJKT { // the family the store started is bound as it must be
			issued = true
			return s.respondTokens(c, cl, &g, rd.fam, rd.rt, true, g.Scopes)
		}
		// A public client's proof binds the family to a key the code did
		// not name: start the family anew (the deferred revoke ends the first).
	}
	fam := s.familyID(g.SID)
	if err := s.store.Put(ctx, s.keyer.key("cu", code), []byte(fam), s.accessLifetime(cl)+codeTTL); err != nil {
		return s.tokenUnavailable(c, err)
	}
	return s.issue(c, cl, &g, fam, true, g.Scopes)
}

func (s *Server) refreshGrant(c echo.Context, cl *client, v url.Values) error {
	ctx := c.Request().Context()
	rt := v.Get("refresh_token")
	fam, _, ok := strings.Cut(rt, ".")
	bad := oauth.New(oauth.InvalidGrant, "the refresh token is invalid, expired or revoked")
	if !ok || len(rt) > 128 || !familyIDShape(fam) {
		return bad
	}
	next := fam + "." + randomToken(tokenBytes)
	var blob []byte
	var err error
	sid := SessionOfFamily(fam)
	sr, _ := s.store.(SessionRotator)
	checked := sr != nil && sid != "" // the store checks the session's marker itself
	if checked {
		// One step: the rotation also checks the session's logout marker.
		blob, err = sr.RotateUnlessRevoked(ctx, fam, s.keyer.key("rt", rt), s.keyer.key("rt", next), sessionMarkerKey(sid))
	} else {
		blob, err = s.store.Rotate(ctx, fam, s.keyer.key("rt", rt), s.keyer.key("rt", next))
	}
	switch {
	case errors.Is(err, ErrRevoked):
		return bad // the session was logged out; the store ended the family
	case errors.Is(err, ErrReused):
		// S09: replay of a rotated token revoked the family in the store.
		s.auditEvent(c, "refused", "refresh_token_reused", attrs{client: cl.ID})
		return bad
	case errors.Is(err, ErrNotFound):
		return bad
	case err != nil:
		return s.tokenUnavailable(c, err)
	}
	var g grant
	if err := decodeGrant(blob, &g, true); err != nil { // grantcodec.go: either stored form
		return bad
	}
	if checked {
		if g.SID != sid { // the family id names another session than its grant: never issued so
			_ = s.store.RevokeFamily(ctx, fam)
			return bad
		}
	} else if revoked, err := s.sessionRevoked(ctx, g.SID); err != nil {
		return s.tokenUnavailable(c, err)
	} else if revoked {
		_ = s.store.RevokeFamily(ctx, fam)
		return bad
	}
	if g.ClientID != cl.ID {
		// A refresh token presented by another client is stolen: end the family.
		_ = s.store.RevokeFamily(ctx, fam)
		s.auditEvent(c, "refused", "refresh_token_client_mismatch", attrs{client: cl.ID, tenant: g.Tenant})
		return bad
	}
	if !boundKeyMatches(c, &g) {
		// RFC 9449 §5: a public client's refresh token is bound to its DPoP
		// key; presented without a proof by it, it was stolen: end the family.
		_ = s.store.RevokeFamily(ctx, fam)
		s.auditEvent(c, "refused", "refresh_token_dpop_key_mismatch", attrs{client: cl.ID, tenant: g.Tenant})
		return oauth.New(oauth.InvalidGrant, "the refresh token is bound to another DPoP key")
	}
	// S68: the decision is taken again, with the directory as it is now
	// (tenant, IdP, membership, client, the tenant's MFA policy), and the
	// tenant's current rules run again over the authentication the family
	// came from. A refusal ends the family.
	at := attrs{client: cl.ID, tenant: g.Tenant, idp: g.IdP, subject: g.Subject}
	if g.Origin != nil && g.Origin.UID != "" {
		// The user's directory record as it is now: status, revocation,
		// groups and attributes (one round trip).
		u, err := s.loadUser(ctx, g.Origin)
		if err != nil {
			return s.tokenUnavailable(c, err)
		}
		g.Origin.user, g.Origin.userRead = u, true
	}
	if err := s.dir().authorizeFor(s.now(), cl, g.Tenant, grantSubject(&g), strength{maxAge: -1}); err != nil {
		_ = s.store.RevokeFamily(ctx, fam)
		s.auditEvent(c, "refused", "refresh_"+refusal(err), at)
		return bad
	}
	if g.Origin != nil {
		claims, err := s.claimsFor(ctx, cl.ID, g.Origin, g.Tenant)
		if err != nil {
			var denied *transform.DeniedError
			if errors.As(err, &denied) {
				_ = s.store.RevokeFamily(ctx, fam)
				s.auditEvent(c, "denied", "rule: "+denied.Rule, at)
				return oauth.New(oauth.InvalidGrant, "access denied: "+denied.Message)
			}
			if errors.Is(err, ErrUnavailable) { // a store read (time-bound grants, access.go)
				return s.tokenUnavailable(c, err)
			}
			s.log.Error("claims rules on refresh", "request_id", requestID(c), "tenant", g.Tenant, "err", err)
			s.auditEvent(c, "failure", "rule_error", at)
			return bad
		}
		g.Claims = claims
	}
	scopes := g.Scopes
	if sc := v.Get("scope"); sc != "" {
		scopes = strings.Fields(sc)
		for _, x := range scopes {
			if !slices.Contains(g.Scopes, x) {
				return oauth.New(oauth.InvalidScope, "a refresh cannot widen the scope")
			}
		}
	}
	return s.respondTokens(c, cl, &g, fam, next, false, scopes)
}

// familyIDShape reports whether fam can be a family id: 22 random
// characters, or "<sid>~" and 22 random characters (familyID).
func familyIDShape(fam string) bool {
	if sid, rest, ok := strings.Cut(fam, FamilySeparator); ok {
		return taggableSID(sid) && len(rest) == 22
	}
	return len(fam) == 22
}

// issue starts a refresh-token family for a redeemed code and answers.
func (s *Server) issue(c echo.Context, cl *client, g *grant, fam string, first bool, scopes []string) error {
	ctx := c.Request().Context()
	rt := fam + "." + randomToken(tokenBytes)
	stored := *g
	stored.RedirectURI, stored.Challenge, stored.Nonce, stored.Created = "", "", "", time.Time{}
	blob, err := json.Marshal(stored)
	if err != nil {
		return err
	}
	ttl := s.refreshLifetime(cl) // lifetimes.go
	if g.Cap > 0 && g.Cap < ttl {
		ttl = g.Cap // a conditional-access policy shortened the session (conditional.go)
	}
	if err := s.store.CreateFamily(ctx, fam, s.keyer.key("rt", rt), blob, ttl); err != nil {
		return s.tokenUnavailable(c, err)
	}
	return s.respondTokens(c, cl, g, fam, rt, first, scopes)
}

// accessClaims are the claims of a JWT access token (RFC 9068 §2.2), as a
// struct: encoding it is several times cheaper than a map.
type accessClaims struct {
	Iss      string `json:"iss"`
	Sub      string `json:"sub"`
	Aud      string `json:"aud"`
	ClientID string `json:"client_id"`
	Iat      int64  `json:"iat"`
	Exp      int64  `json:"exp"`
	Jti      string `json:"jti"`
	Scope    string `json:"scope"`
	Tid      string `json:"tid"`
	IdP      string `json:"idp"`
	Roles    []any  `json:"roles,omitzero"`
	AuthTime int64  `json:"auth_time,omitempty"`
	SID      string `json:"sid"`
	GID      string `json:"gid"`
	// Acrs are the authentication contexts the sign-in met (conditional.go).
	Acrs []string `json:"acrs,omitempty"`
	// Cnf binds a DPoP-bound token to its key (RFC 9449 §6.1).
	Cnf *confirmation `json:"cnf,omitempty"`
}

// tokenResponse is the RFC 6749 §5.1 successful response (OIDC Core §3.1.3.3).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	IDToken      string `json:"id_token"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
}

func (s *Server) respondTokens(c echo.Context, cl *client, g *grant, fam, rt string, withNonce bool, scopes []string) error {
	now := s.now()
	scope := strings.Join(scopes, " ")
	id, roles := release(cl, g.Claims, scopes)
	cnf, tokenType := tokenBinding(c)                                   // RFC 9449 §5, §6.1
	sub, accessTTL := s.subjectFor(cl, g.Subject), s.accessLifetime(cl) // pairwise.go, lifetimes.go
	// RFC 9068 §2.1: typ at+jwt (S12).
	access, atHash, err := s.keys.signHalf(&accessClaims{
		Iss: s.cfg.Issuer, Sub: sub, Aud: cl.ID, ClientID: cl.ID,
		Iat: now.Unix(), Exp: now.Add(accessTTL).Unix(), Jti: randomToken(16),
		Scope: scope, Tid: g.Tenant, IdP: g.IdP, Roles: roles, AuthTime: unixOrZero(g.AuthTime), SID: g.SID, GID: fam,
		Acrs: g.ACRS,
		Cnf:  cnf,
	}, "at+jwt", true)
	if err != nil {
		return err
	}
	// release returned a fresh map: the ID token's claims start from it.
	// Reserved claims are set last so no rule or upstream value can override them.
	id["iss"], id["sub"], id["aud"], id["azp"] = s.cfg.Issuer, sub, cl.ID, cl.ID
	id["iat"], id["exp"] = now.Unix(), now.Add(s.idLifetime(cl)).Unix()
	if !g.AuthTime.IsZero() { // S67: only an authentication time the upstream gave
		id["auth_time"] = g.AuthTime.Unix()
	}
	id["tid"], id["idp"], id["sid"] = g.Tenant, g.IdP, g.SID
	if roles != nil {
		id["roles"] = roles
	}
	if len(g.ACRS) > 0 {
		id["acrs"] = g.ACRS // the authentication contexts met (conditional.go)
	}
	if g.Risk != "" && cl != nil && slices.Contains(cl.Claims, "risk_level") {
		id["risk_level"] = g.Risk // S75: only to clients registered for it
	}
	id["at_hash"] = atHash // halfHash(access), OIDC Core §3.1.3.6
	if withNonce && g.Nonce != "" {
		id["nonce"] = g.Nonce // echoed byte for byte (S11)
	}
	idToken, err := s.keys.sign(id, "JWT")
	if err != nil {
		return err
	}
	c.Response().Header().Set("Pragma", "no-cache")
	resp := &tokenResponse{
		AccessToken: access, TokenType: tokenType, ExpiresIn: int(accessTTL / time.Second),
		IDToken: idToken, RefreshToken: rt, Scope: scope,
	}
	return writeTokenResponse(c, resp)
}

// halfHash is the left half of SHA-256, base64url: at_hash / c_hash for ES256 and RS256.
func halfHash(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// release returns the claims client cl receives (S75), through the claims
// pipeline's release step; roles is nil when it does not receive them.
func release(cl *client, all map[string]any, scopes []string) (map[string]any, []any) {
	var granted []string
	if cl != nil {
		granted = cl.Claims
	}
	return claims.Release(all, scopes, granted)
}

// unixOrZero is t in seconds, or 0 (left out of the token) when t is unknown.
func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}
