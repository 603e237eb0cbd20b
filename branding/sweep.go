package branding

// This file deletes stored logos no branding names any more (docs/branding.md,
// "When a replaced logo is deleted"). A logo is content-addressed, so the
// same record may be named again after it was replaced: the record set
// itself is the arbiter, through its versions. A sweep that finds a logo
// unnamed writes a mark next to it (markPrefix+hash: when it was first
// found unnamed) in one commit with the logo itself (rewritten as read,
// expected at the version read), so that the mark and the logo share a
// version; a later sweep, once the mark is Grace old, deletes the logo and
// its mark in one commit that expects both at the mark's version. Anything that names the logo again in
// between makes that commit fail:
//   - an upload of the same bytes (Save) rewrites the logo: a new version;
//   - a change of the admin state that names a logo its previous version did
//     not calls Claim before it commits, which deletes the mark: a new
//     version of the mark (none).
// A mark whose commit failed is dropped and a fresh one is written by the
// next sweep, so the grace period starts again. Several instances may sweep
// at once: every write expects what it read.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/realmgate/realmgate/store"
)

// markPrefix names a logo's mark: markPrefix + its hash.
const markPrefix = "unref/"

// Defaults of a Sweeper.
const (
	// DefaultGrace is how long a logo stays stored after it was first
	// found unnamed: pages rendered before, browsers still loading them
	// and instances still on the previous state find it meanwhile.
	DefaultGrace = 24 * time.Hour
	// DefaultSweepPage is how many records one page of a sweep reads
	// (each a logo of up to a few dozen KiB).
	DefaultSweepPage = 32
	// DefaultSweepPages is how many pages one Sweep reads at most: the
	// work of one run is bounded, and the next run goes on from there.
	DefaultSweepPages = 4
)

// mark is the value of a logo's mark record.
type mark struct {
	// Since is when a sweep first found the logo unnamed.
	Since time.Time `json:"since"`
}

// SweepOptions configure a Sweeper; zero fields take the defaults.
type SweepOptions struct {
	// Grace is how long a logo stays after it was first found unnamed
	// (DefaultGrace).
	Grace time.Duration
	// Page and Pages bound one Sweep: Pages pages of Page records
	// (DefaultSweepPage, DefaultSweepPages).
	Page, Pages int
	// Now is the clock (tests); nil: time.Now. Marks carry its time, so
	// instances sweeping one store should have clocks that roughly agree
	// (a skew shortens or lengthens the grace period by as much).
	Now func() time.Time
}

// Sweeper deletes the stored logos that no branding names, a bounded
// number of records per Sweep, going on where the previous Sweep stopped.
type Sweeper struct {
	rs   store.RecordStore
	opts SweepOptions

	mu     sync.Mutex // one Sweep at a time; guards cursor
	cursor string     // where the next Sweep starts ("": the beginning)
}

