package branding

import (
	"context"
	"errors"
	"fmt"

	"github.com/realmgate/realmgate/store"
)

// RecordSet is the record set that holds the stored logos, one record per
// logo named by its Hash: records do not expire, and every instance reads
// the same set, so a logo uploaded to one instance is served by all. A
// logo no branding names any more is deleted by a Sweeper after a grace
// period (sweep.go); the set also holds the Sweeper's marks.
const RecordSet = "branding"

// logLen is how many commits the set's change log keeps (nobody follows
// it: a logo is looked up by name).
const logLen = 16

// ErrNotFound means no stored logo has the hash.
var ErrNotFound = errors.New("branding: logo not found")

// Save stores a sanitized logo and returns its hash. Saving the same logo
// twice writes it once more under the same name, at a new version: a
// Sweeper that marked it unnamed before no longer deletes it.
func Save(ctx context.Context, rs store.RecordStore, png []byte) (string, error) {
	h := Hash(png)
	if _, err := rs.CommitRecords(ctx, RecordSet, store.AnyHead,
		[]store.RecordWrite{{Name: h, Value: png, Expect: store.AnyVersion}}, logLen); err != nil {
		return "", fmt.Errorf("branding: save logo: %w", err)
	}
	return h, nil
}

// Load returns the stored logos whose hashes want asks for, reading the
// set page by page and stopping once every wanted logo is found. A logo
// whose content does not match its name is left out.
func Load(ctx context.Context, rs store.RecordStore, want map[string]bool) (map[string][]byte, error) {
	out := map[string][]byte{}
	cursor := ""
	for {
		page, next, err := rs.ScanRecords(ctx, RecordSet, cursor, 64)
		if err != nil {
			return out, fmt.Errorf("branding: load logos: %w", err)
		}
		for _, r := range page {
			if want[r.Name] && r.Value != nil && Hash(r.Value) == r.Name {
				out[r.Name] = r.Value
			}
		}
		if next == "" || len(out) == len(want) {
			return out, nil
		}
		cursor = next
	}
}
