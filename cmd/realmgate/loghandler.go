package main

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// lineHandler writes the JSON log lines of the common records (every
// attribute a string, an integer, a bool or a duration, no group: the
// request line, the audit events) itself, byte for byte what
// slog.NewJSONHandler with readableDurations writes, without slog's
// per-attribute ReplaceAttr pass and handle state; any other record goes
// to that JSON handler. Both write through one lock, a line per Write.
// TestLineHandler_SameAsJSONHandler and FuzzLineHandler compare the two.
type lineHandler struct {
	out    *lockedWriter
	inner  slog.Handler // slog's JSON handler, for every other record
	level  slog.Leveler
	prefix []byte // the WithAttrs attributes, formatted, each after a comma
	slow   bool   // a group was opened: every record goes to inner
}

var _ slog.Handler = (*lineHandler)(nil)

// lockedWriter serializes the writes of a handler and its derived ones.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// newLineHandler returns the JSON handler of w with readableDurations
// (opts must carry it as its ReplaceAttr and nothing else but a level).
func newLineHandler(w io.Writer, opts *slog.HandlerOptions) *lineHandler {
	out := &lockedWriter{w: w}
	var level slog.Leveler = slog.LevelInfo
	if opts.Level != nil {
		level = opts.Level
	}
	return &lineHandler{out: out, inner: slog.NewJSONHandler(out, opts), level: level}
}

func (h *lineHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *lineHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := &lineHandler{out: h.out, inner: h.inner.WithAttrs(as), level: h.level, slow: h.slow}
	if !n.slow {
		p, ok := appendLineAttrs(append([]byte(nil), h.prefix...), as)
		n.prefix, n.slow = p, !ok
	}
	return n
}

func (h *lineHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &lineHandler{out: h.out, inner: h.inner.WithGroup(name), level: h.level, slow: true}
}

var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (h *lineHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.slow || r.Time.IsZero() || r.Time.Year() < 0 || r.Time.Year() >= 10000 || r.Level != slog.LevelInfo && r.Level != slog.LevelWarn && r.Level != slog.LevelError && r.Level != slog.LevelDebug {
		return h.inner.Handle(ctx, r)
	}
	bp := lineBufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 16<<10 {
			lineBufs.Put(bp)
		}
	}()
	b := append((*bp)[:0], `{"time":"`...)
	b = r.Time.Round(0).AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"`...)
	b = append(b, r.Level.String()...)
	b = append(b, `","msg":"`...)
	b = appendLogString(b, r.Message)
	b = append(b, '"')
	b = append(b, h.prefix...)
	ok := true
	r.Attrs(func(a slog.Attr) bool {
		b, ok = appendLineAttr(b, a)
		return ok
	})
	*bp = b
	if !ok {
		return h.inner.Handle(ctx, r)
	}
	b = append(b, "}\n"...)
	*bp = b
	_, err := h.out.Write(b)
	return err
}

// appendLineAttrs appends as, each after a comma; false when one is not
// of the kinds lineHandler writes.
func appendLineAttrs(b []byte, as []slog.Attr) ([]byte, bool) {
	for _, a := range as {
		var ok bool
		if b, ok = appendLineAttr(b, a); !ok {
			return b, false
		}
	}
	return b, true
}

// appendLineAttr appends ,"key":value as slog's JSON handler does after
// readableDurations; false for a kind it leaves to that handler.
func appendLineAttr(b []byte, a slog.Attr) ([]byte, bool) {
	v := a.Value
	switch v.Kind() {
	case slog.KindString, slog.KindInt64, slog.KindUint64, slog.KindBool, slog.KindDuration:
	default:
		return b, false // groups, times, floats, any values, LogValuers
	}
	b = append(b, `,"`...)
	b = appendLogString(b, a.Key)
	b = append(b, `":`...)
	switch v.Kind() {
	case slog.KindString:
		b = append(b, '"')
		b = appendLogString(b, v.String())
		b = append(b, '"')
	case slog.KindInt64:
		b = strconv.AppendInt(b, v.Int64(), 10)
	case slog.KindUint64:
		b = strconv.AppendUint(b, v.Uint64(), 10)
	case slog.KindBool:
		b = strconv.AppendBool(b, v.Bool())
	case slog.KindDuration:
		b = append(b, '"')
		b = appendLogString(b, readableDurations(nil, a).Value.String())
		b = append(b, '"')
	}
	return b, true
}

// appendLogString is slog's JSON string escaping (no HTML escaping;
// control characters but \n, \r and \t as \u00XX; invalid UTF-8 as
// \ufffd; U+2028 and U+2029 escaped).
func appendLogString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}
