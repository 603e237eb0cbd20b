package broker

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/locale"
	"github.com/realmgate/realmgate/oauth"
	"github.com/realmgate/realmgate/store"
)

// Sign-in throttling (SECURITY S60). Counters live in the shared Store, so
// a limit holds across every instance. Each limit is a sliding window
// (store.Window, Store.SlidingWindow): an event is admitted when fewer than
// Limit events were counted in the last Window (in buckets of a tenth of
// it, so an event stays counted between Window and 1.1 Window), which
// holds at window edges too: no stretch of Window ever admits more than
// Limit, on one instance or many. Every check is one store round trip;
// Retry-After is the time until the oldest counted events leave the window.
// Each instance buckets by its own clock (Config.Now).
//
// A store failure in the limiter lets the request through with a log line:
// a limiter outage must not become a login outage (when the store is really
// down, the request fails on its own records a moment later with a 503).

// RateLimit allows at most Limit events in any stretch of Window (a sliding
// window, not a fixed one). A Limit of zero or less, or a Window of zero,
// means no limit.
type RateLimit struct {
	Limit  int64
	Window time.Duration
}

func (r RateLimit) on() bool { return r.Limit > 0 && r.Window > 0 }

// window is the limit as the store counts it.
func (r RateLimit) window() store.Window { return store.Window{Limit: r.Limit, Length: r.Window} }

// RateLimits are the sign-in throttles. The zero value limits nothing.
type RateLimits struct {
	// StartsPerIP bounds the sign-in starts from one client IP (IPv6: its
	// /64), across all tenants: every POST /login, every /authorize or
	// /login that sends the browser to an upstream IdP, and every request
	// that stores a pending auth request (S72: saveRequest). A request
	// counts once.
	StartsPerIP RateLimit
	// StartsPerTenant bounds the sign-in starts at one tenant's IdPs, from
	// anywhere; it protects the tenant's IdP from floods through realmgate.
	StartsPerTenant RateLimit
	// FailuresPerIP bounds the failed sign-ins from one client IP: refused
	// upstream callbacks, upstream responses that fail validation, and
	// invalid_grant or invalid_client at /token. Once reached, sign-in
	// starts, callbacks and token requests from the IP get 429 until enough
	// failures have left the window.
	FailuresPerIP RateLimit
	// FailuresPerTenant bounds the upstream responses for one tenant that
	// fail validation (forged or broken assertions and ID tokens). Once
	// reached, new sign-in starts at the tenant get 429 until enough failures
	// have left the window.
	FailuresPerTenant RateLimit
}

// TenantLimits overrides the per-tenant limits for one tenant. A nil field
// keeps the default of Config.RateLimits; a RateLimit with Limit 0 turns the
// limit off for the tenant.
type TenantLimits struct {
	StartsPerTenant, FailuresPerTenant *RateLimit
}

// DefaultRateLimits are the limits cmd/realmgate applies when the
// configuration file names none (config.DefaultRateLimits mirrors them).
var DefaultRateLimits = RateLimits{
	StartsPerIP:       RateLimit{Limit: 120, Window: time.Minute},
	StartsPerTenant:   RateLimit{Limit: 6000, Window: time.Minute},
	FailuresPerIP:     RateLimit{Limit: 30, Window: 10 * time.Minute},
	FailuresPerTenant: RateLimit{Limit: 1000, Window: 10 * time.Minute},
}

// Limit names, used in counter keys, audit reasons and metric labels.
const (
	limitStartsIP       = "starts_per_ip"
	limitStartsTenant   = "starts_per_tenant"
	limitFailuresIP     = "failures_per_ip"
	limitFailuresTenant = "failures_per_tenant"
)

// errThrottled is returned by a page handler after it wrote the 429 page
// (the error handler sees a committed response and leaves it alone), and is
// the cause of the *oauth.Error a JSON endpoint answers 429 with.
var errThrottled = errors.New("broker: rate limited")

