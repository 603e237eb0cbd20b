package scim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/realmgate/realmgate/store"
)

// ContentType is the media type of every SCIM body (RFC 7644 §8.1).
const ContentType = "application/scim+json"

// Request and listing bounds.
const (
	// MaxBodyBytes bounds a request body: a group with its members fits.
	MaxBodyBytes = 1 << 20
	// DefaultCount and MaxCount are the page sizes of a list (RFC 7644
	// §3.4.2.4); ServiceProviderConfig publishes MaxCount as filter.maxResults.
	DefaultCount = 100
	MaxCount     = 1000
	// MaxScan bounds the resources one filtered list examines when the
	// filter names no indexed attribute: past it the answer is tooMany
	// (RFC 7644 §3.12), never a scan of a million users.
	MaxScan  = 50000
	scanPage = 500
)

// RateLimit allows at most Limit events in each Window; zero turns it off.
type RateLimit struct {
	Limit  int64
	Window time.Duration
}

// Limits are the SCIM endpoint's throttles. Counters are in the shared
// store, so a limit holds across instances (as the broker's, S60).
type Limits struct {
	// RequestsPerTenant bounds the authenticated requests of one tenant's
	// clients; excess gets 429 with Retry-After.
	RequestsPerTenant RateLimit
	// FailuresPerIP bounds the requests with a missing or wrong token from
	// one client IP; once reached they get 429 until the window ends.
	FailuresPerIP RateLimit
}

// DefaultLimits hold an Entra or Okta provisioning cycle (a few requests a
// second) with room, and stop a runaway client or a token guesser. They are
// the defaults of the configuration file's scim section (config.SCIM),
// which realmgate passes as Options.Limits.
var DefaultLimits = Limits{
	RequestsPerTenant: RateLimit{Limit: 3000, Window: time.Minute},
	FailuresPerIP:     RateLimit{Limit: 30, Window: 10 * time.Minute},
}

