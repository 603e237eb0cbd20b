package broker_test

import (
	"context"
	"errors"

	"github.com/realmgate/realmgate/store"
)

// The harness's recordingStore passes the DirectoryStore capability of the
// store it wraps through, so brokers under test keep a user directory; the
// records it writes are recorded like any other write.
var _ store.DirectoryStore = (*recordingStore)(nil)

var errNoDirectory = errors.New("test store keeps no directory")

func (r *recordingStore) dir() (store.DirectoryStore, error) {
	if err := r.fail(); err != nil {
		return nil, err
	}
	ds, ok := r.Store.(store.DirectoryStore)
	if !ok {
		return nil, errNoDirectory
	}
	return ds, nil
}

func (r *recordingStore) DirPut(ctx context.Context, space string, rec store.DirRecord, expect int64) (int64, error) {
	ds, err := r.dir()
	if err != nil {
		return 0, err
	}
	r.rec(space, rec.ID, string(rec.Data))
	return ds.DirPut(ctx, space, rec, expect)
}

func (r *recordingStore) DirGet(ctx context.Context, space, id string) (store.DirRecord, error) {
	ds, err := r.dir()
	if err != nil {
		return store.DirRecord{}, err
	}
	return ds.DirGet(ctx, space, id)
}

func (r *recordingStore) DirFind(ctx context.Context, space string, keys []store.IndexEntry, stamp []byte) (store.DirRecord, error) {
	ds, err := r.dir()
	if err != nil {
		return store.DirRecord{}, err
	}
	return ds.DirFind(ctx, space, keys, stamp)
}

func (r *recordingStore) DirFindAll(ctx context.Context, space string, key store.IndexEntry, limit int) ([]store.DirRecord, error) {
	ds, err := r.dir()
	if err != nil {
		return nil, err
	}
	return ds.DirFindAll(ctx, space, key, limit)
}

func (r *recordingStore) DirDelete(ctx context.Context, space string, rec store.DirRecord) error {
	ds, err := r.dir()
	if err != nil {
		return err
	}
	return ds.DirDelete(ctx, space, rec)
}

func (r *recordingStore) DirList(ctx context.Context, space, after string, skip, limit int) ([]store.DirRecord, error) {
	ds, err := r.dir()
	if err != nil {
		return nil, err
	}
	return ds.DirList(ctx, space, after, skip, limit)
}

func (r *recordingStore) DirCount(ctx context.Context, space string) (int64, error) {
	ds, err := r.dir()
	if err != nil {
		return 0, err
	}
	return ds.DirCount(ctx, space)
}
