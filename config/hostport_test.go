package config

import (
	"strings"
	"testing"
)

// TestParse_NetHostSingleLabel: store.redis.addrs and listeners take the
// single-label host names of a compose service ("redis") or a Kubernetes
// Service in the same namespace ("redis-master"), and still refuse what is
// no host name.
func TestParse_NetHostSingleLabel(t *testing.T) {
	const base = "issuer: https://login.example.com\nstore:\n  type: redis\n  redis:\n    addrs: [%q]\nkeys:\n  secret: 0123456789abcdef0123456789abcdef\n"
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"redis:6379", true},
		{"redis-master:6379", true},
		{"redis.:6379", true},
		{"redis-master.auth.svc.cluster.local:6379", true},
		{"127.0.0.1:6379", true},
		{"[::1]:6379", true},
		{"localhost:6379", true},
		{"12345:6379", false},
		{"-redis:6379", false},
		{"red_is:6379", false},
		{"redis..x:6379", false},
		{"re dis:6379", false},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(strings.Replace(base, "%q", `"`+tc.addr+`"`, 1)), nil)
			if (err == nil) != tc.ok {
				t.Errorf("Parse(addrs: [%q]) = %v, want ok %v", tc.addr, err, tc.ok)
			}
		})
	}
}
