package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/internal/devidp"
	"github.com/realmgate/realmgate/internal/e2etest"
	"github.com/realmgate/realmgate/internal/redistest"
	"github.com/realmgate/realmgate/internal/telemetry"
)

// syncBuffer is a log destination the servers write while the test reads.
type syncBuffer struct{ e2etest.SyncBuffer }

// lines returns the JSON log lines written so far.
func (s *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s.String()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// tracedStack is what serve builds (Redis store, the outbound client, the
// broker and admin API listeners) with `tracing` as given, on loopback,
// with a development IdP on loopback as the upstream.
type tracedStack struct {
	issuer, admin string
	logs, audit   *syncBuffer
	srv           *broker.Server
	traceparents  func() []string // traceparent headers the upstream received
}

func startTracedStack(t *testing.T, tel *telemetry.Telemetry) *tracedStack {
	t.Helper()
	old := tracing
	tracing = tel
	t.Cleanup(func() { tracing = old })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	r := redistest.Start(t)
	lnB, lnIdP := listen(t), listen(t)
	st := &tracedStack{issuer: "http://" + lnB.Addr().String(), logs: &syncBuffer{}, audit: &syncBuffer{}}
	idpURL := "http://" + lnIdP.Addr().String()
	idp, err := devidp.New(devidp.Options{BaseURL: idpURL, DevMode: true, AutoApprove: "*", Algorithm: "ES256",
		Realms: []devidp.Realm{{Name: "acme", Clients: []devidp.Client{{ID: "realmgate", Secret: "acme-upstream-secret",
			RedirectURIs: []string{st.issuer + "/callback/acme-idp"}}},
			Users: []devidp.User{{Subject: "a-1", Email: "alice@acme.test", EmailVerified: true, Name: "Alice A"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var tps []string
	serve(t, lnIdP, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if tp := req.Header.Get("Traceparent"); tp != "" {
			mu.Lock()
			tps = append(tps, tp)
			mu.Unlock()
		}
		idp.Handler().ServeHTTP(w, req)
	}))
	st.traceparents = func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), tps...) }
	cfg, err := config.Parse("test.yaml", []byte(fmt.Sprintf(`issuer: %s
store:
  type: redis
  redis:
    addrs: [%q]
keys:
  secret: 0123456789abcdef0123456789abcdef-test
outbound:
  allow_loopback: true # the upstream is on loopback
clients:
  - id: app
    secret: %s
    redirect_uris: [%q]
    allowed_tenants: ["*"]
tenants:
  - id: acme
    domains: [acme.test]
    providers:
      - id: acme-idp
        type: oidc
        issuer: %s/acme
        client_id: realmgate
        client_secret: acme-upstream-secret
admin_api:
  listen: 127.0.0.1:0
  tokens:
    - name: ops
      token: %s
`, st.issuer, r.Addr(), appSecret, appCallback, idpURL, testOpToken)), nil)
	if err != nil {
		t.Fatal(err)
	}
	logger := tel.Logger(slog.New(slog.NewJSONHandler(st.logs, nil)))
	audit := tel.Logger(slog.New(slog.NewJSONHandler(st.audit, nil)))
	store, err := openStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.(closer).Close() })
	srv, err := buildBroker(ctx, cfg, store, logger, audit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	api, err := startAdminAPI(ctx, cfg, store, srv, logger, audit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-api.Done })
	st.admin, st.srv = "http://"+api.Addr, srv
	serve(t, lnB, tracing.Handler(srv.Handler(), "realmgate"))
	return st
}

