// Package memstore is an in-memory store.Store: the embedded default for a
// single process and for tests. Records expire lazily when read and are swept
// in the background until Close.
package memstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/realmgate/realmgate/store"
)

var _ store.Store = (*Store)(nil)

// ErrBadTTL is returned for a time to live that is not positive.
var ErrBadTTL = errors.New("memstore: ttl must be positive")

// ErrNotInteger is returned by Incr when the key holds a value that is not a
// decimal integer.
var ErrNotInteger = errors.New("memstore: value is not an integer")

// sweepInterval is how often New's background goroutine drops expired records.
const sweepInterval = time.Minute

type entry struct {
	value   []byte
	expires time.Time
}

type family struct {
	grant   []byte
	cur     string
	rotated map[string]struct{} // tokens rotated away, for reuse detection (S09)
	ring    []string            // the last store.RotatedKept of them, oldest first
	expires time.Time
}

// Store is an in-memory store.Store. One mutex guards all records, so every
// method is atomic. The zero value is not usable; call New.
type Store struct {
	now func() time.Time

	mu       sync.Mutex
	entries  map[string]entry
	families map[string]*family
	indexes  map[string]*index    // index.go
	dirs     map[string]*dirSpace // directory.go: records without expiry

	histories map[string]*history // history.go

	audit   auditStreams // per-tenant audit streams (audit.go)
	records recordSets   // record sets (records.go)

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// New returns an empty Store and starts its background sweep; call Close to
// stop it.
func New() *Store {
	return newStore(time.Now, sweepInterval)
}

func newStore(now func() time.Time, every time.Duration) *Store {
	s := &Store{
		now:      now,
		entries:  make(map[string]entry),
		families: make(map[string]*family),
		indexes:  make(map[string]*index),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go s.sweepLoop(every)
	return s
}

// Close stops the background sweep. The Store keeps working afterwards, with
// expired records dropped only when read. Close is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
	})
	return nil
}

func (s *Store) sweepLoop(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sweep()
		}
	}
}

// sweep drops every expired record.
func (s *Store) sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for k, e := range s.entries {
		if !now.Before(e.expires) {
			delete(s.entries, k)
		}
	}
	for k, f := range s.families {
		if !now.Before(f.expires) {
			delete(s.families, k)
		}
	}
	for k, ix := range s.indexes {
		if !now.Before(ix.expires) {
			delete(s.indexes, k)
		}
	}
	for k, h := range s.histories {
		if !now.Before(h.expires) {
			delete(s.histories, k)
		}
	}
}

func check(ctx context.Context, ttl time.Duration, needTTL bool) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: %w", err)
	}
	if needTTL && ttl <= 0 {
		return fmt.Errorf("%w: %s", ErrBadTTL, ttl)
	}
	return nil
}

// getLocked returns the live entry under key, dropping it if expired.
func (s *Store) getLocked(key string) (entry, bool) {
	e, ok := s.entries[key]
	if !ok {
		return entry{}, false
	}
	if !s.now().Before(e.expires) {
		delete(s.entries, key)
		return entry{}, false
	}
	return e, true
}

// familyLocked returns the live family, dropping it if expired.
func (s *Store) familyLocked(id string) (*family, bool) {
	f, ok := s.families[id]
	if !ok {
		return nil, false
	}
	if !s.now().Before(f.expires) {
		delete(s.families, id)
		return nil, false
	}
	return f, true
}

func clone(b []byte) []byte {
	return append(make([]byte, 0, len(b)), b...)
}

// Put writes value under key with the given time to live, replacing any value.
func (s *Store) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := check(ctx, ttl, true); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries[key] = entry{value: clone(value), expires: s.now().Add(ttl)}
	return nil
}

// Create writes value under key only if key is absent; otherwise store.ErrExists.
func (s *Store) Create(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := check(ctx, ttl, true); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.getLocked(key); ok {
		return store.ErrExists
	}
	s.entries[key] = entry{value: clone(value), expires: s.now().Add(ttl)}
	return nil
}

// Get returns a copy of the value under key, or store.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := check(ctx, 0, false); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.getLocked(key)
	if !ok {
		return nil, store.ErrNotFound
	}
	return clone(e.value), nil
}

