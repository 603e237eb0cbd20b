package broker

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/oauth"
)

// discovery serves OpenID Provider metadata (OIDC Discovery §3, RFC 8414).
// The document changes only with the signing algorithms, so its encoding is
// cached per algorithm set.
func (s *Server) discovery(c echo.Context) error {
	s.keys.refresh(c.Request().Context())
	// The document lists the keys' algorithms: it is encoded again only when
	// the key set changed (a new JWKS document), not per request.
	keys := s.keys.jwks()
	doc, _ := s.discoveryDoc.Load().(*cachedDoc)
	if doc == nil || !sameBytes(doc.keys, keys) {
		b, err := json.Marshal(s.discoveryMetadata())
		if err != nil {
			return err
		}
		doc = &cachedDoc{keys: keys, body: b}
		s.discoveryDoc.Store(doc)
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, doc.body)
}

// cachedDoc is an encoded discovery document and the JWKS document of the
// key set it was made from.
type cachedDoc struct {
	keys []byte
	body []byte
}

// sameBytes reports whether a and b are the same slice (one backing array),
// which is cheaper than comparing contents and exact for documents that are
// replaced, never modified.
func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

func (s *Server) discoveryMetadata() map[string]any {
	m := map[string]any{
		"issuer":                                        s.cfg.Issuer,
		"authorization_endpoint":                        s.url("/authorize"),
		"token_endpoint":                                s.url("/token"),
		"userinfo_endpoint":                             s.url("/userinfo"),
		"jwks_uri":                                      s.url("/jwks"),
		"revocation_endpoint":                           s.url("/revoke"),
		"introspection_endpoint":                        s.url("/introspect"),
		"end_session_endpoint":                          s.url("/logout"), // OIDC RP-Initiated Logout 1.0 §2.1
		"backchannel_logout_supported":                  true,             // OIDC Back-Channel Logout 1.0 §2.1
		"backchannel_logout_session_supported":          true,
		"response_types_supported":                      []string{"code"},
		"response_modes_supported":                      []string{"query"},
		"grant_types_supported":                         []string{"authorization_code", "refresh_token", grantTokenExchange},
		"subject_types_supported":                       []string{SubjectPublic, SubjectPairwise}, // pairwise.go
		"id_token_signing_alg_values_supported":         s.keys.algs(),
		"token_endpoint_auth_methods_supported":         []string{"client_secret_basic", "client_secret_post", "none"},
		"revocation_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post"},
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"code_challenge_methods_supported":              []string{"S256"},
		"scopes_supported":                              []string{"openid", "profile", "email", "roles", "offline_access"},
		"claims_supported": []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp", "sid", "at_hash",
			"tid", "idp", "roles", "amr", "acr", "email", "email_verified", "name", "given_name", "family_name", "preferred_username", "acrs", "risk_level"},
		"prompt_values_supported":                        []string{"none", "login", "consent", "select_account"},
		"authorization_response_iss_parameter_supported": true, // RFC 9207 §3 (S05)
		"request_parameter_supported":                    false,
		"request_uri_parameter_supported":                false,
		"claims_parameter_supported":                     true, // OIDC Core §5.5: acrs (conditional.go)
		// RFC 9126 §5 and RFC 9449 §5.1.
		"pushed_authorization_request_endpoint": s.url("/par"),
		"require_pushed_authorization_requests": s.cfg.PAR.Require,
		"dpop_signing_alg_values_supported":     dpopAlgNames(),
	}
	s.clientAuthMetadata(m) // clientauth.go
	s.deviceMetadata(m)     // device.go
	return m
}

// jwks publishes the current and still-valid previous signing keys.
func (s *Server) jwks(c echo.Context) error {
	s.keys.refresh(c.Request().Context())
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.Blob(http.StatusOK, "application/jwk-set+json", s.keys.jwks())
}

// accessToken verifies one of our access tokens, that its grant is alive,
// and that its audience may still have it (S66, S68): a tenant, IdP or
// membership removed, or a client narrowed, ends the token at our endpoints.
func (s *Server) accessToken(c echo.Context, token string) (jwt.MapClaims, *grant, error) {
	claims, err := s.keys.verify(token, "at+jwt")
	if err != nil {
		return nil, nil, err
	}
	if iss, _ := claims["iss"].(string); iss != s.cfg.Issuer {
		return nil, nil, errBadToken
	}
	fam, _ := claims["gid"].(string)
	if fam == "" {
		return nil, nil, errBadToken
	}
	ctx := c.Request().Context()
	var g grant
	if err := s.familyGrant(ctx, fam, &g); errors.Is(err, ErrNotFound) {
		return nil, nil, errBadToken // revoked
	} else if err != nil {
		return nil, nil, err
	}
	if revoked, err := s.sessionRevoked(ctx, g.SID); err != nil {
		return nil, nil, err
	} else if revoked {
		return nil, nil, errBadToken // the session was logged out
	}
	d := s.dir()
	if d.authorizeFor(s.now(), d.clients[stringClaim(claims, "aud")], stringClaim(claims, "tid"), grantSubject(&g), strength{maxAge: -1}) != nil {
		return nil, nil, errBadToken
	}
	return claims, &g, nil
}

