package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/store"
)

// Store layout: one record set (store.RecordStore) named stateSet, with
// one record per API tenant ("t/<id>": the tenant's JSON, secrets sealed),
// one per API client ("c/<id>", the id path-escaped) and metaRecord (the
// rest of State: who changed it last, and when). The set's head is
// State.Version. A change writes only the records it changed, in one
// atomic commit that goes through only if the head is still the version
// the change was made on (a compare-and-swap: the cross-tenant checks, one
// owner per domain or IdP id, were made against that version) and each
// written record is still at the version read (so two writers racing on
// one tenant cannot lose an update). Instances follow the set's change log
// (RecordsSince) and read the whole set again (a scan) when they fall
// behind further than the log reaches.
const (
	stateSet   = "admin"
	metaRecord = "meta"
	// logLen is how many commits the change log keeps: an instance more
	// than that behind reads the whole set again.
	logLen = 1000
	// followMax is how many commits an instance applies one by one.
	followMax = logLen
	// scanCount is the page size of a full read.
	scanCount = 1000
	// seedChunk is how many records one commit of a migration writes.
	seedChunk = 1000
	// seedStale is how long a migration may look unfinished before
	// another instance takes it over (its writer stopped).
	seedStale = time.Minute
	// staleRewrite is how many records still sealed under a previous
	// server secret (or in plaintext) one change rewrites along.
	staleRewrite = 1000
	// commitAttempts bounds how often a change is redone on a newer version.
	commitAttempts = 10
	// storeRetries is how often a change is tried again after a store
	// error (a timeout of a busy Redis) before it is answered 503.
	storeRetries = 3
)

// The layout before record sets: version N of the whole state was one
// document under legacyPrefix+N, legacyHead naming the newest. An instance
// finding no record set but such a document migrates it (migrate).
const (
	legacyHead   = "admin:head"
	legacyPrefix = "admin:state:"
	// legacyKeep is how long the migrated document is kept afterwards.
	legacyKeep = time.Hour
)

// errSeeding means the record set is being written by a migration on
// another instance; this one waits for it to finish.
// It wraps broker.ErrUnavailable: a write meanwhile is answered 503.
var errSeeding = fmt.Errorf("admin: the tenant state is being migrated by another instance: %w", broker.ErrUnavailable)

func tenantRecord(id string) string { return "t/" + url.PathEscape(id) }
func clientRecord(id string) string { return "c/" + url.PathEscape(id) }

// metaDoc is the meta record.
type metaDoc struct {
	// State is State without its tenants and clients (each has its own
	// record); a field added to State later is kept here.
	State json.RawMessage `json:"state"`
	// Seeding is set while a migration writes the set chunk by chunk:
	// instances wait for it to be cleared before they load.
	Seeding *time.Time `json:"seeding,omitempty"`
}

func (s *Service) encodeMeta(st *State, seeding *time.Time) ([]byte, error) {
	m := *st
	m.Tenants, m.Clients = nil, nil
	b, err := json.Marshal(&m)
	if err != nil {
		return nil, err
	}
	return json.Marshal(metaDoc{State: b, Seeding: seeding})
}

// decodeRecord decodes one record into st (a tenant or client is put, or
// removed when the record was deleted). Callers hold s.mu.
func (s *Service) decodeRecord(rec store.Record, tenants map[string]*Tenant, clients map[string]*Client, meta **metaDoc) error {
	kind, esc, _ := strings.Cut(rec.Name, "/")
	id, err := url.PathUnescape(esc)
	if err != nil && rec.Name != metaRecord {
		return fmt.Errorf("admin: record %q: %w", rec.Name, err)
	}
	s.sawStale = false
	switch {
	case rec.Name == metaRecord:
		if rec.Value == nil {
			return nil
		}
		var m metaDoc
		if err := json.Unmarshal(rec.Value, &m); err != nil {
			return fmt.Errorf("admin: record %q: %w", rec.Name, err)
		}
		*meta = &m
	case kind == "t":
		if rec.Value == nil {
			tenants[id] = nil
			break
		}
		var t Tenant
		if err := json.Unmarshal(rec.Value, &t); err != nil {
			return fmt.Errorf("admin: record %q: %w", rec.Name, err)
		}
		if t.ID != id {
			return fmt.Errorf("admin: record %q holds tenant %q", rec.Name, t.ID)
		}
		if err := s.openTenant(&t); err != nil {
			return err
		}
		tenants[id] = &t
	case kind == "c":
		if rec.Value == nil {
			clients[id] = nil
			break
		}
		var c Client
		if err := json.Unmarshal(rec.Value, &c); err != nil {
			return fmt.Errorf("admin: record %q: %w", rec.Name, err)
		}
		if c.ID != id {
			return fmt.Errorf("admin: record %q holds client %q", rec.Name, c.ID)
		}
		cs := []Client{c}
		if err := s.openClients(cs); err != nil {
			return err
		}
		clients[id] = &cs[0]
	default:
		return nil // a record of a later release: left alone
	}
	if s.sawStale {
		s.stale[rec.Name] = true
	} else {
		delete(s.stale, rec.Name)
	}
	if rec.Value == nil {
		delete(s.versions, rec.Name)
	} else {
		s.versions[rec.Name] = rec.Version
	}
	return nil
}

