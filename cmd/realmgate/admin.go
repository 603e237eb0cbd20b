package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/config"
)

// The operations listener (ops.listen, loopback by default) serves:
//
//	GET /metrics              Prometheus metrics (no token: keep the port private)
//	GET /healthz              the process is up
//	GET /readyz               the store answers and the tenants are loaded (503 otherwise)
//	GET /audit/{tenant}       the tenant's stored audit events, for an admin_api token
//	    /debug/pprof/         profiles, only with serve --pprof

// opsToken is one admin_api credential, kept as its SHA-256.
type opsToken struct {
	name, tenant string
	hash         [32]byte
}

// opsServer is the operations listener's handler.
type opsServer struct {
	srv    *broker.Server
	tokens []opsToken
	log    *slog.Logger
}

// newOpsHandler returns the operations handler: reg's metrics, health,
// readiness, the audit endpoint for tokens, and pprof when enabled.
func newOpsHandler(srv *broker.Server, reg *prometheus.Registry, tokens []config.AdminToken, withPprof bool, logger *slog.Logger) http.Handler {
	o := &opsServer{srv: srv, log: logger}
	for _, t := range tokens {
		o.tokens = append(o.tokens, opsToken{name: t.Name, tenant: t.Tenant, hash: sha256.Sum256([]byte(t.Token))})
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", o.readyz)
	mux.HandleFunc("GET /audit/{tenant}", o.audit)
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

func (o *opsServer) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := o.srv.Ready(ctx); err != nil {
		msg := "store unreachable"
		if errors.Is(err, broker.ErrNotReady) {
			msg = "not ready: tenants not loaded yet"
		}
		http.Error(w, msg, http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ready")
}

// auditTenant is a tenant id, or the stream of events without a tenant.
var auditTenant = regexp.MustCompile(`^([a-z0-9][a-z0-9_-]{0,62}|` + broker.UnattributedTenant + `)$`)

// caller returns the admin_api token presented as a bearer token, or nil.
// Every token is compared, in constant time, whichever matches.
func (o *opsServer) caller(r *http.Request) *opsToken {
	auth := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return nil
	}
	h := sha256.Sum256([]byte(tok))
	var found *opsToken
	for i := range o.tokens {
		if subtle.ConstantTimeCompare(h[:], o.tokens[i].hash[:]) == 1 {
			found = &o.tokens[i]
		}
	}
	return found
}

// audit serves GET /audit/{tenant}?after=<id>&limit=<n>: the tenant's stored
// audit events oldest first, and the cursor of the next page. An operator
// token (no tenant) reads every stream; a tenant's token only its own.
func (o *opsServer) audit(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	who := o.caller(r)
	if who == nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="realmgate-ops"`) // RFC 6750 §3
		opsError(w, http.StatusUnauthorized, "a valid admin_api bearer token is required")
		return
	}
	tenant := r.PathValue("tenant")
	if !auditTenant.MatchString(tenant) {
		opsError(w, http.StatusBadRequest, "not a tenant id")
		return
	}
	if who.tenant != "" && who.tenant != tenant {
		opsError(w, http.StatusForbidden, "this token is limited to another tenant")
		return
	}
	limit := 100
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > broker.MaxAuditRead {
			opsError(w, http.StatusBadRequest, fmt.Sprintf("limit must be 1..%d", broker.MaxAuditRead))
			return
		}
		limit = n
	}
	after := r.URL.Query().Get("after")
	recs, ok, err := o.srv.ReadAudit(r.Context(), tenant, after, limit)
	switch {
	case errors.Is(err, broker.ErrBadAuditCursor):
		opsError(w, http.StatusBadRequest, "after is not an event id")
		return
	case err != nil:
		o.log.Error("read audit stream", "tenant", tenant, "err", err)
		opsError(w, http.StatusServiceUnavailable, "the store is unavailable")
		return
	case !ok:
		opsError(w, http.StatusNotFound, "this store keeps no audit streams")
		return
	}
	o.log.Info("audit stream read", "caller", who.name, "tenant", tenant, "events", len(recs))
	next := after
	if len(recs) > 0 {
		next = recs[len(recs)-1].ID
	}
	if recs == nil {
		recs = []broker.AuditRecord{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(struct {
		Tenant string               `json:"tenant"`
		Events []broker.AuditRecord `json:"events"`
		Next   string               `json:"next"`
	}{tenant, recs, next})
}

func opsError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// opsRegistry returns a registry with the Go runtime, process and broker collectors.
func opsRegistry(srv *broker.Server) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := srv.RegisterMetrics(reg); err != nil {
		return nil, fmt.Errorf("register broker metrics: %w", err)
	}
	return reg, nil
}

// startOps serves the operations listener until ctx ends; it returns the
// bound address ("" when ops.listen is off) and a channel closed once the
// listener has shut down.
func startOps(ctx context.Context, cfg *config.Config, srv *broker.Server, withPprof bool, logger *slog.Logger) (string, <-chan struct{}, error) {
	done := make(chan struct{})
	if cfg.Ops.Listen == config.OpsOff {
		close(done)
		if withPprof {
			logger.Warn("--pprof has no effect with ops.listen off")
		}
		return "", done, nil
	}
	reg, err := opsRegistry(srv)
	if err != nil {
		return "", nil, err
	}
	addr := cfg.Ops.Listen
	if addr == "" {
		addr = defaultOpsListen
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil && cfg.Ops.Listen == "" {
		// The default port is taken (another instance on this host): run
		// without the ops listener rather than not at all.
		logger.Error("ops listener not started: the default address is taken; set ops.listen", "addr", addr, "err", err)
		close(done)
		return "", done, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("ops listener: %w", err)
	}
	tln, err := withTLS(ln, cfg.Ops.TLS, logger) // tls.go
	if err != nil {
		ln.Close()
		return "", nil, fmt.Errorf("ops listener: %w", err)
	}
	ln = tln
	h := newOpsHandler(srv, reg, cfg.AdminAPI.Tokens, withPprof, logger)
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	go func() {
		defer close(done)
		errc := make(chan error, 1)
		go func() { errc <- hs.Serve(ln) }()
		select {
		case err := <-errc:
			logger.Error("ops listener stopped", "err", err)
			return
		case <-ctx.Done():
		}
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(shut)
	}()
	if cfg.Ops.Listen == "" {
		// Not configured: say so, so that no operator finds a port they did not ask for.
		logger.Info("ops listener serving on its default address (/metrics, /healthz, /readyz, /audit); set ops.listen to move it or ops.listen: off to turn it off",
			"listen", ln.Addr().String(), "pprof", withPprof, "tls", cfg.Ops.TLS != nil)
	} else {
		logger.Info("ops listener serving", "listen", ln.Addr().String(), "pprof", withPprof, "tls", cfg.Ops.TLS != nil)
	}
	return ln.Addr().String(), done, nil
}

// defaultOpsListen is where the ops listener serves when ops.listen is
// unset: config.DefaultOpsListen (a variable so that tests use a free port).
var defaultOpsListen = config.DefaultOpsListen
