package admin

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/branding"
	"github.com/realmgate/realmgate/config"
)

// brandingRoutes registers the logo uploads (docs/branding.md): the rest
// of a branding block is part of the tenant's or client's JSON.
func (s *Service) brandingRoutes(g *echo.Group) {
	g.PUT("/tenants/:tenant/branding/logo", s.putTenantLogo)
	g.PUT("/clients/:client/branding/logo", s.putClientLogo)
}

// LogoUpload is what a logo upload answers.
type LogoUpload struct {
	// Logo is the stored logo's hash, now the branding's logo.
	Logo string `json:"logo"`
	// Path is where the broker serves it, under the issuer.
	Path string `json:"path"`
}

// uploadLogo reads the request's raw image body (at most
// branding.MaxLogoBytes), sanitizes it and stores it for every instance.
func (s *Service) uploadLogo(c echo.Context) (string, error) {
	body := http.MaxBytesReader(c.Response(), c.Request().Body, branding.MaxLogoBytes+1)
	raw, err := io.ReadAll(io.LimitReader(body, branding.MaxLogoBytes+1))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) || len(raw) > branding.MaxLogoBytes {
		return "", errorf(http.StatusRequestEntityTooLarge, "logo_too_large", "the logo is larger than %d KiB", branding.MaxLogoBytes>>10)
	} else if err != nil {
		return "", errorf(http.StatusBadRequest, "invalid_request", "the logo could not be read")
	}
	png, err := branding.Sanitize(raw)
	if err != nil {
		return "", errorf(http.StatusBadRequest, "invalid_logo", "%s", err)
	}
	h, err := branding.Save(c.Request().Context(), s.rs, png)
	if err != nil {
		return "", fmt.Errorf("admin: %w", err) // logged, answered as an internal error
	}
	return h, nil
}

// logoEdit sets b's logo to h and returns the logo before and after, as
// the audit records them.
func logoEdit(b **config.Branding, h string) (before, after any) {
	if *b == nil {
		*b = &config.Branding{}
	}
	old := (*b).Logo
	(*b).Logo = h
	return map[string]string{"logo": old}, map[string]string{"logo": h}
}

// putTenantLogo is PUT /v1/tenants/{tenant}/branding/logo: the body is a
// PNG, JPEG or GIF image. A tenant admin uploads only its tenant's.
func (s *Service) putTenantLogo(c echo.Context) error {
	id := param(c, "tenant")
	if _, err := scoped(c, id); err != nil { // before reading anything
		return err
	}
	if _, err := s.apiTenant(s.cur.Load().state, id); err != nil { // unknown, or of the file
		return err
	}
	h, err := s.uploadLogo(c)
	if err != nil {
		return err
	}
	if _, err := s.editTenant(c, "tenant.branding.logo", "tenants/"+id+"/branding/logo", func(_ *State, t *Tenant) (any, any, error) {
		before, after := logoEdit(&t.Branding, h)
		return before, after, nil
	}); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, LogoUpload{Logo: h, Path: branding.Path(h)})
}

// putClientLogo is PUT /v1/clients/{client}/branding/logo. A tenant
// admin uploads only its tenant's clients' logos.
func (s *Service) putClientLogo(c echo.Context) error {
	w := clientCaller(c)
	id := param(c, "client")
	lookup := func(st *State) (int, error) {
		if fc, ok := s.fileCl[id]; ok {
			if err := clientScoped(w, fc); err != nil {
				return -1, err
			}
			return -1, readOnly(fmt.Sprintf("client %q", id))
		}
		i := st.client(id)
		if i < 0 && !w.operator() {
			return -1, clientScoped(w, nil)
		}
		if i < 0 {
			return -1, notFound("no client %q", id)
		}
		return i, clientScoped(w, &st.Clients[i])
	}
	// Refused before the upload is read or stored, as after.
	if _, err := lookup(s.cur.Load().state); err != nil {
		return err
	}
	h, err := s.uploadLogo(c)
	if err != nil {
		return err
	}
	if _, err := s.commit(c.Request().Context(), w, "client.branding.logo", "clients/"+id+"/branding/logo", func(st *State) (any, any, error) {
		i, err := lookup(st)
		if err != nil {
			return nil, nil, err
		}
		cl := deepCopy(st.Clients[i])
		before, after := logoEdit(&cl.Branding, h)
		st.putClient(cl)
		return before, after, nil
	}); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, LogoUpload{Logo: h, Path: branding.Path(h)})
}
