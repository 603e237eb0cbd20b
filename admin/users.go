package admin

// The tenant user directory through the admin API: list and search (email,
// status), read, create (provision ahead of the first sign-in), replace
// the app-managed attributes, suspend, activate, revoke and delete. A
// per-tenant admin reaches its own tenant only (scoped). Suspending,
// revoking and deleting end the user's access everywhere (the broker's
// users.Revoker) and are audited with the caller as actor.

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/users"
)

// userRoutes registers the directory endpoints (openapi.yaml documents them).
func (s *Service) userRoutes(g *echo.Group) {
	g.GET("/tenants/:tenant/users", s.listUsers)
	g.POST("/tenants/:tenant/users", s.createUser)
	g.GET("/tenants/:tenant/users/:user", s.getUser)
	g.DELETE("/tenants/:tenant/users/:user", s.deleteUser)
	g.PUT("/tenants/:tenant/users/:user/attributes", s.replaceUserAttributes)
	g.POST("/tenants/:tenant/users/:user/suspend", s.suspendUser)
	g.POST("/tenants/:tenant/users/:user/activate", s.activateUser)
	g.POST("/tenants/:tenant/users/:user/revoke", s.revokeUser)
}

// UserPage is one page of a user listing.
type UserPage struct {
	Users []*users.User `json:"users"`
	// Total is how many users match.
	Total int `json:"total"`
	// Next is the cursor of the next page (the after parameter); empty on the last.
	Next string `json:"next,omitempty"`
}

// NewUser is the body that provisions a user.
type NewUser struct {
	UserName      string         `json:"userName,omitempty"`
	ExternalID    string         `json:"externalId,omitempty"`
	Email         string         `json:"email,omitempty"`
	EmailVerified bool           `json:"emailVerified,omitempty"`
	DisplayName   string         `json:"displayName,omitempty"`
	GivenName     string         `json:"givenName,omitempty"`
	FamilyName    string         `json:"familyName,omitempty"`
	Attributes    map[string]any `json:"attributes,omitempty"`
	// Groups are group display names; missing groups are created.
	Groups []string `json:"groups,omitempty"`
}

// userScope checks the caller may act on the tenant and that there is a
// directory.
func (s *Service) userScope(c echo.Context) (*caller, string, error) {
	tenant := param(c, "tenant")
	w, err := scoped(c, tenant)
	if err != nil {
		return nil, "", err
	}
	if s.opts.Users == nil {
		return nil, "", errorf(http.StatusNotImplemented, "no_directory", "this store keeps no user directory")
	}
	return w, tenant, nil
}

// userErr answers a directory error.
func userErr(err error) error {
	switch {
	case errors.Is(err, users.ErrNotFound):
		return notFound("no such user")
	case errors.Is(err, users.ErrInvalid):
		return errorf(http.StatusBadRequest, "invalid_request", "%s", err.Error())
	case errors.Is(err, users.ErrTaken):
		return errorf(http.StatusConflict, "conflict", "userName, externalId or link already belongs to another user")
	case errors.Is(err, users.ErrConflict):
		return errorf(http.StatusConflict, "conflict", "the user changed meanwhile; read it again")
	}
	return err // 500 path logs it; ErrUnavailable among them
}

// auditUser writes one audit event for a directory change.
func (s *Service) auditUser(ctx context.Context, w *caller, action, tenant, id string, err error) {
	attrs := []slog.Attr{slog.String("event", "admin.user"), slog.String("actor", w.name), slog.String("actor_tenant", w.tenant),
		slog.String("action", action), slog.String("resource", "tenants/"+tenant+"/users/"+id)}
	if rid, ok := ctx.Value(requestIDKey{}).(string); ok {
		attrs = append(attrs, slog.String("request_id", rid))
	}
	if ip, ok := ctx.Value(remoteKey{}).(string); ok {
		attrs = append(attrs, slog.String("ip", ip))
	}
	if err != nil {
		attrs = append(attrs, slog.String("outcome", "refused"), slog.String("reason", err.Error()))
	} else {
		attrs = append(attrs, slog.String("outcome", "applied"))
	}
	s.opts.Audit.LogAttrs(ctx, slog.LevelInfo, "admin change", attrs...)
}

func actor(w *caller) string { return "admin:" + w.name }

func (s *Service) listUsers(c echo.Context) error {
	_, tenant, err := s.userScope(c)
	if err != nil {
		return err
	}
	q := users.Query{Email: c.QueryParam("email"), After: c.QueryParam("after")}
	if st := c.QueryParam("status"); st != "" {
		if !users.Status(st).Valid() {
			return errorf(http.StatusBadRequest, "invalid_request", "status: want active, suspended or deprovisioned")
		}
		q.Status = users.Status(st)
	}
	for name, dst := range map[string]*int{"start_index": &q.StartIndex, "count": &q.Count} {
		if v := c.QueryParam(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 1_000_000_000 {
				return errorf(http.StatusBadRequest, "invalid_request", "%s: want a non-negative integer", name)
			}
			*dst = n
		}
	}
	if len(q.Email) > users.MaxEmail || len(q.After) > 64 {
		return errorf(http.StatusBadRequest, "invalid_request", "email or after is too long")
	}
	p, err := s.opts.Users.ListUsers(c.Request().Context(), tenant, q)
	if err != nil {
		return userErr(err)
	}
	if p.Items == nil {
		p.Items = []*users.User{}
	}
	return c.JSON(http.StatusOK, UserPage{Users: p.Items, Total: p.Total, Next: p.Next})
}