// TestTracing_SignInSpansLinkedAcrossInboundUpstreamRedisAndLogs: with
// tracing on (an in-process exporter), one sign-in is a trace per browser
// request: the callback's server span is the parent of the upstream token
// call's client span (whose traceparent the upstream receives), and the
// Redis commands it makes are events of its span; the request log line, the audit log line and
// the stored audit event of that request carry its trace id; the admin
// API's requests are server spans too.
func TestTracing_SignInSpansLinkedAcrossInboundUpstreamRedisAndLogs(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tel := telemetry.New(exp)
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	st := startTracedStack(t, tel)

	if _, err := signIn(st.issuer, "alice@acme.test"); err != nil {
		t.Fatalf("sign-in: %v", err)
	}
	if got := api(t, st.admin, testOpToken, "GET", "/v1/status", nil, nil); got != http.StatusOK {
		t.Fatalf("GET /v1/status = %d, want 200", got)
	}
	st.srv.Close() // writes the queued audit events to Redis
	if err := tel.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()

	server := map[string]tracetest.SpanStub{} // by name
	for _, s := range spans {
		if s.SpanKind == trace.SpanKindServer {
			server[s.Name] = s
		}
	}
	for _, name := range []string{"GET /authorize", "GET /callback/:idp", "POST /token", "GET /v1/status"} {
		if _, ok := server[name]; !ok {
			t.Errorf("no server span %q; server spans: %v", name, keys(server))
		}
	}
	cb, ok := server["GET /callback/:idp"]
	if !ok {
		t.FailNow()
	}
	cbTrace := cb.SpanContext.TraceID()
	// Descendants of the callback's span, by kind.
	children := map[trace.SpanID]bool{cb.SpanContext.SpanID(): true}
	var upstream, redisCmds []string
	for changed := true; changed; {
		changed = false
		for _, s := range spans {
			if s.SpanContext.TraceID() == cbTrace && !children[s.SpanContext.SpanID()] && children[s.Parent.SpanID()] {
				children[s.SpanContext.SpanID()] = true
				changed = true
				if url := attr(s, "url.full"); s.SpanKind == trace.SpanKindClient && url != "" {
					upstream = append(upstream, s.Name+" "+url)
				}
			}
		}
	}
	// Redis commands are events of the span that made them.
	for _, s := range spans {
		if !children[s.SpanContext.SpanID()] {
			continue
		}
		for _, ev := range s.Events {
			for _, a := range ev.Attributes {
				if a.Key == "db.system.name" && a.Value.AsString() == "redis" {
					redisCmds = append(redisCmds, ev.Name)
				}
			}
		}
	}
	if !containsSub(upstream, "/acme/token") {
		t.Errorf("upstream client spans under the callback = %q, want the token call", upstream)
	}
	if len(redisCmds) == 0 {
		t.Errorf("no Redis command event in the callback's trace; its upstream spans: %q", upstream)
	}
	if got := st.traceparents(); !containsSub(got, cbTrace.String()) {
		t.Errorf("traceparent headers at the upstream = %q, want one in trace %s", got, cbTrace)
	}
	if auth, ok := server["GET /authorize"]; ok && auth.SpanContext.TraceID() == cbTrace {
		t.Errorf("/authorize and /callback share trace %s: a browser's requests are separate traces", cbTrace)
	}

	var logged, audited bool
	for _, l := range st.logs.lines(t) {
		if l["msg"] == "request" && l["path"] == "/callback/acme-idp" {
			logged = true
			if l["trace_id"] != cbTrace.String() || l["span_id"] != cb.SpanContext.SpanID().String() {
				t.Errorf("request log of the callback: trace_id=%v span_id=%v, want %s %s", l["trace_id"], l["span_id"], cbTrace, cb.SpanContext.SpanID())
			}
			if rid := attr(cb, "realmgate.request_id"); rid == "" || rid != l["request_id"] {
				t.Errorf("callback span realmgate.request_id = %q, want the logged request_id %v", rid, l["request_id"])
			}
			if st := attr(cb, "http.response.status_code"); st != fmt.Sprint(l["status"]) {
				t.Errorf("callback span http.response.status_code = %q, want the logged status %v", st, l["status"])
			}
		}
	}
	for _, l := range st.audit.lines(t) {
		if l["msg"] == "signin" && l["outcome"] == "success" && strings.Contains(fmt.Sprint(l["idp"]), "acme-idp") {
			audited = true
			if l["trace_id"] != cbTrace.String() {
				t.Errorf("audit log line of the sign-in: trace_id=%v, want %s", l["trace_id"], cbTrace)
			}
		}
	}
	if !logged || !audited {
		t.Errorf("request log line of the callback found: %v; success audit line found: %v", logged, audited)
	}
	recs, _, err := st.srv.ReadAudit(context.Background(), "acme", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var stored bool
	for _, r := range recs {
		var ev broker.AuditEvent
		if err := json.Unmarshal(r.Event, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Outcome == "success" {
			stored = true
			if ev.TraceID != cbTrace.String() {
				t.Errorf("stored audit event of the sign-in: trace_id=%q, want %s", ev.TraceID, cbTrace)
			}
		}
	}
	if !stored {
		t.Errorf("no stored success event among %d", len(recs))
	}
}

// TestTracing_OffInstallsNothing: with tracing off (the default) the
// listeners serve the broker's own handler, the upstream client keeps the
// outbound transport, loggers are unchanged, and a whole sign-in sends no
// traceparent upstream and logs no trace id.
func TestTracing_OffInstallsNothing(t *testing.T) {
	var off *telemetry.Telemetry
	st := startTracedStack(t, off)
	h := st.srv.Handler()
	if got := off.Handler(h, "realmgate"); got != h {
		t.Errorf("Handler with tracing off = %T, want the broker's handler itself", got)
	}
	if tr := off.Transport(http.DefaultTransport); tr != http.DefaultTransport {
		t.Errorf("Transport with tracing off = %T, want the transport itself", tr)
	}
	if got := fmt.Sprintf("%T", upstreamClient(&config.Config{}).Transport); strings.Contains(got, "telemetry") {
		t.Errorf("upstream client transport with tracing off = %s, want the outbound transport", got)
	}
	l := slog.New(slog.NewTextHandler(io.Discard, nil))
	if off.Logger(l) != l {
		t.Error("Logger with tracing off wraps the logger")
	}
	if _, err := signIn(st.issuer, "alice@acme.test"); err != nil {
		t.Fatalf("sign-in: %v", err)
	}
	if got := st.traceparents(); len(got) != 0 {
		t.Errorf("the upstream received traceparent headers %q with tracing off", got)
	}
	for _, l := range append(st.logs.lines(t), st.audit.lines(t)...) {
		if _, ok := l["trace_id"]; ok {
			t.Errorf("log line with tracing off carries a trace id: %v", l)
		}
	}
}

func keys(m map[string]tracetest.SpanStub) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func attr(s tracetest.SpanStub, key string) string {
	for _, a := range s.Attributes {
		if string(a.Key) == key {
			return a.Value.String()
		}
	}
	return ""
}

func containsSub(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
