package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/internal/assemble"
)

const (
	operatorToken = "operator-token-0123456789abcdef0123456789"
	acmeToken     = "acme-admin-token-0123456789abcdef01234567"
)

const opsYAML = `issuer: http://127.0.0.1:1
listen: 127.0.0.1:18089
clients:
  - id: app
    redirect_uris: ["http://127.0.0.1:9000/cb"]
    allowed_tenants: ["*"]
    claims: [roles]
tenants:
  - id: acme
    domains: [acme.test]
    rate_limits:
      starts_per_tenant: 5/1m
    providers:
      - id: acme-idp
        type: oidc
        issuer: http://127.0.0.1:2/acme
        client_id: rg
        client_secret: s
  - id: globex
    domains: [globex.test]
admin_api:
  listen: 127.0.0.1:0
  tokens:
    - name: operator
      token: ` + operatorToken + `
    - name: acme-admin
      token: ` + acmeToken + `
      tenant: acme
rate_limits:
  failures_per_ip: "off"
audit:
  max_events_per_tenant: 50
ops:
  listen: 127.0.0.1:0
`

// pingSwitch is a memory store whose Ping can be made to fail.
type pingSwitch struct {
	*memstore.Store
	down atomic.Bool
}

func (p *pingSwitch) Ping(ctx context.Context) error {
	if p.down.Load() {
		return broker.ErrUnavailable
	}
	return p.Store.Ping(ctx)
}

func opsFixture(t *testing.T) (*config.Config, *pingSwitch, *broker.Server) {
	t.Helper()
	cfg, err := config.Parse("ops.yaml", []byte(opsYAML), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	ms := &pingSwitch{Store: memstore.New()}
	t.Cleanup(func() { ms.Close() })
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := buildBroker(context.Background(), cfg, ms, logger, logger)
	if err != nil {
		t.Fatalf("buildBroker: %v", err)
	}
	return cfg, ms, srv
}

func opsGet(t *testing.T, url, token string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestOps_ListenerServesMetricsHealthAndPprof(t *testing.T) {
	cfg, store, srv := opsFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	addr, done, err := startOps(ctx, cfg, srv, true, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + addr
	// One refused sign-in through the broker's own handler.
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/authorize?client_id=nobody", nil))
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("authorize for an unknown client = %d, want 400", rec.Code)
	}
	for _, tc := range []struct {
		path   string
		status int
		want   []string
	}{
		{"/healthz", 200, []string{"ok"}},
		{"/readyz", 200, []string{"ready"}},
		{"/metrics", 200, []string{
			`realmgate_signins_total{idp="",outcome="refused",tenant=""} 1`,
			`realmgate_http_request_duration_seconds_count{code="4xx",method="GET",route="/authorize"} 1`,
			"go_goroutines", "process_open_fds"}},
		{"/debug/pprof/", 200, []string{"goroutine"}},
		{"/nothing", 404, nil},
	} {
		resp, body := opsGet(t, base+tc.path, "")
		if resp.StatusCode != tc.status {
			t.Errorf("GET %s = %d, want %d", tc.path, resp.StatusCode, tc.status)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s body lacks %q:\n%.2000s", tc.path, w, body)
			}
		}
	}
	store.down.Store(true)
	if resp, _ := opsGet(t, base+"/readyz", ""); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz with the store down = %d, want 503", resp.StatusCode)
	}
	store.down.Store(false)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("ops listener did not shut down")
	}
}

