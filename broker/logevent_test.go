package broker

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
)

// lineOf returns the JSON line write puts through a logger made by mk
// (the time left out: the two calls are made at different instants).
func lineOf(mk func(*slog.Logger) *slog.Logger, write func(context.Context, *slog.Logger)) string {
	var buf bytes.Buffer
	h := slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})
	write(context.Background(), mk(slog.New(h)))
	return buf.String()
}

func TestLogEvent_SameLineAsLogAttrs(t *testing.T) {
	attrs := []slog.Attr{slog.String("outcome", "success"), slog.String("reason", "signed in"),
		slog.String("tenant", "acme"), slog.String("idp", "acme-idp"), slog.String("subject", "u1"),
		slog.String("actor", ""), slog.String("client", "app"), slog.String("ip", "192.0.2.1"),
		slog.String("user_agent", "Mozilla/5.0 \"quoted\"\n"), slog.String("request_id", "r1"), slog.Int("n", 3)}
	for _, tc := range []struct {
		name  string
		mk    func(*slog.Logger) *slog.Logger
		level slog.Level
	}{
		{"plain", func(l *slog.Logger) *slog.Logger { return l }, slog.LevelInfo},
		{"with attributes", func(l *slog.Logger) *slog.Logger { return l.With("stream", "audit") }, slog.LevelInfo},
		{"in a group", func(l *slog.Logger) *slog.Logger { return l.WithGroup("g").With("k", 1) }, slog.LevelWarn},
		{"below the level: no line", func(l *slog.Logger) *slog.Logger { return l }, slog.LevelDebug},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := lineOf(tc.mk, func(ctx context.Context, l *slog.Logger) { l.LogAttrs(ctx, tc.level, "signin", attrs...) })
			got := lineOf(tc.mk, func(ctx context.Context, l *slog.Logger) { logEvent(ctx, l, tc.level, "signin", attrs...) })
			if got != want {
				t.Errorf("logEvent wrote %q, LogAttrs %q", got, want)
			}
			if (got == "") != (tc.level < slog.LevelInfo) {
				t.Errorf("logEvent at %v wrote %q", tc.level, got)
			}
		})
	}
}

// BenchmarkLogEvent compares an audit event's line through logEvent and
// through slog.Logger.LogAttrs, with a handler that writes nothing.
func BenchmarkLogEvent(b *testing.B) {
	l := slog.New(slog.NewJSONHandler(discardWriter{}, nil))
	ctx := context.Background()
	attrs := []slog.Attr{slog.String("outcome", "success"), slog.String("reason", "signed in"),
		slog.String("tenant", "acme"), slog.String("idp", "acme-idp"), slog.String("subject", "u1"),
		slog.String("actor", ""), slog.String("client", "app"), slog.String("ip", "192.0.2.1"),
		slog.String("user_agent", "Mozilla/5.0"), slog.String("request_id", "r1"), slog.String("risk", "")}
	b.Run("logEvent", func(b *testing.B) {
		for b.Loop() {
			logEvent(ctx, l, slog.LevelInfo, "signin", attrs...)
		}
	})
	b.Run("LogAttrs", func(b *testing.B) {
		for b.Loop() {
			l.LogAttrs(ctx, slog.LevelInfo, "signin", attrs...)
		}
	})
}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
