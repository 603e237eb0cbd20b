package config

import (
	"bytes"
	"reflect"

	"gopkg.in/yaml.v3"
)

// fuseDecode turns on decoding a large tenants list while its parts are
// parsed (a variable for tests).
var fuseDecode = true

// fusedTenants is a tenants list decoded while it was parsed in parts
// (parseTenantParts): each part's items were decoded as soon as they were
// parsed, and their nodes made again for the next items, instead of the
// tree of the whole list being kept until the decoder reached it (at 100k
// tenants the nodes were 0.8 of the 1.7 GB a load peaked at). The decoder
// takes the result when it reaches the list (decode), as if it had
// decoded the list in parts itself (decodeTenantsParallel); when the
// parts must give it back (a ${VAR}, the node budget), the list is parsed
// again into a tree for one decoder, which reports it as before.
type fusedTenants struct {
	// seq is the list's node in the document's tree; its items are
	// placeholders that carry only their lines (sizeFields reads them).
	seq *yaml.Node
	// s holds the decoded tenants ([]Tenant).
	s  reflect.Value
	tp *tenantParts
	// What parseItems needs to parse the list again.
	data        []byte
	lines, from []int // from: the items' first lines
	end         int
}

// fusable reports whether the tenants list of data, its items starting on
// lines items and ending before line end, is decoded while parsed: it is
// long enough to be decoded in parts, and no ${VAR} in it would send it
// back to one decoder (a "${" in a comment or after "$$" is counted too:
// such a list is then parsed into a tree first, as before).
func fusable(data []byte, lines, items []int, end int) bool {
	return fuseDecode && len(items) >= parallelDecodeMin && tenantDecodeParts() >= 2 &&
		!bytes.Contains(data[lines[items[0]]:lines[end]], []byte("${"))
}

// newFusedTenants prepares the decoding of the list in parts of per items.
func newFusedTenants(d *decoder, data []byte, lines, items []int, end, parts int) *fusedTenants {
	n := len(items)
	first, last := items[0]+1, items[n-1]+1
	span := min((last-first)*n/max(n-1, 1), len(lines)-1) // as sizeFields finds it
	return &fusedTenants{
		s:     reflect.MakeSlice(reflect.TypeFor[[]Tenant](), n, n),
		tp:    newTenantParts(d.src.file, d.maxVisits, n, max(span, n), parts),
		data:  data,
		lines: lines,
		from:  items,
		end:   end,
	}
}

// decodePart parses and decodes part p of the list, whose items end
// before line last; false when it does not parse alone.
func (f *fusedTenants) decodePart(p, last int) bool {
	sub, from, to := f.tp.subs[p], f.tp.from(p), f.tp.to(p)
	// The list is at depth 1: its key is one of the root mapping's (depth 0).
	ok := eachItem(f.data, f.lines, f.from[from:to], last, true, func(k int, n *yaml.Node) {
		sub.tenant(from+k, n, f.s.Index(from+k), 1)
	})
	sub.src.fields.endTenants()
	return ok
}

// placeholders makes seq's items: one node a tenant, with its line.
func (f *fusedTenants) placeholders(seq *yaml.Node) {
	nodes := make([]yaml.Node, len(f.from))
	seq.Content = make([]*yaml.Node, len(f.from))
	for k, line := range f.from {
		nodes[k] = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: line + 1}
		seq.Content[k] = &nodes[k]
	}
}

// takeFused returns the decoded list into v at depth, as decodeTenantsParallel
// would have decoded it, or, when one decoder has to decode it again,
// false and the list's items parsed again into nodes (nil and a problem
// when they cannot be: parsing is deterministic, so never).
func (d *decoder) takeFused(f *fusedTenants, v reflect.Value, depth int) (taken bool, items []*yaml.Node) {
	if depth == 1 && v.Type() == f.s.Type() && d.takeTenantParts(f.tp, f.s) {
		v.Set(f.s)
		return true, nil
	}
	for p := range f.tp.subs {
		last := f.end
		if to := f.tp.to(p); to < len(f.from) {
			last = f.from[to]
		}
		part, ok := parseItems(f.data, f.lines, f.from[f.tp.from(p):f.tp.to(p)], last)
		if !ok {
			d.problem(f.seq.Line, tenantsPath, "could not be parsed again")
			return false, nil
		}
		items = append(items, part...)
	}
	return false, items
}
