package redisstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/realmgate/realmgate/broker/redisstore"
	"github.com/realmgate/realmgate/store"
)

// TestTracing_CommandsAsEventsWithoutArguments: with Options.Tracing every
// command is an event on the caller's span that names the command and
// carries neither key nor value (session data), a missing key is not an
// error, and no span of its own is made. Without it, no hook is installed
// and nothing is recorded.
func TestTracing_CommandsAsEventsWithoutArguments(t *testing.T) {
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
			s, err := redisstore.New(redisstore.Options{Addrs: tc.addrs(), Prefix: randomPrefix(), Tracing: true})
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
			if _, err := s.Get(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("Get(missing) = %v, want ErrNotFound", err)
			}
			parent.End()
			ended := rec.Ended()
			if len(ended) != 1 {
				t.Fatalf("%d spans ended, want 1 (the caller's; commands are its events)", len(ended))
			}
			var cmds []string
			for _, ev := range ended[0].Events() {
				attrs := map[string]string{}
				for _, a := range ev.Attributes {
					v := a.Value.String()
					attrs[string(a.Key)] = v
					if strings.Contains(v, secret) || strings.Contains(v, "k1") || strings.Contains(v, "missing") {
						t.Errorf("event %q attribute %s = %q carries a key or value", ev.Name, a.Key, v)
					}
				}
				if strings.Contains(ev.Name, "k1") {
					t.Errorf("event name %q carries a key", ev.Name)
				}
				if attrs["db.system.name"] != "redis" || attrs["realmgate.redis.duration_us"] == "" {
					t.Errorf("event %q attributes = %v, want db.system.name redis and a duration", ev.Name, attrs)
				}
				if e, ok := attrs["error.type"]; ok {
					t.Errorf("event %q error.type = %q, want none (a missing key is an answer)", ev.Name, e)
				}
				if ev.Name == "set" || ev.Name == "get" { // dials, HELLO, a cluster's COMMAND are events too
					cmds = append(cmds, ev.Name)
				}
			}
			if got := strings.Join(cmds, ","); got != "set,get,get" {
				t.Errorf("command events = %q, want set,get,get", got)
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
		if ended := rec.Ended(); len(ended) != 1 || len(ended[0].Events()) != 0 {
			t.Errorf("without Tracing: %d spans ended, want 1 (the caller's own) without events", len(ended))
		}
	})
}
