package broker

import (
	"crypto/hmac"
	"encoding/base64"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/realm"
)

// rememberCookie holds the last IdP a browser signed in with: the IdP id and
// an HMAC over it, nothing about the user (S53).
const (
	rememberCookie = "rg_idp"
	rememberMaxAge = 90 * 24 * 3600
)

// clientIP is the client address as IPExtractor established it (trusted proxies only).
func clientIP(c echo.Context) netip.Addr {
	a, err := netip.ParseAddr(c.RealIP())
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// rememberedIdP returns the IdP id of a valid remembered-choice cookie.
func (s *Server) rememberedIdP(c echo.Context) string {
	ck, err := c.Cookie(rememberCookie)
	if err != nil || len(ck.Value) > 200 {
		return ""
	}
	idp, sig, ok := strings.Cut(ck.Value, ".")
	if !ok {
		return ""
	}
	want := base64.RawURLEncoding.EncodeToString(s.keyer.mac("remember", idp))
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return ""
	}
	if p, known := s.dir().idps[idp]; !known || p.Pending { // pendingidp.go
		return ""
	}
	return idp
}

// remember sets the remembered-choice cookie after a successful sign-in.
func (s *Server) remember(c echo.Context, idp string) {
	v := idp + "." + base64.RawURLEncoding.EncodeToString(s.keyer.mac("remember", idp))
	c.SetCookie(&http.Cookie{Name: rememberCookie, Value: v, Path: s.path("/"), Domain: s.cfg.CookieDomain, MaxAge: rememberMaxAge,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
}

func (s *Server) forgetCookie(c echo.Context) {
	c.SetCookie(&http.Cookie{Name: rememberCookie, Value: "", Path: s.path("/"), Domain: s.cfg.CookieDomain, MaxAge: -1,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
}

// route resolves the realm for a pending auth request and sends the browser
// on: straight to one IdP, to the tenant's choice page, or to the discovery page.
func (s *Server) route(c echo.Context, id string, ar *authRequest, req realm.Request) error {
	cl := s.dir().clients[ar.ClientID]
	if cl == nil {
		return s.expired(c)
	}
	req.Allowed = cl.allows
	res, err := s.dir().resolver.Resolve(req)
	switch {
	case errors.Is(err, realm.ErrInvalidHint):
		return s.discoveryPage(c, id, ar, req.LoginHint, "Enter a full email address, like name@company.com.")
	case errors.Is(err, realm.ErrNotAllowed):
		s.auditEvent(c, "refused", "tenant_not_allowed", attrs{client: ar.ClientID})
		return s.discoveryPage(c, id, ar, req.LoginHint, "Your organization cannot sign in to this application.")
	case errors.Is(err, realm.ErrNoMatch) && req.LoginHint != "":
		s.auditEvent(c, "refused", "no_tenant", attrs{client: ar.ClientID})
		return s.discoveryPage(c, id, ar, req.LoginHint, "Your organization is not set up for sign-in here. Check the address or ask your administrator.")
	case errors.Is(err, realm.ErrNoMatch):
		if handled, err := s.flush(c); handled {
			return err
		}
		return c.Redirect(redirectStatus(c), s.path("/login")+"?r="+url.QueryEscape(id))
	case err != nil:
		return err
	}
	idps := s.idpList(res.IdPs)
	switch {
	case len(idps) == 0:
		return s.discoveryPage(c, id, ar, req.LoginHint, "Your organization has no sign-in method configured yet.")
	case len(idps) == 1:
		return s.startUpstream(c, id, ar, idps[0], req.LoginHint)
	}
	ar.Offered = res.IdPs
	b, err := s.encodeRequest(ar) // requestcodec.go
	if err != nil {
		return err
	}
	if err := s.putRecord(c.Request().Context(), true, s.keyer.key("ar", id), b, authRequestTTL); err != nil {
		return err
	}
	if handled, err := s.flush(c); handled {
		return err
	}
	t, _ := s.dir().resolver.Tenant(res.Tenant)
	setPageTenant(c, res.Tenant)
	return s.render(c, http.StatusOK, "choose", pageData{Title: "Choose a sign-in method", Action: s.path("/login"),
		Request: id, Email: req.LoginHint, Tenant: t.Name, IdPs: idps,
		Forget: s.path("/login/forget") + "?r=" + url.QueryEscape(id)})
}

func (s *Server) idpList(ids []string) []IdP {
	out := make([]IdP, 0, len(ids))
	for _, p := range ids {
		if idp, ok := s.dir().idps[p]; ok && !idp.Pending { // pendingidp.go
			out = append(out, idp)
		}
	}
	return out
}

// globalIdPs are the buttons of the discovery page: the default tenant's
// IdPs (social sign-in) the client may use.
func (s *Server) globalIdPs(cl *client) []IdP {
	t, ok := s.dir().resolver.DefaultTenant()
	if !ok {
		return nil
	}
	var out []IdP
	for _, idp := range s.idpList(t.IdPs) {
		if cl.allows(t.ID, idp.ID) {
			out = append(out, idp)
		}
	}
	return out
}

// discoveryPage is the email-first page with provider buttons and, when the
// browser remembers a choice, a "continue" button and "use another account".
func (s *Server) discoveryPage(c echo.Context, id string, ar *authRequest, email, msg string) error {
	if handled, err := s.flush(c); handled { // the /authorize step's records (pending.go)
		return err
	}
	cl := s.dir().clients[ar.ClientID]
	setPageClient(c, ar.ClientID)
	d := pageData{Title: "Sign in", Client: ar.ClientID, Action: s.path("/login"), Request: id, Email: email,
		Message: msg, IdPs: s.globalIdPs(cl), Forget: s.path("/login/forget") + "?r=" + url.QueryEscape(id)}
	if r := s.rememberedIdP(c); r != "" {
		if owner, _ := s.dir().resolver.TenantOfIdP(r); cl.allows(owner, r) {
			idp := s.dir().idps[r]
			d.Remembered = &idp
			// Offer it once: as "continue", not again in the provider list.
			others := d.IdPs[:0:0]
			for _, p := range d.IdPs {
				if p.ID != r {
					others = append(others, p)
				}
			}
			d.IdPs = others
		}
	}
	status := http.StatusOK
	if msg != "" {
		status = http.StatusBadRequest
	}
	return s.render(c, status, "email", d)
}

// loginPage shows the discovery page for a pending auth request.
func (s *Server) loginPage(c echo.Context) error {
	id := c.QueryParam("r")
	ar, err := s.loadRequest(c, id)
	if errors.Is(err, ErrNotFound) {
		return s.expired(c)
	} else if err != nil {
		return err
	}
	return s.discoveryPage(c, id, ar, "", "")
}

// forget clears the remembered choice ("use another account").
func (s *Server) forget(c echo.Context) error {
	s.forgetCookie(c)
	id := c.QueryParam("r")
	if _, err := s.loadRequest(c, id); err != nil {
		if errors.Is(err, ErrNotFound) {
			return s.expired(c)
		}
		return err
	}
	return c.Redirect(http.StatusSeeOther, s.path("/login")+"?r="+url.QueryEscape(id))
}

// loginSubmit takes the typed email, or a provider button, and starts the
// upstream login. A chosen IdP must be one the page could have offered: a
// global IdP, the remembered one, or one of the typed email's tenant.
func (s *Server) loginSubmit(c echo.Context) error {
	v, err := signInForm(c) // S72: bounded request
	if err == nil {
		err = checkSignInParams(v)
	}
	if err != nil {
		return s.formError(c, "Invalid form", err)
	}
	if err := s.limitStart(c, "", "", ""); err != nil { // S60: every POST /login is a start from this IP
		return err
	}
	id := v.Get("r")
	ar, err := s.loadRequest(c, id)
	if errors.Is(err, ErrNotFound) {
		return s.expired(c)
	} else if err != nil {
		return err
	}
	cl := s.dir().clients[ar.ClientID]
	email := strings.TrimSpace(v.Get("email"))
	if len(email) > 320 {
		return s.discoveryPage(c, id, ar, "", "Enter your email address.")
	}
	if choice := v.Get("idp"); choice != "" {
		offered := append(s.globalIdPs(cl), s.idpList(ar.Offered)...)
		if r := s.rememberedIdP(c); r != "" {
			offered = append(offered, s.dir().idps[r])
		}
		if email != "" {
			if res, err := s.dir().resolver.Resolve(realm.Request{LoginHint: email, Allowed: cl.allows}); err == nil {
				offered = append(offered, s.idpList(res.IdPs)...)
			}
		}
		for _, idp := range offered {
			if idp.ID == choice && cl.allows(idp.Tenant, idp.ID) {
				return s.startUpstream(c, id, ar, idp, email)
			}
		}
		s.auditEvent(c, "refused", "idp_not_offered", attrs{client: ar.ClientID, idp: choice})
		return s.discoveryPage(c, id, ar, email, "That sign-in option is not available here.")
	}
	if email == "" {
		return s.discoveryPage(c, id, ar, "", "Enter your email address.")
	}
	return s.route(c, id, ar, realm.Request{LoginHint: email})
}
