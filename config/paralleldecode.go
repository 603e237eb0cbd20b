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
func (d *decoder) decodeTenantsParallel(n *yaml.Node, s reflect.Value, depth int) bool {
	parts := decodeParts
	if parts == 0 {
		parts = runtime.GOMAXPROCS(0)
	}
	items := n.Content
	if parts < 2 || len(items) < parallelDecodeMin || d.src.tenantParts != nil {
		return false
	}
	per := (len(items) + parts - 1) / parts
	parts = (len(items) + per - 1) / per
	lines := max(d.tenantLines, len(items))
	subs := make([]*decoder, parts)
	// The parts never call the caller's lookupEnv: it may not be safe for
	// concurrent use, and may have effects in the order of the file (a
	// warning per variable). A tenant that needs one sends the list back
	// to one decoder.
	var looked atomic.Bool
	var wg sync.WaitGroup
	for p := range parts {
		from, to := p*per, min((p+1)*per, len(items))
		sub := &decoder{
			src:       source{file: d.src.file, fields: newFieldTable(0, lines*(to-from)/len(items)+16, from)},
			path:      append(make([]byte, 0, 128), tenantsPath...),
			lookup:    func(string) (string, bool) { looked.Store(true); return "", true },
			maxVisits: d.maxVisits - d.visits,
		}
		subs[p] = sub
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := from; i < to; i++ {
				item := items[i]
				mark := sub.pushIndex(i)
				sub.beginTenant(i)
				sub.decode(item, s.Index(i), depth+1, item.Line)
				sub.inTenant = false
				sub.pop(mark)
			}
			sub.src.fields.endTenants()
		}()
	}
	wg.Wait()
	visits, tooBig := d.visits, false
	for _, sub := range subs {
		visits += sub.visits
		tooBig = tooBig || sub.tooBig
	}
	if tooBig || visits > d.maxVisits || looked.Load() {
		for i := range items {
			s.Index(i).SetZero() // as one decoder would find them
		}
		return false
	}
	d.visits = visits
	d.src.tenantParts = make([]*fieldTable, parts)
	d.src.tenantsPer = per
	for p, sub := range subs {
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
