package memstore

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/realmgate/realmgate/store"
)

var _ store.IndexStore = (*Store)(nil)

// index is a bounded set of members, each with the order it was added in.
type index struct {
	members map[string]uint64
	next    uint64
	expires time.Time
}

// indexLocked returns the live index under key, dropping it if expired.
func (s *Store) indexLocked(key string) (*index, bool) {
	ix, ok := s.indexes[key]
	if !ok {
		return nil, false
	}
	if !s.now().Before(ix.expires) {
		delete(s.indexes, key)
		return nil, false
	}
	return ix, true
}

// AddToIndex adds member to the index under key, keeping the newest max
// members, and makes the index live at least ttl from now.
func (s *Store) AddToIndex(ctx context.Context, key, member string, max int, ttl time.Duration) error {
	if err := check(ctx, ttl, true); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addToIndexLocked(key, member, max, ttl)
	return nil
}

// addToIndexLocked is AddToIndex with s.mu held.
func (s *Store) addToIndexLocked(key, member string, max int, ttl time.Duration) {
	ix, ok := s.indexLocked(key)
	if !ok {
		ix = &index{members: map[string]uint64{}}
		s.indexes[key] = ix
	}
	ix.next++
	ix.members[member] = ix.next
	for len(ix.members) > max && max > 0 {
		oldest, seq := "", uint64(0)
		for m, n := range ix.members {
			if oldest == "" || n < seq {
				oldest, seq = m, n
			}
		}
		delete(ix.members, oldest)
	}
	if exp := s.now().Add(ttl); exp.After(ix.expires) {
		ix.expires = exp
	}
}

// IndexMembers returns the members of the index under key, newest first.
func (s *Store) IndexMembers(ctx context.Context, key string) ([]string, error) {
	if err := check(ctx, 0, false); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ix, ok := s.indexLocked(key)
	if !ok {
		return nil, nil
	}
	out := make([]string, 0, len(ix.members))
	for m := range ix.members {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b string) int { return cmp.Compare(ix.members[b], ix.members[a]) })
	return out, nil
}
