package admin

// Compromised and risky users (docs/conditional-access.md): confirm a user
// compromised (their access ends at once and their next sign-ins get the
// tenant's compromised action), dismiss a user's risk, list a tenant's
// risky users. A per-tenant admin reaches its own tenant only.

import (
	"context"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/users"
)

// RiskAdmin is what the risk endpoints need of the broker
// (*broker.Server implements it).
type RiskAdmin interface {
	ConfirmCompromised(ctx context.Context, actor, tenant, id string) (*users.User, error)
	DismissRisk(ctx context.Context, actor, tenant, id string) (*users.User, error)
	RiskyUsers(ctx context.Context, tenant string, limit int) ([]*users.User, error)
}

// riskRoutes registers the risk endpoints (openapi.yaml documents them).
func (s *Service) riskRoutes(g *echo.Group) {
	g.GET("/tenants/:tenant/risky-users", s.listRiskyUsers)
	g.POST("/tenants/:tenant/users/:user/confirm-compromised", s.confirmCompromised)
	g.POST("/tenants/:tenant/users/:user/dismiss-risk", s.dismissRisk)
}

// RiskyUserList is a tenant's risky users.
type RiskyUserList struct {
	Users []*users.User `json:"users"`
}

func (s *Service) riskScope(c echo.Context) (*caller, string, error) {
	w, tenant, err := s.userScope(c)
	if err != nil {
		return nil, "", err
	}
	if s.opts.Risk == nil {
		return nil, "", errorf(http.StatusNotImplemented, "no_directory", "this instance keeps no user risk")
	}
	return w, tenant, nil
}

func (s *Service) listRiskyUsers(c echo.Context) error {
	_, tenant, err := s.riskScope(c)
	if err != nil {
		return err
	}
	limit := 100
	if v := c.QueryParam("count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return errorf(http.StatusBadRequest, "invalid_request", "count: want 1 to 1000")
		}
		limit = n
	}
	list, err := s.opts.Risk.RiskyUsers(c.Request().Context(), tenant, limit)
	if err != nil {
		return userErr(err)
	}
	if list == nil {
		list = []*users.User{}
	}
	return c.JSON(http.StatusOK, RiskyUserList{Users: list})
}

func (s *Service) confirmCompromised(c echo.Context) error {
	w, tenant, err := s.riskScope(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	id := param(c, "user")
	u, err := s.opts.Risk.ConfirmCompromised(ctx, actor(w), tenant, id)
	s.auditUser(ctx, w, "user.confirm_compromised", tenant, id, err)
	if err != nil {
		return userErr(err)
	}
	return c.JSON(http.StatusOK, u)
}

func (s *Service) dismissRisk(c echo.Context) error {
	w, tenant, err := s.riskScope(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	id := param(c, "user")
	u, err := s.opts.Risk.DismissRisk(ctx, actor(w), tenant, id)
	s.auditUser(ctx, w, "user.dismiss_risk", tenant, id, err)
	if err != nil {
		return userErr(err)
	}
	return c.JSON(http.StatusOK, u)
}