// withRecords returns base with the decoded records put in (or removed):
// one merge of each sorted list, so a thousand changes among 100k tenants
// cost one pass, not a thousand insertions.
func withRecords(base *State, head int64, tenants map[string]*Tenant, clients map[string]*Client, meta *metaDoc) (*State, error) {
	next := &State{}
	if meta != nil {
		if err := json.Unmarshal(meta.State, next); err != nil {
			return nil, fmt.Errorf("admin: record %q: %w", metaRecord, err)
		}
	} else {
		*next = *base
		next.owners = nil
	}
	next.Version, next.revKey = head, base.revKey
	next.Tenants = mergeSortedPtr(base.Tenants, tenants, func(t *Tenant) string { return t.ID })
	next.Clients = mergeSorted(base.Clients, clients, func(c *Client) string { return c.ID })
	return next, nil
}

// mergeSorted returns list (sorted by id) with changes applied: a nil
// value removes the entry with that id, another puts it.
func mergeSorted[T any](list []T, changes map[string]*T, id func(*T) string) []T {
	if len(changes) == 0 {
		return list
	}
	ids := make([]string, 0, len(changes))
	for k := range changes {
		ids = append(ids, k)
	}
	slices.Sort(ids)
	out := make([]T, 0, len(list)+len(ids))
	i := 0
	for _, k := range ids {
		for i < len(list) && id(&list[i]) < k {
			out = append(out, list[i])
			i++
		}
		if i < len(list) && id(&list[i]) == k {
			i++ // replaced or removed
		}
		if v := changes[k]; v != nil {
			out = append(out, *v)
		}
	}
	return append(out, list[i:]...)
}

// mergeSortedPtr is mergeSorted for a list of pointers (the tenants).
func mergeSortedPtr[T any](list []*T, changes map[string]*T, id func(*T) string) []*T {
	if len(changes) == 0 {
		return list
	}
	ids := make([]string, 0, len(changes))
	for k := range changes {
		ids = append(ids, k)
	}
	slices.Sort(ids)
	out := make([]*T, 0, len(list)+len(ids))
	i := 0
	for _, k := range ids {
		for i < len(list) && id(list[i]) < k {
			out = append(out, list[i])
			i++
		}
		if i < len(list) && id(list[i]) == k {
			i++ // replaced or removed
		}
		if v := changes[k]; v != nil {
			out = append(out, v)
		}
	}
	return append(out, list[i:]...)
}

// readAll reads the whole set: the head, a scan, then the changes made
// during the scan, so the result is the set at one version.
func (s *Service) readAll(ctx context.Context) (int64, []store.Record, error) {
	var lastErr error
	for range 3 {
		head, err := s.rs.RecordsHead(ctx, stateSet)
		if err != nil {
			return 0, nil, err
		}
		recs := map[string]store.Record{}
		cursor := ""
		for {
			page, next, err := s.rs.ScanRecords(ctx, stateSet, cursor, scanCount)
			if err != nil {
				return 0, nil, err
			}
			for _, r := range page {
				recs[r.Name] = r
			}
			if next == "" {
				break
			}
			cursor = next
		}
		h2, changed, err := s.rs.RecordsSince(ctx, stateSet, head, followMax)
		if errors.Is(err, store.ErrTrimmed) {
			lastErr = err // very busy writers: scan again
			continue
		}
		if err != nil {
			return 0, nil, err
		}
		for _, r := range changed {
			if r.Value == nil {
				delete(recs, r.Name)
			} else {
				recs[r.Name] = r
			}
		}
		out := make([]store.Record, 0, len(recs))
		for _, r := range recs {
			out = append(out, r)
		}
		// In name order: an unreadable record is reported the same way everywhere.
		slices.SortFunc(out, func(a, b store.Record) int { return strings.Compare(a.Name, b.Name) })
		return h2, out, nil
	}
	return 0, nil, fmt.Errorf("admin: the tenant state changed too fast to be read whole: %w", lastErr)
}

