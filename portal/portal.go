// Package portal is the setup portal (docs/setup-portal.md): server-rendered
// pages at <issuer>/setup/ where a customer's IT admin, holding a setup link
// the SaaS created through the admin API, connects the tenant's IdP
// (instructions per IdP kind with the exact values to enter there), proves
// the tenant's domains by DNS, runs a test sign-in, maps groups to roles,
// creates a SCIM token and activates the IdP, without an admin token.
//
// Every change goes through the admin API's own code (admin.Service's Setup
// methods): validated exactly like the API and audited as
// "setup-link:<id>". The link's secret leaves the URL at once: opening it
// starts a server-side portal session (an HttpOnly, SameSite=Strict cookie)
// and redirects to /setup/. Every form carries a CSRF token bound to that
// session, compared in constant time, and a cross-origin POST is refused.
// Pages use the ui frame, are localized (package locale) and need no
// script; a small static script adds copy buttons.
package portal

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/locale"
	"github.com/realmgate/realmgate/ui"
)

// Limits of the portal's requests.
const (
	// DefaultMaxUpload bounds an uploaded metadata XML document (and its form).
	DefaultMaxUpload = 1 << 20
	// maxForm bounds every other form.
	maxForm = 64 << 10
)

// Tester runs test sign-ins through an IdP that is pending activation:
// the broker (cmd/realmgate adapts *broker.Server to it).
type Tester interface {
	// StartTest answers the request with a redirect that starts a test
	// sign-in through req.IdP; the broker sends the browser back to
	// req.Return with test=<id> when it is done.
	StartTest(w http.ResponseWriter, r *http.Request, req TestRequest) error
	// TestResult returns the outcome of test sign-in id.
	TestResult(ctx context.Context, id string) (*TestResult, error)
}

// ErrTestRefused is wrapped by a Tester's StartTest error when it refuses
// the request itself (the IdP cannot be tested yet): the portal says so on
// the page instead of failing.
var ErrTestRefused = errors.New("portal: test sign-in refused")

// TestRequest asks for a test sign-in.
type TestRequest struct {
	// Tenant and IdP say whose IdP to sign in with.
	Tenant, IdP string
	// Return is where the browser comes back to.
	Return string
	// Actor names who asked, for the audit (setup-link:<id>).
	Actor string
}

// TestResult is what a test sign-in showed.
type TestResult struct {
	// Tenant and IdP are those signed in with.
	Tenant, IdP string
	// Actor is who started it (TestRequest.Actor): the portal shows a
	// result only to the link that started it.
	Actor string
	// Attributes are the upstream identity's attributes as received.
	Attributes map[string]any
	// Claims are what realmgate would issue.
	Claims map[string]any
	// Trace says what each rule did.
	Trace []TraceStep
	// Denied is a rule's deny message; Error the upstream's or a rule's failure.
	Denied, Error string
}

// TraceStep is one rule's part in a test sign-in.
type TraceStep struct {
	// Rule names the rule; Matched says whether its condition held.
	Rule    string
	Matched bool
	// Changes say what it changed, one line each.
	Changes []string
	// Denied and Error say how it ended the sign-in, if it did.
	Denied, Error string
}

// Options configure a Handler.
type Options struct {
	// Issuer is the broker's issuer; the portal is at <issuer>/setup/.
	Issuer string
	// Admin is the admin API, whose Setup methods the portal calls.
	Admin *admin.Service
	// Store keeps portal sessions.
	Store broker.Store
	// Secret is the server secret; the keys of portal sessions derive from it.
	Secret []byte
	// Tester runs test sign-ins; nil hides the step.
	Tester Tester
	// Brand returns the look of a tenant's pages (the broker's
	// Server.Brand); nil: realmgate's own look.
	Brand func(tenant string) ui.Brand
	// MaxUpload bounds an uploaded metadata document; zero: DefaultMaxUpload.
	MaxUpload int64
	// ClientIP returns a request's client address for the audit (the
	// broker's trusted-proxy rule, S73); nil: the peer address.
	ClientIP func(*http.Request) string
	// Logger receives operational logs.
	Logger *slog.Logger
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
}

