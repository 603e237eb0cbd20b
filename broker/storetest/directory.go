package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/realmgate/realmgate/store"
)

// dirTests are the subtests of the store.DirectoryStore contract; Run runs
// them on a store that implements it.
var dirTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"DirPutGetVersions", testDirPutGetVersions},
	{"DirUniqueIndex", testDirUniqueIndex},
	{"DirIndexesFollowRecord", testDirIndexesFollowRecord},
	{"DirFindStamp", testDirFindStamp},
	{"DirFindAll", testDirFindAll},
	{"DirListAndCount", testDirListAndCount},
	{"DirDelete", testDirDelete},
	{"DirSpacesIndependent", testDirSpacesIndependent},
	{"DirPutConcurrentVersion", testDirPutConcurrentVersion},
	{"DirBadInput", testDirBadInput},
}

func dirStore(t *testing.T, s store.Store) store.DirectoryStore {
	t.Helper()
	ds, ok := s.(store.DirectoryStore)
	if !ok {
		t.Skip("the store does not implement store.DirectoryStore")
	}
	return ds
}

func dirPut(t *testing.T, ds store.DirectoryStore, space string, rec store.DirRecord, expect int64) int64 {
	t.Helper()
	v, err := ds.DirPut(t.Context(), space, rec, expect)
	if err != nil {
		t.Fatalf("DirPut(%q, %q, %d) = %v, want nil", space, rec.ID, expect, err)
	}
	return v
}

// replacing returns rec as an update of old: old's index entries are the
// ones the store removes (store.DirRecord.Replaces).
func replacing(rec, old store.DirRecord) store.DirRecord {
	rec.Replaces = &store.DirRecord{ID: old.ID, Unique: old.Unique, Multi: old.Multi, Wide: old.Wide}
	return rec
}

func wantFind(t *testing.T, ds store.DirectoryStore, space string, key store.IndexEntry, wantID string) {
	t.Helper()
	rec, err := ds.DirFind(t.Context(), space, []store.IndexEntry{key}, nil)
	switch {
	case wantID == "" && !errors.Is(err, store.ErrNotFound):
		t.Fatalf("DirFind(%v) = %q, %v; want ErrNotFound", key, rec.ID, err)
	case wantID != "" && (err != nil || rec.ID != wantID):
		t.Fatalf("DirFind(%v) = %q, %v; want %q", key, rec.ID, err, wantID)
	}
}

func testDirPutGetVersions(t *testing.T, s store.Store) {
	ds := dirStore(t, s)
	sp := uniq("sp")
	if v := dirPut(t, ds, sp, store.DirRecord{ID: "u1", Data: []byte("one"), Stamp: []byte("st")}, 0); v != 1 {
		t.Fatalf("DirPut(create) version = %d, want 1", v)
	}
	if _, err := ds.DirPut(t.Context(), sp, store.DirRecord{ID: "u1", Data: []byte("x")}, 0); !errors.Is(err, store.ErrExists) {
		t.Fatalf("DirPut(create again) = %v, want ErrExists", err)
	}
	u1 := store.DirRecord{ID: "u1"}
	if _, err := ds.DirPut(t.Context(), sp, store.DirRecord{ID: "u1", Data: []byte("x")}, 1); !errors.Is(err, store.ErrBadRecord) {
		t.Fatalf("DirPut(update without the entries it replaces) = %v, want ErrBadRecord", err)
	}
	if _, err := ds.DirPut(t.Context(), sp, replacing(store.DirRecord{ID: "u1", Data: []byte("x")}, u1), 7); !errors.Is(err, store.ErrVersion) {
		t.Fatalf("DirPut(stale version) = %v, want ErrVersion", err)
	}
	if _, err := ds.DirPut(t.Context(), sp, replacing(store.DirRecord{ID: "nope", Data: []byte("x")}, u1), 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DirPut(update of missing) = %v, want ErrNotFound", err)
	}
	if v := dirPut(t, ds, sp, replacing(store.DirRecord{ID: "u1", Data: []byte("two")}, u1), 1); v != 2 {
		t.Fatalf("DirPut(update) version = %d, want 2", v)
	}
	rec, err := ds.DirGet(t.Context(), sp, "u1")
	if err != nil || string(rec.Data) != "two" || rec.Version != 2 || string(rec.Stamp) != "st" {
		t.Fatalf("DirGet = %+v, %v; want data two, version 2, stamp kept", rec, err)
	}
	if _, err := ds.DirGet(t.Context(), sp, "u2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DirGet(missing) = %v, want ErrNotFound", err)
	}
}