func (s *Service) getUser(c echo.Context) error {
	_, tenant, err := s.userScope(c)
	if err != nil {
		return err
	}
	u, err := s.opts.Users.GetUser(c.Request().Context(), tenant, param(c, "user"))
	if err != nil {
		return userErr(err)
	}
	return c.JSON(http.StatusOK, u)
}

func (s *Service) createUser(c echo.Context) error {
	w, tenant, err := s.userScope(c)
	if err != nil {
		return err
	}
	if t, _ := s.lookupTenant(tenant); t == nil {
		// Like the SCIM endpoint: no record is provisioned into a tenant
		// that does not exist (it would outlive nothing and match nobody).
		return notFound("no tenant %q", tenant)
	}
	var in NewUser
	if err := decode(c, &in, maxBody); err != nil {
		return err
	}
	if len(in.Groups) > users.MaxGroupsPerUser {
		return errorf(http.StatusBadRequest, "invalid_request", "too many groups")
	}
	ctx := c.Request().Context()
	u := &users.User{Tenant: tenant, UserName: in.UserName, ExternalID: in.ExternalID, Email: in.Email,
		EmailVerified: in.EmailVerified, DisplayName: in.DisplayName, Attributes: in.Attributes,
		Name: users.Name{GivenName: in.GivenName, FamilyName: in.FamilyName}, Provisioned: true}
	if err := s.opts.Users.CreateUser(ctx, u); err != nil {
		s.auditUser(ctx, w, "user.create", tenant, "", err)
		return userErr(err)
	}
	for _, name := range in.Groups {
		g, err := s.groupNamed(ctx, tenant, name)
		if err == nil {
			_, err = s.opts.Users.AddMembers(ctx, actor(w), tenant, g.ID, u.ID)
		}
		if err != nil {
			s.auditUser(ctx, w, "user.create", tenant, u.ID, err)
			return userErr(err)
		}
	}
	s.auditUser(ctx, w, "user.create", tenant, u.ID, nil)
	u, err = s.opts.Users.GetUser(ctx, tenant, u.ID)
	if err != nil {
		return userErr(err)
	}
	return c.JSON(http.StatusCreated, u)
}

// groupNamed returns the tenant's group with that display name, creating it.
func (s *Service) groupNamed(ctx context.Context, tenant, name string) (*users.Group, error) {
	p, err := s.opts.Users.ListGroups(ctx, tenant, users.GroupQuery{DisplayName: name, Count: 1})
	if err != nil {
		return nil, err
	}
	if len(p.Items) > 0 {
		return p.Items[0], nil
	}
	g := &users.Group{Tenant: tenant, DisplayName: name}
	return g, s.opts.Users.CreateGroup(ctx, g)
}

func (s *Service) replaceUserAttributes(c echo.Context) error {
	w, tenant, err := s.userScope(c)
	if err != nil {
		return err
	}
	var attrs map[string]any
	if err := decode(c, &attrs, maxBody); err != nil {
		return err
	}
	ctx := c.Request().Context()
	id := param(c, "user")
	u, err := s.opts.Users.ModifyUser(ctx, actor(w), tenant, id, func(u *users.User) error {
		u.Attributes = attrs
		return nil
	})
	s.auditUser(ctx, w, "user.attributes", tenant, id, err)
	if err != nil {
		return userErr(err)
	}
	return c.JSON(http.StatusOK, u)
}

func (s *Service) setUserStatus(c echo.Context, action string, st users.Status) error {
	w, tenant, err := s.userScope(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	id := param(c, "user")
	u, err := s.opts.Users.SetStatus(ctx, actor(w), tenant, id, st)
	s.auditUser(ctx, w, action, tenant, id, err)
	if err != nil {
		return userErr(err)
	}
	return c.JSON(http.StatusOK, u)
}

func (s *Service) suspendUser(c echo.Context) error {
	return s.setUserStatus(c, "user.suspend", users.StatusSuspended)
}

func (s *Service) activateUser(c echo.Context) error {
	return s.setUserStatus(c, "user.activate", users.StatusActive)
}

func (s *Service) revokeUser(c echo.Context) error {
	w, tenant, err := s.userScope(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	id := param(c, "user")
	u, err := s.opts.Users.Revoke(ctx, actor(w), tenant, id)
	s.auditUser(ctx, w, "user.revoke", tenant, id, err)
	if err != nil {
		return userErr(err)
	}
	return c.JSON(http.StatusOK, u)
}

func (s *Service) deleteUser(c echo.Context) error {
	w, tenant, err := s.userScope(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	id := param(c, "user")
	err = s.opts.Users.DeleteUser(ctx, actor(w), tenant, id, 0)
	s.auditUser(ctx, w, "user.delete", tenant, id, err)
	if err != nil {
		return userErr(err)
	}
	return c.NoContent(http.StatusNoContent)
}
