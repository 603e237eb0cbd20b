package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Rate is a limit written "<count>/<window>": "120/1m" allows 120 events in
// each one-minute window; "off" allows any number. The zero Rate means unset
// (ApplyDefaults fills it in); RateOff is "off".
type Rate struct {
	// Limit is the number of events each window allows; -1 means no limit.
	Limit int64
	// Window is the length of a window.
	Window Duration
}

// RateOff is the Rate that limits nothing.
var RateOff = Rate{Limit: -1}

// Off reports whether r limits nothing.
func (r Rate) Off() bool { return r.Limit < 0 }

// String formats r as the file writes it: "120/1m" or "off".
func (r Rate) String() string {
	if r.Off() {
		return "off"
	}
	return strconv.FormatInt(r.Limit, 10) + "/" + r.Window.String()
}

// MarshalText implements encoding.TextMarshaler.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Rate) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	if s == "off" {
		*r = RateOff
		return nil
	}
	n, w, ok := strings.Cut(s, "/")
	limit, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64)
	if !ok || err != nil {
		return fmt.Errorf("invalid rate %q: want <count>/<window>, like 120/1m, or off", s)
	}
	win, err := ParseDuration(strings.TrimSpace(w))
	if err != nil {
		return fmt.Errorf("invalid rate %q: %w", s, err)
	}
	if limit < 1 {
		return fmt.Errorf("invalid rate %q: the count must be at least 1 (write off for no limit)", s)
	}
	*r = Rate{Limit: limit, Window: win}
	return nil
}

// RateLimits throttle sign-ins per client IP and per tenant (SECURITY S60).
// Each is a sliding window: at most the count in any stretch of the window, at
// window edges too. The counters live in the store, so with Redis a limit
// holds across every instance. Behind a reverse proxy, set trusted_proxies: otherwise every
// user shares the proxy's address and its per-IP limits.
type RateLimits struct {
	// StartsPerIP bounds the sign-in starts from one client IP (an IPv6
	// client's /64) across all tenants: every POST /login, every request
	// that sends the browser to an upstream IdP, and every request that
	// stores a pending sign-in (the discovery page, SECURITY S72).
	// Default 120/1m.
	StartsPerIP Rate `yaml:"starts_per_ip,omitempty"`
	// StartsPerTenant bounds the sign-in starts at one tenant's IdPs from
	// anywhere, protecting the tenant's IdP. Default 6000/1m.
	StartsPerTenant Rate `yaml:"starts_per_tenant,omitempty"`
	// FailuresPerIP bounds the failed sign-ins from one client IP (refused
	// callbacks, upstream answers that fail validation, invalid_grant and
	// invalid_client at /token); once reached, that IP's starts, callbacks
	// and token requests get 429 until enough failures have left the
	// window. Default 30/10m.
	FailuresPerIP Rate `yaml:"failures_per_ip,omitempty"`
	// FailuresPerTenant bounds the upstream answers for one tenant that fail
	// validation; once reached, new starts at the tenant get 429 until
	// enough failures have left the window. Default 1000/10m.
	FailuresPerTenant Rate `yaml:"failures_per_tenant,omitempty"`
}

// DefaultRateLimits are the limits ApplyDefaults fills in.
var DefaultRateLimits = RateLimits{
	StartsPerIP:       Rate{Limit: 120, Window: Duration(time.Minute)},
	StartsPerTenant:   Rate{Limit: 6000, Window: Duration(time.Minute)},
	FailuresPerIP:     Rate{Limit: 30, Window: Duration(10 * time.Minute)},
	FailuresPerTenant: Rate{Limit: 1000, Window: Duration(10 * time.Minute)},
}

// TenantRateLimits overrides the per-tenant limits for one tenant; an unset
// field keeps the top-level rate_limits value.
type TenantRateLimits struct {
	// StartsPerTenant replaces rate_limits.starts_per_tenant for this tenant.
	StartsPerTenant *Rate `yaml:"starts_per_tenant,omitempty" json:"starts_per_tenant,omitempty"`
	// FailuresPerTenant replaces rate_limits.failures_per_tenant for this tenant.
	FailuresPerTenant *Rate `yaml:"failures_per_tenant,omitempty" json:"failures_per_tenant,omitempty"`
}

// Ops configures the operations listener: Prometheus /metrics, /healthz,
// /readyz, GET /audit/<tenant> (for admin_api tokens) and, with serve
// --pprof, /debug/pprof/.
type Ops struct {
	// Listen is the operations listener's host:port; "off" turns it off.
	// Unset, it is DefaultOpsListen (loopback: metrics and profiles are not
	// for the internet), and a process that finds that port taken (several
	// instances on one host) runs without it, logging an error; an address
	// set here that cannot be bound stops the process.
	Listen string `yaml:"listen,omitempty"`
	// TLS serves the operations listener over HTTPS (tls.go); unset: plain
	// HTTP. Probes and scrapers must then use https.
	TLS *TLS `yaml:"tls,omitempty"`
}