func testDirUniqueIndex(t *testing.T, s store.Store) {
	ds := dirStore(t, s)
	sp := uniq("sp")
	a := store.DirRecord{ID: "a", Data: []byte("a"), Unique: []store.IndexEntry{ie("name", "alice"), ie("link", "idp sub-a")}}
	dirPut(t, ds, sp, a, 0)
	b := store.DirRecord{ID: "b", Data: []byte("b"), Unique: []store.IndexEntry{ie("name", "alice")}}
	if _, err := ds.DirPut(t.Context(), sp, b, 0); !errors.Is(err, store.ErrTaken) {
		t.Fatalf("DirPut(b with a's name) = %v, want ErrTaken", err)
	}
	if _, err := ds.DirGet(t.Context(), sp, "b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DirGet(b) after a refused create = %v, want ErrNotFound (nothing written)", err)
	}
	// The same value under another index is no conflict.
	b.Unique = []store.IndexEntry{ie("link", "alice")}
	dirPut(t, ds, sp, b, 0)
	wantFind(t, ds, sp, ie("name", "alice"), "a")
	wantFind(t, ds, sp, ie("link", "alice"), "b")
	// A record keeping its own value is no conflict either.
	dirPut(t, ds, sp, replacing(a, a), 1)
}

func testDirIndexesFollowRecord(t *testing.T, s store.Store) {
	ds := dirStore(t, s)
	sp := uniq("sp")
	old := store.DirRecord{ID: "a", Data: []byte("a"), Unique: []store.IndexEntry{ie("name", "old")},
		Multi: []store.IndexEntry{ie("email", "x@example.com")}, Wide: []store.IndexEntry{ie("grp", "g1")}}
	dirPut(t, ds, sp, old, 0)
	dirPut(t, ds, sp, replacing(store.DirRecord{ID: "a", Data: []byte("a"), Unique: []store.IndexEntry{ie("name", "new")},
		Multi: []store.IndexEntry{ie("email", "y@example.com")}, Wide: []store.IndexEntry{ie("grp", "g2")}}, old), 1)
	if got, _ := ds.DirFindAll(t.Context(), sp, ie("grp", "g1"), 10); len(got) != 0 {
		t.Fatalf("DirFindAll(old group) = %d records, want 0", len(got))
	}
	if got, _ := ds.DirFindAll(t.Context(), sp, ie("grp", "g2"), 10); !slices.Equal(ids(got), []string{"a"}) {
		t.Fatalf("DirFindAll(new group) = %v, want [a]", ids(got))
	}
	wantFind(t, ds, sp, ie("name", "old"), "")
	wantFind(t, ds, sp, ie("name", "new"), "a")
	if got, _ := ds.DirFindAll(t.Context(), sp, ie("email", "x@example.com"), 10); len(got) != 0 {
		t.Fatalf("DirFindAll(old email) = %d records, want 0", len(got))
	}
	// The freed value can be taken by another record.
	dirPut(t, ds, sp, store.DirRecord{ID: "b", Data: []byte("b"), Unique: []store.IndexEntry{ie("name", "old")}}, 0)
	wantFind(t, ds, sp, ie("name", "old"), "b")
}

