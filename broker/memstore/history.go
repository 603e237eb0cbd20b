package memstore

import (
	"context"
	"slices"
	"time"

	"github.com/realmgate/realmgate/store"
)

var _ store.HistoryStore = (*Store)(nil)

// history is a value with a bounded set of members (store.HistoryStore).
type history struct {
	value   []byte
	members map[string]struct{}
	expires time.Time
}

// Remember replaces the value under key, adds members to its bounded set
// and reports the previous value and which members the set held.
func (s *Store) Remember(ctx context.Context, key string, value []byte, members []string, max int, ttl time.Duration) ([]byte, []bool, error) {
	if err := check(ctx, ttl, true); err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.histories == nil {
		s.histories = map[string]*history{}
	}
	h, ok := s.histories[key]
	if !ok || !now.Before(h.expires) {
		h = &history{members: map[string]struct{}{}}
		s.histories[key] = h
	}
	prev := h.value
	h.value = slices.Clone(value)
	seen := make([]bool, len(members))
	for i, m := range members {
		_, seen[i] = h.members[m]
		if !seen[i] && len(h.members) < max {
			h.members[m] = struct{}{}
		}
	}
	h.expires = now.Add(ttl)
	return prev, seen, nil
}
