package broker

// The access page: where a signed-in user of a tenant with an access
// policy requests a role for a while, sees their grants, and where the
// tenant's approvers approve or deny requests. The person signs in through
// the broker itself: the page starts an ordinary sign-in for the built-in
// client AccessClientID, whose end leaves the broker's SSO session in the
// browser; the page then works from that session. Every form carries a
// token bound to the session (CSRF), and the session cookie is SameSite=Lax.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/locale"
	"github.com/realmgate/realmgate/realm"
	"github.com/realmgate/realmgate/ui"
)

// AccessClientID is the built-in client the access page signs people in
// as. It has no redirect URI, so /authorize refuses it; only the page
// starts its sign-ins. A configured client of that id is replaced.
const AccessClientID = "realmgate-access"

// accessClient is the built-in client: every tenant, no secret, no redirect URI.
var accessClient = func() *client {
	cls, err := newClients([]Client{{ID: AccessClientID, AllowedTenants: []string{"*"}}})
	if err != nil {
		panic(err)
	}
	return cls[AccessClientID]
}()

// withAccessClient returns clients with the built-in client (a copy when
// it lacks it); every way the directory's clients are built goes through it.
func withAccessClient(clients map[string]*client) map[string]*client {
	if clients[AccessClientID] == accessClient {
		return clients
	}
	out := maps.Clone(clients)
	if out == nil {
		out = map[string]*client{}
	}
	out[AccessClientID] = accessClient // the access page's own sign-ins
	return out
}

func (s *Server) accessRoutes(e *echo.Echo) {
	e.GET(s.path("/access"), s.accessPage)
	e.POST(s.path("/access"), s.accessSubmit)
	e.GET(s.path("/access/signin"), s.accessSignIn)
	e.GET(s.path("/access/callback"), s.accessCallback)
}

type accessRoleView struct {
	Name, Max string
	Self      bool
}

type accessPageData struct {
	*locale.Printer
	Title, RequestID, Action, CSRF string
	User, Tenant, Message          string
	Failed, Approver               bool
	Roles                          []accessRoleView
	Mine, Pending                  []*AccessGrant
	ui.Brand                       // the tenant's look (brand.go)
}

// accessCSRF is the form token of the session sid.
func (s *Server) accessCSRF(sid string) string {
	return base64.RawURLEncoding.EncodeToString(s.keyer.mac("access-csrf", sid))
}

// accessSession returns the signed-in session the page acts for, its
// directory record checked as at every sign-in (S68); nil when the
// browser must sign in (again).
func (s *Server) accessSession(c echo.Context) (*session, error) {
	sess, err := s.currentSession(c)
	if err != nil || sess == nil {
		return nil, err
	}
	u, err := s.loadUser(c.Request().Context(), sess)
	if err != nil {
		return nil, err
	}
	sess.user, sess.userRead = u, true
	if s.dir().authorizeFor(s.now(), accessClient, sess.Tenant, sessionSubject(sess), strength{maxAge: -1}) != nil {
		return nil, nil
	}
	if revoked, err := s.sessionRevoked(c.Request().Context(), sess.SID); err != nil || revoked {
		return nil, err
	}
	return sess, nil
}

// isApprover reports whether the session's user holds one of the tenant's
// approver roles from the tenant's rules (never from a grant).
func (s *Server) isApprover(ctx context.Context, sess *session, pol *AccessPolicy) (bool, error) {
	if len(pol.ApproverRoles) == 0 {
		return false, nil
	}
	cl, err := s.ruleClaims(ctx, AccessClientID, sess, sess.Tenant)
	if err != nil {
		return false, err
	}
	roles, _ := cl["roles"].([]any)
	for _, r := range roles {
		if name, ok := r.(string); ok && slices.Contains(pol.ApproverRoles, name) {
			return true, nil
		}
	}
	return false, nil
}

func (s *Server) accessPage(c echo.Context) error {
	sess, err := s.accessSession(c)
	if err != nil {
		return err
	}
	if sess == nil {
		return c.Redirect(http.StatusFound, s.path("/access/signin"))
	}
	return s.showAccess(c, sess, "", false)
}