// DefaultOpsListen is the default operations listener address.
const DefaultOpsListen = "127.0.0.1:9090"

// OpsOff as ops.listen turns the operations listener off.
const OpsOff = "off"

// Audit configures the per-tenant audit streams kept in the store.
type Audit struct {
	// MaxEventsPerTenant is how many sign-in audit events the store keeps
	// for each tenant (Redis trims approximately, keeping at least this
	// many); 0 keeps none (the audit log stream still has every event).
	// Default 10000.
	MaxEventsPerTenant int64 `yaml:"max_events_per_tenant,omitempty"`
}

// DefaultAuditMaxEvents is the default of audit.max_events_per_tenant.
const DefaultAuditMaxEvents = 10000

// applyOperationDefaults fills in the rate limits, ops and audit settings
// the file left unset.
func (c *Config) applyOperationDefaults(unset func(string) bool) {
	for _, r := range []struct {
		p    *Rate
		path string
		def  Rate
	}{
		{&c.RateLimits.StartsPerIP, "rate_limits.starts_per_ip", DefaultRateLimits.StartsPerIP},
		{&c.RateLimits.StartsPerTenant, "rate_limits.starts_per_tenant", DefaultRateLimits.StartsPerTenant},
		{&c.RateLimits.FailuresPerIP, "rate_limits.failures_per_ip", DefaultRateLimits.FailuresPerIP},
		{&c.RateLimits.FailuresPerTenant, "rate_limits.failures_per_tenant", DefaultRateLimits.FailuresPerTenant},
	} {
		if *r.p == (Rate{}) && unset(r.path) {
			*r.p = r.def
		}
	}
	if c.Audit.MaxEventsPerTenant == 0 && unset("audit.max_events_per_tenant") {
		c.Audit.MaxEventsPerTenant = DefaultAuditMaxEvents
	}
}

// Bounds on rates.
const (
	minRateWindow = time.Second
	maxRateWindow = 24 * time.Hour
)

func (k *checker) rate(r Rate, path string) {
	switch {
	case r.Off():
	case r.Limit < 1:
		k.add(path, "the count must be at least 1 (write off for no limit), got %s", r)
	case r.Window.Duration() < minRateWindow || r.Window.Duration() > maxRateWindow:
		k.add(path, "the window must be between 1s and 24h, got %s", r.Window)
	}
}

// operations checks rate limits, the operations listener and audit retention.
func (k *checker) operations() {
	rl := k.c.RateLimits
	k.rate(rl.StartsPerIP, "rate_limits.starts_per_ip")
	k.rate(rl.StartsPerTenant, "rate_limits.starts_per_tenant")
	k.rate(rl.FailuresPerIP, "rate_limits.failures_per_ip")
	k.rate(rl.FailuresPerTenant, "rate_limits.failures_per_tenant")
	for i, t := range k.c.Tenants {
		if r := t.RateLimits.StartsPerTenant; r != nil {
			k.rate(*r, fmt.Sprintf("tenants[%d].rate_limits.starts_per_tenant", i))
		}
		if r := t.RateLimits.FailuresPerTenant; r != nil {
			k.rate(*r, fmt.Sprintf("tenants[%d].rate_limits.failures_per_tenant", i))
		}
	}
	if l := k.c.Ops.Listen; l != OpsOff && l != "" {
		if msg := checkHostPort(l, true); msg != "" {
			k.add("ops.listen", "%s (or off)", msg)
		} else if !strings.HasSuffix(l, ":0") && (l == k.c.Listen || l == k.c.AdminAPI.Listen) {
			k.add("ops.listen", "must differ from listen and admin_api.listen: the ops listener has its own port")
		}
	}
	if n := k.c.Audit.MaxEventsPerTenant; n < 0 || n > 10_000_000 {
		k.add("audit.max_events_per_tenant", "must be between 0 and 10000000, got %d", n)
	}
}

// operationWarnings advises on the operations listener and rate limits.
func (k *checker) operationWarnings() {
	if l := k.c.Ops.Listen; l != OpsOff && l != "" {
		if host, _, err := net.SplitHostPort(l); err == nil && !isLoopback(host) {
			k.add("ops.listen", "%q is not a loopback address: /metrics and /healthz need no token, so keep the port off the internet", l)
		}
	}
	if k.c.RateLimits.StartsPerIP.Off() && k.c.RateLimits.FailuresPerIP.Off() {
		k.add("rate_limits", "no per-IP limit: nothing slows down one client hammering sign-ins (SECURITY S60)")
	}
}
