// Package telemetry is realmgate's OpenTelemetry tracing: the tracer
// provider and OTLP exporter, configured by the standard OTEL_* environment
// variables, and the wrappers that trace inbound requests, upstream calls
// and log lines.
//
// Tracing is off unless the environment turns it on (see Init). Off, a
// *Telemetry is nil or disabled and every wrapper returns what it was given:
// no middleware, no transport layer, no log handler, no Redis hook; the
// process runs exactly the code it runs without this package.
//
// Nothing here touches OpenTelemetry's global state: the tracer provider
// and propagator are handed to each instrumentation explicitly.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// ErrUnsupported is returned by Init for an OTEL_* setting this build does
// not implement (an exporter other than otlp, a protocol other than
// http/protobuf).
var ErrUnsupported = errors.New("telemetry: unsupported setting")

// DiscardEnv names realmgate's own (non-standard) environment variable
// for benchmarks: REALMGATE_TRACES_EXPORTER=discard turns tracing on with
// an in-process exporter that drops every span, behind the same batch span
// processor, sampler and instrumentation as OTLP export. It measures what
// tracing costs the process apart from encoding and sending; it wins over
// OTEL_TRACES_EXPORTER and the OTLP endpoint variables (OTEL_SDK_DISABLED
// still turns everything off). Not for production: nothing is exported.
const DiscardEnv = "REALMGATE_TRACES_EXPORTER"

// ServiceName is the service.name of realmgate's spans unless
// OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES says otherwise.
const ServiceName = "realmgate"

// Telemetry holds the tracer provider of a process. The nil *Telemetry is
// valid and means tracing is off.
type Telemetry struct {
	sdk  *sdktrace.TracerProvider
	prop propagation.TextMapPropagator
}

// Init sets up tracing from the environment. It returns nil (tracing off)
// unless the environment asks for traces:
//
//   - OTEL_SDK_DISABLED=true turns everything off;
//   - OTEL_TRACES_EXPORTER=none (or unset with no OTLP endpoint) is off;
//   - OTEL_TRACES_EXPORTER=otlp, or OTEL_EXPORTER_OTLP_ENDPOINT or
//     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT set while OTEL_TRACES_EXPORTER is
//     unset, exports OTLP over HTTP (protobuf).
//
// The exporter, sampler, batch processor and resource read the rest of
// the standard variables themselves (OTEL_EXPORTER_OTLP_* endpoint,
// headers, timeout, compression and certificates; OTEL_TRACES_SAMPLER and
// _ARG; OTEL_BSP_*; OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES). A setting
// this build cannot honour is an error wrapping ErrUnsupported, not a
// silent default. Call Shutdown on the result when the process ends: it
// exports the spans still queued.
func Init(ctx context.Context) (*Telemetry, error) {
	return initFrom(ctx, os.Getenv)
}

func initFrom(ctx context.Context, getenv func(string) string) (*Telemetry, error) {
	switch v := strings.ToLower(strings.TrimSpace(getenv(DiscardEnv))); v {
	case "":
	case "discard":
		if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
			return nil, nil
		}
		return New(discardExporter{}), nil
	default:
		return nil, fmt.Errorf("%w: %s=%q (the only value is discard, for benchmarks)", ErrUnsupported, DiscardEnv, v)
	}
	on, err := enabled(getenv)
	if err != nil || !on {
		return nil, err
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("telemetry: otlp exporter: %w", err)
	}
	return New(exp), nil
}

// enabled decides from the environment whether traces are exported.
func enabled(getenv func(string) string) (bool, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false, nil
	}
	switch exp := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))); exp {
	case "none":
		return false, nil
	case "":
		if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
			return false, nil
		}
	case "otlp":
	default:
		return false, fmt.Errorf("%w: OTEL_TRACES_EXPORTER=%q (this build exports otlp or none)", ErrUnsupported, exp)
	}
	proto := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if p := strings.ToLower(strings.TrimSpace(proto)); p != "" && p != "http/protobuf" {
		return false, fmt.Errorf("%w: OTLP protocol %q (this build sends http/protobuf, port 4318)", ErrUnsupported, proto)
	}
	return true, nil
}

