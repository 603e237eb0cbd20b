package memstore

import (
	"testing"

	"github.com/realmgate/realmgate/broker/storetest"
)

// BenchmarkStore measures each Store operation the broker's flows use; the
// same benchmark runs on Redis in broker/redisstore.
func BenchmarkStore(b *testing.B) {
	s := New()
	b.Cleanup(func() { _ = s.Close() })
	storetest.Bench(b, s)
}
