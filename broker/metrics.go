package broker

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// Operations: Prometheus metrics, the observe middleware (request latency
// per route template, and the audit event of a sign-in request that failed
// without one), and readiness.

// ops is the broker's operational state, built by startOps.
type ops struct {
	metrics *metrics
	audit   *auditWriter
	// signin are the routes whose failures are sign-in outcomes.
	signin map[routeKey]bool
}

type routeKey struct{ method, path string }

// metrics are the broker's Prometheus collectors. Label values come only
// from the configuration and the route table, never from a request, so the
// number of series is bounded.
type metrics struct {
	signins        *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	storeErrors    *prometheus.CounterVec
	upstreamErrors *prometheus.CounterVec
	throttled      *prometheus.CounterVec
	auditDropped   prometheus.Counter

	// routes holds each route's observers, created on first use; the map
	// itself is built once and only read, so the hot path takes no lock
	// and allocates nothing.
	routes map[routeKey]*routeObservers
	other  *routeObservers
}

// routeObservers are the latency observers of one route, one per status class.
type routeObservers struct {
	route, method string
	once          [6]sync.Once
	obs           [6]prometheus.Observer
}

var statusClasses = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

func (r *routeObservers) observer(h *prometheus.HistogramVec, status int) prometheus.Observer {
	class := status / 100
	if class < 1 || class > 5 {
		class = 0
	}
	r.once[class].Do(func() { r.obs[class] = h.WithLabelValues(r.route, r.method, statusClasses[class]) })
	return r.obs[class]
}

func newMetrics() *metrics {
	return &metrics{
		signins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "realmgate_signins_total",
			Help: "Sign-in events by tenant, upstream IdP and outcome (started, success, refused, failure, denied, abort, throttled, logout, revoked).",
		}, []string{"tenant", "idp", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "realmgate_http_request_duration_seconds",
			Help:    "Latency of HTTP requests by route template, method and status class.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "method", "code"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "realmgate_store_errors_total",
			Help: "Store failures by where they surfaced: request (answered 503), token (answered 503), ratelimit (failed open), audit (stream write lost).",
		}, []string{"op"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "realmgate_upstream_errors_total",
			Help: "Upstream IdP failures by IdP and reason (upstream_unavailable, upstream_invalid_response).",
		}, []string{"idp", "reason"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "realmgate_throttled_total",
			Help: "Requests refused with 429 by the limit that refused them.",
		}, []string{"limit"}),
		auditDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "realmgate_audit_dropped_total",
			Help: "Audit events not written to the store stream because its queue was full (the log stream has them).",
		}),
		routes: map[routeKey]*routeObservers{},
		other:  &routeObservers{route: "other", method: "other"},
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.signins, m.duration, m.storeErrors, m.upstreamErrors, m.throttled, m.auditDropped}
}

func (m *metrics) signin(tenant, idp, outcome string) {
	m.signins.WithLabelValues(tenant, idp, outcome).Inc()
}

func (m *metrics) storeError(op string) { m.storeErrors.WithLabelValues(op).Inc() }

func (m *metrics) upstreamError(idp, reason string) {
	m.upstreamErrors.WithLabelValues(idp, reason).Inc()
}

func (m *metrics) throttle(limit string) { m.throttled.WithLabelValues(limit).Inc() }

func (m *metrics) observe(method, route string, status int, d time.Duration) {
	r := m.routes[routeKey{method, route}]
	if r == nil {
		r = m.other
	}
	r.observer(m.duration, status).Observe(d.Seconds())
}

// startOps builds the metrics for the registered routes and starts the
// audit stream writer. New calls it once the routes exist.
func (s *Server) startOps() {
	m := newMetrics()
	o := &ops{metrics: m, signin: map[routeKey]bool{}}
	for _, r := range s.echo.Routes() {
		k := routeKey{r.Method, r.Path}
		if _, ok := m.routes[k]; !ok {
			m.routes[k] = &routeObservers{route: r.Path, method: r.Method}
		}
	}
	for _, k := range []routeKey{
		{http.MethodGet, s.path("/authorize")}, {http.MethodPost, s.path("/authorize")},
		{http.MethodPost, s.path("/login")},
		{http.MethodGet, s.path("/callback/:idp")}, {http.MethodPost, s.path("/callback/:idp")},
		{http.MethodPost, s.path("/saml/:idp/acs")},
		{http.MethodPost, s.path("/token")},
	} {
		o.signin[k] = true
	}
	s.ops = o
	o.audit = s.newAuditWriter()
}

// stopOps writes the audit events still queued.
func (s *Server) stopOps() {
	if s.ops != nil {
		s.ops.audit.close()
	}
}

// RegisterMetrics registers the broker's collectors with reg (the admin
// listener serves them at /metrics).
func (s *Server) RegisterMetrics(reg prometheus.Registerer) error {
	for _, c := range s.ops.metrics.collectors() {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Ready reports whether the broker can serve: its store answers and every
// readiness check (AddReadinessCheck) passes.
func (s *Server) Ready(ctx context.Context) error {
	if err := s.store.Ping(ctx); err != nil {
		return err
	}
	return s.readiness.check()
}

// observe measures each request's latency under its route template (never
// the raw path, whose values are unbounded) and writes the audit event of a
// sign-in request that ended in an error without one. It runs outside
// s.middleware, so it sees the final status.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		req := c.Request()
		status := c.Response().Status
		s.ops.metrics.observe(req.Method, c.Path(), status, time.Since(start))
		if status >= 400 && c.Get(ctxAudited) == nil && s.ops.signin[routeKey{req.Method, c.Path()}] {
			s.auditFallback(c, status)
		}
		return err
	}
}

// auditFallback audits a sign-in request that failed without an event.
func (s *Server) auditFallback(c echo.Context, status int) {
	outcome, reason := "refused", ""
	switch {
	case status >= 500:
		outcome = "failure"
		reason = "internal_error"
		if status == http.StatusServiceUnavailable {
			reason = "unavailable"
		}
	default:
		reason, _ = c.Get(ctxTokenError).(string)
	}
	if reason == "" {
		switch status {
		case http.StatusBadRequest:
			reason = "bad_request"
		case http.StatusNotFound:
			reason = "not_found"
		case http.StatusRequestEntityTooLarge:
			reason = "too_large"
		default:
			reason = "http_" + strconv.Itoa(status)
		}
	}
	a := attrs{client: formClientID(c)}
	if p, ok := s.dir().idps[c.Param("idp")]; ok {
		a.idp, a.tenant = p.ID, p.Tenant
	}
	s.auditEvent(c, outcome, reason, a)
}