// Handler serves the setup portal.
type Handler struct {
	opts      Options
	prefix    string // path of <issuer>/setup/
	origin    string // scheme://host of the issuer
	secure    bool   // the issuer is https: a __Host- cookie
	key       []byte // keys session ids in the store
	languages locale.Negotiator
}

// New returns the portal's handler.
func New(opts Options) (*Handler, error) {
	if opts.Admin == nil || opts.Store == nil {
		return nil, errors.New("portal: the admin API and a store are required")
	}
	u, err := url.Parse(opts.Issuer)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("portal: issuer %q is not an absolute URL", opts.Issuer)
	}
	if opts.MaxUpload <= 0 {
		opts.MaxUpload = DefaultMaxUpload
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ClientIP == nil {
		opts.ClientIP = func(r *http.Request) string {
			host, _, err := net.SplitHostPort(r.RemoteAddr)
			if err != nil {
				return r.RemoteAddr
			}
			return host
		}
	}
	m := hmac.New(sha256.New, opts.Secret)
	m.Write([]byte("realmgate setup portal sessions"))
	return &Handler{opts: opts, prefix: strings.TrimSuffix(u.Path, "/") + "/setup/", origin: u.Scheme + "://" + u.Host,
		secure: u.Scheme == "https", key: m.Sum(nil)}, nil
}

// Prefix is the path the handler serves under (<issuer path>/setup/).
func (h *Handler) Prefix() string { return h.prefix }

// session is one portal session, kept in the store.
type session struct {
	// Link is the setup link's id.
	Link string `json:"link"`
	// CSRF is the token every form of the session carries.
	CSRF string `json:"csrf"`
	// Provider is the IdP the session set up.
	Provider string `json:"provider,omitempty"`
	// Test is the last test sign-in's id.
	Test string `json:"test,omitempty"`

	id string // the cookie's value (not stored)
}

func (h *Handler) cookieName() string {
	if h.secure {
		return "__Host-rg_setup"
	}
	return "rg_setup"
}

func (h *Handler) sessionKey(id string) string {
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(id))
	return "setup:sess:" + hex.EncodeToString(m.Sum(nil))
}

func random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand documents it)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sessionGrace keeps a session past its link's expiry, so that its next
// request is told the link expired rather than that it is unknown.
const sessionGrace = time.Hour

// save writes sess until the link expires (and sessionGrace).
func (h *Handler) save(ctx context.Context, sess *session, expires time.Time) error {
	ttl := expires.Sub(h.opts.Now())
	if ttl <= 0 {
		return admin.ErrSetupLinkEnded
	}
	ttl += sessionGrace
	raw, _ := json.Marshal(sess)
	return h.opts.Store.Put(ctx, h.sessionKey(sess.id), raw, ttl)
}

// load returns the request's session, or nil.
func (h *Handler) load(r *http.Request) (*session, error) {
	c, err := r.Cookie(h.cookieName())
	if err != nil || c.Value == "" || len(c.Value) > 64 {
		return nil, nil
	}
	raw, err := h.opts.Store.Get(r.Context(), h.sessionKey(c.Value))
	if errors.Is(err, broker.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s session
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, nil
	}
	s.id = c.Value
	return &s, nil
}

