package broker

// Token exchange from outside (RFC 8693, the "chain of STSs"): a client
// presents a token a tenant's upstream IdP issued (an ID token, or a JWT
// access token such as Entra issues for an API) and gets a realmgate access
// token for that tenant, as if the person had signed in: the IdP verifies
// its own token (providers.SubjectTokenVerifier: keys, issuer, aud, exp,
// nbf, iat), the tenant's directory is consulted (a suspended user is
// refused), the one authorization decision is taken for the requesting
// client, and the claims pipeline runs (claims.Standard, the tenant's
// rules, release for the client). Each IdP opts in, with the token kinds
// and access-token audiences it accepts (IdP.TokenExchange).

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

	"github.com/realmgate/realmgate/oauth"
	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/transform"
)

// tokenTypeIDToken is the RFC 8693 §3 token type of an ID token.
const tokenTypeIDToken = "urn:ietf:params:oauth:token-type:id_token"

// maxExternalToken bounds a subject token from an upstream (S32).
const maxExternalToken = 16 << 10

// ExternalExchange is an IdP's opt-in to token exchange from outside.
type ExternalExchange struct {
	// Accept lists the subject token kinds taken: providers.SubjectIDToken
	// (aud: realmgate's client id at the IdP) and providers.SubjectJWT (aud:
	// one of Audiences).
	Accept []string
	// Audiences are the aud values a JWT access token may carry (the
	// tenant's API registrations at the IdP).
	Audiences []string
}

// externalSubject reports whether the exchange request carries a token of
// an upstream, not one of ours: an ID token, or a JWT whose (unverified)
// issuer is not this issuer. The issuer only routes the request; the token
// is verified by the IdP that claims it.
func (s *Server) externalSubject(v url.Values) bool {
	switch v.Get("subject_token_type") {
	case tokenTypeIDToken:
		return true
	case tokenTypeJWT:
		iss := unverifiedIssuer(v.Get("subject_token"))
		return iss != "" && iss != s.cfg.Issuer
	}
	return false
}

// unverifiedIssuer reads iss from a JWT without verifying it; "" when raw
// is not a bounded JWT.
func unverifiedIssuer(raw string) string {
	if raw == "" || len(raw) > maxExternalToken {
		return ""
	}
	var claims jwt.MapClaims
	if _, _, err := jwt.NewParser().ParseUnverified(raw, &claims); err != nil {
		return ""
	}
	iss, _ := claims["iss"].(string)
	return iss
}

// exchangeIdP finds the IdP that opted in to token exchange whose issuer is
// iss, and its verifier.
func (d *directory) exchangeIdP(iss string) (IdP, providers.SubjectTokenVerifier, bool) {
	for _, idp := range d.idps {
		if idp.TokenExchange == nil || idp.Connector == nil {
			continue
		}
		if ver, ok := providers.As[providers.SubjectTokenVerifier](idp.Connector); ok && ver.Issuer() == iss {
			return idp, ver, true
		}
	}
	return IdP{}, nil, false
}

