package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/realmgate/realmgate/broker"
)

// Store layout. Version N of the state is the document under docKey(N),
// created with Create, so of two writers racing for N exactly one wins (the
// other redoes its change on top of N). headKey names the newest version as
// a hint for instances starting up; readers walk forward from it, so a
// writer that stopped between the two writes loses nothing.
const (
	headKey   = "admin:head"
	docPrefix = "admin:state:"
	// keep is the lifetime of the newest version: the store wants a TTL,
	// and tenant configuration must outlive any deployment.
	keep = 100 * 365 * 24 * time.Hour
	// history is how long a superseded version is kept for slow readers.
	history = time.Hour
)

func docKey(v int64) string { return docPrefix + strconv.FormatInt(v, 10) }

// get reads key, mapping a missing key to ErrNotFound.
func (s *Service) get(ctx context.Context, key string) ([]byte, error) {
	b, err := s.opts.Store.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("admin: read %s: %w", key, err)
	}
	return b, nil
}

// latest returns the newest version in the store and, when it differs from
// from, its document. Version 0 with from > 0 means the store lost the
// state (a Redis restarted without persistence).
func (s *Service) latest(ctx context.Context, from int64) (int64, []byte, error) {
	var head int64
	b, err := s.opts.Store.Get(ctx, headKey)
	switch {
	case err == nil:
		if head, err = strconv.ParseInt(string(b), 10, 64); err != nil || head < 0 {
			return 0, nil, fmt.Errorf("admin: %s holds %q, not a version", headKey, b)
		}
	case !errors.Is(err, broker.ErrNotFound):
		return 0, nil, fmt.Errorf("admin: read %s: %w", headKey, err)
	}
	v := head
	if from > head {
		// The head lags (a writer stopped before moving it) or the store
		// lost everything: tell the two apart by the document itself.
		switch _, err := s.opts.Store.Get(ctx, docKey(from)); {
		case err == nil:
			v = from
		case !errors.Is(err, broker.ErrNotFound):
			return 0, nil, fmt.Errorf("admin: read %s: %w", docKey(from), err)
		}
	}
	var doc []byte
	for {
		b, err := s.opts.Store.Get(ctx, docKey(v+1))
		if errors.Is(err, broker.ErrNotFound) {
			break
		}
		if err != nil {
			return 0, nil, fmt.Errorf("admin: read %s: %w", docKey(v+1), err)
		}
		v, doc = v+1, b
	}
	if v != from && doc == nil && v > 0 {
		if doc, err = s.get(ctx, docKey(v)); err != nil {
			return 0, nil, err
		}
	}
	return v, doc, nil
}

// publish writes st as its version; broker.ErrExists means another writer
// took that version first.
func (s *Service) publish(ctx context.Context, st *State) error {
	data, err := s.encode(st)
	if err != nil {
		return fmt.Errorf("admin: encode state: %w", err)
	}
	if err := s.opts.Store.Create(ctx, docKey(st.Version), data, keep); err != nil {
		return fmt.Errorf("admin: write version %d: %w", st.Version, err)
	}
	// Both below only help readers; a failure is logged, not fatal: the
	// version document is the truth and readers walk forward to it.
	if err := s.opts.Store.Put(ctx, headKey, []byte(strconv.FormatInt(st.Version, 10)), keep); err != nil {
		s.opts.Logger.Warn("admin: could not move the version head", "version", st.Version, "err", err)
	}
	if st.Version > 1 {
		if err := s.opts.Store.Touch(ctx, docKey(st.Version-1), history); err != nil && !errors.Is(err, broker.ErrNotFound) {
			s.opts.Logger.Warn("admin: could not expire the previous version", "version", st.Version-1, "err", err)
		}
	}
	return nil
}