// Request-scoped flags (echo context keys).
const (
	ctxStartCounted   = "rg_rl_start"
	ctxFailureCounted = "rg_rl_failure"
)

// failureReasons are the audit reasons that count as failed sign-ins; the
// value says whether the failure also counts against the tenant. Refusals
// that ordinary users cause (prompt=none without a session, an email of no
// tenant, a user cancelling at the IdP, a rule denial) and upstream outages
// do not count: throttling them would punish users, not attackers. Refusals
// anybody can cause without reaching an IdP count against the IP only, so
// nobody can lock a tenant out by posting garbage to its callback.
var failureReasons = map[string]bool{
	"unknown_state":                 false,
	"idp_mixup":                     false,
	"state_not_bound_to_browser":    false,
	"saml_post_not_bound":           false,
	"client_authentication":         false,
	"code_reused":                   false,
	"code_binding":                  false,
	"refresh_token_reused":          false,
	"refresh_token_client_mismatch": false,
	oauth.InvalidGrant:              false,
	oauth.InvalidClient:             false,
	"upstream_invalid_response":     true,
	"unsolicited_invalid":           true,
	"logout_token_invalid":          false, // a back-channel logout token that fails validation
}

// limitsFor returns the effective per-tenant limits of tenant: its policy's
// override, else Config.TenantRateLimits', else Config.RateLimits.
func (s *Server) limitsFor(tenant string) (starts, failures RateLimit) {
	starts, failures = s.cfg.RateLimits.StartsPerTenant, s.cfg.RateLimits.FailuresPerTenant
	o, ok := s.cfg.TenantRateLimits[tenant]
	if p := s.dir().policies[tenant].RateLimits; p != nil {
		o, ok = *p, true // the directory's (file or admin API tenant) first
	}
	if ok {
		if o.StartsPerTenant != nil {
			starts = *o.StartsPerTenant
		}
		if o.FailuresPerTenant != nil {
			failures = *o.FailuresPerTenant
		}
	}
	return starts, failures
}

// windowKey returns the store key of subject's sliding window for limit name.
func windowKey(name, subject string) string {
	return "rl:" + name + ":" + subject
}

// ipSubject is the counter subject for the client IP: an HMAC (no address
// is stored in clear), of the /64 for IPv6 (one host usually holds a whole
// /64). "" when the address is unknown.
func (s *Server) ipSubject(c echo.Context) string {
	a := clientIP(c)
	if !a.IsValid() {
		return ""
	}
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return s.keyer.key("ip", p.String())
		}
	}
	return s.keyer.key("ip", a.String())
}

// hit counts one event against a limit and reports how long to wait when
// the limit refuses it (0: allowed). A sign-in start counts only when
// admitted (store.WindowTake), a failure always (store.WindowAdd).
func (s *Server) hit(ctx context.Context, name, subject string, l RateLimit) time.Duration {
	if !l.on() || subject == "" {
		return 0
	}
	key := windowKey(name, subject)
	op := store.WindowTake
	if name == limitFailuresIP || name == limitFailuresTenant {
		op = store.WindowAdd
		s.underLimit.forget(key) // the next check on this instance reads the store again
	}
	wait, err := s.store.SlidingWindow(ctx, key, l.window(), op, s.now())
	if err != nil {
		s.limiterError(name, err)
		return 0
	}
	return wait
}

// over reports how long to wait when a limit has already been reached,
// without counting (0: allowed).
func (s *Server) over(ctx context.Context, name, subject string, l RateLimit) time.Duration {
	if !l.on() || subject == "" {
		return 0
	}
	key := windowKey(name, subject)
	now := s.now()
	if s.underLimit.fresh(key, now) {
		return 0
	}
	seq := s.underLimit.failures.Load()
	wait, err := s.store.SlidingWindow(ctx, key, l.window(), store.WindowPeek, now)
	if err != nil {
		s.limiterError(name, err)
		return 0
	}
	if wait == 0 {
		s.underLimit.remember(key, now, seq)
	}
	return wait
}

