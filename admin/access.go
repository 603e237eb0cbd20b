package admin

// Time-bound role grants (just-in-time access) through the admin API: list
// a tenant's grants, request a role on a user's behalf, approve, deny or
// revoke. A per-tenant admin reaches its own tenant only (scoped). The
// broker keeps the grants, audits each step and tells Shared Signals
// receivers (broker/access.go); this file adds the admin audit event.

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/users"
)

// AccessGrants keeps time-bound role grants; *broker.Server implements it.
type AccessGrants interface {
	RequestAccess(ctx context.Context, req broker.AccessRequest) (*broker.AccessGrant, error)
	DecideAccess(ctx context.Context, tenant, id string, approve bool, approver, subject, reason string) (*broker.AccessGrant, error)
	ListAccess(ctx context.Context, tenant, status string) ([]*broker.AccessGrant, error)
	AccessOf(ctx context.Context, tenant, id string) (*broker.AccessGrant, error)
}

var _ AccessGrants = (*broker.Server)(nil)

// accessRoutes registers the grant endpoints (openapi.yaml documents them).
func (s *Service) accessRoutes(g *echo.Group) {
	g.GET("/tenants/:tenant/access-grants", s.listAccess)
	g.POST("/tenants/:tenant/access-grants", s.requestAccess)
	g.GET("/tenants/:tenant/access-grants/:grant", s.getAccess)
	g.POST("/tenants/:tenant/access-grants/:grant/approve", s.decideAccess("approve"))
	g.POST("/tenants/:tenant/access-grants/:grant/deny", s.decideAccess("deny"))
	g.POST("/tenants/:tenant/access-grants/:grant/revoke", s.decideAccess("revoke"))
}

// NewAccessGrant is the body that requests a role on a user's behalf.
type NewAccessGrant struct {
	// Subject is the user's sub as realmgate issues it for the tenant; or
	// User, the id of the user's directory record.
	Subject string `json:"subject,omitempty"`
	User    string `json:"user,omitempty"`
	Role    string `json:"role"`
	// Duration is a Go duration: "30m", "2h".
	Duration      string `json:"duration"`
	Justification string `json:"justification"`
}

// AccessDecision is the optional body of approve, deny and revoke.
type AccessDecision struct {
	Reason string `json:"reason,omitempty"`
}

// AccessGrantList is a tenant's grants, newest first.
type AccessGrantList struct {
	Grants []*broker.AccessGrant `json:"grants"`
}

// accessScope checks the caller may act on the tenant and that grants are kept.
func (s *Service) accessScope(c echo.Context) (*caller, string, error) {
	tenant := param(c, "tenant")
	w, err := scoped(c, tenant)
	if err != nil {
		return nil, "", err
	}
	if s.opts.Access == nil {
		return nil, "", errorf(http.StatusNotImplemented, "no_access_grants", "this instance keeps no access grants")
	}
	return w, tenant, nil
}

// accessErr answers a grant error.
func accessErr(err error) error {
	switch {
	case errors.Is(err, broker.ErrAccessOff):
		return errorf(http.StatusConflict, "access_off", "the tenant has no just-in-time access (tenants[].access)")
	case errors.Is(err, broker.ErrAccessInvalid):
		return errorf(http.StatusBadRequest, "invalid_request", "%s", err.Error())
	case errors.Is(err, broker.ErrAccessNotFound):
		return notFound("no such access grant")
	case errors.Is(err, broker.ErrAccessConflict):
		return errorf(http.StatusConflict, "conflict", "the grant is not pending (approve, deny) or active (revoke)")
	case errors.Is(err, broker.ErrAccessLimit):
		return errorf(http.StatusConflict, "limit", "the user has too many pending or active grants")
	case errors.Is(err, broker.ErrAccessForbidden):
		return errorf(http.StatusForbidden, "forbidden", "%s", err.Error())
	}
	return err
}