func (s *Server) showAccess(c echo.Context, sess *session, msg string, failed bool) error {
	ctx := c.Request().Context()
	d := accessPageData{Printer: s.printer(c), Title: "Access requests", RequestID: requestID(c), Action: s.path("/access"),
		CSRF: s.accessCSRF(sess.SID), User: sess.Identity.Email, Tenant: sess.Tenant, Message: msg, Failed: failed}
	d.Brand = s.Brand(sess.Tenant, "") // brand.go
	if d.User == "" {
		d.User = sess.Subject
	}
	status := http.StatusOK
	if failed {
		status = http.StatusBadRequest
	}
	// Same-origin referrer: the page's own form posts then carry its
	// Origin (no-referrer makes browsers send "null"), which sameOrigin checks.
	c.Response().Header().Set("Referrer-Policy", "same-origin")
	pol, err := s.accessPolicy(sess.Tenant)
	if err != nil {
		d.Message, d.Failed = "Your organization does not offer time-bound access.", true
		c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
		c.Response().WriteHeader(http.StatusNotFound)
		return pages.ExecuteTemplate(c.Response(), "access", d)
	}
	for name, r := range pol.Roles {
		maxD := r.MaxDuration
		if maxD <= 0 {
			maxD = DefaultAccessDuration
		}
		d.Roles = append(d.Roles, accessRoleView{Name: name, Max: shortDuration(maxD), Self: r.SelfActivate})
	}
	sort.Slice(d.Roles, func(i, j int) bool { return d.Roles[i].Name < d.Roles[j].Name })
	if d.Approver, err = s.isApprover(ctx, sess, pol); err != nil {
		return err
	}
	all, err := s.ListAccess(ctx, sess.Tenant, "")
	if err != nil {
		return err
	}
	for _, g := range all {
		switch {
		case g.Subject == sess.Subject:
			d.Mine = append(d.Mine, g)
		case d.Approver && g.Status == AccessPending:
			d.Pending = append(d.Pending, g)
		}
	}
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	c.Response().WriteHeader(status)
	return pages.ExecuteTemplate(c.Response(), "access", d)
}

// sameOrigin reports whether a POST came from one of our pages: an Origin
// header, when the browser sends one, names the issuer's origin ("null",
// an opaque origin, is refused).
func (s *Server) sameOrigin(c echo.Context) bool {
	o := c.Request().Header.Get("Origin")
	return o == "" || o == s.issuer.Scheme+"://"+s.issuer.Host
}

func (s *Server) accessSubmit(c echo.Context) error {
	v, err := formValues(c)
	if err != nil {
		return s.formError(c, "Invalid request", err)
	}
	sess, err := s.accessSession(c)
	if err != nil {
		return err
	}
	if sess == nil {
		return c.Redirect(http.StatusSeeOther, s.path("/access/signin"))
	}
	if !s.sameOrigin(c) || !hmac.Equal([]byte(v.Get("csrf")), []byte(s.accessCSRF(sess.SID))) {
		s.auditEvent(c, "refused", "access_csrf", attrs{client: AccessClientID, tenant: sess.Tenant, subject: sess.Subject})
		return s.renderError(c, http.StatusForbidden, "Request refused",
			"This form has expired or did not come from this site. Open the access page again.")
	}
	ctx := c.Request().Context()
	pol, err := s.accessPolicy(sess.Tenant)
	if err != nil {
		return s.showAccess(c, sess, "", true)
	}
	switch op := v.Get("op"); op {
	case "request":
		dur, perr := time.ParseDuration(strings.TrimSpace(v.Get("duration")))
		if perr != nil {
			return s.showAccess(c, sess, "The duration is not understood: write it like 30m or 2h.", true)
		}
		g, err := s.RequestAccess(ctx, AccessRequest{Tenant: sess.Tenant, Subject: sess.Subject, Email: sess.Identity.Email,
			Role: v.Get("role"), Duration: dur, Justification: v.Get("justification"), RequestedBy: "user"})
		if err != nil {
			return s.accessFailed(c, sess, err)
		}
		if g.Status == AccessActive {
			return s.showAccess(c, sess, s.printer(c).Tf("The role %s is active until %s. Sign in to the application again or wait for its next refresh.", g.Role, g.Expires.Format("15:04 UTC")), false)
		}
		return s.showAccess(c, sess, s.printer(c).Tf("Your request for %s is waiting for an approver.", g.Role), false)
	case "approve", "deny":
		ok, err := s.isApprover(ctx, sess, pol)
		if err != nil {
			return err
		}
		if !ok {
			s.auditEvent(c, "refused", "access_not_approver", attrs{client: AccessClientID, tenant: sess.Tenant, subject: sess.Subject})
			return s.showAccess(c, sess, "You are not an approver of your organization.", true)
		}
		g, err := s.DecideAccess(ctx, sess.Tenant, v.Get("id"), op == "approve", "approver:"+sess.Subject, sess.Subject, v.Get("reason"))
		if err != nil {
			return s.accessFailed(c, sess, err)
		}
		return s.showAccess(c, sess, s.printer(c).Tf("The request for %s is now %s.", g.Role, s.printer(c).T(g.Status)), false)
	default:
		return s.showAccess(c, sess, "Unknown action.", true)
	}
}