// underLimitCacheTTL is how long a failure limit read as not reached is
// believed without asking the store again.
const underLimitCacheTTL = time.Second

// underLimitCacheSize bounds the cache; when full it starts over.
const underLimitCacheSize = 1 << 14

// underLimitCache spares the store a read of a failure counter on every
// request (a /token request made one only for this): a counter read as
// under its limit is believed for underLimitCacheTTL on this instance.
// Every failure counted here forgets its counter at once, and a read that
// overlapped any failure counted here is not remembered, so failures seen
// by this instance are enforced exactly as without the cache; failures
// counted by other instances are enforced here within underLimitCacheTTL
// (S60: the counts themselves stay in the shared store).
type underLimitCache struct {
	mu       sync.Mutex
	until    map[string]time.Time
	failures atomic.Uint64 // failures counted on this instance, ever
}

// fresh reports whether key was read as under its limit less than
// underLimitCacheTTL ago.
func (c *underLimitCache) fresh(key string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.until[key]
	return ok && now.Before(until)
}

// remember records key as under its limit at now, unless a failure was
// counted on this instance since seq was read (the read may predate it).
func (c *underLimitCache) remember(key string, now time.Time, seq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failures.Load() != seq {
		return
	}
	if c.until == nil || len(c.until) >= underLimitCacheSize {
		c.until = make(map[string]time.Time)
	}
	c.until[key] = now.Add(underLimitCacheTTL)
}

// forget drops key: a failure was just counted against it.
func (c *underLimitCache) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failures.Add(1)
	delete(c.until, key)
}

// limiterError logs a store failure of the limiter, which fails open.
func (s *Server) limiterError(name string, err error) {
	s.ops.metrics.storeError("ratelimit")
	s.log.Warn("rate limiter store failure; request allowed", "limit", name, "err", err)
}

// limitStart counts a sign-in start from this client IP (once per request)
// and, when tenant is known, at the tenant; it refuses the start with 429
// when the IP or the tenant is over a start or failure limit.
func (s *Server) limitStart(c echo.Context, client, tenant, idp string) error {
	ctx := c.Request().Context()
	rl := s.cfg.RateLimits
	ip := s.ipSubject(c)
	starts, failures := s.limitsFor(tenant)
	at := attrs{client: client, tenant: tenant, idp: idp}
	if wait := s.over(ctx, limitFailuresIP, ip, rl.FailuresPerIP); wait > 0 {
		return s.throttled(c, limitFailuresIP, wait, at)
	}
	if tenant != "" {
		if wait := s.over(ctx, limitFailuresTenant, tenant, failures); wait > 0 {
			return s.throttled(c, limitFailuresTenant, wait, at)
		}
	}
	if counted, _ := c.Get(ctxStartCounted).(bool); !counted {
		c.Set(ctxStartCounted, true)
		// At /authorize the counters go with the step's writes (pending.go).
		staged, wait := s.stageStart(c, limitStartsIP, ip, rl.StartsPerIP, at)
		if !staged {
			wait = s.hit(ctx, limitStartsIP, ip, rl.StartsPerIP)
		}
		if wait > 0 {
			return s.throttled(c, limitStartsIP, wait, at)
		}
	}
	if tenant != "" {
		staged, wait := s.stageStart(c, limitStartsTenant, tenant, starts, at)
		if !staged {
			wait = s.hit(ctx, limitStartsTenant, tenant, starts)
		}
		if wait > 0 {
			return s.throttled(c, limitStartsTenant, wait, at)
		}
	}
	return nil
}

// limitCallback refuses an upstream callback from a client IP over its
// failure limit.
func (s *Server) limitCallback(c echo.Context, tenant, idp string) error {
	ip := s.ipSubject(c)
	if wait := s.over(c.Request().Context(), limitFailuresIP, ip, s.cfg.RateLimits.FailuresPerIP); wait > 0 {
		return s.throttled(c, limitFailuresIP, wait, attrs{tenant: tenant, idp: idp})
	}
	return nil
}