// Poll applies what changed in the store since the applied version (Run
// calls it every PollInterval).
func (s *Service) Poll(ctx context.Context) error { return s.reload(ctx, false) }

// reload applies what changed in the store since the applied version, or
// reads the whole state when full is set, after an outage, before the
// first load and when the change log does not reach back far enough.
func (s *Service) reload(ctx context.Context, full bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reloadLocked(ctx, full)
}

// storeFailed logs the first of a run of store errors and remembers to
// read the whole state once the store answers again.
func (s *Service) storeFailed(err error) error {
	if !s.outage {
		s.opts.Logger.Warn("admin: cannot read tenant state from the store; will reload when it is back", "err", err)
	}
	s.outage = true
	return err
}

func (s *Service) reloadLocked(ctx context.Context, full bool) error {
	cur := s.cur.Load()
	if full || s.outage || !s.loaded.Load() {
		return s.resync(ctx)
	}
	head, changed, err := s.rs.RecordsSince(ctx, stateSet, cur.state.Version, followMax)
	switch {
	case errors.Is(err, store.ErrTrimmed):
		s.opts.Logger.Info("admin: fell behind the change log; reading the whole tenant state", "applied", cur.state.Version, "head", head)
		return s.resync(ctx)
	case err != nil:
		return s.storeFailed(err)
	case head == cur.state.Version:
		return nil
	case head < cur.state.Version:
		// The store lost the state, or it was replaced: read what is there.
		return s.resync(ctx)
	case head == s.failed:
		return nil
	}
	t0 := time.Now()
	tenants, clients := map[string]*Tenant{}, map[string]*Client{}
	var meta *metaDoc
	for _, r := range changed {
		if err := s.decodeRecord(r, tenants, clients, &meta); err != nil {
			s.failed = head
			s.opts.Logger.Error("admin: stored tenant state is unreadable", "version", head, "err", err)
			return err
		}
	}
	if meta != nil && meta.Seeding != nil {
		return s.resync(ctx) // a migration started over: resync waits for it
	}
	next, err := withRecords(cur.state, head, tenants, clients, meta)
	if err != nil {
		s.failed = head
		return err
	}
	return s.install(ctx, next, changedIDs(tenants), len(clients) > 0, time.Since(t0))
}

// changedIDs are the keys of m.
func changedIDs[T any](m map[string]*T) []string {
	ids := make([]string, 0, len(m))
	for k := range m {
		ids = append(ids, k)
	}
	return ids
}

// resync reads the whole state and applies it. An empty store is given
// the legacy document (migrate) or, when it lost the state this instance
// applied, that state back (writeBack).
func (s *Service) resync(ctx context.Context) error {
	t0 := time.Now()
	head, recs, err := s.readAll(ctx)
	if err != nil {
		return s.storeFailed(err)
	}
	if s.outage {
		s.opts.Logger.Info("admin: store reachable again; reloading tenant state", "version", head)
		s.outage = false
	}
	cur := s.cur.Load()
	if head == 0 {
		seeded, err := s.seedEmpty(ctx, cur.state)
		if err != nil {
			return s.storeFailed(err)
		}
		if seeded {
			if head, recs, err = s.readAll(ctx); err != nil {
				return s.storeFailed(err)
			}
		}
	}
	s.versions, s.stale = map[string]int64{}, map[string]bool{}
	tenants, clients := map[string]*Tenant{}, map[string]*Client{}
	var meta *metaDoc
	for _, r := range recs {
		if err := s.decodeRecord(r, tenants, clients, &meta); err != nil {
			s.failed = head
			s.opts.Logger.Error("admin: stored tenant state is unreadable", "version", head, "err", err)
			return err
		}
	}
	if meta != nil && meta.Seeding != nil {
		if time.Since(*meta.Seeding) < seedStale {
			return errSeeding
		}
		// Its writer stopped half-way: finish it from the start.
		s.opts.Logger.Warn("admin: a migration of the tenant state was left unfinished; doing it again", "started", *meta.Seeding)
		if err := s.seed(ctx, head, s.legacyOrApplied(ctx, cur.state)); err != nil && !errors.Is(err, store.ErrConflict) {
			return s.storeFailed(err)
		}
		return errSeeding // the next poll loads what was written
	}
	next, err := withRecords(&State{revKey: s.revKey}, head, tenants, clients, meta)
	if err != nil {
		s.failed = head
		return err
	}
	return s.install(ctx, next, nil, true, time.Since(t0))
}

