package telemetry

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestEnabled(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    bool
		wantErr error
	}{
		{"nothing set: off", nil, false, nil},
		{"endpoint set: on", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true, nil},
		{"traces endpoint set: on", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true, nil},
		{"exporter otlp: on", map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true, nil},
		{"exporter none beats endpoint", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, false, nil},
		{"sdk disabled beats exporter", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, false, nil},
		{"sdk disabled false", map[string]string{"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "otlp"}, true, nil},
		{"http/protobuf", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, true, nil},
		{"grpc refused", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, false, ErrUnsupported},
		{"traces protocol wins", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, true, nil},
		{"console refused", map[string]string{"OTEL_TRACES_EXPORTER": "console"}, false, ErrUnsupported},
		{"jaeger refused even when disabled later", map[string]string{"OTEL_TRACES_EXPORTER": "jaeger"}, false, ErrUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := enabled(func(k string) string { return tc.env[k] })
			if got != tc.want || !errors.Is(err, tc.wantErr) {
				t.Errorf("enabled(%v) = %v, %v; want %v, %v", tc.env, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestInit_OffByDefault(t *testing.T) {
	tel, err := initFrom(context.Background(), func(string) string { return "" })
	if err != nil || tel != nil || tel.Enabled() || tel.TracerProvider() != nil {
		t.Fatalf("initFrom(empty env) = %v, %v; want nil (off)", tel, err)
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown of off telemetry = %v", err)
	}
}

// TestInit_DiscardForBenchmarks: REALMGATE_TRACES_EXPORTER=discard turns
// tracing on with an in-process exporter (whatever OTEL_TRACES_EXPORTER
// says), OTEL_SDK_DISABLED still wins, and another value is refused.
func TestInit_DiscardForBenchmarks(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		on      bool
		wantErr error
	}{
		{"discard", map[string]string{DiscardEnv: "discard"}, true, nil},
		{"discard beats exporter", map[string]string{DiscardEnv: "discard", "OTEL_TRACES_EXPORTER": "none"}, true, nil},
		{"sdk disabled beats discard", map[string]string{DiscardEnv: "discard", "OTEL_SDK_DISABLED": "true"}, false, nil},
		{"other value refused", map[string]string{DiscardEnv: "memory"}, false, ErrUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tel, err := initFrom(context.Background(), func(k string) string { return tc.env[k] })
			if tel.Enabled() != tc.on || !errors.Is(err, tc.wantErr) {
				t.Errorf("initFrom(%v) enabled = %v, %v; want %v, %v", tc.env, tel.Enabled(), err, tc.on, tc.wantErr)
			}
			if tel.Enabled() {
				if _, ok := tel.sdk.Tracer("t").Start(context.Background(), "s"); !ok.IsRecording() {
					t.Errorf("initFrom(%v): spans are not recorded", tc.env)
				}
				_ = tel.Shutdown(context.Background())
			}
		})
	}
}

// TestTransport_RedactsURLQuery: an upstream URL a tenant admin wrote may
// carry a key in its query (or user info); the exported span keeps the URL
// without them. The upstream receives the client span's traceparent, the
// caller's request is left as it was.
func TestTransport_RedactsURLQuery(t *testing.T) {
	var sent string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { sent = r.Header.Get("Traceparent") }))
	defer up.Close()
	exp := tracetest.NewInMemoryExporter()
	tel := New(exp)
	c := &http.Client{Transport: tel.Transport(http.DefaultTransport)}
	req, err := http.NewRequest(http.MethodGet, up.URL+"/userinfo?api_key=SECRET-KEY#frag", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.User = url.UserPassword("user", "SECRET-PASSWORD")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if tp := req.Header.Get("Traceparent"); tp != "" {
		t.Errorf("the caller's request got traceparent %q: a RoundTripper must not change it", tp)
	}
	if err := tel.ForceFlush(context.Background()); err != nil { // Shutdown would clear the in-memory exporter
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	var full string
	for _, a := range spans[0].Attributes {
		if a.Key == "url.full" {
			full = a.Value.AsString()
		}
		if strings.Contains(a.Value.String(), "SECRET") {
			t.Errorf("attribute %s = %q carries the query's key", a.Key, a.Value.String())
		}
	}
	if want := up.URL + "/userinfo?REDACTED"; full != want {
		t.Errorf("url.full = %q, want %q", full, want)
	}
	if want := "-" + spans[0].SpanContext.TraceID().String() + "-" + spans[0].SpanContext.SpanID().String() + "-"; !strings.Contains(sent, want) {
		t.Errorf("traceparent at the upstream = %q, want the client span's %s", sent, want)
	}
}

// TestHandler_PublicEndpointNamedByRoute: a server span is named after the
// echo route, and a client's traceparent does not become its parent (the
// client cannot choose the trace or switch sampling off); it is a link.
func TestHandler_PublicEndpointNamedByRoute(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tel := New(exp)
	e := echo.New()
	var logs bytes.Buffer
	log := tel.Logger(slog.New(slog.NewJSONHandler(&logs, nil)))
	e.GET("/callback/:idp", func(c echo.Context) error {
		log.InfoContext(c.Request().Context(), "request")
		log.Info("no context")
		c.Response().Header().Set("X-Request-Id", "rid-1")
		return c.String(http.StatusFound, "ok")
	})
	h := tel.Handler(e, "test")
	const clientTrace = "0af7651916cd43dd8448eb211c80319c"
	req := httptest.NewRequest(http.MethodGet, "/callback/acme-idp", nil)
	req.Header.Set("Traceparent", "00-"+clientTrace+"-b7ad6b7169203331-00") // not sampled
	h.ServeHTTP(httptest.NewRecorder(), req)
	if err := tel.ForceFlush(context.Background()); err != nil { // Shutdown would clear the in-memory exporter
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans exported, want 1 (a client's unsampled traceparent must not switch tracing off)", len(spans))
	}
	s := spans[0]
	if s.Name != "GET /callback/:idp" || s.SpanKind != trace.SpanKindServer {
		t.Errorf("span = %q kind %v, want \"GET /callback/:idp\" server", s.Name, s.SpanKind)
	}
	for key, want := range map[string]string{"http.route": "/callback/:idp", "http.request.method": "GET",
		"http.response.status_code": "302", "realmgate.request_id": "rid-1"} {
		var got string
		for _, a := range s.Attributes {
			if string(a.Key) == key {
				got = a.Value.String()
			}
		}
		if got != want {
			t.Errorf("span attribute %s = %q, want %q", key, got, want)
		}
	}
	if s.SpanContext.TraceID().String() == clientTrace || s.Parent.IsValid() {
		t.Errorf("span trace %s parent %v: the client's traceparent became the parent", s.SpanContext.TraceID(), s.Parent)
	}
	if len(s.Links) != 1 || s.Links[0].SpanContext.TraceID().String() != clientTrace {
		t.Errorf("links = %v, want the client's span context", s.Links)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"trace_id":"`+s.SpanContext.TraceID().String()+`"`) ||
		!strings.Contains(lines[0], `"span_id":"`+s.SpanContext.SpanID().String()+`"`) || strings.Contains(lines[1], "trace_id") {
		t.Errorf("log lines = %q, want trace_id and span_id on the one logged with the request's context only", lines)
	}
}