// limitToken refuses a token request from a client IP over its failure
// limit, with an OAuth error response.
func (s *Server) limitToken(c echo.Context) error {
	ip := s.ipSubject(c)
	wait := s.over(c.Request().Context(), limitFailuresIP, ip, s.cfg.RateLimits.FailuresPerIP)
	if wait == 0 {
		return nil
	}
	s.ops.metrics.throttle(limitFailuresIP)
	s.auditEvent(c, "throttled", limitFailuresIP, attrs{client: formClientID(c)})
	c.Response().Header().Set("Retry-After", retryAfter(wait))
	// RFC 6749 §5.2 has no code for this; temporarily_unavailable (§4.1.2.1)
	// with 429 and Retry-After (RFC 6585 §4) is what clients understand.
	return oauth.New(oauth.TemporarilyUnavailable, "too many failed requests from this address; retry later").
		WithStatus(http.StatusTooManyRequests).Wrap(errThrottled)
}

// tokenFailure is called with every error code /token answers: invalid_grant
// and invalid_client count as failures of this client IP, and the code is
// kept as the reason of the request's audit event if no other was written.
func (s *Server) tokenFailure(c echo.Context, code string) {
	c.Set(ctxTokenError, code)
	if _, ok := failureReasons[code]; ok {
		s.countFailure(c, code, "")
	}
}

// countFailure counts a failed sign-in against this client IP and, when
// forTenant names one, against the tenant; at most once per request.
func (s *Server) countFailure(c echo.Context, reason, forTenant string) {
	if counted, _ := c.Get(ctxFailureCounted).(bool); counted {
		return
	}
	c.Set(ctxFailureCounted, true)
	ctx := c.Request().Context()
	rl := s.cfg.RateLimits
	_ = s.hit(ctx, limitFailuresIP, s.ipSubject(c), rl.FailuresPerIP)
	if forTenant != "" {
		_, failures := s.limitsFor(forTenant)
		_ = s.hit(ctx, limitFailuresTenant, forTenant, failures)
	}
}

// throttled answers 429 with Retry-After and a page a person can read, and
// audits the refusal.
func (s *Server) throttled(c echo.Context, limit string, wait time.Duration, at attrs) error {
	s.ops.metrics.throttle(limit)
	s.auditEvent(c, "throttled", limit, at)
	c.Response().Header().Set("Retry-After", retryAfter(wait))
	msg := "There were too many sign-in attempts from your network. Please wait %s and try again."
	if limit == limitStartsTenant || limit == limitFailuresTenant {
		msg = "There are too many sign-in attempts for your organization right now. Please wait %s and try again."
	}
	if err := s.renderErrorf(c, http.StatusTooManyRequests, "Too many sign-in attempts", msg, waitText(s.printer(c), wait)); err != nil {
		return err
	}
	return errThrottled
}

// retryAfter is delay-seconds (RFC 9110 §10.2.3), rounded up, at least 1.
func retryAfter(wait time.Duration) string {
	return strconv.FormatInt(int64(max((wait+time.Second-1)/time.Second, 1)), 10)
}

func waitText(p *locale.Printer, wait time.Duration) string {
	secs := int64(max((wait+time.Second-1)/time.Second, 1))
	switch {
	case secs == 1:
		return p.T("a second")
	case secs < 90:
		return p.Tf("%d seconds", secs)
	default:
		return p.Tf("%d minutes", (secs+59)/60)
	}
}

// formClientID is the client_id a request names, for audit only.
func formClientID(c echo.Context) string {
	req := c.Request()
	if req.PostForm != nil {
		if id := req.PostForm.Get("client_id"); id != "" {
			return id
		}
	}
	if id, _, ok := req.BasicAuth(); ok {
		return id
	}
	return c.QueryParam("client_id")
}