// install compiles st and applies it. changed lists the tenants that
// differ from the applied state (nil: any may).
func (s *Service) install(ctx context.Context, st *State, changed []string, clientsChanged bool, read time.Duration) error {
	cur := s.cur.Load()
	t0 := time.Now()
	compiled, err := s.opts.Compiler.Compile(ctx, st, false)
	t1 := time.Now()
	if err == nil {
		err = s.apply(cur, compiled, changed, clientsChanged)
	}
	if err != nil {
		s.failed = st.Version
		s.opts.Logger.Error("admin: tenant state does not apply on this instance; keeping the previous one",
			"version", st.Version, "applied", cur.state.Version, "err", err)
		return err
	}
	s.cur.Store(&snapshot{state: st, compiled: compiled})
	s.loaded.Store(true)
	if st.Version != cur.state.Version {
		s.opts.Logger.Info("admin: tenant state applied", "version", st.Version, "tenants", len(st.Tenants), "clients", len(st.Clients),
			"changed", changedCount(changed), "read", read, "compile", t1.Sub(t0), "apply", time.Since(t1))
	}
	return nil
}

func changedCount(changed []string) any {
	if changed == nil {
		return "all"
	}
	return len(changed)
}

// apply hands a compilation to Options.Apply, saying what changed since
// the applied one when that is known. The applied compilation does not
// keep the one before: Changes is cleared once Apply returns (kept, it
// chained every compilation ever applied, each with its tables).
func (s *Service) apply(cur *snapshot, c *Compiled, changed []string, clientsChanged bool) error {
	c.Changes = nil
	if changed != nil && cur.compiled != nil {
		c.Changes = &Changes{Since: cur.compiled, Tenants: changed, Clients: clientsChanged}
	}
	err := s.opts.Apply(c)
	c.Changes = nil
	return err
}

// commit applies m to the newest state, validates the result like the
// configuration file, writes what changed and applies it here. A change
// that lost the race for the next version is redone on the winner's.
func (s *Service) commit(ctx context.Context, who *caller, action, resource string, m mutation) (*State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var lastErr error
	unavailable := 0
	for range commitAttempts {
		// Catch up first: a change is made on the newest version, and never
		// on a state this instance could not read (it would be refused by
		// the head check anyway, after a compile for nothing).
		if err := s.reloadLocked(ctx, false); err != nil {
			if errors.Is(err, broker.ErrUnavailable) && !errors.Is(err, errSeeding) && unavailable < storeRetries && ctx.Err() == nil {
				unavailable++
				time.Sleep(time.Duration(unavailable) * 100 * time.Millisecond)
				continue
			}
			s.auditChange(ctx, who, action, resource, nil, nil, nil, err)
			return nil, err
		}
		st, before, after, err := s.tryCommit(ctx, who, m)
		if errors.Is(err, store.ErrConflict) {
			lastErr = err
			continue // another writer was first: redo on the newer state
		}
		if errors.Is(err, broker.ErrUnavailable) && unavailable < storeRetries && ctx.Err() == nil {
			// A timed-out commit may or may not have gone through; doing it
			// again is safe: redone on the newer state, an applied change
			// changes nothing more, and the head check refuses a stale one.
			unavailable++
			lastErr = err
			time.Sleep(time.Duration(unavailable) * 100 * time.Millisecond)
			continue
		}
		s.auditChange(ctx, who, action, resource, before, after, st, err)
		return st, err
	}
	err := fmt.Errorf("%w: %w", ErrConflict, lastErr)
	s.auditChange(ctx, who, action, resource, nil, nil, nil, err)
	return nil, err
}