func (s *Service) listAccess(c echo.Context) error {
	_, tenant, err := s.accessScope(c)
	if err != nil {
		return err
	}
	status := c.QueryParam("status")
	switch status {
	case "", broker.AccessPending, broker.AccessActive, broker.AccessDenied, broker.AccessRevoked, broker.AccessExpired:
	default:
		return errorf(http.StatusBadRequest, "invalid_request", "status: want pending, active, denied, revoked or expired")
	}
	list, err := s.opts.Access.ListAccess(c.Request().Context(), tenant, status)
	if err != nil {
		return accessErr(err)
	}
	return c.JSON(http.StatusOK, AccessGrantList{Grants: list})
}

func (s *Service) getAccess(c echo.Context) error {
	_, tenant, err := s.accessScope(c)
	if err != nil {
		return err
	}
	g, err := s.opts.Access.AccessOf(c.Request().Context(), tenant, param(c, "grant"))
	if err != nil {
		return accessErr(err)
	}
	return c.JSON(http.StatusOK, g)
}

func (s *Service) requestAccess(c echo.Context) error {
	w, tenant, err := s.accessScope(c)
	if err != nil {
		return err
	}
	var in NewAccessGrant
	if err := decode(c, &in, maxBody); err != nil {
		return err
	}
	d, err := time.ParseDuration(in.Duration)
	if err != nil {
		return errorf(http.StatusBadRequest, "invalid_request", "duration: want a duration like 30m or 2h")
	}
	ctx := c.Request().Context()
	req := broker.AccessRequest{Tenant: tenant, Subject: in.Subject, Role: in.Role, Duration: d,
		Justification: in.Justification, RequestedBy: actor(w)}
	if in.User != "" {
		if s.opts.Users == nil {
			return errorf(http.StatusNotImplemented, "no_directory", "this store keeps no user directory: give subject")
		}
		u, err := s.opts.Users.GetUser(ctx, tenant, in.User)
		if err != nil {
			return userErr(err)
		}
		if in.Subject != "" && in.Subject != u.Subject {
			return errorf(http.StatusBadRequest, "invalid_request", "subject and user name different people")
		}
		req.Subject, req.Email = u.Subject, u.Email
		if u.Status != users.StatusActive {
			return errorf(http.StatusConflict, "conflict", "the user is not active")
		}
	}
	g, err := s.opts.Access.RequestAccess(ctx, req)
	s.auditAccess(ctx, w, "access.request", tenant, g, err)
	if err != nil {
		return accessErr(err)
	}
	return c.JSON(http.StatusCreated, g)
}

// decideAccess answers approve and deny (a pending grant) and revoke (an
// active one).
func (s *Service) decideAccess(op string) echo.HandlerFunc {
	return func(c echo.Context) error {
		w, tenant, err := s.accessScope(c)
		if err != nil {
			return err
		}
		var in AccessDecision
		if c.Request().ContentLength != 0 {
			if err := decode(c, &in, maxBody); err != nil {
				return err
			}
		}
		ctx := c.Request().Context()
		id := param(c, "grant")
		cur, err := s.opts.Access.AccessOf(ctx, tenant, id)
		if err != nil {
			return accessErr(err)
		}
		if (op == "revoke") != (cur.Status == broker.AccessActive) {
			return accessErr(broker.ErrAccessConflict)
		}
		g, err := s.opts.Access.DecideAccess(ctx, tenant, id, op == "approve", actor(w), "", in.Reason)
		s.auditAccess(ctx, w, "access."+op, tenant, g, err)
		if err != nil {
			return accessErr(err)
		}
		return c.JSON(http.StatusOK, g)
	}
}

// auditAccess writes the admin audit event of a grant change.
func (s *Service) auditAccess(ctx context.Context, w *caller, action, tenant string, g *broker.AccessGrant, err error) {
	id := ""
	if g != nil {
		id = g.ID
	}
	attrs := []slog.Attr{slog.String("event", "admin.access"), slog.String("actor", w.name), slog.String("actor_tenant", w.tenant),
		slog.String("action", action), slog.String("resource", "tenants/"+tenant+"/access-grants/"+id)}
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