func TestOps_PprofFlagAndListenAddresses(t *testing.T) {
	cfg, _, srv := opsFixture(t)
	reg, err := opsRegistry(srv)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(newOpsHandler(srv, reg, nil, false, slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer ts.Close()
	if resp, _ := opsGet(t, ts.URL+"/debug/pprof/", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ without --pprof = %d, want 404", resp.StatusCode)
	}
	// An explicit address that cannot be bound stops the process; the
	// default one, taken by another instance on the host, does not.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg.Ops.Listen = taken.Addr().String()
	if _, _, err := startOps(context.Background(), cfg, srv, false, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil {
		t.Errorf("startOps on a taken explicit address = nil error, want one")
	}
	if hold, err := net.Listen("tcp", config.DefaultOpsListen); err == nil { // make sure the default is taken
		defer hold.Close()
	}
	cfg.Ops.Listen = ""
	if addr, done, err := startOps(context.Background(), cfg, srv, false, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil || addr != "" {
		t.Errorf("startOps on the taken default address = %q, %v; want no listener and no error", addr, err)
	} else {
		<-done
	}
	cfg.Ops.Listen = config.OpsOff
	addr, done, err := startOps(context.Background(), cfg, srv, false, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil || addr != "" {
		t.Errorf("startOps with ops.listen off = %q, %v; want no listener", addr, err)
	}
	<-done
}

func TestOps_AuditEndpoint(t *testing.T) {
	cfg, store, srv := opsFixture(t)
	ctx := context.Background()
	for i := range 3 {
		ev, _ := json.Marshal(broker.AuditEvent{Outcome: "success", Tenant: "acme", Subject: "s" + string(rune('0'+i))})
		if err := store.AppendAudit(ctx, "acme", ev, 50); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.AppendAudit(ctx, "globex", []byte(`{"outcome":"success","tenant":"globex"}`), 50); err != nil {
		t.Fatal(err)
	}
	reg, err := opsRegistry(srv)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(newOpsHandler(srv, reg, cfg.AdminAPI.Tokens, false, slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer ts.Close()
	type page struct {
		Tenant string               `json:"tenant"`
		Events []broker.AuditRecord `json:"events"`
		Next   string               `json:"next"`
	}
	for _, tc := range []struct {
		name, path, token string
		status, events    int
	}{
		{"no token", "/audit/acme", "", 401, 0},
		{"wrong token", "/audit/acme", "x" + operatorToken, 401, 0},
		{"tenant token, own tenant", "/audit/acme", acmeToken, 200, 3},
		{"tenant token, other tenant", "/audit/globex", acmeToken, 403, 0},
		{"tenant token, unattributed stream", "/audit/" + broker.UnattributedTenant, acmeToken, 403, 0},
		{"operator token, any tenant", "/audit/globex", operatorToken, 200, 1},
		{"operator token, limit", "/audit/acme?limit=2", operatorToken, 200, 2},
		{"bad limit", "/audit/acme?limit=0", operatorToken, 400, 0},
		{"bad cursor", "/audit/acme?after=yesterday", operatorToken, 400, 0},
		{"bad tenant", "/audit/ACME!", operatorToken, 400, 0},
		{"empty stream", "/audit/initech", operatorToken, 200, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := opsGet(t, ts.URL+tc.path, tc.token)
			if resp.StatusCode != tc.status {
				t.Fatalf("GET %s = %d %s, want %d", tc.path, resp.StatusCode, body, tc.status)
			}
			if tc.status == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer challenge")
			}
			if tc.status != http.StatusOK {
				return
			}
			var p page
			if err := json.Unmarshal([]byte(body), &p); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if len(p.Events) != tc.events {
				t.Errorf("GET %s returned %d events, want %d", tc.path, len(p.Events), tc.events)
			}
		})
	}
	// Paging with the next cursor reads every event once.
	var seen []string
	after := ""
	for range 5 {
		_, body := opsGet(t, ts.URL+"/audit/acme?limit=2&after="+after, acmeToken)
		var p page
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Events {
			seen = append(seen, e.ID)
		}
		if len(p.Events) == 0 {
			break
		}
		after = p.Next
	}
	if len(seen) != 3 {
		t.Errorf("paging read %d events (%v), want 3", len(seen), seen)
	}
}

func TestApplyOperations(t *testing.T) {
	cfg, _, _ := opsFixture(t)
	var bc broker.Config
	assemble.ApplyOperations(&bc, cfg)
	want := broker.RateLimits{
		StartsPerIP:       broker.RateLimit{Limit: 120, Window: time.Minute},
		StartsPerTenant:   broker.RateLimit{Limit: 6000, Window: time.Minute},
		FailuresPerTenant: broker.RateLimit{Limit: 1000, Window: 10 * time.Minute},
	}
	if bc.RateLimits != want {
		t.Errorf("RateLimits = %+v, want %+v (failures_per_ip off)", bc.RateLimits, want)
	}
	acme, ok := bc.TenantRateLimits["acme"]
	if !ok || acme.StartsPerTenant == nil || *acme.StartsPerTenant != (broker.RateLimit{Limit: 5, Window: time.Minute}) || acme.FailuresPerTenant != nil {
		t.Errorf("acme override = %+v, want starts 5/1m only", acme)
	}
	if _, ok := bc.TenantRateLimits["globex"]; ok {
		t.Error("globex has an override it did not configure")
	}
	if bc.AuditMaxLen != 50 {
		t.Errorf("AuditMaxLen = %d, want 50", bc.AuditMaxLen)
	}
	cfg.Audit.MaxEventsPerTenant = 0
	assemble.ApplyOperations(&bc, cfg)
	if bc.AuditMaxLen >= 0 {
		t.Errorf("audit.max_events_per_tenant 0 gives AuditMaxLen %d, want negative (keep none)", bc.AuditMaxLen)
	}
}
