package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Errors a DirectoryStore returns besides ErrNotFound, ErrExists and
// ErrUnavailable.
var (
	// ErrVersion means a DirPut or DirDelete expected another version of
	// the record than the stored one (optimistic concurrency).
	ErrVersion = errors.New("store: record version changed")
	// ErrTaken means a unique index value of a DirPut belongs to another
	// record of the space.
	ErrTaken = errors.New("store: unique value taken")
	// ErrBadRecord means a DirRecord, space or index value is malformed
	// (see CheckDirRecord).
	ErrBadRecord = errors.New("store: malformed directory record")
)

// IndexEntry is one value of a record under a named index.
type IndexEntry struct {
	// Index names the index ("link", "email", ...).
	Index string
	// Value is the record's value under it, already normalized by the
	// caller (lower-cased, ...); the store compares bytes.
	Value string
}

// DirRecord is a long-lived, versioned record of a directory space (a
// tenant's users, say) with the index entries that find it.
type DirRecord struct {
	// ID identifies the record in its space.
	ID string
	// Version is assigned by the store: 1 on creation, one more on every
	// DirPut. A caller passes the version it read to DirPut and DirDelete.
	Version int64
	// Data is the encoded record; the store does not look into it.
	Data []byte
	// Stamp is small volatile data (last sign-in) that DirFind may replace
	// without a new version; DirPut keeps it.
	Stamp []byte
	// Unique entries find exactly this record: no other record of the space
	// may hold the same (Index, Value).
	Unique []IndexEntry
	// Multi entries may be shared by a few records (an email).
	Multi []IndexEntry
	// Wide entries are shared entries whose values many records hold (a
	// group's members): a store may spread one value's records over many
	// small structures. DirFindAll finds Multi and Wide entries alike.
	Wide []IndexEntry
	// Replaces is, on an update (DirPut with expect != 0) and on
	// DirDelete, the record as the caller read it at version expect: its
	// index entries are the ones the store removes (the version check
	// proves they are current), so a store need not keep a copy of them.
	// Only its Unique, Multi and Wide are used. Required on an update.
	Replaces *DirRecord
}

// DirectoryStore is implemented by a Store that keeps directory records:
// records without expiry, grouped in spaces, each with unique and shared
// index entries the store maintains in the same atomic step as the record
// (package users builds the tenant user directory on it). memstore and
// redisstore implement it; redisstore keeps a space in one Cluster slot.
// Every method is one round trip to the store.
type DirectoryStore interface {
	// DirPut writes rec. expect 0 creates the record (ErrExists if its id
	// is present); otherwise the stored version must equal expect
	// (ErrVersion; ErrNotFound when the record is gone) and rec.Replaces
	// carries that version's index entries (ErrBadRecord without it). A
	// unique entry owned by another record gives ErrTaken and writes
	// nothing. The record's index entries are replaced by rec's. It
	// returns the new version.
	DirPut(ctx context.Context, space string, rec DirRecord, expect int64) (int64, error)
	// DirGet returns the record id (Data, Version, Stamp; no index
	// entries), or ErrNotFound.
	DirGet(ctx context.Context, space, id string) (DirRecord, error)
	// DirFind returns the record found by the first of keys (unique
	// entries) that names one, or ErrNotFound. A non-empty stamp replaces
	// the found record's Stamp in the same step, and is what the returned
	// record carries.
	DirFind(ctx context.Context, space string, keys []IndexEntry, stamp []byte) (DirRecord, error)
	// DirFindAll returns up to limit records holding the shared entry key,
	// in id order.
	DirFindAll(ctx context.Context, space string, key IndexEntry, limit int) ([]DirRecord, error)
	// DirDelete removes the record rec.ID of version rec.Version
	// (ErrVersion when another is stored) and its index entries, which rec
	// carries as read at that version (its Unique, Multi and Wide). A
	// missing record gives ErrNotFound.
	DirDelete(ctx context.Context, space string, rec DirRecord) error
	// DirList returns up to limit records in id order: those with an id
	// after after when it is not empty, else those from the skip-th (0
	// based).
	DirList(ctx context.Context, space, after string, skip, limit int) ([]DirRecord, error)
	// DirCount returns how many records the space holds.
	DirCount(ctx context.Context, space string) (int64, error)
}