// Take returns the value under key and deletes it in one step: of concurrent
// callers exactly one gets the value, the others store.ErrNotFound.
func (s *Store) Take(ctx context.Context, key string) ([]byte, error) {
	if err := check(ctx, 0, false); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.getLocked(key)
	if !ok {
		return nil, store.ErrNotFound
	}
	delete(s.entries, key)
	return e.value, nil
}

// Delete removes key; deleting a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := check(ctx, 0, false); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.entries, key)
	return nil
}

// Touch sets a new time to live on an existing key, or returns store.ErrNotFound.
func (s *Store) Touch(ctx context.Context, key string, ttl time.Duration) error {
	if err := check(ctx, ttl, true); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.getLocked(key)
	if !ok {
		return store.ErrNotFound
	}
	e.expires = s.now().Add(ttl)
	s.entries[key] = e
	return nil
}

// Incr adds one to the decimal counter under key and returns the new value;
// the first increment starts the ttl window, later ones leave it alone.
func (s *Store) Incr(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	if err := check(ctx, ttl, true); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.getLocked(key)
	if !ok {
		e = entry{value: []byte("0"), expires: s.now().Add(ttl)}
	}
	n, err := strconv.ParseInt(string(e.value), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: key %q", ErrNotInteger, key)
	}
	n++
	e.value = strconv.AppendInt(nil, n, 10)
	s.entries[key] = e
	return n, nil
}

// CreateFamily starts a refresh-token family with token as its current token;
// it expires after ttl however often it rotates. An existing family gives
// store.ErrExists.
func (s *Store) CreateFamily(ctx context.Context, id, token string, grant []byte, ttl time.Duration) error {
	if err := check(ctx, ttl, true); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.familyLocked(id); ok {
		return store.ErrExists
	}
	s.families[id] = &family{
		grant:   clone(grant),
		cur:     token,
		rotated: make(map[string]struct{}),
		expires: s.now().Add(ttl),
	}
	return nil
}

// Rotate replaces the family's current token old with next and returns the
// grant. A token already rotated away revokes the family and gives
// store.ErrReused (SECURITY S09); an unknown family or token gives
// store.ErrNotFound.
func (s *Store) Rotate(ctx context.Context, id, old, next string) ([]byte, error) {
	if err := check(ctx, 0, false); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rotateLocked(id, old, next)
}

// RotateUnlessRevoked is Rotate, except that when marker exists the family
// is deleted and store.ErrRevoked returned; one step under the lock.
func (s *Store) RotateUnlessRevoked(ctx context.Context, id, old, next, marker string) ([]byte, error) {
	if err := check(ctx, 0, false); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, revoked := s.getLocked(marker); revoked {
		delete(s.families, id)
		return nil, store.ErrRevoked
	}
	return s.rotateLocked(id, old, next)
}

var _ store.SessionRotator = (*Store)(nil)

// rotateLocked is Rotate with s.mu held.
func (s *Store) rotateLocked(id, old, next string) ([]byte, error) {
	f, ok := s.familyLocked(id)
	if !ok {
		return nil, store.ErrNotFound
	}
	if _, used := f.rotated[old]; used {
		delete(s.families, id)
		return nil, store.ErrReused
	}
	if old != f.cur {
		return nil, store.ErrNotFound
	}
	f.rotated[old] = struct{}{}
	f.ring = append(f.ring, old)
	if len(f.ring) > store.RotatedKept {
		delete(f.rotated, f.ring[0])
		f.ring = f.ring[1:]
	}
	f.cur = next
	return clone(f.grant), nil
}

// RevokeFamily deletes the family; revoking a missing family is not an error.
func (s *Store) RevokeFamily(ctx context.Context, id string) error {
	if err := check(ctx, 0, false); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.families, id)
	return nil
}

// FamilyGrant returns a copy of the grant of a family that exists, has not
// expired and has not been revoked, or store.ErrNotFound.
func (s *Store) FamilyGrant(ctx context.Context, id string) ([]byte, error) {
	if err := check(ctx, 0, false); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.familyLocked(id)
	if !ok {
		return nil, store.ErrNotFound
	}
	return clone(f.grant), nil
}

// Ping always succeeds: memory is always reachable.
func (s *Store) Ping(ctx context.Context) error {
	return check(ctx, 0, false)
}
