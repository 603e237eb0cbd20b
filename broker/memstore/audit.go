package memstore

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"

	"github.com/realmgate/realmgate/store"
)

var _ store.AuditStore = (*Store)(nil)

// auditStreams are the per-tenant audit streams, under their own lock so
// audit writes never wait for the records' lock.
type auditStreams struct {
	mu      sync.Mutex
	streams map[string][]store.AuditRecord
	lastMS  int64
	seq     uint64
}

// AppendAudit adds event to tenant's stream with an id "<unix ms>-<seq>"
// increasing across the store, keeping the newest maxLen events.
func (s *Store) AppendAudit(ctx context.Context, tenant string, event []byte, maxLen int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if maxLen <= 0 {
		return fmt.Errorf("memstore: audit maxLen must be positive, got %d", maxLen)
	}
	a := &s.audit
	ms := s.now().UnixMilli()
	a.mu.Lock()
	defer a.mu.Unlock()
	if ms > a.lastMS {
		a.lastMS, a.seq = ms, 0
	} else {
		a.seq++
	}
	if a.streams == nil {
		a.streams = map[string][]store.AuditRecord{}
	}
	id := strconv.FormatInt(a.lastMS, 10) + "-" + strconv.FormatUint(a.seq, 10)
	recs := append(a.streams[tenant], store.AuditRecord{ID: id, Event: clone(event)})
	if int64(len(recs)) > maxLen {
		recs = recs[int64(len(recs))-maxLen:]
	}
	a.streams[tenant] = recs
	return nil
}

// ReadAudit returns up to limit events of tenant's stream whose id is after
// after ("" for the oldest kept), oldest first.
func (s *Store) ReadAudit(ctx context.Context, tenant, after string, limit int) ([]store.AuditRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var cursor [2]uint64
	if after != "" {
		var ok bool
		if cursor, ok = parseID(after); !ok {
			return nil, fmt.Errorf("memstore: malformed audit id %q", after)
		}
	}
	a := &s.audit
	a.mu.Lock()
	defer a.mu.Unlock()
	recs := a.streams[tenant]
	i := 0
	if after != "" {
		i = sort.Search(len(recs), func(i int) bool {
			id, _ := parseID(recs[i].ID)
			return id[0] > cursor[0] || (id[0] == cursor[0] && id[1] > cursor[1])
		})
	}
	n := min(max(limit, 0), len(recs)-i)
	out := make([]store.AuditRecord, n)
	for j := range n {
		r := recs[i+j]
		out[j] = store.AuditRecord{ID: r.ID, Event: clone(r.Event)}
	}
	return out, nil
}

// parseID reads "<ms>-<seq>" (store.ParseAuditID).
func parseID(id string) ([2]uint64, bool) {
	ms, seq, ok := store.ParseAuditID(id)
	return [2]uint64{ms, seq}, ok
}