func (h *Handler) setCookie(w http.ResponseWriter, value string, maxAge int) {
	// A __Host- cookie must have Path=/ (RFC 6265bis §4.1.3.2); SameSite=Strict
	// keeps it off every cross-site request.
	path := h.prefix
	if h.secure {
		path = "/"
	}
	http.SetCookie(w, &http.Cookie{Name: h.cookieName(), Value: value, Path: path, MaxAge: maxAge,
		HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteStrictMode})
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	// Portal pages only: scripts from the portal itself (portal.js), no
	// inline script, no framing.
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Referrer-Policy", "same-origin")
	// The request id is the portal's own, never the client's: it names the
	// request in logs, audit events and the page's footer.
	rid := newRequestID()
	hd.Set("X-Request-Id", rid)
	r.Header.Set("X-Request-Id", rid)
	r = r.WithContext(admin.WithRequestInfo(r.Context(), h.opts.ClientIP(r), rid))
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			h.opts.Logger.Error("portal: panic", "request_id", rid, "path", r.URL.Path, "panic", fmt.Sprint(v))
			h.fail(w, r, nil, http.StatusInternalServerError)
		}
	}()
	rest, ok := strings.CutPrefix(r.URL.Path, h.prefix)
	if !ok {
		rest, ok = "", r.URL.Path == strings.TrimSuffix(h.prefix, "/")
	}
	if !ok {
		h.fail(w, r, nil, http.StatusNotFound)
		return
	}
	if rest == "portal.js" && r.Method == http.MethodGet {
		hd.Set("Content-Type", "text/javascript; charset=utf-8")
		hd.Set("Cache-Control", "public, max-age=3600")
		b, _ := static.ReadFile("static/portal.js")
		_, _ = w.Write(b)
		return
	}
	if strings.HasPrefix(rest, admin.SetupLinkPrefix) && r.Method == http.MethodGet {
		h.open(w, r, rest)
		return
	}
	sess, err := h.load(r)
	if err != nil {
		h.opts.Logger.Error("portal: read session", "err", err)
		h.fail(w, r, nil, http.StatusServiceUnavailable)
		return
	}
	if sess == nil {
		h.fail(w, r, nil, http.StatusNotFound)
		return
	}
	view, err := h.opts.Admin.SetupTenant(r.Context(), sess.Link)
	if err != nil {
		h.linkError(w, r, sess, err)
		return
	}
	rq := &request{h: h, w: w, r: r, sess: sess, view: view}
	rq.p = h.printer(r, view.Tenant.Language)
	if r.Method == http.MethodPost && !rq.checkPost() {
		return
	}
	h.route(rq, rest)
}

// open validates a link's secret, starts a portal session and sends the
// browser to /setup/ so the secret leaves the URL (and any Referer).
func (h *Handler) open(w http.ResponseWriter, r *http.Request, secret string) {
	w.Header().Set("Referrer-Policy", "no-referrer")
	link, err := h.opts.Admin.OpenSetupLink(r.Context(), secret)
	if err == nil && link.State != admin.SetupOpen {
		h.linkError(w, r, nil, linkState(link.State))
		return
	}
	if err != nil {
		h.linkError(w, r, nil, err)
		return
	}
	// A fresh session, whatever cookie came: one of another link never
	// carries over.
	sess := &session{id: random(), Link: link.ID, CSRF: random()}
	if err := h.save(r.Context(), sess, link.ExpiresAt); err != nil {
		h.linkError(w, r, nil, err)
		return
	}
	h.setCookie(w, sess.id, int(link.ExpiresAt.Sub(h.opts.Now())/time.Second))
	http.Redirect(w, r, h.prefix, http.StatusSeeOther)
}

// stateError is a link that is not open.
type stateError string

func (e stateError) Error() string { return "portal: setup link " + string(e) }

func linkState(state string) error { return stateError(state) }

// linkError answers a link that cannot be used: a readable page, never an
// internal error.
func (h *Handler) linkError(w http.ResponseWriter, r *http.Request, sess *session, err error) {
	var se stateError
	state := ""
	switch {
	case errors.As(err, &se):
		state = string(se)
	case errors.Is(err, admin.ErrSetupLinkEnded) && sess != nil:
		if l, lerr := h.opts.Admin.SetupLinkByID(r.Context(), sess.Link); lerr == nil {
			state = l.State
		}
	case errors.Is(err, admin.ErrSetupLinkNotFound):
		state = admin.SetupRevoked // unknown: as revoked, a 404
	}
	if sess != nil && state != "" {
		_ = h.opts.Store.Delete(r.Context(), h.sessionKey(sess.id))
		h.setCookie(w, "", -1)
	}
	switch state {
	case admin.SetupExpired:
		h.page(w, r, nil, http.StatusGone, "error", &page{Title: "This setup link has expired",
			Message: "Ask the service that sent it to you for a new setup link."})
	case admin.SetupActivated:
		h.page(w, r, nil, http.StatusGone, "error", &page{Title: "This setup link was already used",
			Message: "The setup was completed and activated with this link. Ask the service that sent it to you for a new link to change the setup."})
	case admin.SetupRevoked:
		h.fail(w, r, nil, http.StatusNotFound)
	default:
		h.opts.Logger.Error("portal: setup link", "err", err)
		h.fail(w, r, nil, http.StatusServiceUnavailable)
	}
}

