// Package gcpace paces the garbage collector of a server whose live heap is
// small and whose requests allocate a lot: realmgate and the benchmark's
// baseline server use it alike.
package gcpace

import (
	"context"
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// GC pacing. realmgate's live heap is small (tens of MB: configuration,
// directory, keys, connection buffers) while every request allocates
// ~25 KB, so with Go's default GOGC=100 the collector runs several times a
// second and, on a two-core machine, takes one of the two cores while it
// marks: the tail latency of the token endpoint shows it (docs/performance.md).
// Instead of a fixed GOGC, the server keeps at least gcHeadroom of growth
// between collections: GOGC = gcHeadroom / live heap, between 100 and
// gcMaxPercent. A small heap collects less often; a large one (100k
// tenants) keeps the default, so peak memory never exceeds what GOGC=100
// would allow by more than gcHeadroom. gcMaxPercent is high enough that a
// live heap of 4 MiB or more gets the whole gcHeadroom: at 400 a 6 MiB heap
// (realmgate under load) collected every 24 MiB, twice as often, and each
// collection's mark phase stretches the requests it overlaps (issue 21).
// Setting GOGC or GOMEMLIMIT in the environment turns this off: the
// operator's choice wins.
const (
	gcHeadroom   = 64 << 20
	gcMaxPercent = 1600
	gcInterval   = 10 * time.Second
)

// PercentFor is the GOGC value for a live heap of live bytes.
func PercentFor(live uint64) int {
	if live == 0 {
		return gcMaxPercent
	}
	p := int(gcHeadroom * 100 / live)
	return max(100, min(gcMaxPercent, p))
}

// Start sets GOGC from the live heap now and every gcInterval until ctx
// ends, unless the environment sets GOGC or GOMEMLIMIT.
func Start(ctx context.Context, log *slog.Logger) {
	for _, v := range []string{"GOGC", "GOMEMLIMIT"} {
		if _, set := os.LookupEnv(v); set {
			log.Info("gc pacing left to the environment", "variable", v)
			return
		}
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	cur := 0
	apply := func() {
		metrics.Read(sample)
		live := uint64(0)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			live = sample[0].Value.Uint64()
		}
		if p := PercentFor(live); p != cur {
			debug.SetGCPercent(p)
			if cur == 0 {
				log.Info("gc pacing", "gogc", p, "live_heap_bytes", live)
			}
			cur = p
		}
	}
	apply()
	go func() {
		t := time.NewTicker(gcInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				apply()
			}
		}
	}()
}
