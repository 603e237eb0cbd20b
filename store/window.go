package store

import (
	"errors"
	"fmt"
	"time"
)

// Sliding windows (rate limits, SECURITY S60). A Window of Length L and
// Limit N is split into WindowBuckets buckets of L/WindowBuckets, aligned
// on the epoch, each counting the events that fell into it. An event is
// admitted when the events counted in the current bucket and the
// WindowBuckets buckets before it, together, are fewer than N. Those
// buckets span at least L back from any moment in the current bucket, so
// every stretch of L ending at an admitted event is inside them: a limit
// admits at most N events in ANY stretch of L, across window edges and
// across every instance sharing the store (a fixed window admits up to 2N
// around its edge). The price is that an event stays counted for between L
// and L + L/WindowBuckets.
//
// The caller passes the time: every instance buckets by its own clock, and
// tests drive it without sleeping. Instances whose clocks disagree by d
// bucket an event up to d apart; an event counted in a bucket after the
// caller's current one (a clock ahead) counts as the current bucket's.

// WindowBuckets is how many buckets one window length is split into; a
// count keeps one bucket more, WindowBuckets+1 in all.
const WindowBuckets = 10

// ErrBadWindow is returned for a Window with a Limit below 1 or a Length
// shorter than WindowBuckets milliseconds.
var ErrBadWindow = errors.New("store: bad sliding window")

// Window is a sliding-window limit: at most Limit events in any Length.
type Window struct {
	Limit  int64
	Length time.Duration
}

// Check returns ErrBadWindow (wrapped) unless w can be counted.
func (w Window) Check() error {
	if w.Limit < 1 || w.Length < WindowBuckets*time.Millisecond {
		return fmt.Errorf("%w: limit %d per %s", ErrBadWindow, w.Limit, w.Length)
	}
	return nil
}

// Bucket returns the index of the bucket now falls into and a bucket's length.
func (w Window) Bucket(now time.Time) (idx int64, size time.Duration) {
	size = w.Length / WindowBuckets
	return now.UnixNano() / int64(size), size
}

// KeepFor is how long a store keeps a window's buckets after counting an
// event: until that event's bucket has left every count, plus a second.
func (w Window) KeepFor() time.Duration {
	return (WindowBuckets+1)*(w.Length/WindowBuckets) + time.Second
}

// WindowOp says what SlidingWindow does with the event it is asked about.
type WindowOp int

const (
	// WindowPeek counts nothing: it reports whether an event would be
	// admitted now (a check before serving, such as "is this IP over its
	// failure limit").
	WindowPeek WindowOp = iota
	// WindowTake counts the event only when it is admitted (sign-in starts:
	// a refused start costs nothing, so a client that keeps knocking gets in
	// again as soon as its old events leave the window).
	WindowTake
	// WindowAdd counts the event whether or not it is admitted (failures:
	// they happened).
	WindowAdd
)

// String names the op for errors and traces.
func (op WindowOp) String() string {
	switch op {
	case WindowPeek:
		return "peek"
	case WindowTake:
		return "take"
	case WindowAdd:
		return "add"
	}
	return fmt.Sprintf("WindowOp(%d)", int(op))
}

// WindowWait is the verdict of a sliding window from its bucket counts
// before this event, oldest first: counts[i] is bucket idx-WindowBuckets+i,
// with len(counts) == WindowBuckets+1. It returns 0 when the event is
// admitted (fewer than w.Limit events counted), else how long from now
// until enough buckets have left the window for one more event.
func WindowWait(w Window, counts []int64, now time.Time) time.Duration {
	var sum int64
	for _, n := range counts {
		sum += n
	}
	if sum < w.Limit {
		return 0
	}
	idx, size := w.Bucket(now)
	// Bucket idx-WindowBuckets+j leaves the count when bucket idx+j+1 begins.
	for j, n := range counts {
		sum -= n
		if sum < w.Limit {
			return time.Duration((idx+int64(j)+1)*int64(size) - now.UnixNano())
		}
	}
	return time.Duration((idx+int64(len(counts)))*int64(size) - now.UnixNano()) // not reached: sum is 0 < Limit
}