// fail answers status with a readable page.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, p *locale.Printer, status int) {
	d := &page{Title: "Something went wrong", Message: "The setup portal cannot answer right now. Please try again in a moment."}
	switch status {
	case http.StatusNotFound:
		d = &page{Title: "This setup link is not valid", Message: "The link is unknown or was revoked. Ask the service that sent it to you for a new setup link."}
	case http.StatusForbidden:
		d = &page{Title: "This form has expired", Message: "The form did not come from this setup session. Go back, reload the page and try again."}
	case http.StatusRequestEntityTooLarge:
		d = &page{Title: "The file is too large", Message: "The uploaded metadata is larger than the portal accepts. Paste the metadata URL instead, or upload a smaller file."}
	case http.StatusMethodNotAllowed:
		d = &page{Title: "This page does not exist", Message: "Go back to the setup overview."}
	}
	h.page(w, r, p, status, "error", d)
}

// printer is the request's language: Accept-Language, else the tenant's default.
func (h *Handler) printer(r *http.Request, tenantDefault string) *locale.Printer {
	return locale.Default().Printer(h.languages.Match(r.Header.Get("Accept-Language"), tenantDefault))
}

//go:embed static/portal.js
var static embed.FS

// request is one request of an open portal session.
type request struct {
	h    *Handler
	w    http.ResponseWriter
	r    *http.Request
	p    *locale.Printer
	sess *session
	view admin.SetupView
}

// checkPost refuses a POST from another origin or without the session's
// CSRF token (a 403 page); it reads the form.
func (rq *request) checkPost() bool {
	if o := rq.r.Header.Get("Origin"); o != "" && o != rq.h.origin {
		rq.h.fail(rq.w, rq.r, rq.p, http.StatusForbidden)
		return false
	}
	limit := int64(maxForm)
	if strings.HasPrefix(rq.r.Header.Get("Content-Type"), "multipart/form-data") {
		limit = rq.h.opts.MaxUpload + maxForm
	}
	rq.r.Body = http.MaxBytesReader(rq.w, rq.r.Body, limit)
	var err error
	if limit > maxForm {
		err = rq.r.ParseMultipartForm(rq.h.opts.MaxUpload)
	} else {
		err = rq.r.ParseForm()
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		rq.h.fail(rq.w, rq.r, rq.p, http.StatusRequestEntityTooLarge)
		return false
	}
	if err != nil {
		rq.h.fail(rq.w, rq.r, rq.p, http.StatusForbidden)
		return false
	}
	tok := rq.r.PostFormValue("csrf")
	if subtle.ConstantTimeCompare([]byte(tok), []byte(rq.sess.CSRF)) != 1 {
		rq.h.fail(rq.w, rq.r, rq.p, http.StatusForbidden)
		return false
	}
	return true
}

// saveSession keeps a change to the session.
func (rq *request) saveSession() error {
	return rq.h.save(rq.r.Context(), rq.sess, rq.view.Link.ExpiresAt)
}

// url is the portal path of rest.
func (rq *request) url(rest string) string { return rq.h.prefix + rest }

// redirect sends the browser to a portal page after a POST (303).
func (rq *request) redirect(rest string) {
	http.Redirect(rq.w, rq.r, rq.url(rest), http.StatusSeeOther)
}

// adminError answers an error of an admin Setup method that is not a
// validation problem: the link ended, a step not allowed, the store.
func (rq *request) adminError(err error) {
	switch {
	case errors.Is(err, admin.ErrSetupLinkEnded), errors.Is(err, admin.ErrSetupLinkNotFound):
		rq.h.linkError(rq.w, rq.r, rq.sess, err)
	case errors.Is(err, admin.ErrSetupNotAllowed):
		rq.h.fail(rq.w, rq.r, rq.p, http.StatusNotFound)
	default:
		rq.h.opts.Logger.Error("portal: setup step failed", "link", rq.sess.Link, "path", rq.r.URL.Path, "err", err)
		rq.h.fail(rq.w, rq.r, rq.p, http.StatusServiceUnavailable)
	}
}

// newRequestID returns a random request id (72 bits, base64url), the form
// the broker's ids take.
func newRequestID() string {
	b := make([]byte, 9)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
