package memstore

import (
	"context"
	"time"

	"github.com/realmgate/realmgate/store"
)

var _ store.RecordWaiter = (*Store)(nil)

// WaitRecords implements store.RecordWaiter: CommitRecords wakes every
// waiter of the set.
func (s *Store) WaitRecords(ctx context.Context, set string, after int64, max time.Duration) error {
	if err := store.ValidRecordName(set); err != nil {
		return err
	}
	r := &s.records
	r.mu.Lock()
	rs := r.set(set, true)
	if rs.head > after {
		r.mu.Unlock()
		return nil
	}
	if rs.wake == nil {
		rs.wake = make(chan struct{})
	}
	wake := rs.wake
	r.mu.Unlock()
	t := time.NewTimer(max)
	defer t.Stop()
	select {
	case <-wake:
		return nil
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
