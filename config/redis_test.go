package config_test

import (
	"strings"
	"testing"
	"time"

	. "github.com/realmgate/realmgate/config"
)

// TestParse_RedisTimeouts: the Redis client's timeouts default to the
// store's, are read from the file, and are refused out of range with the
// line and field named.
func TestParse_RedisTimeouts(t *testing.T) {
	const base = "issuer: https://login.example.com\nkeys:\n  secret: 0123456789abcdef0123456789abcdef\nstore:\n  type: redis\n  redis:\n    addrs: [\"127.0.0.1:6379\"]\n"
	tests := []struct {
		name    string
		yaml    string
		want    [4]time.Duration // dial, read, write, pool
		wantErr string
	}{
		{"defaults", "", [4]time.Duration{time.Second, 500 * time.Millisecond, 500 * time.Millisecond, 1500 * time.Millisecond}, ""},
		{"set", "    dial_timeout: 3s\n    read_timeout: 2s\n    write_timeout: 1500ms\n    pool_timeout: 4s\n",
			[4]time.Duration{3 * time.Second, 2 * time.Second, 1500 * time.Millisecond, 4 * time.Second}, ""},
		{"one set, others default", "    write_timeout: 2s\n",
			[4]time.Duration{time.Second, 500 * time.Millisecond, 2 * time.Second, 1500 * time.Millisecond}, ""},
		{"explicit zero", "    read_timeout: 0s\n", [4]time.Duration{}, "f.yaml:8: store.redis.read_timeout: must be between 10ms and 1m, got 0s"},
		{"too short", "    dial_timeout: 1ms\n", [4]time.Duration{}, "f.yaml:8: store.redis.dial_timeout: must be between 10ms and 1m, got 1ms"},
		{"too long", "    pool_timeout: 2m\n", [4]time.Duration{}, "f.yaml:8: store.redis.pool_timeout: must be between 10ms and 1m, got 2m"},
		{"negative", "    write_timeout: -1s\n", [4]time.Duration{}, "f.yaml:8: store.redis.write_timeout: must be between 10ms and 1m, got -1s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("f.yaml", []byte(base+tc.yaml), nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want %q", tc.yaml, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q) error: %v", tc.yaml, err)
			}
			r := c.Store.Redis
			got := [4]time.Duration{r.DialTimeout.Duration(), r.ReadTimeout.Duration(), r.WriteTimeout.Duration(), r.PoolTimeout.Duration()}
			if got != tc.want {
				t.Errorf("Parse(%q) timeouts = %v, want %v", tc.yaml, got, tc.want)
			}
		})
	}
}
