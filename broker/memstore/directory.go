package memstore

import (
	"context"
	"slices"
	"sort"

	"github.com/realmgate/realmgate/store"
)

var _ store.DirectoryStore = (*Store)(nil)

// dirSpace is one directory space: records by id, the ids in order, and
// the indexes. Records never expire.
type dirSpace struct {
	recs   map[string]*store.DirRecord
	ids    []string                       // sorted
	unique map[string]map[string]string   // index -> value -> id
	multi  map[string]map[string][]string // index -> value -> sorted ids
}

func (s *Store) spaceLocked(name string, create bool) *dirSpace {
	if s.dirs == nil {
		if !create {
			return nil
		}
		s.dirs = make(map[string]*dirSpace)
	}
	sp := s.dirs[name]
	if sp == nil && create {
		sp = &dirSpace{recs: map[string]*store.DirRecord{}, unique: map[string]map[string]string{},
			multi: map[string]map[string][]string{}}
		s.dirs[name] = sp
	}
	return sp
}

func copyRecord(r *store.DirRecord) store.DirRecord {
	return store.DirRecord{ID: r.ID, Version: r.Version, Data: clone(r.Data), Stamp: clone(r.Stamp)}
}

func insertSorted(list []string, v string) []string {
	i, found := slices.BinarySearch(list, v)
	if found {
		return list
	}
	return slices.Insert(list, i, v)
}

func removeSorted(list []string, v string) []string {
	if i, found := slices.BinarySearch(list, v); found {
		return slices.Delete(list, i, i+1)
	}
	return list
}

// DirPut writes rec, maintaining its index entries (store.DirectoryStore).
func (s *Store) DirPut(ctx context.Context, space string, rec store.DirRecord, expect int64) (int64, error) {
	if err := check(ctx, 0, false); err != nil {
		return 0, err
	}
	if err := store.CheckDirSpace(space); err != nil {
		return 0, err
	}
	if err := store.CheckDirUpdate(rec, expect); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sp := s.spaceLocked(space, true)
	old := sp.recs[rec.ID]
	switch {
	case expect == 0 && old != nil:
		return 0, store.ErrExists
	case expect != 0 && old == nil:
		return 0, store.ErrNotFound
	case expect != 0 && old.Version != expect:
		return 0, store.ErrVersion
	}
	for _, e := range rec.Unique {
		if owner, ok := sp.unique[e.Index][e.Value]; ok && owner != rec.ID {
			return 0, store.ErrTaken
		}
	}
	var version int64 = 1
	stamp := clone(rec.Stamp)
	if old != nil {
		sp.dropIndexes(old)
		version = old.Version + 1
		stamp = old.Stamp
	}
	// memstore keeps each record's entries itself (rec.Replaces is only
	// required, as by every store).
	stored := &store.DirRecord{ID: rec.ID, Version: version, Data: clone(rec.Data), Stamp: stamp,
		Unique: slices.Clone(rec.Unique), Multi: append(slices.Clone(rec.Multi), rec.Wide...)}
	sp.recs[rec.ID] = stored
	sp.ids = insertSorted(sp.ids, rec.ID)
	for _, e := range stored.Unique {
		if sp.unique[e.Index] == nil {
			sp.unique[e.Index] = map[string]string{}
		}
		sp.unique[e.Index][e.Value] = rec.ID
	}
	for _, e := range stored.Multi {
		if sp.multi[e.Index] == nil {
			sp.multi[e.Index] = map[string][]string{}
		}
		sp.multi[e.Index][e.Value] = insertSorted(sp.multi[e.Index][e.Value], rec.ID)
	}
	return version, nil
}

func (sp *dirSpace) dropIndexes(r *store.DirRecord) {
	for _, e := range r.Unique {
		if sp.unique[e.Index][e.Value] == r.ID {
			delete(sp.unique[e.Index], e.Value)
		}
	}
	for _, e := range r.Multi {
		m := sp.multi[e.Index]
		if ids := removeSorted(m[e.Value], r.ID); len(ids) == 0 {
			delete(m, e.Value)
		} else {
			m[e.Value] = ids
		}
	}
}