// accessFailed shows a grant error on the page; unavailability goes to
// the error handler (503).
func (s *Server) accessFailed(c echo.Context, sess *session, err error) error {
	switch {
	case errors.Is(err, ErrAccessInvalid):
		return s.showAccess(c, sess, strings.TrimPrefix(err.Error(), ErrAccessInvalid.Error()+": "), true)
	case errors.Is(err, ErrAccessLimit):
		return s.showAccess(c, sess, "You have too many pending or active requests.", true)
	case errors.Is(err, ErrAccessForbidden):
		return s.showAccess(c, sess, "You cannot decide your own request.", true)
	case errors.Is(err, ErrAccessNotFound):
		return s.showAccess(c, sess, "That request no longer exists.", true)
	case errors.Is(err, ErrAccessConflict):
		return s.showAccess(c, sess, "That request was already decided.", true)
	}
	return err
}

// accessSignIn starts a sign-in for the access page: an ordinary
// authorization request of the built-in client, through realm discovery,
// that ends at /access/callback with the SSO session set.
func (s *Server) accessSignIn(c echo.Context) error {
	verifier := randomToken(tokenBytes) // thrown away: the code is never redeemed
	sum := sha256.Sum256([]byte(verifier))
	ar := &authRequest{ClientID: AccessClientID, RedirectURI: s.url("/access/callback"), Scopes: []string{"openid"},
		CodeChallenge: base64.RawURLEncoding.EncodeToString(sum[:]), Created: s.now()}
	if t := c.QueryParam("tenant"); t != "" && len(t) <= 63 {
		ar.Tenant = t
	}
	lh := c.QueryParam("login_hint")
	if len(lh) > 256 {
		lh = ""
	}
	ar.LoginHint = lh
	id, err := s.saveRequest(c, ar)
	if err != nil {
		return err
	}
	return s.route(c, id, ar, realm.Request{LoginHint: lh, Host: c.Request().Host, ClientIP: clientIP(c),
		RememberedIdP: s.rememberedIdP(c)})
}

// accessCallback ends the page's sign-in: the code is consumed unused (the
// session is what the page needs) and the browser goes to the page.
func (s *Server) accessCallback(c echo.Context) error {
	if c.QueryParam("error") != "" {
		// The sign-in was refused (audited where it was); going back to the
		// page would start it again.
		return s.renderError(c, http.StatusForbidden, "You could not be signed in",
			"Your organization did not let you sign in to the access page.")
	}
	if code := c.QueryParam("code"); code != "" && len(code) <= 128 {
		_, _ = s.store.Take(c.Request().Context(), s.keyer.key("cd", code))
	}
	return c.Redirect(http.StatusFound, s.path("/access"))
}

// shortDuration writes d as a person reads it: 2h, 1h30m, 45m (not 2h0m0s).
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Short is shortDuration for the access page's template, over a grant's
// duration as it is stored ("1h0m0s"); text that is no duration is kept.
func (accessPageData) Short(s string) string {
	d, err := time.ParseDuration(s)
	if err != nil {
		return s
	}
	return shortDuration(d)
}
