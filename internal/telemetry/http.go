package telemetry

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// The server and client spans are made here rather than by otelhttp: one
// span per request with the attributes below, built from precomputed
// values, and nothing else (otelhttp also computes metric attributes on
// every request, for meters that record nothing here). Attribute names are
// the OpenTelemetry semantic conventions' (HTTP, stable).
const (
	attrMethod     = attribute.Key("http.request.method")
	attrRoute      = attribute.Key("http.route")
	attrStatus     = attribute.Key("http.response.status_code")
	attrURLFull    = attribute.Key("url.full")
	attrServerAddr = attribute.Key("server.address")
	attrServerPort = attribute.Key("server.port")
	attrErrorType  = attribute.Key("error.type")
	// attrRequestID is the request id realmgate returns in X-Request-Id and
	// logs as request_id: the key from a user's error page to the trace.
	attrRequestID = attribute.Key("realmgate.request_id")
)

// httpMethods are the methods with a name of their own; any other is
// _OTHER, so a client cannot create span names or attribute values.
var httpMethods = func() map[string]attribute.KeyValue {
	m := map[string]attribute.KeyValue{}
	for _, name := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace} {
		m[name] = attrMethod.String(name)
	}
	return m
}()

var otherMethod = attrMethod.String("_OTHER")

// method returns the span name and attribute of a request's method.
func method(m string) (string, attribute.KeyValue) {
	if kv, ok := httpMethods[m]; ok {
		return m, kv
	}
	return "HTTP", otherMethod
}

// serverHandler starts one server span per request.
type serverHandler struct {
	next   http.Handler
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
}

// ServeHTTP implements http.Handler.
func (s *serverHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, m := method(r.Method)
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(m)}
	if len(r.Header["Traceparent"]) > 0 {
		// The caller's trace context is a link, never the parent: this
		// listener faces the internet.
		if sc := trace.SpanContextFromContext(s.prop.Extract(context.Background(), propagation.HeaderCarrier(r.Header))); sc.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
		}
	}
	ctx, span := s.tracer.Start(r.Context(), name, opts...)
	defer span.End()
	if !span.IsRecording() { // not sampled: the span context still reaches logs and upstream calls
		s.next.ServeHTTP(w, r.WithContext(ctx))
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	s.next.ServeHTTP(sw, r.WithContext(ctx))
	status := sw.status
	if status == 0 {
		status = http.StatusOK
	}
	attrs := [3]attribute.KeyValue{attrStatus.Int(status)}
	n := 1
	if sw.route != "" {
		span.SetName(name + " " + sw.route)
		attrs[n] = attrRoute.String(sw.route)
		n++
	}
	if rid := w.Header()["X-Request-Id"]; len(rid) > 0 {
		attrs[n] = attrRequestID.String(rid[0])
		n++
	}
	span.SetAttributes(attrs[:n]...)
	if status >= http.StatusInternalServerError { // 4xx is the client's error, not the server's
		span.SetStatus(codes.Error, "")
		span.SetAttributes(attrErrorType.String(strconv.Itoa(status)))
	}
}

// statusWriter remembers the status written and, from echo's routing, the
// route template.
type statusWriter struct {
	http.ResponseWriter
	status int
	route  string
}

// WriteHeader implements http.ResponseWriter.
func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer
// (Flush, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// routeName passes echo's route template (`/callback/:idp`, a
// low-cardinality name) to the request's server span, which is named
// `{method} {http.route}` when it ends.
func routeName(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if route := c.Path(); route != "" {
			if sw, ok := c.Response().Writer.(*statusWriter); ok {
				sw.route = route
			}
		}
		return next(c)
	}
}

// clientTransport makes a client span of every request through next and
// sends the span's trace context upstream (traceparent).
type clientTransport struct {
	next   http.RoundTripper
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
}

// RoundTrip implements http.RoundTripper.
func (t *clientTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	name, m := method(r.Method)
	ctx, span := t.tracer.Start(r.Context(), name, trace.WithSpanKind(trace.SpanKindClient))
	r = r.Clone(ctx) // a RoundTripper must not change the caller's request
	t.prop.Inject(ctx, propagation.HeaderCarrier(r.Header))
	if !span.IsRecording() { // not sampled: only the trace context goes upstream
		defer span.End()
		return t.next.RoundTrip(r)
	}
	attrs := [4]attribute.KeyValue{m, attrURLFull.String(redactURL(r.URL)), attrServerAddr.String(r.URL.Hostname())}
	n := 3
	if p := r.URL.Port(); p != "" {
		if port, err := strconv.Atoi(p); err == nil {
			attrs[n] = attrServerPort.Int(port)
			n++
		}
	}
	span.SetAttributes(attrs[:n]...)
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		span.SetStatus(codes.Error, "")
		span.SetAttributes(attrErrorType.String("_OTHER"))
		span.End()
		return resp, err
	}
	span.SetAttributes(attrStatus.Int(resp.StatusCode))
	if resp.StatusCode >= http.StatusBadRequest {
		span.SetStatus(codes.Error, "")
		span.SetAttributes(attrErrorType.String(strconv.Itoa(resp.StatusCode)))
	}
	if resp.Body == nil || resp.Body == http.NoBody {
		span.End()
		return resp, nil
	}
	// The span ends when the body is read to its end or closed: the
	// upstream's time includes sending the body.
	resp.Body = &spanBody{ReadCloser: resp.Body, span: span}
	return resp, nil
}

// spanBody ends its span at EOF, a read error or Close, once.
type spanBody struct {
	io.ReadCloser
	span  trace.Span
	ended atomic.Bool
}

func (b *spanBody) end() {
	if b.ended.CompareAndSwap(false, true) {
		b.span.End()
	}
}

// Read implements io.Reader.
func (b *spanBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.end()
	}
	return n, err
}

// Close implements io.Closer.
func (b *spanBody) Close() error {
	err := b.ReadCloser.Close()
	b.end()
	return err
}

// redactURL is u as url.full without what may be secret: user info
// dropped, a query replaced by REDACTED (an upstream URL a tenant admin
// wrote may carry a key in its query), no fragment.
func redactURL(u *url.URL) string {
	if u.User == nil && u.RawQuery == "" && u.Fragment == "" {
		return u.String()
	}
	c := *u
	c.User = nil
	if c.RawQuery != "" {
		c.RawQuery = "REDACTED"
	}
	c.ForceQuery = false
	c.Fragment, c.RawFragment = "", ""
	return c.String()
}
