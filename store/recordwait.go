package store

import (
	"context"
	"time"
)

// RecordWaiter is a RecordStore that can tell of a commit as it happens,
// so a follower applies a change without waiting for its next poll (the
// admin API's instances: Service.Run). Optional: found by type assertion;
// polling stays the fallback.
type RecordWaiter interface {
	// WaitRecords returns nil once a commit after version after is in
	// the set, or once max has passed without one (the caller reads the
	// head either way); an error when the store cannot be asked or ctx
	// ends.
	WaitRecords(ctx context.Context, set string, after int64, max time.Duration) error
}
