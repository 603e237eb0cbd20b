package storetest

import (
	"testing"
	"time"

	"github.com/realmgate/realmgate/store"
)

// testRecordsWaitWakesAtCommit: WaitRecords returns at once when a commit
// after the version is in already, returns at the next commit when not
// (long before its maximum), returns nil after its maximum without one,
// and refuses a bad set name.
func testRecordsWaitWakesAtCommit(t *testing.T, s store.Store) {
	rs := recordStore(t, s)
	w, ok := s.(store.RecordWaiter)
	if !ok {
		t.Skip("the store does not implement store.RecordWaiter")
	}
	ctx := t.Context()
	set := uniq("wait")
	v1 := commit(t, rs, set, store.AnyHead, rput("a", "1", store.AnyVersion))
	if err := w.WaitRecords(ctx, set, v1-1, time.Minute); err != nil {
		t.Fatalf("WaitRecords(after %d, head %d) = %v, want nil at once", v1-1, v1, err)
	}
	if err := w.WaitRecords(ctx, set, v1, 20*time.Millisecond); err != nil {
		t.Fatalf("WaitRecords(after the head, 20ms) = %v, want nil after 20ms", err)
	}
	done := make(chan error, 1)
	go func() { done <- w.WaitRecords(ctx, set, v1, time.Minute) }()
	time.Sleep(50 * time.Millisecond) // most likely waiting by now; either way it must return
	commit(t, rs, set, v1, rput("a", "2", v1))
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("WaitRecords at a commit = %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("WaitRecords did not return at a commit (its maximum was a minute)")
	}
	if err := w.WaitRecords(ctx, "bad name", 0, time.Millisecond); err == nil {
		t.Error(`WaitRecords("bad name") = nil, want an error`)
	}
}