func (s *Service) tryCommit(ctx context.Context, who *caller, m mutation) (st *State, before, after any, err error) {
	cur := s.cur.Load()
	base := cur.state
	next := base.clone()
	next.revKey = s.revKey
	if before, after, err = m(next); err != nil {
		return nil, before, after, err
	}
	if probs := append(sealedLookingSecrets(next), fileSettingProblems(next)...); len(probs) > 0 {
		return nil, before, after, &ValidationError{Problems: probs}
	}
	next.Version = base.Version + 1
	next.UpdatedAt = s.opts.Now().UTC()
	next.UpdatedBy = who.name
	compiled, err := s.opts.Compiler.Compile(ctx, next, true)
	if err != nil {
		return nil, before, after, err
	}
	writes, changed, clientsChanged, err := s.recordWrites(base, next)
	if err != nil {
		return nil, before, after, err
	}
	if err := s.claimLogos(ctx, base, next); err != nil { // logosweep.go
		return nil, before, after, err
	}
	v, err := s.rs.CommitRecords(ctx, stateSet, base.Version, writes, logLen)
	if err != nil {
		return nil, before, after, fmt.Errorf("admin: write version %d: %w", next.Version, err)
	}
	next.Version = v
	for _, w := range writes {
		delete(s.stale, w.Name)
		if w.Value == nil {
			delete(s.versions, w.Name)
		} else {
			s.versions[w.Name] = v
		}
	}
	if err := s.apply(cur, compiled, changed, clientsChanged); err != nil {
		// Stored and valid, yet this broker refused it: other instances may
		// take it; this one keeps serving the previous version and says so.
		s.opts.Logger.Error("admin: change stored but not applied on this instance", "version", next.Version, "err", err)
		s.failed = v
		return next, before, after, nil
	}
	s.cur.Store(&snapshot{state: next, compiled: compiled})
	return next, before, after, nil
}

// recordWrites lists the records a change from base to next writes: each
// tenant whose revision changed, each client that changed, the meta
// record, and up to staleRewrite records still sealed under a previous
// server secret. Only what is written is sealed. Callers hold s.mu.
func (s *Service) recordWrites(base, next *State) ([]store.RecordWrite, []string, bool, error) {
	var writes []store.RecordWrite
	var changed []string
	put := func(name string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		writes = append(writes, store.RecordWrite{Name: name, Value: b, Expect: s.versions[name]})
		return nil
	}
	del := func(name string) {
		writes = append(writes, store.RecordWrite{Name: name, Expect: s.versions[name]})
	}
	err := diffSorted(base.Tenants, next.Tenants, func(t **Tenant) string { return (*t).ID },
		func(a, b **Tenant) bool { return (*a).Revision == (*b).Revision && (*a).Revision != "" },
		func(oldp, nowp **Tenant) error {
			var old, now *Tenant
			if oldp != nil {
				old = *oldp
			}
			if nowp != nil {
				now = *nowp
			}
			id := now
			if id == nil {
				id = old
			}
			changed = append(changed, id.ID)
			if now == nil {
				del(tenantRecord(old.ID))
				return nil
			}
			sealed, err := s.sealTenant(*now)
			if err != nil {
				return err
			}
			return put(tenantRecord(now.ID), sealed)
		})
	if err != nil {
		return nil, nil, false, err
	}
	nclients := 0
	err = diffSorted(base.Clients, next.Clients, func(c *Client) string { return c.ID },
		func(a, b *Client) bool { return reflect.DeepEqual(a, b) },
		func(old, now *Client) error {
			nclients++
			if now == nil {
				del(clientRecord(old.ID))
				return nil
			}
			sealed, err := s.sealClients([]Client{*now})
			if err != nil {
				return err
			}
			return put(clientRecord(now.ID), sealed[0])
		})
	if err != nil {
		return nil, nil, false, err
	}
	// Secrets under a previous server secret are sealed again, a bounded
	// number per change (keys.secret rotation).
	written := make(map[string]bool, len(writes))
	for _, w := range writes {
		written[w.Name] = true
	}
	n := 0
	for name := range s.stale {
		if n >= staleRewrite {
			break
		}
		if written[name] {
			continue
		}
		kind, esc, _ := strings.Cut(name, "/")
		id, _ := url.PathUnescape(esc)
		switch kind {
		case "t":
			if i := next.tenant(id); i >= 0 {
				sealed, err := s.sealTenant(*next.Tenants[i])
				if err != nil {
					return nil, nil, false, err
				}
				if err := put(name, sealed); err != nil {
					return nil, nil, false, err
				}
				n++
			}
		case "c":
			if i := next.client(id); i >= 0 {
				sealed, err := s.sealClients(next.Clients[i : i+1])
				if err != nil {
					return nil, nil, false, err
				}
				if err := put(name, sealed[0]); err != nil {
					return nil, nil, false, err
				}
				n++
			}
		}
	}
	meta, err := s.encodeMeta(next, nil)
	if err != nil {
		return nil, nil, false, err
	}
	writes = append(writes, store.RecordWrite{Name: metaRecord, Value: meta, Expect: store.AnyVersion})
	return writes, changed, nclients > 0, nil
}

