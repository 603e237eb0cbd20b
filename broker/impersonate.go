package broker

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/claims"
	"github.com/realmgate/realmgate/oauth"
)

// tokenTypeUser is realmgate's subject token type for impersonation: the
// subject token names a user as "<tenant id>/<sub>" (sub as realmgate
// issues it), rather than being a token of that user.
const tokenTypeUser = "urn:realmgate:params:oauth:token-type:user"

// DefaultImpersonationLifetime bounds impersonation tokens when the tenant
// sets no shorter lifetime.
const DefaultImpersonationLifetime = 15 * time.Minute

// ImpersonationPolicy says who may act as a tenant's users.
type ImpersonationPolicy struct {
	// OperatorRoles: the operator's access token must carry one of these roles.
	OperatorRoles []string
	// OperatorTenants: the operator must have signed in to one of these
	// tenants (empty: the tenant itself).
	OperatorTenants []string
	// Lifetime bounds the tokens (0: DefaultImpersonationLifetime).
	Lifetime time.Duration
}

// impersonate is token exchange with a user as subject (RFC 8693 §1.1,
// impersonation with an actor): an operator's access token as actor_token,
// a user "<tenant>/<sub>" as subject, a tenant whose policy allows it. The
// token carries act naming the operator, lives briefly, has no refresh
// token, and both ids go to the audit stream.
func (s *Server) impersonate(c echo.Context, cl *client, v url.Values, audience string) error {
	ctx := c.Request().Context()
	tenant, sub, ok := strings.Cut(v.Get("subject_token"), "/")
	if !ok || tenant == "" || sub == "" || len(sub) > 128 {
		return oauth.New(oauth.InvalidRequest, "subject_token must be <tenant>/<sub>")
	}
	policy := s.dir().policies[tenant].Impersonation
	if policy == nil {
		s.auditEvent(c, "refused", "impersonation_not_allowed", attrs{client: cl.ID, tenant: tenant, subject: sub})
		return oauth.New(oauth.InvalidGrant, "the tenant does not allow impersonation")
	}
	if t := v.Get("actor_token_type"); t != tokenTypeAccess && t != tokenTypeJWT {
		return oauth.New(oauth.InvalidRequest, "impersonation needs the operator's access token as actor_token")
	}
	actor, _, err := s.accessToken(c, v.Get("actor_token"))
	if isUnavailable(err) {
		return s.tokenUnavailable(c, err)
	}
	if err != nil || stringClaim(actor, "aud") != cl.ID {
		// The operator's token must have been issued to the client presenting it.
		return oauth.New(oauth.InvalidGrant, "the actor token is invalid or not issued to this client")
	}
	if !presentedWithKey(c, actor) { // RFC 9449: a bound token needs its key's proof
		return oauth.New(oauth.InvalidGrant, "the actor token is DPoP-bound: send a DPoP proof by its key")
	}
	operatorTenants := policy.OperatorTenants
	if len(operatorTenants) == 0 {
		operatorTenants = []string{tenant}
	}
	actorTenant, actorSub := stringClaim(actor, "tid"), stringClaim(actor, "sub")
	permitted := slices.Contains(operatorTenants, actorTenant) &&
		slices.ContainsFunc(claims.Roles(actor), func(r any) bool { rs, _ := r.(string); return slices.Contains(policy.OperatorRoles, rs) })
	at := attrs{client: cl.ID, tenant: tenant, subject: sub, actor: actorTenant + "/" + actorSub}
	if !permitted {
		s.auditEvent(c, "refused", "impersonation_operator_not_allowed", at)
		return oauth.New(oauth.InvalidGrant, "the operator may not impersonate users of this tenant")
	}
	// S69: only a subject realmgate issued for this tenant can be acted as:
	// "acme/<sub of a globex user>" names nobody of acme.
	rec, err := s.issuedSubject(ctx, tenant, sub)
	if isUnavailable(err) {
		return s.tokenUnavailable(c, err)
	}
	if err != nil {
		s.auditEvent(c, "refused", "impersonation_unknown_subject", at)
		return oauth.New(oauth.InvalidGrant, "the tenant has no such user")
	}
	// S66: the audience must be allowed this tenant and the user's IdP.
	d := s.dir()
	if err := d.authorizeFor(s.now(), d.clients[audience], tenant, subjectOf{idp: rec.IdP}, strength{maxAge: -1}); err != nil {
		s.auditEvent(c, "refused", "impersonation_"+refusal(err), at)
		return oauth.New(oauth.InvalidTarget, "the audience may not receive tokens for this user")
	}
	lifetime := policy.Lifetime
	if lifetime <= 0 || lifetime > DefaultImpersonationLifetime {
		lifetime = DefaultImpersonationLifetime
	}
	now := s.now()
	fam := randomToken(16)
	g := grant{ClientID: audience, Scopes: []string{"openid"}, Subject: sub, Tenant: tenant, IdP: rec.IdP,
		Claims: map[string]any{"roles": []any{}}, Created: now}
	g.TI, g.HI = d.incarnations(tenant, rec.IdP)
	blob, _ := json.Marshal(g)
	// A short-lived grant lets our endpoints (introspection, revocation) see
	// and end the impersonation like any other token.
	if err := s.store.CreateFamily(ctx, fam, s.keyer.key("rt", randomToken(tokenBytes)), blob, lifetime); err != nil {
		return s.tokenUnavailable(c, err)
	}
	atClaims := jwt.MapClaims{
		"iss": s.cfg.Issuer, "sub": sub, "aud": audience, "client_id": cl.ID, "iat": now.Unix(),
		"exp": now.Add(lifetime).Unix(), "jti": randomToken(16), "scope": "openid", "tid": tenant, "idp": rec.IdP,
		"gid": fam, "act": map[string]any{"sub": actorSub, "tid": actorTenant, "client_id": stringClaim(actor, "client_id")},
	}
	tokenType := bindClaims(c, atClaims) // RFC 9449 §5
	tok, err := s.keys.sign(atClaims, "at+jwt")
	if err != nil {
		return err
	}
	s.auditEvent(c, "impersonation", "audience "+audience, at)
	c.Response().Header().Set("Pragma", "no-cache")
	return c.JSON(http.StatusOK, map[string]any{
		"access_token": tok, "issued_token_type": tokenTypeAccess, "token_type": tokenType,
		"expires_in": int(lifetime / time.Second), "scope": "openid",
	})
}