// New returns tracing on with exp as the exporter, behind a batch span
// processor (OTEL_BSP_* apply) and the sampler OTEL_TRACES_SAMPLER names
// (parent-based always-on by default). Tests and benchmarks pass an
// in-process exporter.
func New(exp sdktrace.SpanExporter, opts ...sdktrace.TracerProviderOption) *Telemetry {
	res, err := resource.New(context.Background(),
		resource.WithAttributes(attribute.String("service.name", ServiceName)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES override the above
	)
	if err != nil { // a malformed OTEL_RESOURCE_ATTRIBUTES: keep what parsed
		res = resource.Default()
	}
	opts = append([]sdktrace.TracerProviderOption{sdktrace.WithResource(res),
		sdktrace.WithBatcher(exp)}, opts...)
	return &Telemetry{
		sdk: sdktrace.NewTracerProvider(opts...),
		// W3C trace context only: no baggage, which a client could fill
		// and realmgate would forward upstream.
		prop: propagation.TraceContext{},
	}
}

// Enabled reports whether tracing is on.
func (t *Telemetry) Enabled() bool { return t != nil && t.sdk != nil }

// TracerProvider returns the provider, or nil when tracing is off (so an
// option struct's zero value means off).
func (t *Telemetry) TracerProvider() trace.TracerProvider {
	if !t.Enabled() {
		return nil
	}
	return t.sdk
}

// ForceFlush exports every finished span now.
func (t *Telemetry) ForceFlush(ctx context.Context) error {
	if !t.Enabled() {
		return nil
	}
	return t.sdk.ForceFlush(ctx)
}

// Shutdown exports the queued spans and stops the provider.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if !t.Enabled() {
		return nil
	}
	if err := t.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("telemetry: shutdown: %w", err)
	}
	return nil
}

// Handler traces every request h serves as a server span (http.go),
// named `{method} {route}` for an *echo.Echo (a routing middleware is
// added, so call Handler before serving) and by the method otherwise, with
// the status and the request id realmgate answers in X-Request-Id.
// Incoming trace context is not trusted as a parent (the listener faces the
// internet: a client could otherwise choose the trace id or switch
// sampling off for its own requests); it is kept as a link. server names
// the tracer (the instrumentation scope). Off, h itself is returned.
func (t *Telemetry) Handler(h http.Handler, server string) http.Handler {
	if !t.Enabled() {
		return h
	}
	if e, ok := h.(*echo.Echo); ok {
		e.Use(routeName)
	}
	return &serverHandler{next: h, tracer: t.sdk.Tracer(server), prop: t.prop}
}

// Transport traces every request through rt as a client span and sends
// its trace context (traceparent) upstream. Wrap the outermost transport
// of a client: the layers below it (the outbound address checks, S70)
// still decide what is reached. url.full leaves out the query and user
// info. Off, rt itself is returned.
func (t *Telemetry) Transport(rt http.RoundTripper) http.RoundTripper {
	if !t.Enabled() {
		return rt
	}
	return &clientTransport{next: rt, tracer: t.sdk.Tracer(ServiceName + "/upstream"), prop: t.prop}
}

// Logger returns l with trace_id and span_id on every record logged with a
// context that carries a span. Off, l itself is returned.
func (t *Telemetry) Logger(l *slog.Logger) *slog.Logger {
	if !t.Enabled() || l == nil {
		return l
	}
	return slog.New(LogHandler(l.Handler()))
}

// LogHandler wraps h: a record logged with a context carrying a valid span
// context gets trace_id and span_id (hex, as in W3C traceparent).
func LogHandler(h slog.Handler) slog.Handler { return traceHandler{h} }

type traceHandler struct{ next slog.Handler }

// Enabled implements slog.Handler.
func (h traceHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// Handle implements slog.Handler.
func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h traceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return traceHandler{h.next.WithAttrs(as)}
}

// WithGroup implements slog.Handler.
func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.next.WithGroup(name)}
}

// TraceID returns the trace id of ctx's span in hex, or "" when ctx
// carries none (tracing off).
func TraceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		return sc.TraceID().String()
	}
	return ""
}

// discardExporter is the in-process exporter of REALMGATE_TRACES_EXPORTER=discard.
type discardExporter struct{}

// ExportSpans implements sdktrace.SpanExporter: it drops the spans.
func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }

// Shutdown implements sdktrace.SpanExporter.
func (discardExporter) Shutdown(context.Context) error { return nil }