// diffSorted calls change(old, new) for each id whose entry differs
// between two lists sorted by id (old nil: added; new nil: removed).
func diffSorted[T any](a, b []T, id func(*T) string, same func(x, y *T) bool, change func(old, now *T) error) error {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j >= len(b) || (i < len(a) && id(&a[i]) < id(&b[j])):
			if err := change(&a[i], nil); err != nil {
				return err
			}
			i++
		case i >= len(a) || id(&b[j]) < id(&a[i]):
			if err := change(nil, &b[j]); err != nil {
				return err
			}
			j++
		default:
			if !same(&a[i], &b[j]) {
				if err := change(&a[i], &b[j]); err != nil {
					return err
				}
			}
			i++
			j++
		}
	}
	return nil
}

// seedSource is what a migration writes: records in their stored form.
type seedSource struct {
	records []store.RecordWrite // tenants and clients, sealed
	state   *State              // for the meta record
	from    string              // for the log
}

// seedEmpty fills an empty set: from the legacy document when there is
// one, else with st when this instance applied a state the store lost.
// It reports whether anything was written (by it or a racing instance).
func (s *Service) seedEmpty(ctx context.Context, st *State) (bool, error) {
	src, err := s.legacy(ctx)
	if err != nil {
		return false, err
	}
	if src == nil {
		if st.Version == 0 {
			return false, nil
		}
		s.opts.Logger.Error("admin: the store has lost the tenant state; writing back the applied version", "version", st.Version)
		if src, err = s.appliedSource(st); err != nil {
			return false, err
		}
	}
	if err := s.seed(ctx, 0, src); err != nil && !errors.Is(err, store.ErrConflict) {
		return false, err
	}
	return true, nil
}

// legacyOrApplied is the legacy document, or else the applied state, as a
// migration's source.
func (s *Service) legacyOrApplied(ctx context.Context, st *State) *seedSource {
	if src, err := s.legacy(ctx); err == nil && src != nil {
		return src
	}
	src, _ := s.appliedSource(st)
	return src
}

// appliedSource is the applied state as records, sealed.
func (s *Service) appliedSource(st *State) (*seedSource, error) {
	src := &seedSource{state: st, from: "applied version " + strconv.FormatInt(st.Version, 10)}
	for _, t := range st.Tenants {
		sealed, err := s.sealTenant(*t)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(sealed)
		if err != nil {
			return nil, err
		}
		src.records = append(src.records, store.RecordWrite{Name: tenantRecord(t.ID), Value: b, Expect: store.AnyVersion})
	}
	cls, err := s.sealClients(st.Clients)
	if err != nil {
		return nil, err
	}
	for _, c := range cls {
		b, err := json.Marshal(c)
		if err != nil {
			return nil, err
		}
		src.records = append(src.records, store.RecordWrite{Name: clientRecord(c.ID), Value: b, Expect: store.AnyVersion})
	}
	return src, nil
}

// legacyState is a legacy document with each tenant's and client's JSON
// kept raw: they are copied to their records as they are (sealed).
type legacyState struct {
	Version   int64             `json:"version"`
	Tenants   []json.RawMessage `json:"tenants"`
	Clients   []json.RawMessage `json:"clients"`
	UpdatedAt time.Time         `json:"updated_at"`
	UpdatedBy string            `json:"updated_by,omitempty"`
}