// republish writes the applied state back when the store has lost it, so
// that instances starting later (and this one's next write) find it.
func (s *Service) republish(ctx context.Context, cur *snapshot) error {
	s.opts.Logger.Error("admin: the store has lost the tenant state; writing back the applied version", "version", cur.state.Version)
	if err := s.publish(ctx, cur.state); err != nil && !errors.Is(err, broker.ErrExists) {
		return err
	}
	return nil
}

// storedState is State with each tenant's JSON kept raw.
type storedState struct {
	Version   int64             `json:"version"`
	Tenants   []json.RawMessage `json:"tenants"`
	Clients   []Client          `json:"clients"`
	UpdatedAt time.Time         `json:"updated_at"`
	UpdatedBy string            `json:"updated_by,omitempty"`
}

// encode writes st as a stored document, secrets encrypted (secrets.go),
// reusing the JSON of tenants whose revision it encoded before, and
// remembers each tenant's JSON so that decoding this version here costs
// nothing. Callers hold s.mu.
func (s *Service) encode(st *State) ([]byte, error) {
	clients, err := s.sealClients(st.Clients)
	if err != nil {
		return nil, err
	}
	raw := storedState{Version: st.Version, Clients: clients, UpdatedAt: st.UpdatedAt, UpdatedBy: st.UpdatedBy,
		Tenants: make([]json.RawMessage, len(st.Tenants))}
	encoded := make(map[string]json.RawMessage, len(st.Tenants))
	decoded := make(map[string]Tenant, len(st.Tenants))
	for i, t := range st.Tenants {
		key := t.ID + "\x00" + t.Revision
		b, ok := s.encoded[key]
		if !ok || t.Revision == "" {
			sealed, err := s.sealTenant(t)
			if err != nil {
				return nil, err
			}
			if b, err = json.Marshal(sealed); err != nil {
				return nil, err
			}
		}
		raw.Tenants[i] = b
		encoded[key] = b
		decoded[string(b)] = t
	}
	if raw.Clients == nil {
		raw.Clients = []Client{}
	}
	data, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	s.encoded, s.decoded = encoded, decoded
	return data, nil
}

// decode reads a stored document, secrets decrypted; an empty one is the
// empty state. A secret that does not decrypt fails the whole document. A
// tenant whose JSON is the same as in the previous document is reused, not
// decoded again: with 10k tenants most of the cost of a new version.
// Callers hold s.mu.
func (s *Service) decode(doc []byte) (*State, error) {
	st := &State{}
	if len(doc) == 0 {
		return st, nil
	}
	var raw storedState
	if err := json.Unmarshal(doc, &raw); err != nil {
		return nil, fmt.Errorf("admin: decode state: %w", err)
	}
	if err := s.openClients(raw.Clients); err != nil {
		return nil, fmt.Errorf("admin: decode state: %w", err)
	}
	st.Version, st.Clients, st.UpdatedAt, st.UpdatedBy = raw.Version, raw.Clients, raw.UpdatedAt, raw.UpdatedBy
	st.Tenants = make([]Tenant, 0, len(raw.Tenants))
	next := make(map[string]Tenant, len(raw.Tenants))
	for _, r := range raw.Tenants {
		t, ok := s.decoded[string(r)]
		if !ok {
			if err := json.Unmarshal(r, &t); err != nil {
				return nil, fmt.Errorf("admin: decode state: %w", err)
			}
			if err := s.openTenant(&t); err != nil {
				return nil, fmt.Errorf("admin: decode state: %w", err)
			}
		}
		next[string(r)] = t
		st.Tenants = append(st.Tenants, t)
	}
	s.decoded = next
	if !slices.IsSortedFunc(st.Tenants, func(a, b Tenant) int { return strings.Compare(a.ID, b.ID) }) {
		slices.SortFunc(st.Tenants, func(a, b Tenant) int { return strings.Compare(a.ID, b.ID) })
	}
	slices.SortFunc(st.Clients, func(a, b Client) int { return strings.Compare(a.ID, b.ID) })
	return st, nil
}
