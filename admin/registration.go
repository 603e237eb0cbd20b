package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/registration"
)

// Dynamic client registration (RFC 7591/7592, package registration): a
// tenant admin creates initial access tokens here; the registration
// endpoint stores the clients it registers through the methods below, as
// that tenant's admin would, so they are validated and kept like every
// admin-API client.

var _ registration.Clients = (*Service)(nil)

func (s *Service) registrationRoutes(g *echo.Group) {
	g.POST("/tenants/:tenant/registration-tokens", s.createRegistrationToken)
	g.DELETE("/tenants/:tenant/registration-tokens/:token", s.revokeRegistrationToken)
}

type registrationTokenInput struct {
	// ExpiresIn is the token's lifetime in seconds; zero: 24 hours.
	ExpiresIn int64 `json:"expires_in,omitempty"`
}

type registrationTokenCreated struct {
	registration.InitialToken
	// Token is the initial access token, shown once.
	Token string `json:"token"`
	// Endpoint is the tenant's registration endpoint.
	Endpoint string `json:"registration_endpoint"`
}

// registrationTenant checks the caller may act on the tenant in the path,
// that registration is on and that the tenant exists.
func (s *Service) registrationTenant(c echo.Context) (*caller, string, error) {
	id := param(c, "tenant")
	w, err := scoped(c, id)
	if err != nil {
		return nil, "", err
	}
	if s.opts.RegistrationTokens == nil {
		return nil, "", notFound("dynamic client registration is not enabled on this server")
	}
	if t, _ := s.lookupTenant(id); t == nil {
		return nil, "", notFound("no tenant %q", id)
	}
	return w, id, nil
}

func (s *Service) createRegistrationToken(c echo.Context) error {
	w, id, err := s.registrationTenant(c)
	if err != nil {
		return err
	}
	var in registrationTokenInput
	if err := decode(c, &in, maxBody); err != nil {
		return err
	}
	if in.ExpiresIn < 0 || in.ExpiresIn > int64(registration.MaxInitialTokenTTL/time.Second) {
		return errorf(http.StatusBadRequest, "invalid_request", "expires_in must be between 60 and %d seconds", int64(registration.MaxInitialTokenTTL/time.Second))
	}
	tok, info, err := s.opts.RegistrationTokens.CreateInitial(c.Request().Context(), id, w.name, time.Duration(in.ExpiresIn)*time.Second)
	s.auditToken(c, w, "registration_token.create", id, info.ID, err)
	if err != nil {
		if strings.Contains(err.Error(), "out of range") {
			return errorf(http.StatusBadRequest, "invalid_request", "%s", err.Error())
		}
		return err
	}
	return c.JSON(http.StatusCreated, registrationTokenCreated{InitialToken: info, Token: tok,
		Endpoint: registration.Endpoint(s.opts.Issuer, id)})
}

func (s *Service) revokeRegistrationToken(c echo.Context) error {
	w, id, err := s.registrationTenant(c)
	if err != nil {
		return err
	}
	err = s.opts.RegistrationTokens.RevokeInitial(c.Request().Context(), id, param(c, "token"))
	s.auditToken(c, w, "registration_token.revoke", id, param(c, "token"), err)
	if errors.Is(err, registration.ErrTokenNotFound) {
		return notFound("no such registration token")
	}
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Service) auditToken(c echo.Context, w *caller, action, tenant, id string, err error) {
	s.auditChange(c.Request().Context(), w, action, "tenants/"+tenant+"/registration-tokens/"+id, nil, nil, &State{Version: s.Version()}, err)
}

// registrar is the caller a registration acts as: the tenant's admin.
func registrar(tenant string) *caller { return &caller{name: "registration:" + tenant, tenant: tenant} }

// RegisterClient creates client c of tenant, as the tenant's admin would
// (registration.Clients).
func (s *Service) RegisterClient(ctx context.Context, tenant string, c config.Client) error {
	w := registrar(tenant)
	in := Client{Client: c}
	_, err := s.commit(ctx, w, "client.register", "clients/"+c.ID, func(st *State) (any, any, error) {
		if st.tenant(tenant) < 0 && s.files[tenant] == nil {
			return nil, nil, notFound("no tenant %q", tenant)
		}
		_, err := s.upsertClient(st, w, in, false)
		return nil, in, err
	})
	return registrationError(err)
}

// ReplaceRegisteredClient replaces client c of tenant, keeping its secret
// when c has none (registration.Clients).
func (s *Service) ReplaceRegisteredClient(ctx context.Context, tenant string, c config.Client) error {
	w := registrar(tenant)
	in := Client{Client: c}
	_, err := s.commit(ctx, w, "client.register_update", "clients/"+c.ID, func(st *State) (any, any, error) {
		before, err := s.upsertClient(st, w, in, true)
		return before, in, err
	})
	return registrationError(err)
}

// DeleteRegisteredClient removes client id of tenant (registration.Clients).
func (s *Service) DeleteRegisteredClient(ctx context.Context, tenant, id string) error {
	w := registrar(tenant)
	_, err := s.commit(ctx, w, "client.register_delete", "clients/"+id, func(st *State) (any, any, error) {
		i := st.client(id)
		if i < 0 || st.Clients[i].Tenant != tenant {
			return nil, nil, notFound("no client %q", id)
		}
		before := st.Clients[i]
		st.Clients = slices.Delete(st.Clients, i, i+1)
		return before, nil, nil
	})
	return registrationError(err)
}

// RegisteredClient returns client id of tenant from the applied state,
// without its secret (registration.Clients).
func (s *Service) RegisteredClient(tenant, id string) (config.Client, bool) {
	st := s.cur.Load().state
	i := st.client(id)
	if i < 0 || st.Clients[i].Tenant != tenant {
		return config.Client{}, false
	}
	c := deepCopy(st.Clients[i]).Client
	c.Secret = ""
	return c, true
}

// registrationError turns a refusal into registration's metadata error
// (RFC 7591 §3.2.2); the store's errors pass through.
func registrationError(err error) error {
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		var msgs []string
		code := "invalid_client_metadata"
		for _, p := range ve.Problems {
			field := p.Field
			if _, rest, ok := strings.Cut(field, "]."); ok {
				field = rest // clients[x].redirect_uris[0] -> redirect_uris[0]
			}
			if strings.HasPrefix(field, "redirect_uris") {
				code = "invalid_redirect_uri"
			}
			msgs = append(msgs, field+": "+p.Message)
		}
		return &registration.MetadataError{Code: code, Message: strings.Join(msgs, "; ")}
	}
	var ae *apiError
	if errors.As(err, &ae) && ae.status < http.StatusInternalServerError {
		code := "invalid_client_metadata"
		if strings.Contains(ae.msg, "reaches") {
			code = "invalid_redirect_uri"
		}
		return &registration.MetadataError{Code: code, Message: ae.msg}
	}
	return fmt.Errorf("admin: registration: %w", err)
}
