package redisstore

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/realmgate/realmgate/store"
)

var _ store.RecordWaiter = (*Store)(nil)

// WaitRecords implements store.RecordWaiter with a blocking read of the
// set's change log (XREAD BLOCK): its entries are "<version>-1", so one
// after "<after>-1" is a commit after version after. It holds one pooled
// connection while it waits.
func (s *Store) WaitRecords(ctx context.Context, set string, after int64, max time.Duration) error {
	if err := store.ValidRecordName(set); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		max = min(max, time.Until(dl))
	}
	if max < time.Millisecond {
		return ctx.Err()
	}
	log := s.recordKeys(set)[2]
	// The client does not end a blocked read when ctx ends: the read runs
	// on (at most max, then its connection goes back to the pool) while
	// the caller, told ctx ended, goes on.
	done := make(chan error, 1)
	go func() {
		done <- s.c.XRead(context.WithoutCancel(ctx), &redis.XReadArgs{Streams: []string{log, strconv.FormatInt(after, 10) + "-1"}, Count: 1, Block: max}).Err()
	}()
	select {
	case err := <-done:
		if errors.Is(err, redis.Nil) {
			return nil // nothing within max
		}
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