// Options configure a Handler.
type Options struct {
	// Directory keeps the users and groups.
	Directory Directory
	// Tokens authenticates the provisioning clients.
	Tokens *Tokens
	// Deprovisioner ends the access of a user made inactive or deleted;
	// nil when the directory does it itself.
	Deprovisioner Deprovisioner
	// Credentials, when set, hears of a password set by PUT or PATCH of a
	// user (the password itself is discarded).
	Credentials CredentialObserver
	// Store keeps the rate-limit counters.
	Store store.Store
	// TenantExists reports whether a tenant is configured now; a token of
	// a deleted tenant stops working.
	TenantExists func(tenant string) bool
	// Issuer is the broker's issuer URL; the endpoint of tenant T is
	// Issuer + "/scim/v2/" + T.
	Issuer string
	// ClientIP is the client IP of a request by the broker's rule
	// (broker.IPExtractor, SECURITY S73); nil: the peer address.
	ClientIP func(*http.Request) string
	// Limits are the throttles; the zero value means DefaultLimits.
	Limits *Limits
	// Logger receives operational logs; Audit one event per change and per refused token.
	Logger, Audit *slog.Logger
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Handler serves the SCIM endpoints of every tenant under Prefix().
type Handler struct {
	opts   Options
	prefix string // URL path up to and including "/scim/v2/"
	base   string // Issuer + "/scim/v2/"
	limits Limits
}

// New checks opts and returns the handler.
func New(opts Options) (*Handler, error) {
	if opts.Directory == nil || opts.Tokens == nil || opts.Store == nil || opts.TenantExists == nil {
		return nil, errors.New("scim: directory, tokens, store and tenant check are required")
	}
	u, err := url.Parse(opts.Issuer)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("scim: issuer %q is not an absolute URL", opts.Issuer)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Audit == nil {
		opts.Audit = opts.Logger.With("stream", "audit")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &Handler{opts: opts, limits: DefaultLimits}
	if opts.Limits != nil {
		h.limits = *opts.Limits
	}
	h.prefix = strings.TrimSuffix(u.Path, "/") + "/scim/v2/"
	h.base = strings.TrimSuffix(opts.Issuer, "/") + "/scim/v2/"
	return h, nil
}

// Prefix is the URL path the handler serves, "/scim/v2/" under the issuer's path.
func (h *Handler) Prefix() string { return h.prefix }

// Endpoint returns the SCIM base URL of tenant, the "Tenant URL" an admin
// enters in Entra or Okta.
func (h *Handler) Endpoint(tenant string) string { return h.base + url.PathEscape(tenant) }

// request is one authenticated request.
type request struct {
	w      http.ResponseWriter
	r      *http.Request
	tenant string
	token  TokenInfo
	rid    string
	ip     string
}

func (q *request) ctx() context.Context { return q.r.Context() }

// ServeHTTP routes <prefix><tenant>/<endpoint>[/<id>].
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := &request{w: w, r: r, rid: random(9), ip: h.clientIP(r)}
	hd := w.Header()
	hd.Set("X-Request-Id", q.rid)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	start := h.opts.Now()
	status := &statusWriter{ResponseWriter: w}
	q.w = status
	defer func() {
		if p := recover(); p != nil {
			h.opts.Logger.Error("scim: panic", "request_id", q.rid, "path", r.URL.Path, "panic", p)
			if status.code == 0 {
				h.writeError(q, &Error{Status: http.StatusInternalServerError, Detail: "internal error; request id " + q.rid})
			}
		}
		h.opts.Logger.LogAttrs(r.Context(), slog.LevelInfo, "scim request",
			slog.String("request_id", q.rid), slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.String("tenant", q.tenant), slog.Int("status", status.code), slog.Duration("took", h.opts.Now().Sub(start)))
	}()
	r.Body = http.MaxBytesReader(status, r.Body, MaxBodyBytes)
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), h.prefix)
	if !ok {
		h.writeError(q, &Error{Status: http.StatusNotFound, Detail: "not a SCIM endpoint"})
		return
	}
	segs := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	for i, s := range segs {
		u, err := url.PathUnescape(s)
		if err != nil {
			h.writeError(q, &Error{Status: http.StatusNotFound, Detail: "not a SCIM endpoint"})
			return
		}
		segs[i] = u
	}
	if len(segs) < 2 || len(segs) > 3 || segs[0] == "" {
		h.writeError(q, &Error{Status: http.StatusNotFound, Detail: "SCIM endpoints are " + h.prefix + "<tenant>/Users, /Groups, /Schemas, /ResourceTypes and /ServiceProviderConfig"})
		return
	}
	q.tenant = segs[0]
	if !h.authenticate(q) {
		return
	}
	if !h.allow(q) {
		return
	}
	id := ""
	if len(segs) == 3 {
		id = segs[2]
	}
	switch {
	case strings.EqualFold(segs[1], "Users"):
		h.resources(q, userType, id)
	case strings.EqualFold(segs[1], "Groups"):
		h.resources(q, groupType, id)
	case strings.EqualFold(segs[1], "ServiceProviderConfig") && id == "":
		h.get(q, h.serviceProviderConfig)
	case strings.EqualFold(segs[1], "Schemas"):
		h.get(q, func(q *request) (any, error) { return h.schemas(q, id) })
	case strings.EqualFold(segs[1], "ResourceTypes"):
		h.get(q, func(q *request) (any, error) { return h.resourceTypes(q, id) })
	default:
		h.writeError(q, &Error{Status: http.StatusNotFound, Detail: fmt.Sprintf("no SCIM endpoint %q (bulk, /Me and .search are not supported)", segs[1])})
	}
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (h *Handler) clientIP(r *http.Request) string {
	if h.opts.ClientIP != nil {
		return h.opts.ClientIP(r)
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// authenticate checks the bearer token (RFC 6750 §2.1): it must be a
// token of the tenant in the URL, and the tenant must exist. Every
// refusal is the same 401, whether the token is unknown, revoked or
// another tenant's, and is audited.
func (h *Handler) authenticate(q *request) bool {
	auth := q.r.Header.Get("Authorization")
	scheme, token, _ := strings.Cut(auth, " ")
	token = strings.TrimSpace(token)
	reason := ""
	switch {
	case auth == "":
		reason = "no_token"
	case !strings.EqualFold(scheme, "Bearer") || token == "":
		reason = "not_bearer"
	default:
		info, err := h.opts.Tokens.Verify(q.ctx(), token)
		switch {
		case errors.Is(err, ErrTokenNotFound):
			reason = "unknown_token"
		case err != nil:
			h.opts.Logger.Error("scim: token check failed", "request_id", q.rid, "err", err)
			h.writeError(q, &Error{Status: http.StatusServiceUnavailable, Detail: "the store is unreachable; try again"})
			return false
		case info.Tenant != q.tenant:
			reason = "other_tenant_token"
		case !h.opts.TenantExists(q.tenant):
			reason = "unknown_tenant"
		default:
			q.token = info
			return true
		}
	}
	h.audit(q, "scim.auth", "refused", reason, "", "")
	if h.over(q, "fail", q.ip, h.limits.FailuresPerIP) {
		return false
	}
	q.w.Header().Set("WWW-Authenticate", `Bearer realm="scim", error="invalid_token"`)
	if reason == "no_token" {
		q.w.Header().Set("WWW-Authenticate", `Bearer realm="scim"`)
	}
	h.writeError(q, &Error{Status: http.StatusUnauthorized, Detail: "a valid bearer token of this tenant is required"})
	return false
}

// allow counts an authenticated request against the tenant's limit.
func (h *Handler) allow(q *request) bool {
	return !h.over(q, "tenant", q.tenant, h.limits.RequestsPerTenant)
}

// over counts one event of kind for subject in the current fixed window
// and answers 429 once the limit is passed. A store failure lets the
// request through (a limiter outage must not become a provisioning outage).
func (h *Handler) over(q *request, kind, subject string, l RateLimit) bool {
	if l.Limit <= 0 || l.Window <= 0 {
		return false
	}
	now := h.opts.Now()
	win := now.UnixNano() / int64(l.Window)
	left := time.Duration(int64(l.Window)*(win+1) - now.UnixNano())
	key := "rl:scim:" + kind + ":" + subject + ":" + strconv.FormatInt(win, 10)
	n, err := h.opts.Store.Incr(q.ctx(), key, left+time.Second)
	if err != nil {
		h.opts.Logger.Warn("scim: rate limiter unavailable; letting the request through", "request_id", q.rid, "err", err)
		return false
	}
	if n <= l.Limit {
		return false
	}
	secs := int((left + time.Second - 1) / time.Second)
	q.w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	h.audit(q, "scim.throttled", "throttled", kind, "", "")
	h.writeError(q, &Error{Status: http.StatusTooManyRequests, Detail: "too many requests; retry after " + strconv.Itoa(max(secs, 1)) + " s"})
	return true
}

func (h *Handler) get(q *request, f func(*request) (any, error)) {
	if q.r.Method != http.MethodGet {
		h.methodNotAllowed(q, "GET")
		return
	}
	v, err := f(q)
	if err != nil {
		h.writeError(q, err)
		return
	}
	h.writeJSON(q, http.StatusOK, v)
}

func (h *Handler) methodNotAllowed(q *request, allow string) {
	q.w.Header().Set("Allow", allow)
	h.writeError(q, &Error{Status: http.StatusMethodNotAllowed, Detail: "method " + q.r.Method + " is not allowed here; allowed: " + allow})
}

func (h *Handler) writeJSON(q *request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		h.writeError(q, fmt.Errorf("encode response: %w", err))
		return
	}
	q.w.Header().Set("Content-Type", ContentType)
	q.w.WriteHeader(status)
	_, _ = q.w.Write(b)
}

// writeError answers err as a SCIM error (RFC 7644 §3.12); internal
// errors are logged with the request id and never shown.
func (h *Handler) writeError(q *request, err error) {
	var e *Error
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &e):
	case errors.As(err, &mbe):
		e = &Error{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("request body is larger than %d bytes", mbe.Limit)}
	case errors.Is(err, ErrNotFound):
		e = &Error{Status: http.StatusNotFound, Detail: "resource not found"}
	case errors.Is(err, ErrConflict):
		e = &Error{Status: http.StatusConflict, ScimType: ScimTypeUniqueness, Detail: "a resource with this unique attribute already exists"}
	case errors.Is(err, ErrVersion):
		e = &Error{Status: http.StatusPreconditionFailed, Detail: "the resource changed; read it again (If-Match did not match)"}
	case errors.Is(err, ErrUnavailable), errors.Is(err, store.ErrUnavailable):
		h.opts.Logger.Error("scim: store unavailable", "request_id", q.rid, "err", err)
		e = &Error{Status: http.StatusServiceUnavailable, Detail: "the directory is unreachable; try again"}
	default:
		h.opts.Logger.Error("scim: request failed", "request_id", q.rid, "method", q.r.Method, "path", q.r.URL.Path, "err", err)
		e = &Error{Status: http.StatusInternalServerError, Detail: "internal error; request id " + q.rid}
	}
	b, _ := json.Marshal(e.body())
	q.w.Header().Set("Content-Type", ContentType)
	q.w.WriteHeader(e.Status)
	_, _ = q.w.Write(b)
}

// readBody reads the request body (bounded by MaxBodyBytes).
func readBody(q *request) ([]byte, error) {
	b, err := io.ReadAll(q.r.Body)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// audit writes one SCIM audit event: never a token, only its id and name.
func (h *Handler) audit(q *request, event, outcome, reason, resource, id string, extra ...slog.Attr) {
	attrs := []slog.Attr{
		slog.String("event", event), slog.String("outcome", outcome), slog.String("tenant", q.tenant),
		slog.String("actor", actor(q.token)), slog.String("token_id", q.token.ID),
		slog.String("ip", q.ip), slog.String("user_agent", clip(q.r.UserAgent(), 200)), slog.String("request_id", q.rid),
	}
	if reason != "" {
		attrs = append(attrs, slog.String("reason", reason))
	}
	if resource != "" {
		attrs = append(attrs, slog.String("resource", resource), slog.String("id", id))
	}
	h.opts.Audit.LogAttrs(q.ctx(), slog.LevelInfo, event, append(attrs, extra...)...)
}

func actor(t TokenInfo) string {
	if t.ID == "" {
		return ""
	}
	return "scim:" + t.Name
}
