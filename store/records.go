package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Errors of a RecordStore (possibly wrapped); callers check them with errors.Is.
var (
	// ErrConflict means CommitRecords found the set's head or one of the
	// records at another version than the caller expected: another writer
	// changed it first. Nothing was written.
	ErrConflict = errors.New("store: concurrent change")
	// ErrTrimmed means RecordsSince cannot say what changed since the
	// version asked for: the change log no longer reaches back that far (or
	// more changed than the caller wants to read one by one). The caller
	// reads the whole set again (ScanRecords).
	ErrTrimmed = errors.New("store: change log trimmed")
)

// AnyVersion in RecordWrite.Expect writes a record whatever its version;
// AnyHead as CommitRecords' base commits whatever the head.
const (
	AnyVersion int64 = -1
	AnyHead    int64 = -1
)

// Record is one record of a record set.
type Record struct {
	// Name identifies the record in its set: printable ASCII without
	// spaces, at most 512 bytes (ValidRecordName).
	Name string
	// Value is the record's content; nil in RecordsSince's answer means the
	// record was deleted.
	Value []byte
	// Version is the head of the set that the commit writing the record
	// made (0 for a deleted record).
	Version int64
}

// RecordWrite is one record written by CommitRecords.
type RecordWrite struct {
	// Name names the record (ValidRecordName).
	Name string
	// Value is the new content; nil deletes the record.
	Value []byte
	// Expect is the version the record must have for the commit to go
	// through: a Record.Version, 0 for a record that must not exist, or
	// AnyVersion.
	Expect int64
}

// RecordStore is implemented by a Store that keeps record sets: named
// records, each with the version of the commit that last wrote it, a head
// version counting the set's commits, and an ordered, bounded log of which
// records each commit wrote. The admin API keeps its state in one set (one
// record per tenant and per client), so a change writes and transfers only
// what it changed, and instances follow the log instead of re-reading the
// whole state. memstore and redisstore implement it (redisstore: one hash,
// one stream and one counter, all in one Cluster slot); the conformance
// suite in broker/storetest checks both. Records do not expire.
type RecordStore interface {
	// CommitRecords writes (or deletes) every record of writes in one
	// atomic step, when the set's head is base (AnyHead: whatever it is)
	// and every record is at its Expect version; otherwise it writes
	// nothing and returns ErrConflict. The commit makes head+1 the new head
	// (returned), each written record's version, and appends to the log an
	// entry naming the records written, trimming the log to about logLen
	// entries (at least logLen are kept). An empty writes is an error, as
	// are two writes of one name and an invalid name.
	CommitRecords(ctx context.Context, set string, base int64, writes []RecordWrite, logLen int) (int64, error)
	// RecordsSince returns the set's head and every record written by the
	// commits after version after, each at its value at that head (nil
	// Value: deleted), in one consistent read. With after at the head or
	// beyond, it returns the head and no records. ErrTrimmed when the log
	// no longer holds every commit after after, or more than max commits
	// came after it.
	RecordsSince(ctx context.Context, set string, after int64, max int) (head int64, changed []Record, err error)
	// RecordsHead returns the set's head: 0 for a set never written.
	RecordsHead(ctx context.Context, set string) (int64, error)
	// ScanRecords returns a page of about count records starting at cursor
	// ("" for the first page) and the cursor of the next page ("" after the
	// last). A record that exists for the whole scan is returned at least
	// once; one written or deleted during the scan may or may not be. To
	// read a consistent set, take RecordsHead first, scan, then apply
	// RecordsSince from that head.
	ScanRecords(ctx context.Context, set, cursor string, count int) (page []Record, next string, err error)
}

// ValidRecordName reports why name cannot name a record or a record set,
// or nil: it must be 1 to 512 bytes of printable ASCII without spaces,
// braces or newlines (a Redis Cluster hash tag is built from the set name).
func ValidRecordName(name string) error {
	if name == "" || len(name) > 512 {
		return fmt.Errorf("store: record name of %d bytes: want 1 to 512", len(name))
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("store: record name %q: byte %d is not printable ASCII", name, i)
		}
	}
	if strings.ContainsAny(name, "{}") {
		return fmt.Errorf("store: record name %q contains a brace", name)
	}
	return nil
}

// CheckRecordWrites checks a commit's writes as every RecordStore does:
// at least one, valid names, none twice, Expect at least AnyVersion.
func CheckRecordWrites(set string, writes []RecordWrite) error {
	if err := ValidRecordName(set); err != nil {
		return fmt.Errorf("store: record set: %w", err)
	}
	if len(writes) == 0 {
		return errors.New("store: commit without records")
	}
	seen := make(map[string]bool, len(writes))
	for _, w := range writes {
		if err := ValidRecordName(w.Name); err != nil {
			return err
		}
		if seen[w.Name] {
			return fmt.Errorf("store: record %q written twice in one commit", w.Name)
		}
		if w.Expect < AnyVersion {
			return fmt.Errorf("store: record %q: expected version %d", w.Name, w.Expect)
		}
		seen[w.Name] = true
	}
	return nil
}
