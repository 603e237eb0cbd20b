package memstore

import (
	"context"

	"github.com/realmgate/realmgate/store"
)

var (
	_ store.Batcher      = (*Store)(nil)
	_ store.CodeRedeemer = (*Store)(nil)
)

// Batch implements store.Batcher: every op under the store's one lock, so
// the batch is one atomic step.
func (s *Store) Batch(ctx context.Context, ops []store.Op) ([]store.Result, error) {
	if err := check(ctx, 0, false); err != nil {
		return nil, err
	}
	if err := store.CheckBatch(ops); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	res := make([]store.Result, 0, len(ops))
	for _, op := range ops {
		var r store.Result
		switch op.Kind {
		case store.OpPut:
			s.entries[op.Key] = entry{value: clone(op.Value), expires: s.now().Add(op.TTL)}
		case store.OpDelete:
			delete(s.entries, op.Key)
		case store.OpTake:
			e, ok := s.getLocked(op.Key)
			if !ok {
				return append(res, r), nil
			}
			delete(s.entries, op.Key)
			r.Value = e.value
		case store.OpWindow:
			wait, err := s.windowLocked(op.Key, op.Window, op.WindowOp, op.Now)
			if err != nil {
				return res, err
			}
			r.Wait = wait
		case store.OpIndex:
			s.addToIndexLocked(op.Key, string(op.Value), op.Max, op.TTL)
		}
		res = append(res, r)
		if r.Wait > 0 {
			return res, nil
		}
	}
	return res, nil
}

// RedeemCode implements store.CodeRedeemer under the store's one lock.
func (s *Store) RedeemCode(ctx context.Context, r store.Redemption) ([]byte, error) {
	if err := check(ctx, r.UsedTTL, true); err != nil {
		return nil, err
	}
	if err := check(ctx, r.FamilyTTL, true); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.familyLocked(r.Family); ok {
		return nil, store.ErrExists
	}
	e, ok := s.getLocked(r.Code)
	if !ok {
		if u, ok := s.getLocked(r.Used); ok {
			return clone(u.value), store.ErrNotFound
		}
		return nil, store.ErrNotFound
	}
	delete(s.entries, r.Code)
	if _, revoked := s.getLocked(r.Marker); revoked {
		return nil, store.ErrRevoked
	}
	grant, _, ok := store.SplitCodeRecord(e.value)
	if !ok {
		return nil, store.ErrNotFound
	}
	now := s.now()
	s.entries[r.Used] = entry{value: []byte(r.Family), expires: now.Add(r.UsedTTL)}
	s.families[r.Family] = &family{grant: clone(grant), cur: r.Token, rotated: make(map[string]struct{}), expires: now.Add(r.FamilyTTL)}
	return e.value, nil
}
