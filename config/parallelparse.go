package config

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"sync"

	"gopkg.in/yaml.v3"
)

// parallelMin is the smallest document whose tenants are parsed in
// parallel: below it one parse is quick enough (a variable for tests).
var parallelMin = 4 << 20

// parseWays is the number of parts a large document's tenants are parsed
// in (a variable for tests; 0 means one per CPU).
var parseWays = 0

// parseParallel parses a large document's top-level block sequence
// "tenants:" in parts at once, one per CPU, and the rest of the document
// alone, then puts the parts together: the same node tree as one parse,
// line numbers included, in about 1/CPUs of the time (YAML parsing is
// most of loading 100k tenants). It returns nil whenever it cannot be
// sure of that: no such sequence, a document marker or directive, an
// alias across parts, or any error (the one parse then reports it). Items
// in a common subset of YAML skip yaml.v3 (fastyaml.go). A long enough
// list is decoded by d's parts as it is parsed (fusedecode.go), and
// d.fused set.
func parseParallel(data []byte, d *decoder) *yaml.Node {
	if len(data) < parallelMin {
		return nil
	}
	parts := parseWays
	if parts == 0 {
		parts = runtime.GOMAXPROCS(0)
	}
	return parseTenantParts(data, parts, d)
}

// parseParts is parseParallel in the given number of parts, whatever the
// size, without decoding.
func parseParts(data []byte, parts int) *yaml.Node {
	return parseTenantParts(data, parts, nil)
}

// parseTenantParts is parseParallel in the given number of parts; with d
// nil, it only parses.
func parseTenantParts(data []byte, parts int, d *decoder) *yaml.Node {
	if parts < 2 {
		return nil
	}
	if bytes.HasPrefix(data, []byte("%")) || bytes.HasPrefix(data, []byte("---")) || bytes.Contains(data, []byte("\n---")) ||
		bytes.Contains(data, []byte("\n...")) || bytes.Contains(data, []byte("\n%")) || bytes.IndexByte(data, '\t') >= 0 {
		return nil // several documents, directives or tabs: one parse says what they mean
	}
	lines := lineStarts(data)
	key, items, end := tenantsSection(data, lines)
	if parts = min(parts, len(items)/2); parts < 2 {
		return nil // a few items: one parse
	}
	// The rest of the document: the section becomes blank lines, so every
	// line keeps its number, and "tenants:" has no value until the parts
	// are put in.
	rest := make([]byte, 0, len(data)-(lines[end]-lines[key])+(end-key))
	rest = append(rest, data[:lines[key+1]]...)
	rest = append(rest, bytes.Repeat([]byte{'\n'}, end-key-1)...)
	rest = append(rest, data[lines[end]:]...)

	type result struct {
		seq *yaml.Node
		ok  bool
	}
	per := (len(items) + parts - 1) / parts
	parts = (len(items) + per - 1) / per // each part has items
	var fused *fusedTenants
	if d != nil && fusable(data, lines, items, end) {
		fused = newFusedTenants(d, data, lines, items, end, parts) // the same parts
	}
	results := make([]result, parts+1)
	var wg sync.WaitGroup
	for p := range parts {
		from := p * per
		to := min(from+per, len(items))
		last := end
		if to < len(items) {
			last = items[to]
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if fused != nil {
				results[p].ok = fused.decodePart(p, last)
				return
			}
			if nodes, ok := parseItems(data, lines, items[from:to], last); ok { // fastyaml.go
				results[p] = result{&yaml.Node{Kind: yaml.SequenceNode, Content: nodes}, true}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		doc, ok := parseOne(rest)
		results[parts] = result{doc, ok}
	}()
	wg.Wait()

	docRes := results[parts]
	if !docRes.ok {
		return nil
	}
	doc := docRes.seq
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil
	}
	root := doc.Content[0]
	var slot *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k := root.Content[i]; k.Kind == yaml.ScalarNode && k.Value == "tenants" && k.Line == key+1 {
			slot = root.Content[i+1]
		}
	}
	if slot == nil || slot.Kind != yaml.ScalarNode || slot.Tag != "!!null" || slot.Value != "" {
		return nil
	}
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: items[0] + 1, Column: itemColumn(data, lines[items[0]])}
	for _, r := range results[:parts] {
		if !r.ok {
			return nil // a part that does not parse alone (an alias to another part, say)
		}
		if fused == nil {
			seq.Content = append(seq.Content, r.seq.Content...)
		}
	}
	if fused != nil {
		fused.placeholders(seq) // every part had all its items (eachItem)
	}
	if len(seq.Content) != len(items) {
		return nil
	}
	*slot = *seq
	if fused != nil {
		fused.seq, d.fused = slot, fused
	}
	return doc
}

// parseOne parses one document; ok is false on an error or a second
// document. It returns the document node's content root for a part (its
// sequence) and the document node itself otherwise.
func parseOne(data []byte) (*yaml.Node, bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		return nil, false
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, false
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, false
	}
	if doc.Content[0].Kind == yaml.SequenceNode {
		return doc.Content[0], true
	}
	return &doc, true
}

// shiftLines adds by to the line of n and of every node under it (a part
// parsed from line by+1 of the document). An alias's target is in the
// tree too, so it is not followed.
func shiftLines(n *yaml.Node, by int) {
	n.Line += by
	for _, c := range n.Content {
		shiftLines(c, by)
	}
}

// lineStarts returns the offset of each line's first byte, and len(data)
// last (so line i is data[starts[i]:starts[i+1]]).
func lineStarts(data []byte) []int {
	starts := make([]int, 0, bytes.Count(data, []byte{'\n'})+2)
	starts = append(starts, 0)
	for i, b := range data {
		if b == '\n' && i+1 < len(data) {
			starts = append(starts, i+1)
		}
	}
	return append(starts, len(data))
}

// tenantsSection finds the top-level line "tenants:" (key, 0-based) and
// the lines where each item of its block sequence starts; end is the
// first line after the section. No items when there is no such section.
func tenantsSection(data []byte, lines []int) (key int, items []int, end int) {
	nlines := len(lines) - 1
	line := func(i int) []byte { return bytes.TrimRight(data[lines[i]:lines[i+1]], "\r\n") }
	key = -1
	for i := range nlines {
		l := line(i)
		if bytes.Equal(bytes.TrimRight(l, " "), []byte("tenants:")) {
			if key >= 0 {
				return 0, nil, 0 // twice: one parse reports it
			}
			key = i
		}
	}
	if key < 0 {
		return 0, nil, 0
	}
	indent := -1
	end = nlines
	for i := key + 1; i < nlines; i++ {
		l := line(i)
		t := bytes.TrimLeft(l, " ")
		if len(t) == 0 || t[0] == '#' {
			continue // blank or comment
		}
		col := len(l) - len(t)
		isItem := t[0] == '-' && (len(t) == 1 || t[1] == ' ')
		if indent < 0 {
			if !isItem {
				return 0, nil, 0 // not a block sequence
			}
			indent = col
		}
		switch {
		case col == indent && isItem:
			items = append(items, i)
		case col > indent:
			// inside an item
		case col == 0 && indent == 0 && !isItem, col < indent:
			end = i
			return key, items, end
		default:
			return 0, nil, 0
		}
	}
	return key, items, end
}

// itemColumn is the 1-based column of the "-" starting the line at off.
func itemColumn(data []byte, off int) int {
	return bytes.IndexByte(data[off:], '-') + 1
}
