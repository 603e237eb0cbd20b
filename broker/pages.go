package broker

// This file holds what people and clients see when the flow stops here:
// the HTML pages (escaped by html/template, S54), the broker's error pages,
// and authorization error redirects to an already checked redirect_uri.

import (
	"embed"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/locale"
	"github.com/realmgate/realmgate/oauth"
	"github.com/realmgate/realmgate/ui"
)

func (s *Server) expired(c echo.Context) error {
	return s.renderError(c, http.StatusBadRequest, "This sign-in has expired",
		"Go back to the application and start signing in again.")
}

// redirectStatus is 303 after a POST (S06) and 302 otherwise.
func redirectStatus(c echo.Context) int {
	if c.Request().Method == http.MethodPost {
		return http.StatusSeeOther
	}
	return http.StatusFound
}

// redirectError sends an authorization error response to a redirect_uri
// already checked against the client's registration, with iss (RFC 9207 §2):
// RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6.
func (s *Server) redirectError(c echo.Context, redirectURI, state string, e *oauth.Error) error {
	q := url.Values{"error": {e.Code}, "iss": {s.cfg.Issuer}}
	if e.Description != "" {
		q.Set("error_description", e.Description)
	}
	if state != "" {
		q.Set("state", state)
	}
	return c.Redirect(redirectStatus(c), appendQuery(redirectURI, q))
}

// authError answers a pending sign-in with an error: an authorization
// error redirect for an OIDC client, an error Response for a SAML app.
func (s *Server) authError(c echo.Context, ar *authRequest, e *oauth.Error) error {
	if ar.SAML != nil {
		return s.samlAuthError(c, ar, e) // samlidp.go
	}
	if ar.Device != "" {
		return s.deviceAuthError(c, e) // device.go
	}
	return s.redirectError(c, ar.RedirectURI, ar.State, e)
}

func appendQuery(uri string, q url.Values) string {
	sep := "?"
	if strings.Contains(uri, "?") {
		sep = "&"
	}
	return uri + sep + q.Encode()
}

//go:embed templates/*.html
var templateFS embed.FS

// pages are escaped by html/template: every value a person or an upstream
// controls is contextually escaped (S54).
var pages = template.Must(ui.Templates(templateFS, "templates/*.html"))

// unavailable answers 503 when the store (or another dependency) is down.
func (s *Server) unavailable(c echo.Context) error {
	c.Response().Header().Set("Retry-After", "2")
	return s.renderError(c, http.StatusServiceUnavailable, "Sign-in is temporarily unavailable",
		"The sign-in service cannot reach its session store. Please try again in a moment.")
}

type pageData struct {
	// Printer gives the page's messages in the reader's language (T, Lang).
	*locale.Printer
	Title, Message, Detail, RequestID string
	Client, Action, Request, Email    string
	Tenant, Forget                    string
	IdPs                              []IdP
	Remembered                        *IdP
	Tenants                           []tenantChoice
	// Brand is the tenant's or client's look (brand.go), set by render.
	ui.Brand
}

func (s *Server) render(c echo.Context, status int, name string, d pageData) error {
	d.RequestID = requestID(c)
	d.Brand = s.pageBrand(c)
	if d.Printer == nil {
		d.Printer = s.printer(c)
	}
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	c.Response().WriteHeader(status)
	return pages.ExecuteTemplate(c.Response(), name, d)
}

// renderError shows a readable error page; it never redirects (S01, S02).
// title and msg are messages of the catalog (package locale), shown in the
// reader's language.
func (s *Server) renderError(c echo.Context, status int, title, msg string) error {
	p := s.printer(c)
	return s.render(c, status, "error", pageData{Printer: p, Title: p.T(title), Message: p.T(msg)})
}

// renderErrorf is renderError with a message whose verbs args fill.
func (s *Server) renderErrorf(c echo.Context, status int, title, format string, args ...any) error {
	p := s.printer(c)
	return s.render(c, status, "error", pageData{Printer: p, Title: p.T(title), Message: p.Tf(format, args...)})
}

// pageTenantKey holds, in the echo context, the tenant a page is for once
// the flow knows it: its default language and its brand (brand.go) apply.
const pageTenantKey = "rg.page.tenant"

// setPageTenant says which tenant the pages of this request are for.
func setPageTenant(c echo.Context, tenant string) { c.Set(pageTenantKey, tenant) }

// printer is the request's language: Accept-Language negotiated against
// realmgate's languages, else the page's tenant's default, else English.
func (s *Server) printer(c echo.Context) *locale.Printer {
	fallback := ""
	if t, _ := c.Get(pageTenantKey).(string); t != "" {
		fallback = s.dir().policies[t].Language
	}
	tag := s.languages.Match(c.Request().Header.Get("Accept-Language"), fallback)
	return locale.Default().Printer(tag)
}