// userinfo is the OIDC UserInfo endpoint (OIDC Core §5.3).
func (s *Server) userinfo(c echo.Context) error {
	tok, dpopScheme := accessTokenFromRequest(c)
	if tok == "" {
		return oauth.New(oauth.InvalidRequest, "a bearer access token is required").WithStatus(http.StatusUnauthorized) // RFC 6750 §3
	}
	at, g, err := s.accessToken(c, tok)
	if errors.Is(err, ErrUnavailable) {
		return s.tokenUnavailable(c, err)
	}
	if err != nil {
		// S12: an ID token (typ JWT) presented here fails the typ check.
		return oauth.New(oauth.InvalidToken, "the access token is invalid, expired or revoked")
	}
	if err := s.resourceDPoP(c, at, tok, "/userinfo", dpopScheme); err != nil { // RFC 9449 §7
		return err
	}
	scopes := strings.Fields(stringClaim(at, "scope"))
	cl := s.dir().clients[stringClaim(at, "aud")]
	all := g.Claims
	if g.Origin != nil && g.Tenant == stringClaim(at, "tid") {
		// The tenant's current rules, as at refresh (S68), over the user's
		// directory record as it is now.
		u, err := s.loadUser(c.Request().Context(), g.Origin)
		if err != nil {
			return s.tokenUnavailable(c, err)
		}
		g.Origin.user, g.Origin.userRead = u, true
		if g.Origin.UID != "" && userOf(u, true, g.Origin.UGen) != nil {
			return oauth.New(oauth.InvalidToken, "the access token is no longer valid")
		}
		fresh, err := s.claimsFor(c.Request().Context(), g.ClientID, g.Origin, g.Tenant)
		if errors.Is(err, ErrUnavailable) { // a store read (time-bound grants, access.go)
			return s.tokenUnavailable(c, err)
		}
		if err != nil {
			return oauth.New(oauth.InvalidToken, "the access token is no longer valid")
		}
		all = fresh
	}
	out, roles := release(cl, all, scopes) // S75: the same filter as the tokens
	out["sub"], out["tid"], out["idp"] = at["sub"], at["tid"], at["idp"]
	if roles != nil {
		out["roles"] = roles
	}
	return c.JSON(http.StatusOK, out)
}

func stringClaim(m jwt.MapClaims, k string) string { v, _ := m[k].(string); return v }

// introspect is RFC 7662 token introspection; callers authenticate as a
// client and see only their own tokens (S15, S10).
func (s *Server) introspect(c echo.Context) error {
	v, err := formValues(c)
	if err != nil {
		return oauth.New(oauth.InvalidRequest, err.Error())
	}
	cl, terr := s.authenticateClient(c, v)
	if terr != nil || cl.public() {
		return oauth.New(oauth.InvalidClient, "client authentication required")
	}
	// A DPoP proof sent here is checked like any other (RFC 9449 §4.3).
	if _, err := s.dpopProof(c, dpopCheck{method: http.MethodPost, url: s.url("/introspect")}); err != nil {
		return err
	}
	inactive := map[string]any{"active": false}
	at, _, err := s.accessToken(c, v.Get("token"))
	if errors.Is(err, ErrUnavailable) {
		return s.tokenUnavailable(c, err)
	}
	if err != nil {
		at, err = s.machineToken(v.Get("token")) // clientcredentials.go
	}
	if err != nil || stringClaim(at, "aud") != cl.ID {
		return c.JSON(http.StatusOK, inactive)
	}
	out := map[string]any{"active": true, "token_type": "Bearer"}
	for _, k := range []string{"iss", "sub", "aud", "client_id", "scope", "exp", "iat", "jti", "tid", "idp", "roles", "auth_time", "sid"} {
		if val, ok := at[k]; ok {
			out[k] = val
		}
	}
	if jkt := jktOf(at); jkt != "" { // RFC 9449 §6.2
		out["token_type"], out["cnf"] = "DPoP", confirmation{JKT: jkt}
	}
	return c.JSON(http.StatusOK, out)
}

// revoke is RFC 7009 token revocation: authenticated clients only; another
// client's or an unknown token gets 200 and nothing happens (S14).
func (s *Server) revoke(c echo.Context) error {
	v, err := formValues(c)
	if err != nil {
		return oauth.New(oauth.InvalidRequest, err.Error())
	}
	cl, terr := s.authenticateClient(c, v)
	if terr != nil {
		return terr
	}
	if cl.public() {
		// RFC 7009 §2.1: public clients may revoke, identified by client_id.
		if v.Get("client_id") != cl.ID {
			return oauth.New(oauth.InvalidClient, "client authentication required")
		}
	}
	tok := v.Get("token")
	if tok == "" {
		return oauth.New(oauth.InvalidRequest, "token is required")
	}
	ctx := c.Request().Context()
	fam := ""
	if f, _, ok := strings.Cut(tok, "."); ok && familyIDShape(f) && strings.Count(tok, ".") == 1 {
		fam = f // a refresh token
	} else if claims, err := s.keys.verify(tok, "at+jwt"); err == nil && stringClaim(claims, "aud") == cl.ID {
		fam = stringClaim(claims, "gid")
	}
	if fam != "" {
		var g grant
		err := s.familyGrant(ctx, fam, &g)
		if errors.Is(err, ErrUnavailable) {
			return s.tokenUnavailable(c, err)
		}
		if err == nil && g.ClientID == cl.ID {
			// Revoking the family ends its refresh tokens and, through the
			// grant check, its access tokens at our endpoints.
			if err := s.store.RevokeFamily(ctx, fam); err != nil && !errors.Is(err, ErrNotFound) {
				return s.tokenUnavailable(c, err)
			}
			s.auditEvent(c, "revoked", "", attrs{client: cl.ID, tenant: g.Tenant, subject: g.Subject})
		}
	}
	return c.NoContent(http.StatusOK)
}
