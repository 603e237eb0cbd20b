package broker

import (
	"testing"
	"time"
)

// TestUnderLimitCache_S60: a counter read as under its limit is believed for
// underLimitCacheTTL, never after a failure counted on this instance, and
// not at all when a failure was counted while the store was being read.
func TestUnderLimitCache_S60(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name string
		run  func(c *underLimitCache) bool // returns fresh("k") at the end
		want bool
	}{
		{"remembered", func(c *underLimitCache) bool {
			c.remember("k", now, c.failures.Load())
			return c.fresh("k", now.Add(underLimitCacheTTL-time.Millisecond))
		}, true},
		{"expired", func(c *underLimitCache) bool {
			c.remember("k", now, c.failures.Load())
			return c.fresh("k", now.Add(underLimitCacheTTL))
		}, false},
		{"a failure forgets it", func(c *underLimitCache) bool {
			c.remember("k", now, c.failures.Load())
			c.forget("k")
			return c.fresh("k", now)
		}, false},
		{"a failure during the read keeps it from being remembered", func(c *underLimitCache) bool {
			seq := c.failures.Load() // the read starts
			c.forget("other")        // a failure is counted meanwhile
			c.remember("k", now, seq)
			return c.fresh("k", now)
		}, false},
		{"never read", func(c *underLimitCache) bool { return c.fresh("k", now) }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.run(&underLimitCache{}); got != tc.want {
				t.Errorf("fresh(%q) = %v, want %v", "k", got, tc.want)
			}
		})
	}
	t.Run("bounded", func(t *testing.T) {
		c := &underLimitCache{}
		for i := range underLimitCacheSize + 10 {
			c.remember(string(rune(i)), now, c.failures.Load())
		}
		if n := len(c.until); n > underLimitCacheSize {
			t.Errorf("cache holds %d entries, want at most %d", n, underLimitCacheSize)
		}
	})
}
