package admin

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/scim"
)

// SCIM provisioning tokens (docs/scim.md): a tenant's admin creates one per
// provisioning client (Entra, Okta), pastes it once into the client, and
// revokes it when the client is retired. The token is shown only in the
// answer to its creation; the store keeps an HMAC of it (scim.Tokens).

// scimRoutes registers the token endpoints on the authenticated group.
func (s *Service) scimRoutes(g *echo.Group) {
	g.GET("/tenants/:tenant/scim/tokens", s.listSCIMTokens)
	g.POST("/tenants/:tenant/scim/tokens", s.createSCIMToken)
	g.DELETE("/tenants/:tenant/scim/tokens/:token", s.revokeSCIMToken)
}

type scimTokenInput struct {
	Name string `json:"name"`
}

// scimTokenCreated is the answer to a creation: the only time the token is shown.
type scimTokenCreated struct {
	scim.TokenInfo
	// Token is the bearer token to paste into the provisioning client.
	Token string `json:"token"`
	// Endpoint is the tenant's SCIM base URL (Entra's "Tenant URL", Okta's
	// "SCIM connector base URL").
	Endpoint string `json:"endpoint"`
}

type scimTokenList struct {
	Tokens   []scim.TokenInfo `json:"tokens"`
	Endpoint string           `json:"endpoint"`
}

// scimTenant checks the caller may act on the tenant in the path, that
// SCIM is on and that the tenant exists.
func (s *Service) scimTenant(c echo.Context) (*caller, string, error) {
	id := param(c, "tenant")
	w, err := scoped(c, id)
	if err != nil {
		return nil, "", err
	}
	if s.opts.SCIMTokens == nil {
		return nil, "", notFound("SCIM provisioning is not enabled on this server")
	}
	if t, _ := s.lookupTenant(id); t == nil {
		return nil, "", notFound("no tenant %q", id)
	}
	return w, id, nil
}

func (s *Service) scimEndpoint(tenant string) string {
	return s.opts.Issuer + "/scim/v2/" + tenant
}

func (s *Service) listSCIMTokens(c echo.Context) error {
	_, id, err := s.scimTenant(c)
	if err != nil {
		return err
	}
	list, err := s.opts.SCIMTokens.List(c.Request().Context(), id)
	if err != nil {
		return scimTokenError(err)
	}
	if list == nil {
		list = []scim.TokenInfo{}
	}
	return c.JSON(http.StatusOK, scimTokenList{Tokens: list, Endpoint: s.scimEndpoint(id)})
}

func (s *Service) createSCIMToken(c echo.Context) error {
	w, id, err := s.scimTenant(c)
	if err != nil {
		return err
	}
	var in scimTokenInput
	if err := decode(c, &in, maxBody); err != nil {
		return err
	}
	tok, info, err := s.opts.SCIMTokens.Create(c.Request().Context(), id, in.Name, w.name)
	s.auditSCIMToken(c, w, "scim_token.create", id, info, err)
	if err != nil {
		return scimTokenError(err)
	}
	return c.JSON(http.StatusCreated, scimTokenCreated{TokenInfo: info, Token: tok, Endpoint: s.scimEndpoint(id)})
}

func (s *Service) revokeSCIMToken(c echo.Context) error {
	w, id, err := s.scimTenant(c)
	if err != nil {
		return err
	}
	info, err := s.opts.SCIMTokens.Revoke(c.Request().Context(), id, param(c, "token"))
	if info.ID == "" {
		info.ID, info.Tenant = param(c, "token"), id
	}
	s.auditSCIMToken(c, w, "scim_token.revoke", id, info, err)
	if err != nil {
		return scimTokenError(err)
	}
	return c.NoContent(http.StatusNoContent)
}

func scimTokenError(err error) error {
	switch {
	case errors.Is(err, scim.ErrTokenNotFound):
		return notFound("no such SCIM token")
	case errors.Is(err, scim.ErrTooManyTokens):
		return errorf(http.StatusConflict, "too_many", "the tenant already has %d SCIM tokens; revoke one first", scim.MaxTokensPerTenant)
	case errors.Is(err, scim.ErrTokenConflict):
		return errorf(http.StatusConflict, "conflict", "%s", err.Error())
	case errors.Is(err, scim.ErrTokenName):
		return errorf(http.StatusBadRequest, "invalid_request", "%s", err.Error())
	}
	return err // the store: 503 by handleError
}

// auditSCIMToken writes one admin audit event for a token change; the
// token itself never appears, only its id and name.
func (s *Service) auditSCIMToken(c echo.Context, w *caller, action, tenant string, info scim.TokenInfo, err error) {
	attrs := []slog.Attr{
		slog.String("event", "admin.change"), slog.String("actor", w.name), slog.String("actor_tenant", w.tenant),
		slog.String("action", action), slog.String("resource", "tenants/"+tenant+"/scim/tokens/"+info.ID),
		slog.String("token_name", info.Name), slog.String("ip", c.RealIP()),
	}
	if err != nil {
		attrs = append(attrs, slog.String("outcome", "refused"), slog.String("reason", err.Error()))
	} else {
		attrs = append(attrs, slog.String("outcome", "applied"))
	}
	s.opts.Audit.LogAttrs(c.Request().Context(), slog.LevelInfo, "admin change", attrs...)
}
