package storetest

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/realmgate/realmgate/store"
)

// runID numbers the runs of a sub-benchmark, which may be called several
// times on the same store.
var runID atomic.Int64

// Bench measures each Store operation the broker's flows use, with record
// sizes like realmgate's (a code or grant is about 500 bytes), so every
// store is benchmarked the same way.
func Bench(b *testing.B, s store.Store) {
	ctx := context.Background()
	value := make([]byte, 512)
	for i := range value {
		value[i] = 'a' + byte(i%26)
	}
	key := func(kind string, i int) string { return kind + ":bench-" + strconv.Itoa(i) }
	const ttl = time.Minute
	b.Run("Put", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			if err := s.Put(ctx, key("put", i), value, ttl); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Get", func(b *testing.B) {
		if err := s.Put(ctx, "get:bench", value, ttl); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := s.Get(ctx, "get:bench"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("PutTake", func(b *testing.B) { // a code: written, then redeemed once
		i := 0
		for b.Loop() {
			i++
			if err := s.Put(ctx, key("take", i), value, ttl); err != nil {
				b.Fatal(err)
			}
			if _, err := s.Take(ctx, key("take", i)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Touch", func(b *testing.B) { // a sliding session
		if err := s.Put(ctx, "touch:bench", value, ttl); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := s.Touch(ctx, "touch:bench", ttl); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Incr", func(b *testing.B) { // a rate-limit counter
		for b.Loop() {
			if _, err := s.Incr(ctx, "incr:bench", ttl); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("CreateFamily", func(b *testing.B) {
		run, i := runID.Add(1), 0 // the function runs more than once: fresh names each time
		for b.Loop() {
			i++
			if err := s.CreateFamily(ctx, "cf-"+strconv.FormatInt(run, 10)+"-"+strconv.Itoa(i), "rt:0", value, ttl); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Rotate", func(b *testing.B) { // a refresh; a new family every 100 rotations
		fam, cur, n, run := "", "", 0, strconv.FormatInt(runID.Add(1), 10)
		for b.Loop() {
			if n%100 == 0 {
				fam, cur = "rot-"+run+"-"+strconv.Itoa(n), "rt:"+strconv.Itoa(n)
				if err := s.CreateFamily(ctx, fam, cur, value, ttl); err != nil {
					b.Fatal(err)
				}
			}
			n++
			next := "rt:" + strconv.Itoa(n)
			if _, err := s.Rotate(ctx, fam, cur, next); err != nil {
				b.Fatal(err)
			}
			cur = next
		}
	})
	b.Run("FamilyGrant", func(b *testing.B) { // every userinfo and introspection call
		fam := "active-" + strconv.FormatInt(runID.Add(1), 10)
		if err := s.CreateFamily(ctx, fam, "rt:a", value, ttl); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if g, err := s.FamilyGrant(ctx, fam); err != nil || len(g) == 0 {
				b.Fatal(g, err)
			}
		}
	})
}
