package memstore

import (
	"context"

	"github.com/realmgate/realmgate/store"
)

var _ store.IndexBatcher = (*Store)(nil)

// AddToIndexes adds to several indexes (store.IndexBatcher).
func (s *Store) AddToIndexes(ctx context.Context, adds []store.IndexAdd) error {
	var first error
	for _, a := range adds {
		if err := s.AddToIndex(ctx, a.Key, a.Member, a.Max, a.TTL); err != nil && first == nil {
			first = err
		}
	}
	return first
}