// Bounds of directory spaces, ids and index entries, which every
// DirectoryStore enforces (CheckDirRecord) so that any record it accepts
// fits every implementation's layout.
const (
	MaxDirSpace      = 160
	MaxDirID         = 64
	MaxDirIndexName  = 32
	MaxDirIndexValue = 512
	MaxDirEntries    = 256
	MaxDirRecord     = 64 << 10
	MaxDirStamp      = 256
	MaxDirList       = 1000
)

// CheckDirSpace reports whether space can name a directory space: 1 to
// MaxDirSpace bytes, no braces (Redis Cluster hash tags) and no control
// characters.
func CheckDirSpace(space string) error {
	if space == "" || len(space) > MaxDirSpace || strings.ContainsAny(space, "{}") || hasControl(space) {
		return fmt.Errorf("%w: space %q", ErrBadRecord, space)
	}
	return nil
}

// CheckDirID reports whether id can name a record: 1 to MaxDirID bytes
// without control characters or spaces.
func CheckDirID(id string) error {
	if id == "" || len(id) > MaxDirID || hasControl(id) || strings.ContainsAny(id, " {}") {
		return fmt.Errorf("%w: id %q", ErrBadRecord, id)
	}
	return nil
}

// CheckDirRecord reports whether rec is within the bounds above: index
// names are 1 to MaxDirIndexName letters, digits, '-' or '_'; values are
// 1 to MaxDirIndexValue bytes without control characters.
func CheckDirRecord(rec DirRecord) error {
	if err := CheckDirID(rec.ID); err != nil {
		return err
	}
	if len(rec.Data) > MaxDirRecord || len(rec.Stamp) > MaxDirStamp {
		return fmt.Errorf("%w: record %q is %d bytes", ErrBadRecord, rec.ID, len(rec.Data))
	}
	return checkEntries(rec)
}

// checkEntries checks rec's index entries (and those it replaces).
func checkEntries(rec DirRecord) error {
	if n := len(rec.Unique) + len(rec.Multi) + len(rec.Wide); n > MaxDirEntries {
		return fmt.Errorf("%w: record %q has %d index entries", ErrBadRecord, rec.ID, n)
	}
	for _, list := range [][]IndexEntry{rec.Unique, rec.Multi, rec.Wide} {
		for _, e := range list {
			if err := CheckIndexEntry(e); err != nil {
				return err
			}
		}
	}
	if rec.Replaces != nil {
		if rec.Replaces.Replaces != nil {
			return fmt.Errorf("%w: record %q replaces a record that replaces another", ErrBadRecord, rec.ID)
		}
		return checkEntries(*rec.Replaces)
	}
	return nil
}

// CheckDirUpdate reports whether rec may be written over version expect:
// CheckDirRecord, and an update carries the entries it replaces.
func CheckDirUpdate(rec DirRecord, expect int64) error {
	if err := CheckDirRecord(rec); err != nil {
		return err
	}
	if expect != 0 && rec.Replaces == nil {
		return fmt.Errorf("%w: update of %q without the index entries it replaces", ErrBadRecord, rec.ID)
	}
	return nil
}

// CheckIndexEntry reports whether e is a well-formed index entry.
func CheckIndexEntry(e IndexEntry) error {
	if e.Index == "" || len(e.Index) > MaxDirIndexName {
		return fmt.Errorf("%w: index name %q", ErrBadRecord, e.Index)
	}
	for i := 0; i < len(e.Index); i++ {
		c := e.Index[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%w: index name %q", ErrBadRecord, e.Index)
		}
	}
	if e.Value == "" || len(e.Value) > MaxDirIndexValue || hasControl(e.Value) {
		return fmt.Errorf("%w: index %s value of %d bytes", ErrBadRecord, e.Index, len(e.Value))
	}
	return nil
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}