// legacy reads the newest legacy document (walking forward from its head,
// as the readers of that layout did); nil when there is none.
func (s *Service) legacy(ctx context.Context) (*seedSource, error) {
	b, err := s.opts.Store.Get(ctx, legacyHead)
	if errors.Is(err, broker.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("admin: read %s: %w", legacyHead, err)
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || v < 0 {
		return nil, fmt.Errorf("admin: %s holds %q, not a version", legacyHead, b)
	}
	var doc []byte
	for {
		d, err := s.opts.Store.Get(ctx, legacyPrefix+strconv.FormatInt(v+1, 10))
		if errors.Is(err, broker.ErrNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("admin: read legacy version %d: %w", v+1, err)
		}
		v, doc = v+1, d
	}
	if doc == nil && v > 0 {
		if doc, err = s.opts.Store.Get(ctx, legacyPrefix+strconv.FormatInt(v, 10)); err != nil {
			return nil, fmt.Errorf("admin: read legacy version %d: %w", v, err)
		}
	}
	if doc == nil {
		return nil, nil
	}
	var raw legacyState
	if err := json.Unmarshal(doc, &raw); err != nil {
		return nil, fmt.Errorf("admin: decode legacy state version %d: %w", v, err)
	}
	src := &seedSource{state: &State{Version: raw.Version, UpdatedAt: raw.UpdatedAt, UpdatedBy: raw.UpdatedBy},
		from: "legacy document version " + strconv.FormatInt(v, 10)}
	var ids struct {
		ID string `json:"id"`
	}
	for _, t := range raw.Tenants {
		if err := json.Unmarshal(t, &ids); err != nil || ids.ID == "" {
			return nil, fmt.Errorf("admin: legacy state version %d: a tenant without id", v)
		}
		src.records = append(src.records, store.RecordWrite{Name: tenantRecord(ids.ID), Value: t, Expect: store.AnyVersion})
	}
	for _, c := range raw.Clients {
		if err := json.Unmarshal(c, &ids); err != nil || ids.ID == "" {
			return nil, fmt.Errorf("admin: legacy state version %d: a client without id", v)
		}
		src.records = append(src.records, store.RecordWrite{Name: clientRecord(ids.ID), Value: c, Expect: store.AnyVersion})
	}
	return src, nil
}

// seed writes src into the set, whose head is base, in chunks: the first
// commit marks the meta record as seeding (instances wait), the last one
// clears it. ErrConflict: another instance is doing the same.
func (s *Service) seed(ctx context.Context, base int64, src *seedSource) error {
	if src == nil {
		return nil
	}
	now := s.opts.Now().UTC()
	t0 := time.Now()
	seeding, err := s.encodeMeta(src.state, &now)
	if err != nil {
		return err
	}
	done, err := s.encodeMeta(src.state, nil)
	if err != nil {
		return err
	}
	recs := src.records
	head := base
	for first := true; first || len(recs) > 0; first = false {
		n := min(len(recs), seedChunk)
		writes := append(slices.Clone(recs[:n]), store.RecordWrite{Name: metaRecord, Value: seeding, Expect: store.AnyVersion})
		if n == len(recs) {
			writes[len(writes)-1].Value = done
		}
		if head, err = s.rs.CommitRecords(ctx, stateSet, head, writes, logLen); err != nil {
			return err
		}
		recs = recs[n:]
	}
	s.opts.Logger.Info("admin: tenant state written as one record per tenant and client", "from", src.from,
		"records", len(src.records), "version", head, "took", time.Since(t0))
	if strings.HasPrefix(src.from, "legacy") {
		s.expireLegacy(ctx)
	}
	return nil
}

// expireLegacy lets the migrated legacy keys expire (kept legacyKeep for
// a rollback).
func (s *Service) expireLegacy(ctx context.Context) {
	b, err := s.opts.Store.Get(ctx, legacyHead)
	if err != nil {
		return
	}
	v, _ := strconv.ParseInt(string(b), 10, 64)
	_ = s.opts.Store.Touch(ctx, legacyHead, legacyKeep)
	for ; ; v++ {
		if err := s.opts.Store.Touch(ctx, legacyPrefix+strconv.FormatInt(v, 10), legacyKeep); err != nil && v > 0 {
			if !errors.Is(err, broker.ErrNotFound) {
				s.opts.Logger.Warn("admin: could not expire the migrated legacy state", "version", v, "err", err)
			}
			break
		}
	}
}