// NewSweeper returns a Sweeper of the logos in rs.
func NewSweeper(rs store.RecordStore, opts SweepOptions) *Sweeper {
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	if opts.Page <= 0 {
		opts.Page = DefaultSweepPage
	}
	if opts.Pages <= 0 {
		opts.Pages = DefaultSweepPages
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Sweeper{rs: rs, opts: opts}
}

// SweepResult says what one Sweep did.
type SweepResult struct {
	// Marked counts the logos found unnamed for the first time.
	Marked int
	// Deleted counts the logos deleted (unnamed for the grace period).
	Deleted int
	// Unmarked counts the marks dropped: their logo is named again, was
	// rewritten, or is gone.
	Unmarked int
	// Wrapped says the Sweep reached the end of the set; the next one
	// starts from the beginning.
	Wrapped bool
}

// Sweep reads the next pages of the set. named reports whether a hash is
// named by some branding. With mayDelete unset (the caller's view of the
// brandings may be behind another instance's), it marks and unmarks but
// deletes nothing. A store error ends the Sweep: what it did so far stays
// done, and the next Sweep reads the same page again.
func (s *Sweeper) Sweep(ctx context.Context, named func(hash string) bool, mayDelete bool) (SweepResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var res SweepResult
	for range s.opts.Pages {
		page, next, err := s.rs.ScanRecords(ctx, RecordSet, s.cursor, s.opts.Page)
		if err != nil {
			return res, fmt.Errorf("branding: sweep logos: %w", err)
		}
		for _, r := range page {
			if err := s.visit(ctx, r, named, mayDelete, &res); err != nil {
				return res, fmt.Errorf("branding: sweep logos: %w", err)
			}
		}
		s.cursor = next
		if next == "" {
			res.Wrapped = true
			return res, nil
		}
	}
	return res, nil
}

// visit handles one record of the set: a logo or a mark.
func (s *Sweeper) visit(ctx context.Context, r store.Record, named func(string) bool, mayDelete bool, res *SweepResult) error {
	if ValidHash(r.Name) {
		if named(r.Name) {
			return nil // its mark, if any, is dropped when the scan meets it
		}
		v, err := json.Marshal(mark{Since: s.opts.Now().UTC()})
		if err != nil {
			return err
		}
		// The mark must not exist yet, and the logo must still be as read
		// (not deleted by another sweep, not saved again): both then get
		// the commit's version.
		err = s.commit(ctx, store.RecordWrite{Name: markPrefix + r.Name, Value: v, Expect: 0},
			store.RecordWrite{Name: r.Name, Value: r.Value, Expect: r.Version})
		switch {
		case errors.Is(err, store.ErrConflict):
			return nil // marked before, or changed since read
		case err != nil:
			return err
		}
		res.Marked++
		return nil
	}
	hash, ok := strings.CutPrefix(r.Name, markPrefix)
	if !ok || r.Value == nil {
		return nil // not ours
	}
	var m mark
	if !ValidHash(hash) || json.Unmarshal(r.Value, &m) != nil || named(hash) {
		return s.unmark(ctx, r, res)
	}
	if !mayDelete || s.opts.Now().Sub(m.Since) < s.opts.Grace {
		return nil
	}
	// Deleted only as marked: the logo not saved again since it was
	// marked (the mark's version), the mark not claimed (Claim deletes it).
	err := s.commit(ctx, store.RecordWrite{Name: hash, Expect: r.Version}, store.RecordWrite{Name: r.Name, Expect: r.Version})
	switch {
	case errors.Is(err, store.ErrConflict):
		// Rewritten (uploaded again), gone, or claimed: the next sweep
		// marks it afresh if it is still unnamed.
		return s.unmark(ctx, r, res)
	case err != nil:
		return err
	}
	res.Deleted++
	return nil
}

// unmark deletes the mark r, unless it changed since it was read.
func (s *Sweeper) unmark(ctx context.Context, r store.Record, res *SweepResult) error {
	err := s.commit(ctx, store.RecordWrite{Name: r.Name, Expect: r.Version})
	if errors.Is(err, store.ErrConflict) {
		return nil
	}
	if err == nil {
		res.Unmarked++
	}
	return err
}

func (s *Sweeper) commit(ctx context.Context, writes ...store.RecordWrite) error {
	_, err := s.rs.CommitRecords(ctx, RecordSet, store.AnyHead, writes, logLen)
	return err
}

// Claim says that hashes are named again (by a change about to be
// committed): it deletes their marks, so that no sweep deletes them on the
// strength of an older view of the brandings. Call it before committing
// the change that names them; an error means the change must not be
// committed (the logo might be deleted under it).
func Claim(ctx context.Context, rs store.RecordStore, hashes []string) error {
	var writes []store.RecordWrite
	for _, h := range hashes {
		if !ValidHash(h) || slices.ContainsFunc(writes, func(w store.RecordWrite) bool { return w.Name == markPrefix+h }) {
			continue // the configuration refuses an invalid hash; once is enough
		}
		writes = append(writes, store.RecordWrite{Name: markPrefix + h, Expect: store.AnyVersion})
	}
	if len(writes) == 0 {
		return nil
	}
	if _, err := rs.CommitRecords(ctx, RecordSet, store.AnyHead, writes, logLen); err != nil {
		return fmt.Errorf("branding: claim logos: %w", err)
	}
	return nil
}
