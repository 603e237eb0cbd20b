package config

import (
	"strconv"
	"strings"
)

// maxPathBytes bounds the field paths one table keeps: a hostile document
// (long keys under many aliases) stops there instead of exhausting memory.
const maxPathBytes = 1 << 30

// fieldTable is where the fields of a parsed document came from.
//
// Paths outside the tenants list ("listen", "store.redis.addr", "tenants")
// are keys of a map. The fields of each tenant, millions of them in a file
// of 100k tenants, are kept instead as paths relative to "tenants[i]" in
// one byte arena, a tenant's fields next to each other in decoding order:
// recording one costs an append, not a string and a map entry (which were
// a sixth of loading such a file). A lookup in a tenant scans that
// tenant's few dozen fields.
type fieldTable struct {
	other map[string]fieldSource
	// first is the index of the first tenant whose fields this table holds.
	first   int
	arena   []byte
	entries []fieldEntry
	// starts[k] is the index in entries of tenant first+k's first field;
	// a final element ends the last tenant.
	starts []int32
}

// fieldEntry is one tenant field: its relative path arena[off:off+n].
type fieldEntry struct {
	off, n uint32
	src    fieldSource
}

// newFieldTable returns a table sized for about lines lines outside the
// tenants list and tenantLines lines of tenants, from tenant first on.
// Tenants written as onboarding templates write them (scaleconfig's: 1.33
// fields and 19 bytes of relative paths a line) fit without growing: a
// slice grown at 100k tenants was copied whole, 80 MB more allocated,
// while room never written is never touched.
func newFieldTable(lines, tenantLines, first int) *fieldTable {
	return &fieldTable{
		other:   make(map[string]fieldSource, max(lines, 8)),
		first:   first,
		arena:   make([]byte, 0, tenantLines*fieldPathBytesPerLine),
		entries: make([]fieldEntry, 0, tenantLines*fieldsPerTwoLines/2),
	}
}

// The room newFieldTable makes a line of tenants.
const (
	fieldPathBytesPerLine = 22
	fieldsPerTwoLines     = 3
)

// beginTenant starts the fields of tenant i, which follows the tenants
// this table has seen so far.
func (t *fieldTable) beginTenant(i int) {
	for len(t.starts) <= i-t.first {
		t.starts = append(t.starts, int32(len(t.entries)))
	}
}

// endTenants ends the last tenant's fields.
func (t *fieldTable) endTenants() {
	t.starts = append(t.starts, int32(len(t.entries)))
}

// addTenantField records the field at rel (a path relative to the current
// tenant). It reports false when the table is full.
func (t *fieldTable) addTenantField(rel []byte, f fieldSource) bool {
	if len(t.arena)+len(rel) > maxPathBytes || len(t.entries) >= 1<<31-1 {
		return false
	}
	t.entries = append(t.entries, fieldEntry{off: uint32(len(t.arena)), n: uint32(len(rel)), src: f})
	t.arena = append(t.arena, rel...)
	return true
}

// tenantField returns the field at rel of tenant i.
func (t *fieldTable) tenantField(i int, rel string) (fieldSource, bool) {
	k := i - t.first
	if k < 0 || k+1 >= len(t.starts) {
		return fieldSource{}, false
	}
	for _, e := range t.entries[t.starts[k]:t.starts[k+1]] {
		if string(t.arena[e.off:e.off+e.n]) == rel {
			return e.src, true
		}
	}
	return fieldSource{}, false
}

// tenants is the number of tenants whose fields t holds.
func (t *fieldTable) tenants() int { return max(len(t.starts)-1, 0) }

// each calls fn with every field t holds, tenant fields with their full path.
func (t *fieldTable) each(fn func(path string, f fieldSource)) {
	for p, f := range t.other {
		fn(p, f)
	}
	for k := range t.tenants() {
		prefix := tenantsPath + "[" + strconv.Itoa(t.first+k) + "]"
		for _, e := range t.entries[t.starts[k]:t.starts[k+1]] {
			fn(prefix+string(t.arena[e.off:e.off+e.n]), e.src)
		}
	}
}

// splitTenantPath splits "tenants[i]rest" into i and rest.
func splitTenantPath(path string) (int, string, bool) {
	rest, ok := strings.CutPrefix(path, tenantsPath+"[")
	if !ok {
		return 0, "", false
	}
	end := strings.IndexByte(rest, ']')
	if end < 1 {
		return 0, "", false
	}
	for _, c := range rest[:end] {
		if c < '0' || c > '9' {
			return 0, "", false
		}
	}
	i, err := strconv.Atoi(rest[:end])
	if err != nil || strconv.Itoa(i) != rest[:end] {
		return 0, "", false // the decoder writes indexes without leading zeros
	}
	return i, rest[end+1:], true
}
