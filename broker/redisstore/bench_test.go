package redisstore_test

import (
	"testing"

	"github.com/realmgate/realmgate/broker/storetest"
)

// BenchmarkStore measures each Store operation the broker's flows use on a
// real redis-server (one loopback round trip each; Rotate, CreateFamily and
// Incr are Lua scripts). The same benchmark runs on the memory store in
// broker/memstore.
func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, newStore(b, standalone.Addr()))
}