// externalExchange is the token exchange of an upstream's token (RFC 8693
// §2.1) for a realmgate access token of the IdP's tenant, issued to the
// requesting client.
func (s *Server) externalExchange(c echo.Context, cl *client, v url.Values) error {
	if cl.public() {
		return oauth.New(oauth.InvalidClient, "token exchange needs an authenticated client")
	}
	if t := v.Get("requested_token_type"); t != "" && t != tokenTypeAccess {
		return oauth.New(oauth.InvalidRequest, "only access tokens can be requested")
	}
	if v.Has("actor_token") {
		return oauth.New(oauth.InvalidRequest, "an actor token cannot be combined with an upstream subject token")
	}
	if aud := firstOf(v, "audience", "resource"); aud != "" && aud != cl.ID {
		return oauth.New(oauth.InvalidTarget, "a token exchanged from an identity provider is issued to the requesting client only")
	}
	kind := providers.SubjectJWT
	if v.Get("subject_token_type") == tokenTypeIDToken {
		kind = providers.SubjectIDToken
	}
	raw := v.Get("subject_token")
	if raw == "" || len(raw) > maxExternalToken {
		return oauth.New(oauth.InvalidRequest, "subject_token is missing or too large")
	}
	scopes := strings.Fields(v.Get("scope"))
	if len(scopes) == 0 {
		scopes = []string{"openid"}
	}
	if len(scopes) > 32 || len(v.Get("scope")) > 1024 {
		return oauth.New(oauth.InvalidScope, "too many scopes")
	}
	ctx := c.Request().Context()
	d := s.dir()
	bad := oauth.New(oauth.InvalidGrant, "the subject token is invalid, expired, or not accepted for exchange")
	idp, ver, ok := d.exchangeIdP(unverifiedIssuer(raw))
	if !ok {
		// No tenant's IdP with that issuer opted in: another IdP's token,
		// a token of an IdP that did not opt in, or not a JWT at all.
		s.auditEvent(c, "refused", "external_exchange_no_idp", attrs{client: cl.ID})
		return bad
	}
	at := attrs{client: cl.ID, tenant: idp.Tenant, idp: idp.ID}
	if !slices.Contains(idp.TokenExchange.Accept, kind) {
		s.auditEvent(c, "refused", "external_exchange_kind_"+kind, at)
		return bad
	}
	ident, err := ver.VerifySubjectToken(ctx, raw, kind, idp.TokenExchange.Audiences)
	if errors.Is(err, providers.ErrUnavailable) {
		s.log.Warn("subject token keys", "request_id", requestID(c), "idp", idp.ID, "err", err)
		return errTemporarilyUnavailable.Wrap(err)
	}
	if err != nil {
		s.log.Info("subject token refused", "request_id", requestID(c), "idp", idp.ID, "err", err)
		s.auditEvent(c, "refused", "external_exchange_invalid_token", at)
		return bad
	}
	// S50: the tenant is the IdP's; nothing in the request names it.
	sess := s.identitySession(idp, ident, time.Time{})
	at.subject = sess.Subject
	u, err := s.signInUser(c, idp, &ident, sess.Subject)
	switch {
	case errors.Is(err, errNotProvisioned):
		s.auditEvent(c, "refused", "user_not_provisioned", at)
		return oauth.New(oauth.InvalidGrant, "the user is not provisioned in this tenant")
	case err != nil:
		return s.tokenUnavailable(c, err)
	case u != nil:
		sess.UID, sess.UGen, sess.user, sess.userRead = u.ID, u.Generation, u, true
	}
	// The one authorization decision (S66), with the directory record
	// (a suspended or deprovisioned user is refused).
	if err := d.authorizeFor(s.now(), cl, idp.Tenant, sessionSubject(sess), strength{maxAge: -1}); err != nil {
		s.auditEvent(c, "refused", "external_exchange_"+refusal(err), at)
		return oauth.New(oauth.InvalidGrant, "the user may not obtain tokens for this client")
	}
	claims, err := s.claimsFor(ctx, cl.ID, sess, idp.Tenant)
	if err != nil {
		var denied *transform.DeniedError
		switch {
		case errors.As(err, &denied):
			s.auditEvent(c, "denied", "rule: "+denied.Rule, at)
			return oauth.New(oauth.InvalidGrant, "access denied: "+denied.Message)
		case errors.Is(err, ErrUnavailable):
			return s.tokenUnavailable(c, err)
		}
		s.log.Error("claims rules on external exchange", "request_id", requestID(c), "tenant", idp.Tenant, "err", err)
		s.auditEvent(c, "failure", "rule_error", at)
		return oauth.New(oauth.ServerError, "the tenant's rules failed")
	}
	if err := s.recordSubject(ctx, idp.Tenant, sess); err != nil {
		return s.tokenUnavailable(c, err)
	}
	now := s.now()
	exp := now.Add(s.accessLifetime(cl)) // lifetimes.go
	if e, ok := ident.Claims["exp"].(float64); ok && time.Unix(int64(e), 0).Before(exp) {
		exp = time.Unix(int64(e), 0) // never outlive the token it came from
	}
	// The token's grant: a family without a refresh token handed out, so
	// userinfo, introspection and revocation treat the token as any other
	// (and the decision is taken again there, S68).
	origin := &session{Tenant: sess.Tenant, IdP: sess.IdP, Subject: sess.Subject, Identity: sess.Identity,
		AuthTime: sess.AuthTime, UID: sess.UID, UGen: sess.UGen}
	g := grant{ClientID: cl.ID, Scopes: scopes, Subject: sess.Subject, Tenant: idp.Tenant, IdP: idp.ID,
		AuthTime: sess.AuthTime, Claims: claims, Origin: origin}
	g.TI, g.HI = d.incarnations(idp.Tenant, idp.ID)
	blob, err := json.Marshal(g)
	if err != nil {
		return err
	}
	fam := s.familyID("")
	if err := s.store.CreateFamily(ctx, fam, s.keyer.key("rt", fam+"."+randomToken(tokenBytes)), blob, exp.Sub(now)+time.Second); err != nil {
		return s.tokenUnavailable(c, err)
	}
	_, roles := release(cl, claims, scopes) // S75
	cnf, tokenType := tokenBinding(c)       // RFC 9449 §5
	access, err := s.keys.sign(&accessClaims{
		// pairwise.go: the client's sub
		Iss: s.cfg.Issuer, Sub: s.subjectFor(cl, sess.Subject), Aud: cl.ID, ClientID: cl.ID, Iat: now.Unix(), Exp: exp.Unix(),
		Jti: randomToken(16), Scope: strings.Join(scopes, " "), Tid: idp.Tenant, IdP: idp.ID, Roles: roles,
		AuthTime: unixOrZero(sess.AuthTime), GID: fam, Cnf: cnf,
	}, "at+jwt")
	if err != nil {
		return err
	}
	s.auditEvent(c, "exchanged", "external "+kind, at)
	c.Response().Header().Set("Pragma", "no-cache")
	return c.JSON(http.StatusOK, map[string]any{ // RFC 8693 §2.2.1
		"access_token": access, "issued_token_type": tokenTypeAccess, "token_type": tokenType,
		"expires_in": int(exp.Sub(now) / time.Second), "scope": strings.Join(scopes, " "),
	})
}