func testDirFindStamp(t *testing.T, s store.Store) {
	ds := dirStore(t, s)
	sp := uniq("sp")
	dirPut(t, ds, sp, store.DirRecord{ID: "a", Data: []byte("a"), Unique: []store.IndexEntry{ie("link", "l1"), ie("ext", "e1")}}, 0)
	dirPut(t, ds, sp, store.DirRecord{ID: "b", Data: []byte("b"), Unique: []store.IndexEntry{ie("ext", "e2")}}, 0)
	// The first key that names a record wins.
	rec, err := ds.DirFind(t.Context(), sp, []store.IndexEntry{ie("link", "nope"), ie("ext", "e2"), ie("link", "l1")}, []byte("t1"))
	if err != nil || rec.ID != "b" || string(rec.Stamp) != "t1" || rec.Version != 1 {
		t.Fatalf("DirFind = %+v, %v; want b stamped t1 at version 1", rec, err)
	}
	got, err := ds.DirGet(t.Context(), sp, "b")
	if err != nil || string(got.Stamp) != "t1" || got.Version != 1 {
		t.Fatalf("DirGet after a stamping find = %+v, %v; want stamp t1, version unchanged", got, err)
	}
	if _, err := ds.DirFind(t.Context(), sp, []store.IndexEntry{ie("link", "x")}, []byte("t")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DirFind(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := ds.DirFind(t.Context(), sp, nil, nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DirFind(no keys) = %v, want ErrNotFound", err)
	}
}

func testDirFindAll(t *testing.T, s store.Store) {
	ds := dirStore(t, s)
	sp := uniq("sp")
	for _, id := range []string{"c", "a", "b"} {
		dirPut(t, ds, sp, store.DirRecord{ID: id, Data: []byte(id), Multi: []store.IndexEntry{ie("grp", "g1"), ie("grp", "g1x")}}, 0)
	}
	dirPut(t, ds, sp, store.DirRecord{ID: "d", Data: []byte("d"), Multi: []store.IndexEntry{ie("grp", "g1x")}}, 0)
	got, err := ds.DirFindAll(t.Context(), sp, ie("grp", "g1"), 10)
	if err != nil || !slices.Equal(ids(got), []string{"a", "b", "c"}) {
		t.Fatalf("DirFindAll(g1) = %v, %v; want [a b c]", ids(got), err)
	}
	if got, _ := ds.DirFindAll(t.Context(), sp, ie("grp", "g1"), 2); len(got) != 2 {
		t.Fatalf("DirFindAll(g1, limit 2) = %d records, want 2", len(got))
	}
	// Wide entries: one value held by many records, found in id order
	// whatever the ids look like; a long value (kept as a digest by some
	// stores) is found whole and told apart from its neighbours.
	long := strings.Repeat("v", 300)
	var want []string
	for i := range 300 {
		id := fmt.Sprintf("%c%c-%03d", "Aa0_-zZ"[i%7], "bB9-_"[i%5], i)
		want = append(want, id)
		dirPut(t, ds, sp, store.DirRecord{ID: id, Data: []byte(id), Wide: []store.IndexEntry{ie("team", "big")},
			Multi: []store.IndexEntry{ie("mail", long+strconv.Itoa(i%2))}}, 0)
	}
	slices.Sort(want)
	got, err = ds.DirFindAll(t.Context(), sp, ie("team", "big"), 1000)
	if err != nil || !slices.Equal(ids(got), want) {
		t.Fatalf("DirFindAll(wide) = %d records, %v; want the %d in id order", len(got), err, len(want))
	}
	if got, _ := ds.DirFindAll(t.Context(), sp, ie("team", "big"), 10); !slices.Equal(ids(got), want[:10]) {
		t.Fatalf("DirFindAll(wide, limit 10) = %v, want %v", ids(got), want[:10])
	}
	if got, _ := ds.DirFindAll(t.Context(), sp, ie("mail", long+"1"), 1000); len(got) != 150 {
		t.Fatalf("DirFindAll(long value) = %d records, want 150", len(got))
	}
}

func ids(recs []store.DirRecord) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

func testDirListAndCount(t *testing.T, s store.Store) {
	ds := dirStore(t, s)
	sp := uniq("sp")
	var want []string
	for i := range 25 {
		id := fmt.Sprintf("%cd%02d", "iAz"[i%3], i) // ids of several first letters
		want = append(want, id)
		dirPut(t, ds, sp, store.DirRecord{ID: id, Data: []byte(id)}, 0)
	}
	slices.Sort(want)
	if n, err := ds.DirCount(t.Context(), sp); err != nil || n != 25 {
		t.Fatalf("DirCount = %d, %v; want 25", n, err)
	}
	var got []string
	after := ""
	for {
		page, err := ds.DirList(t.Context(), sp, after, 0, 10)
		if err != nil {
			t.Fatalf("DirList(after %q) = %v", after, err)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, ids(page)...)
		after = page[len(page)-1].ID
	}
	if !slices.Equal(got, want) {
		t.Fatalf("DirList by cursor = %v, want %v", got, want)
	}
	page, err := ds.DirList(t.Context(), sp, "", 20, 10)
	if err != nil || !slices.Equal(ids(page), want[20:]) {
		t.Fatalf("DirList(skip 20) = %v, %v; want %v", ids(page), err, want[20:])
	}
	if page, _ := ds.DirList(t.Context(), uniq("empty"), "", 0, 10); len(page) != 0 {
		t.Fatalf("DirList(empty space) = %v, want none", ids(page))
	}
}

func testDirDelete(t *testing.T, s store.Store) {
	ds := dirStore(t, s)
	sp := uniq("sp")
	a := store.DirRecord{ID: "a", Data: []byte("a"), Unique: []store.IndexEntry{ie("name", "n")},
		Multi: []store.IndexEntry{ie("grp", "g")}, Wide: []store.IndexEntry{ie("team", "t")}}
	dirPut(t, ds, sp, a, 0)
	a.Version = 5
	if err := ds.DirDelete(t.Context(), sp, a); !errors.Is(err, store.ErrVersion) {
		t.Fatalf("DirDelete(stale) = %v, want ErrVersion", err)
	}
	a.Version = 1
	if err := ds.DirDelete(t.Context(), sp, a); err != nil {
		t.Fatalf("DirDelete = %v", err)
	}
	if got, _ := ds.DirFindAll(t.Context(), sp, ie("team", "t"), 10); len(got) != 0 {
		t.Fatalf("DirFindAll(wide) after delete = %v, want none", ids(got))
	}
	if err := ds.DirDelete(t.Context(), sp, a); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DirDelete(again) = %v, want ErrNotFound", err)
	}
	wantFind(t, ds, sp, ie("name", "n"), "")
	if got, _ := ds.DirFindAll(t.Context(), sp, ie("grp", "g"), 10); len(got) != 0 {
		t.Fatalf("DirFindAll after delete = %v, want none", ids(got))
	}
	if n, _ := ds.DirCount(t.Context(), sp); n != 0 {
		t.Fatalf("DirCount after delete = %d, want 0", n)
	}
}

func testDirSpacesIndependent(t *testing.T, s store.Store) {
	ds := dirStore(t, s)
	sp1, sp2 := uniq("sp"), uniq("sp")
	rec := store.DirRecord{ID: "a", Data: []byte("a"), Unique: []store.IndexEntry{ie("name", "n")}}
	dirPut(t, ds, sp1, rec, 0)
	dirPut(t, ds, sp2, rec, 0) // same id and unique value in another space
	wantFind(t, ds, sp2, ie("name", "n"), "a")
	rec.Version = 1
	if err := ds.DirDelete(t.Context(), sp1, rec); err != nil {
		t.Fatal(err)
	}
	wantFind(t, ds, sp2, ie("name", "n"), "a")
}

// testDirPutConcurrentVersion: of racers writing on the same version,
// exactly one wins (optimistic concurrency).
func testDirPutConcurrentVersion(t *testing.T, s store.Store) {
	ds := dirStore(t, s)
	sp := uniq("sp")
	dirPut(t, ds, sp, store.DirRecord{ID: "a", Data: []byte("a")}, 0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := ds.DirPut(t.Context(), sp, replacing(store.DirRecord{ID: "a", Data: fmt.Appendf(nil, "w%d", i)}, store.DirRecord{ID: "a"}), 1)
			if err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			} else if !errors.Is(err, store.ErrVersion) {
				t.Errorf("DirPut = %v, want nil or ErrVersion", err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d concurrent writers of version 1 succeeded, want exactly 1", wins)
	}
}

func testDirBadInput(t *testing.T, s store.Store) {
	ds := dirStore(t, s)
	sp := uniq("sp")
	for _, tc := range []struct {
		name  string
		space string
		rec   store.DirRecord
	}{
		{"empty space", "", store.DirRecord{ID: "a"}},
		{"brace in space", "a{b", store.DirRecord{ID: "a"}},
		{"empty id", sp, store.DirRecord{}},
		{"newline in id", sp, store.DirRecord{ID: "a\nb"}},
		{"tab in value", sp, store.DirRecord{ID: "a", Unique: []store.IndexEntry{ie("name", "x\ty")}}},
		{"empty value", sp, store.DirRecord{ID: "a", Multi: []store.IndexEntry{ie("grp", "")}}},
		{"bad index name", sp, store.DirRecord{ID: "a", Unique: []store.IndexEntry{ie("na:me", "x")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ds.DirPut(t.Context(), tc.space, tc.rec, 0); !errors.Is(err, store.ErrBadRecord) {
				t.Fatalf("DirPut(%q, %+v) = %v, want ErrBadRecord", tc.space, tc.rec, err)
			}
		})
	}
	if _, err := ds.DirGet(t.Context(), sp, "a\nb"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DirGet(bad id) = %v, want ErrNotFound", err)
	}
}

func ie(index, value string) store.IndexEntry { return store.IndexEntry{Index: index, Value: value} }
