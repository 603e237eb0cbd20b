package admin

// Consents of third-party clients (broker/consent.go) through the admin
// API: read or withdraw what a user of a tenant granted a client. A
// per-tenant admin reaches its own tenant's users only (scoped).

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/broker"
)

// Consents keeps the users' consents to third-party clients;
// *broker.Server implements it.
type Consents interface {
	ConsentOf(ctx context.Context, tenant, sub, client string) (*broker.Consent, error)
	RevokeConsentOf(ctx context.Context, tenant, sub, client string) error
}

var _ Consents = (*broker.Server)(nil)

// ConsentView is a user's consent to a client.
type ConsentView struct {
	// Client is the client id.
	Client string `json:"client"`
	// Subject is the user's sub as realmgate issues it for the tenant.
	Subject string `json:"subject"`
	// Scopes are the scopes granted.
	Scopes []string `json:"scopes"`
	// Granted is when the user last approved.
	Granted time.Time `json:"granted"`
}

// consentRoutes registers the consent endpoints (openapi.yaml documents them).
func (s *Service) consentRoutes(g *echo.Group) {
	g.GET("/tenants/:tenant/consents/:client", s.getConsent)
	g.DELETE("/tenants/:tenant/consents/:client", s.revokeConsent)
}

// consentScope checks the caller may act on the tenant, that consents are
// kept, and that the subject query parameter is there.
func (s *Service) consentScope(c echo.Context) (w *caller, tenant, sub string, err error) {
	tenant = param(c, "tenant")
	if w, err = scoped(c, tenant); err != nil {
		return nil, "", "", err
	}
	if s.opts.Consents == nil {
		return nil, "", "", errorf(http.StatusNotImplemented, "no_consents", "this instance keeps no consents")
	}
	sub = c.QueryParam("subject")
	if sub == "" || len(sub) > 256 {
		return nil, "", "", errorf(http.StatusBadRequest, "invalid_request", "subject: the user's sub is required (at most 256 characters)")
	}
	return w, tenant, sub, nil
}

func (s *Service) getConsent(c echo.Context) error {
	_, tenant, sub, err := s.consentScope(c)
	if err != nil {
		return err
	}
	client := param(c, "client")
	cn, err := s.opts.Consents.ConsentOf(c.Request().Context(), tenant, sub, client)
	if errors.Is(err, broker.ErrNotFound) {
		return notFound("no consent of this user to this client")
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ConsentView{Client: client, Subject: sub, Scopes: cn.Scopes, Granted: cn.Granted})
}

func (s *Service) revokeConsent(c echo.Context) error {
	w, tenant, sub, err := s.consentScope(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	client := param(c, "client")
	err = s.opts.Consents.RevokeConsentOf(ctx, tenant, sub, client)
	s.auditConsent(ctx, w, tenant, sub, client, err)
	if errors.Is(err, broker.ErrNotFound) {
		return notFound("no consent of this user to this client")
	}
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// auditConsent writes one audit event for a withdrawn consent.
func (s *Service) auditConsent(ctx context.Context, w *caller, tenant, sub, client string, err error) {
	attrs := []slog.Attr{slog.String("event", "admin.consent"), slog.String("actor", w.name), slog.String("actor_tenant", w.tenant),
		slog.String("action", "revoke"), slog.String("resource", "tenants/"+tenant+"/consents/"+client), slog.String("subject", sub)}
	if rid, ok := ctx.Value(requestIDKey{}).(string); ok {
		attrs = append(attrs, slog.String("request_id", rid))
	}
	if err != nil {
		attrs = append(attrs, slog.String("outcome", "refused"), slog.String("reason", err.Error()))
	} else {
		attrs = append(attrs, slog.String("outcome", "applied"))
	}
	s.opts.Audit.LogAttrs(ctx, slog.LevelInfo, "admin change", attrs...)
}
