package config

import (
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"

	"gopkg.in/yaml.v3"
)

// parallelDecodeMin is the smallest tenants list decoded in parts at once:
// below it one decoder is quick enough (a variable for tests).
var parallelDecodeMin = 2000

// decodeParts is the number of parts a large tenants list is decoded in
// (a variable for tests; 0 means one per CPU).
var decodeParts = 0

// tenantsPath is the field path of the tenants list.
const tenantsPath = "tenants"

// decodeTenantsParallel decodes the items of a large tenants list into s
// in parts at once, one decoder per part, each with its own map of field
// sources, so the result is the one decoder's: the same values, the same
// problems in the same order, the same lines. Decoding a tenant touches
// only its own item of s, the part's decoder and shared read-only state
// (struct fields, the environment lookup). It reports false, having
// changed nothing d keeps, when a part ran out of the node budget (an
// alias bomb) or met a ${VAR}: one decoder then decodes the list and
// reports it as before.
func (d *decoder) decodeTenantsParallel(items []*yaml.Node, s reflect.Value, depth int) bool {
	parts := tenantDecodeParts()
	if parts < 2 || len(items) < parallelDecodeMin || d.src.tenantParts != nil {
		return false
	}
	tp := newTenantParts(d.src.file, d.maxVisits-d.visits, len(items), max(d.tenantLines, len(items)), parts)
	var wg sync.WaitGroup
	for p, sub := range tp.subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := tp.from(p); i < tp.to(p); i++ {
				sub.tenant(i, items[i], s.Index(i), depth)
			}
			sub.src.fields.endTenants()
		}()
	}
	wg.Wait()
	return d.takeTenantParts(tp, s)
}

// tenantDecodeParts is the number of parts a large tenants list is decoded in.
func tenantDecodeParts() int {
	if decodeParts == 0 {
		return runtime.GOMAXPROCS(0)
	}
	return decodeParts
}

// tenantParts are the decoders of a tenants list decoded in parts.
type tenantParts struct {
	subs []*decoder
	per  int // items a part
	n    int // items in all
	// looked is set when a part met a ${VAR}: the parts never call the
	// caller's lookupEnv, which may not be safe for concurrent use and may
	// have effects in the order of the file (a warning per variable).
	looked atomic.Bool
}

// newTenantParts makes the decoders of n tenants in about parts parts,
// each with a budget of maxVisits nodes; the list spans about lines lines.
func newTenantParts(file string, maxVisits, n, lines, parts int) *tenantParts {
	tp := &tenantParts{per: (n + parts - 1) / parts, n: n}
	parts = (n + tp.per - 1) / tp.per
	tp.subs = make([]*decoder, parts)
	for p := range parts {
		from, to := tp.from(p), tp.to(p)
		tp.subs[p] = &decoder{
			src:       source{file: file, fields: newFieldTable(0, lines*(to-from)/n+16, from)},
			path:      append(make([]byte, 0, 128), tenantsPath...),
			lookup:    func(string) (string, bool) { tp.looked.Store(true); return "", true },
			maxVisits: maxVisits,
		}
	}
	return tp
}

// from and to are the first item of part p and the one after its last.
func (tp *tenantParts) from(p int) int { return p * tp.per }
func (tp *tenantParts) to(p int) int   { return min((p+1)*tp.per, tp.n) }

// tenant decodes item i of the tenants list, the list being at depth.
func (d *decoder) tenant(i int, item *yaml.Node, v reflect.Value, depth int) {
	mark := d.pushIndex(i)
	d.beginTenant(i)
	d.decode(item, v, depth+1, item.Line)
	d.inTenant = false
	d.pop(mark)
}

// takeTenantParts takes the field sources and problems of the tenants the
// parts decoded into s, reporting true, unless one decoder has to decode
// them again: a part ran out of the node budget or met a ${VAR}. It then
// zeroes s, as one decoder finds it, and reports false.
func (d *decoder) takeTenantParts(tp *tenantParts, s reflect.Value) bool {
	visits, tooBig := d.visits, false
	for _, sub := range tp.subs {
		visits += sub.visits
		tooBig = tooBig || sub.tooBig
	}
	if tooBig || visits > d.maxVisits || tp.looked.Load() {
		for i := range s.Len() {
			s.Index(i).SetZero()
		}
		return false
	}
	d.visits = visits
	d.src.tenantParts = make([]*fieldTable, len(tp.subs))
	d.src.tenantsPer = tp.per
	for p, sub := range tp.subs {
		d.src.tenantParts[p] = sub.src.fields
		d.problems = append(d.problems, sub.problems...)
	}
	return true
}

// sizeFields makes d's table of field sources for a file of the given
// number of lines: about one field a line, those of the tenants list in
// the table's arena (or, for a list large enough to be decoded in parts,
// in the parts' tables), the others in its map.
func (d *decoder) sizeFields(root *yaml.Node, lines int) {
	items, span := tenantsSpan(root)
	span = min(span, lines)
	d.tenantLines = span
	if items >= parallelDecodeMin {
		span = 0 // the parts size their own
	}
	d.src.fields = newFieldTable(lines-d.tenantLines, span, 0)
}

// tenantsSpan returns the number of items of root's top-level tenants
// list, when it has one, and about how many lines they span.
func tenantsSpan(root *yaml.Node) (items, lines int) {
	if root == nil || root.Kind != yaml.MappingNode {
		return 0, 0
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == tenantsPath && v.Kind == yaml.SequenceNode && len(v.Content) > 0 {
			first := v.Content[0].Line
			last := v.Content[len(v.Content)-1].Line
			return len(v.Content), (last - first) * len(v.Content) / max(len(v.Content)-1, 1)
		}
	}
	return 0, 0
}
