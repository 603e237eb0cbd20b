package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration read from and written to YAML as text:
// "90s", "15m", "1h30m", "24h", "720h", and also whole days "30d" or "1d12h".
// It is written back in hours, minutes and seconds ("30d" becomes "720h").
type Duration time.Duration

// Duration returns d as a time.Duration.
func (d Duration) Duration() time.Duration { return time.Duration(d) }

// String formats d the way the configuration file writes it: "15m", "24h",
// "1h30m", "1.5s"; zero is "0s".
func (d Duration) String() string {
	td := time.Duration(d)
	if td <= 0 {
		return td.String()
	}
	var b strings.Builder
	if h := td / time.Hour; h > 0 {
		b.WriteString(strconv.FormatInt(int64(h), 10))
		b.WriteByte('h')
		td -= h * time.Hour
	}
	if m := td / time.Minute; m > 0 {
		b.WriteString(strconv.FormatInt(int64(m), 10))
		b.WriteByte('m')
		td -= m * time.Minute
	}
	if td > 0 {
		b.WriteString(td.String()) // under a minute: "30s", "1.5s", "500ms"
	}
	return b.String()
}

// MarshalText implements encoding.TextMarshaler (yaml.v3 and encoding/json use it).
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := ParseDuration(string(text))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ParseDuration reads a duration as time.ParseDuration does, and also
// accepts a leading whole number of days: "30d", "1d12h".
func ParseDuration(s string) (Duration, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return 0, fmt.Errorf("invalid duration %q: want a number with a unit, like 15m, 24h or 30d", s)
	}
	neg := false
	rest := in
	if rest[0] == '-' || rest[0] == '+' {
		neg = rest[0] == '-'
		rest = rest[1:]
	}
	var days int64
	if i := strings.IndexByte(rest, 'd'); i >= 0 {
		n, err := strconv.ParseInt(rest[:i], 10, 64)
		if err != nil || rest[:i] == "" || rest[0] == '+' || rest[0] == '-' {
			return 0, fmt.Errorf("invalid duration %q: days must be a whole number, like 30d", s)
		}
		if n > math.MaxInt64/int64(24*time.Hour) {
			return 0, fmt.Errorf("invalid duration %q: too long", s)
		}
		days = n
		rest = rest[i+1:]
	}
	var part time.Duration
	if rest != "" {
		if rest[0] == '+' || rest[0] == '-' {
			return 0, fmt.Errorf("invalid duration %q: misplaced sign", s)
		}
		p, err := time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q: want a number with a unit, like 15m, 24h or 30d", s)
		}
		part = p
	}
	total := time.Duration(days) * 24 * time.Hour
	if part > math.MaxInt64-total {
		return 0, fmt.Errorf("invalid duration %q: too long", s)
	}
	total += part
	if neg {
		total = -total
	}
	return Duration(total), nil
}
