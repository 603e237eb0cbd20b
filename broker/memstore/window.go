package memstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/realmgate/realmgate/store"
)

// A sliding window (store/window.go) is an entry whose value is its buckets:
// pairs of little-endian int64 (bucket index, count), at most
// store.WindowBuckets+1 of them once the old ones are dropped. The entry
// lives store.Window.KeepFor after its last counted event (by the store's
// clock), so the sweep drops idle windows.

const windowPairBytes = 16

// ErrNotWindow is returned by SlidingWindow when the key holds another record.
var ErrNotWindow = errors.New("memstore: value is not a sliding window")

// SlidingWindow implements store.Store: it counts one event under key in
// the sliding window w at now as op says, under the store's one lock.
func (s *Store) SlidingWindow(ctx context.Context, key string, w store.Window, op store.WindowOp, now time.Time) (time.Duration, error) {
	if err := check(ctx, 0, false); err != nil {
		return 0, err
	}
	if err := w.Check(); err != nil {
		return 0, fmt.Errorf("memstore: %w", err)
	}
	if op < store.WindowPeek || op > store.WindowAdd {
		return 0, fmt.Errorf("memstore: sliding window: unknown op %v", op)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.windowLocked(key, w, op, now)
}

// windowLocked is SlidingWindow with s.mu held and its arguments checked.
func (s *Store) windowLocked(key string, w store.Window, op store.WindowOp, now time.Time) (time.Duration, error) {
	idx, _ := w.Bucket(now)
	oldest := idx - store.WindowBuckets
	e, _ := s.getLocked(key)
	if len(e.value)%windowPairBytes != 0 {
		return 0, fmt.Errorf("%w: key %q", ErrNotWindow, key)
	}
	var counts [store.WindowBuckets + 1]int64
	kept := make([]byte, 0, len(e.value)+windowPairBytes)
	for b := e.value; len(b) > 0; b = b[windowPairBytes:] {
		i := int64(binary.LittleEndian.Uint64(b))
		n := int64(binary.LittleEndian.Uint64(b[8:]))
		if i < oldest {
			continue // left the window: dropped
		}
		kept = append(kept, b[:windowPairBytes]...)
		counts[min(i, idx)-oldest] += n // a bucket ahead of our clock counts as the current one
	}
	wait := store.WindowWait(w, counts[:], now)
	if op == store.WindowAdd || (op == store.WindowTake && wait == 0) {
		kept = addToBucket(kept, idx)
		s.entries[key] = entry{value: kept, expires: s.now().Add(w.KeepFor())}
	}
	return wait, nil
}

// addToBucket adds one to bucket idx in the encoded pairs b.
func addToBucket(b []byte, idx int64) []byte {
	for p := b; len(p) > 0; p = p[windowPairBytes:] {
		if int64(binary.LittleEndian.Uint64(p)) == idx {
			binary.LittleEndian.PutUint64(p[8:], binary.LittleEndian.Uint64(p[8:])+1)
			return b
		}
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(idx))
	return binary.LittleEndian.AppendUint64(b, 1)
}
