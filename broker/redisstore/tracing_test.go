package redisstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/realmgate/realmgate/broker/redisstore"
)

// TestTracerProvider_SpansPerCommandWithoutArguments: with Options.TracerProvider
// every command is a client span, child of the caller's span, that names the
// command and carries neither key nor value (session data). Without it, no
// hook is installed and nothing is recorded.
func TestTracerProvider_SpansPerCommandWithoutArguments(t *testing.T) {
	const secret = "session-value-that-must-not-leave"
	for _, tc := range []struct {
		name  string
		addrs func() []string
	}{
		{"Standalone", func() []string { return []string{standalone.Addr()} }},
		{"Cluster", func() []string { return cluster.Addrs() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			s, err := redisstore.New(redisstore.Options{Addrs: tc.addrs(), Prefix: randomPrefix(), TracerProvider: tp})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			ctx, parent := tp.Tracer("test").Start(context.Background(), "sign-in")
			if err := s.Put(ctx, "k1", []byte(secret), time.Minute); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(ctx, "k1"); err != nil {
				t.Fatal(err)
			}
			parent.End()
			var cmds []string
			for _, sp := range rec.Ended() {
				for _, a := range sp.Attributes() {
					if v := a.Value.String(); strings.Contains(v, secret) || strings.Contains(v, "k1") {
						t.Errorf("span %q attribute %s = %q carries a key or value", sp.Name(), a.Key, v)
					}
				}
				if sp.Name() != "set" && sp.Name() != "get" { // the caller's span, dials, HELLO, a cluster's COMMAND
					continue
				}
				cmds = append(cmds, sp.Name())
				if sp.Parent().SpanID() != parent.SpanContext().SpanID() || sp.SpanContext().TraceID() != parent.SpanContext().TraceID() {
					t.Errorf("span %q parent = %s, want the caller's span %s", sp.Name(), sp.Parent().SpanID(), parent.SpanContext().SpanID())
				}
			}
			if got := strings.Join(cmds, ","); got != "set,get" {
				t.Errorf("command spans = %q, want set and get", got)
			}
		})
	}
	t.Run("Off", func(t *testing.T) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		s := newStore(t, standalone.Addr())
		ctx, parent := tp.Tracer("test").Start(context.Background(), "sign-in")
		if err := s.Put(ctx, "k1", []byte(secret), time.Minute); err != nil {
			t.Fatal(err)
		}
		parent.End()
		if n := len(rec.Ended()); n != 1 {
			t.Errorf("without TracerProvider: %d spans ended, want 1 (the caller's own)", n)
		}
	})
}