// DirGet returns the record id (store.DirectoryStore).
func (s *Store) DirGet(ctx context.Context, space, id string) (store.DirRecord, error) {
	if err := check(ctx, 0, false); err != nil {
		return store.DirRecord{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sp := s.spaceLocked(space, false)
	if sp == nil || sp.recs[id] == nil {
		return store.DirRecord{}, store.ErrNotFound
	}
	return copyRecord(sp.recs[id]), nil
}

// DirFind returns the record the first of keys finds, stamping it when
// stamp is not empty (store.DirectoryStore).
func (s *Store) DirFind(ctx context.Context, space string, keys []store.IndexEntry, stamp []byte) (store.DirRecord, error) {
	if err := check(ctx, 0, false); err != nil {
		return store.DirRecord{}, err
	}
	if len(stamp) > store.MaxDirStamp {
		return store.DirRecord{}, store.ErrBadRecord
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sp := s.spaceLocked(space, false)
	if sp == nil {
		return store.DirRecord{}, store.ErrNotFound
	}
	for _, k := range keys {
		id, ok := sp.unique[k.Index][k.Value]
		if !ok {
			continue
		}
		r := sp.recs[id]
		if len(stamp) > 0 {
			r.Stamp = clone(stamp)
		}
		return copyRecord(r), nil
	}
	return store.DirRecord{}, store.ErrNotFound
}

// DirFindAll returns up to limit records holding key (store.DirectoryStore).
func (s *Store) DirFindAll(ctx context.Context, space string, key store.IndexEntry, limit int) ([]store.DirRecord, error) {
	if err := check(ctx, 0, false); err != nil {
		return nil, err
	}
	limit = min(max(limit, 0), store.MaxDirList)
	s.mu.Lock()
	defer s.mu.Unlock()
	sp := s.spaceLocked(space, false)
	if sp == nil {
		return nil, nil
	}
	var out []store.DirRecord
	for _, id := range sp.multi[key.Index][key.Value] {
		if len(out) == limit {
			break
		}
		out = append(out, copyRecord(sp.recs[id]))
	}
	return out, nil
}

// DirDelete removes the record and its index entries (store.DirectoryStore).
func (s *Store) DirDelete(ctx context.Context, space string, rec store.DirRecord) error {
	if err := check(ctx, 0, false); err != nil {
		return err
	}
	if err := store.CheckDirSpace(space); err != nil {
		return err
	}
	if store.CheckDirID(rec.ID) != nil {
		return store.ErrNotFound
	}
	id, expect := rec.ID, rec.Version
	s.mu.Lock()
	defer s.mu.Unlock()
	sp := s.spaceLocked(space, false)
	if sp == nil || sp.recs[id] == nil {
		return store.ErrNotFound
	}
	r := sp.recs[id]
	if r.Version != expect {
		return store.ErrVersion
	}
	sp.dropIndexes(r)
	delete(sp.recs, id)
	sp.ids = removeSorted(sp.ids, id)
	return nil
}

// DirList returns up to limit records in id order (store.DirectoryStore).
func (s *Store) DirList(ctx context.Context, space, after string, skip, limit int) ([]store.DirRecord, error) {
	if err := check(ctx, 0, false); err != nil {
		return nil, err
	}
	limit = min(max(limit, 0), store.MaxDirList)
	s.mu.Lock()
	defer s.mu.Unlock()
	sp := s.spaceLocked(space, false)
	if sp == nil {
		return nil, nil
	}
	start := max(skip, 0)
	if after != "" {
		start = sort.SearchStrings(sp.ids, after)
		if start < len(sp.ids) && sp.ids[start] == after {
			start++
		}
	}
	var out []store.DirRecord
	for i := start; i < len(sp.ids) && len(out) < limit; i++ {
		out = append(out, copyRecord(sp.recs[sp.ids[i]]))
	}
	return out, nil
}

// DirCount returns how many records the space holds (store.DirectoryStore).
func (s *Store) DirCount(ctx context.Context, space string) (int64, error) {
	if err := check(ctx, 0, false); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sp := s.spaceLocked(space, false)
	if sp == nil {
		return 0, nil
	}
	return int64(len(sp.ids)), nil
}
