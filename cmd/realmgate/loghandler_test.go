package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"
)

// sameLines logs with one logger over lineHandler and one over slog's JSON
// handler (both with readableDurations) and compares the bytes.
func sameLines(t *testing.T, name string, log func(l *slog.Logger)) {
	t.Helper()
	opts := &slog.HandlerOptions{ReplaceAttr: readableDurations}
	var got, want bytes.Buffer
	log(slog.New(newLineHandler(&got, opts)))
	log(slog.New(slog.NewJSONHandler(&want, opts)))
	if got.String() != want.String() {
		t.Errorf("%s:\n got %q\nwant %q (slog's JSON handler)", name, got.String(), want.String())
	}
}

// fixedTime is a handler-level record time, so both loggers see the same.
var fixedTime = time.Date(2026, 12, 7, 5, 33, 1, 123456000, time.UTC)

func record(level slog.Level, msg string, as ...slog.Attr) slog.Record {
	r := slog.NewRecord(fixedTime, level, msg, 0)
	r.AddAttrs(as...)
	return r
}

func TestLineHandler_SameAsJSONHandler(t *testing.T) {
	tricky := "a\"b\\c\nd\re\tf\x00g\x1fh\x7fi<j>&k\u2028l\u2029m\xffn✓µ"
	tests := []struct {
		name  string
		with  []any
		group string
		r     slog.Record
	}{
		{"request line", nil, "", record(slog.LevelInfo, "request", slog.String("request_id", "r1"), slog.String("method", "GET"),
			slog.String("path", "/authorize"), slog.Int("status", 302), slog.Duration("took", 1234567*time.Nanosecond))},
		{"audit event", []any{"stream", "audit"}, "", record(slog.LevelInfo, "signin", slog.String("outcome", "success"),
			slog.String("reason", ""), slog.String("tenant", "acme"), slog.String("idp", "acme-idp"), slog.String("subject", "s"),
			slog.String("actor", ""), slog.String("client", "app"), slog.String("ip", "127.0.0.1"), slog.String("user_agent", tricky),
			slog.String("request_id", "r2"), slog.String("risk", ""))},
		{"tricky strings", nil, "", record(slog.LevelWarn, tricky, slog.String(tricky, tricky), slog.String("", "empty key"))},
		{"numbers and bools", nil, "", record(slog.LevelError, "n", slog.Int64("neg", -9), slog.Uint64("big", 1<<63),
			slog.Bool("t", true), slog.Bool("f", false))},
		{"durations", nil, "", record(slog.LevelInfo, "d", slog.Duration("ns", 999), slog.Duration("negns", -999),
			slog.Duration("us", time.Microsecond), slog.Duration("round", 1500*time.Nanosecond), slog.Duration("neg", -3*time.Second),
			slog.Duration("zero", 0), slog.Duration("hours", 49*time.Hour+time.Nanosecond))},
		{"debug not enabled", nil, "", record(slog.LevelDebug, "hidden", slog.String("k", "v"))},
		{"other level", nil, "", record(slog.LevelInfo+2, "info2", slog.String("k", "v"))},
		{"error value", nil, "", record(slog.LevelError, "e", slog.String("request_id", "r"), slog.Any("err", errors.New("boom <x>")))},
		{"time and float", nil, "", record(slog.LevelInfo, "t", slog.Time("at", fixedTime), slog.Float64("f", 1.5))},
		{"nested group", nil, "", record(slog.LevelInfo, "g", slog.Group("g", slog.String("a", "b")))},
		{"with group", nil, "grp", record(slog.LevelInfo, "wg", slog.String("a", "b"))},
		{"with non-simple attrs", []any{"when", fixedTime, "n", 1}, "", record(slog.LevelInfo, "w", slog.String("a", "b"))},
		{"with simple attrs", []any{"stream", "audit", "n", 2, "d", time.Second}, "", record(slog.LevelInfo, "w", slog.String("a", "b"))},
		{"no attrs", nil, "", record(slog.LevelInfo, "plain")},
		{"zero time", nil, "", func() slog.Record { r := record(slog.LevelInfo, "z"); r.Time = time.Time{}; return r }()},
		{"monotonic time", nil, "", func() slog.Record { r := record(slog.LevelInfo, "m"); r.Time = time.Now(); return r }()},
		{"zone", nil, "", func() slog.Record {
			r := record(slog.LevelInfo, "zone")
			r.Time = fixedTime.In(time.FixedZone("x", -5*3600-1800))
			return r
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sameLines(t, tt.name, func(l *slog.Logger) {
				if tt.with != nil {
					l = l.With(tt.with...)
				}
				if tt.group != "" {
					l = l.WithGroup(tt.group)
				}
				if l.Enabled(context.Background(), tt.r.Level) {
					_ = l.Handler().Handle(context.Background(), tt.r.Clone())
				}
			})
		})
	}
}

func FuzzLineHandler(f *testing.F) {
	f.Add("request", "path", "/authorize", int64(302), int64(1234567))
	f.Add("a\u2028\xff\x7f", "\"", "\x00\\", int64(-1), int64(-999))
	f.Fuzz(func(t *testing.T, msg, key, val string, n, d int64) {
		sameLines(t, "fuzz", func(l *slog.Logger) {
			r := record(slog.LevelInfo, msg, slog.String(key, val), slog.Int64(val, n), slog.Duration(key, time.Duration(d)))
			_ = l.With(key, val).Handler().Handle(context.Background(), r)
		})
	})
}

func BenchmarkRequestLine(b *testing.B) {
	opts := &slog.HandlerOptions{ReplaceAttr: readableDurations}
	for name, h := range map[string]slog.Handler{
		"slog":        slog.NewJSONHandler(discard{}, opts),
		"lineHandler": newLineHandler(discard{}, opts),
	} {
		b.Run(name, func(b *testing.B) {
			l := slog.New(h)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				l.LogAttrs(ctx, slog.LevelInfo, "request", slog.String("request_id", "0123456789abcdef0123"), slog.String("method", "GET"),
					slog.String("path", "/authorize"), slog.Int("status", 302), slog.Duration("took", 1234567*time.Nanosecond))
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
