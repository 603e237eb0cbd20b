package config

import (
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// fastItems turns the fast path of parseParts on (a variable for tests):
// the items of a tenants list written in a common subset of YAML are
// parsed by fastYAML, the rest by yaml.v3 as before.
var fastItems = true

// fastYAML parses one item of a block sequence written in a common subset
// of YAML straight into the yaml.Node tree yaml.v3 makes of it (kind,
// style, tag, value, line and column; comments are dropped: nothing reads
// them). It is several times quicker than yaml.v3, which spends most of
// loading 100k tenants: nodes come from slabs, values are substrings of
// the text. The subset is what configuration files are made of: block
// mappings and sequences (compact "- key: v" items, sequences at their
// key's indentation), one-line plain, single- and double-quoted scalars,
// one-line flow sequences of scalars, comments and blank lines. Anything
// else (anchors, aliases, tags, merge keys, block and multi-line scalars,
// flow mappings, "?" keys, tabs, CR, control characters, document
// markers, odd indentation) makes item report false, and the caller lets
// yaml.v3 parse that item: the subset is kept where yaml.v3's rules are
// plain, so that it never disagrees with it (FuzzFastYAMLSameAsYAMLv3).
// A fastYAML is used by one goroutine at a time.
type fastYAML struct {
	nodes []yaml.Node  // slab of nodes not handed out yet
	kids  []*yaml.Node // slab of Content entries not handed out yet
	// nodeSlab and kidSlab are the whole slabs nodes and kids are the
	// rest of, for recycle.
	nodeSlab []yaml.Node
	kidSlab  []*yaml.Node
	stack    []*yaml.Node // children of the nodes being parsed

	// The item being parsed.
	src   string
	lines []fastLine
	li    int // the current line
	line0 int // the 1-based line number of lines[0]
	depth int
}

// fastLine is one line of the item: src[start:end] without its line
// break; text starts at start+indent.
type fastLine struct {
	start, end, indent int
	blank              bool // empty or only a comment
	ascii              bool
}

const (
	fastNodeSlab = 4096
	fastKidSlab  = 8192
	// fastMaxDepth bounds nesting (yaml.v3 refuses more than 10000 levels).
	fastMaxDepth = 500
	// fastMaxKey is the longest key taken: yaml.v3 wants a simple key's
	// ":" within 1024 characters.
	fastMaxKey = 1000
)

// item parses src, one item of a block sequence: its first line starts
// with spaces and "-", and every other line is blank, a comment or more
// indented. line is src's first line number in the file. ok is false when
// src is outside the subset.
func (f *fastYAML) item(src string, line int) (n *yaml.Node, ok bool) {
	f.src, f.line0, f.li, f.depth = src, line, 0, 0
	f.stack = f.stack[:0]
	if !f.split() || len(f.lines) == 0 {
		return nil, false
	}
	first := f.lines[0]
	if first.blank || src[first.start+first.indent] != '-' {
		return nil, false
	}
	n, ok = f.seqEntry(first.indent)
	if !ok {
		return nil, false
	}
	f.li++
	if f.next(); f.li < len(f.lines) {
		return nil, false // a second entry, or something less indented
	}
	return n, true
}

// split fills f.lines, refusing characters the subset leaves to yaml.v3.
func (f *fastYAML) split() bool {
	f.lines = f.lines[:0]
	s := f.src
	for start := 0; start < len(s); {
		end := strings.IndexByte(s[start:], '\n')
		if end < 0 {
			end = len(s)
		} else {
			end += start
		}
		l := fastLine{start: start, end: end, ascii: true}
		for i := start; i < end; i++ {
			c := s[i]
			switch {
			case c >= 0x20 && c < 0x7f:
			case c >= 0x80:
				l.ascii = false
			default:
				return false // tab, CR, DEL, control characters
			}
		}
		if !l.ascii && !printableUTF8(s[start:end]) {
			return false
		}
		for l.start+l.indent < end && s[l.start+l.indent] == ' ' {
			l.indent++
		}
		text := s[l.start+l.indent : end]
		l.blank = text == "" || text[0] == '#'
		if l.indent == 0 && (strings.HasPrefix(text, "---") || strings.HasPrefix(text, "...") || strings.HasPrefix(text, "%")) {
			return false // document markers and directives
		}
		f.lines = append(f.lines, l)
		start = end + 1
	}
	return true
}

// printableUTF8 reports whether s is valid UTF-8 whose non-ASCII
// characters yaml.v3 takes as printable and not as line breaks or a byte
// order mark (invalid bytes decode as U+FFFD, refused).
func printableUTF8(s string) bool {
	for _, r := range s {
		if r >= 0x80 && (r < 0xA0 || r == 0x2028 || r == 0x2029 || r >= 0xD800 && r < 0xE000 || r >= 0xFEFF) {
			return false // C1 controls, line separators, the BOM; U+FFFD and beyond are left to yaml.v3 too
		}
	}
	return true
}

// next moves f.li to the next line that is not blank (or past the end).
func (f *fastYAML) next() {
	for f.li < len(f.lines) && f.lines[f.li].blank {
		f.li++
	}
}

// text returns line i's characters.
func (f *fastYAML) text(i int) string {
	return f.src[f.lines[i].start:f.lines[i].end]
}

// node returns a new node from the slab.
func (f *fastYAML) node(kind yaml.Kind, style yaml.Style, tag, value string, li, pos int) *yaml.Node {
	if len(f.nodes) == 0 {
		f.nodeSlab = make([]yaml.Node, fastNodeSlab)
		f.nodes = f.nodeSlab
	}
	n := &f.nodes[0]
	f.nodes = f.nodes[1:]
	// Field by field: the slab is zeroed, and copying a whole Node would
	// cost a write barrier over all its pointers.
	n.Kind, n.Style, n.Tag, n.Value = kind, style, tag, value
	n.Line, n.Column = f.line0+li, f.column(li, pos)
	return n
}

// recycle hands out again the nodes of the current slabs, zeroed: the
// caller holds no node made since the last recycle. Nodes of slabs that
// filled up before are left to the collector.
func (f *fastYAML) recycle() {
	if used := len(f.nodeSlab) - len(f.nodes); used > 0 {
		clear(f.nodeSlab[:used])
		f.nodes = f.nodeSlab
	}
	if used := len(f.kidSlab) - len(f.kids); used > 0 {
		clear(f.kidSlab[:used])
		f.kids = f.kidSlab
	}
}

// column is the 1-based column of byte pos of line li, in characters.
func (f *fastYAML) column(li, pos int) int {
	if f.lines[li].ascii {
		return pos + 1
	}
	return utf8.RuneCountInString(f.text(li)[:pos]) + 1
}

// content gives n the children pushed since mark.
func (f *fastYAML) content(n *yaml.Node, mark int) {
	kids := f.stack[mark:]
	if len(kids) > 0 {
		if len(f.kids) < len(kids) {
			f.kidSlab = make([]*yaml.Node, max(fastKidSlab, len(kids)))
			f.kids = f.kidSlab
		}
		n.Content = f.kids[:len(kids):len(kids)]
		copy(n.Content, kids)
		f.kids = f.kids[len(kids):]
	}
	f.stack = f.stack[:mark]
}

// seqEntry parses the entry of a block sequence at column col that starts
// on the current line; it leaves f.li on the entry's last line.
func (f *fastYAML) seqEntry(col int) (*yaml.Node, bool) {
	t := f.text(f.li)
	pos := col + 1 // after "-"
	if pos < len(t) && t[pos] != ' ' {
		return nil, false
	}
	for pos < len(t) && t[pos] == ' ' {
		pos++
	}
	if pos == len(t) || t[pos] == '#' {
		return f.valueBelow(col, false, f.li, col+1)
	}
	return f.inline(pos, true)
}

// valueBelow parses the value of a key or sequence entry with nothing
// after its indicator: the block node on the lines below, more indented
// than col (or, for a key, a sequence at col), or else null, placed after
// the indicator (at byte pos of line li), as yaml.v3 places it.
func (f *fastYAML) valueBelow(col int, key bool, li, pos int) (*yaml.Node, bool) {
	f.li++
	f.next()
	if f.li < len(f.lines) {
		l := f.lines[f.li]
		item := f.src[l.start+l.indent] == '-'
		if l.indent > col || key && l.indent == col && item {
			if item {
				return f.seq(l.indent)
			}
			return f.mapping(l.indent, l.indent)
		}
	}
	f.li = li
	return f.node(yaml.ScalarNode, 0, "!!null", "", li, pos), true
}

// seq parses a block sequence whose entries are at column col, from the
// current line; it leaves f.li on its last line.
func (f *fastYAML) seq(col int) (*yaml.Node, bool) {
	if f.depth++; f.depth > fastMaxDepth {
		return nil, false
	}
	defer func() { f.depth-- }()
	n := f.node(yaml.SequenceNode, 0, "!!seq", "", f.li, col)
	mark := len(f.stack)
	for {
		e, ok := f.seqEntry(col)
		if !ok {
			return nil, false
		}
		f.stack = append(f.stack, e)
		last := f.li
		f.li++
		f.next()
		if f.li == len(f.lines) || f.lines[f.li].indent < col {
			f.li = last
			break
		}
		l := f.lines[f.li]
		if l.indent > col {
			return nil, false
		}
		if f.src[l.start+l.indent] != '-' {
			f.li = last
			break // the next key of the mapping this sequence is a value of
		}
	}
	f.content(n, mark)
	return n, true
}

// mapping parses a block mapping whose keys are at column col, from byte
// pos of the current line; it leaves f.li on its last line.
func (f *fastYAML) mapping(col, pos int) (*yaml.Node, bool) {
	if f.depth++; f.depth > fastMaxDepth {
		return nil, false
	}
	defer func() { f.depth-- }()
	n := f.node(yaml.MappingNode, 0, "!!map", "", f.li, pos)
	mark := len(f.stack)
	for {
		k, after, ok := f.scalar(f.text(f.li), pos, false)
		if !ok || after-pos > fastMaxKey {
			return nil, false
		}
		t := f.text(f.li)
		if after >= len(t) || t[after] != ':' || after+1 < len(t) && t[after+1] != ' ' {
			return nil, false // not a key
		}
		f.stack = append(f.stack, k)
		vpos := after + 1
		for vpos < len(t) && t[vpos] == ' ' {
			vpos++
		}
		var v *yaml.Node
		if vpos == len(t) || t[vpos] == '#' {
			v, ok = f.valueBelow(col, true, f.li, after+1)
		} else {
			v, ok = f.inline(vpos, false)
		}
		if !ok {
			return nil, false
		}
		f.stack = append(f.stack, v)
		last := f.li
		f.li++
		f.next()
		if f.li == len(f.lines) || f.lines[f.li].indent < col {
			f.li = last
			break
		}
		if f.lines[f.li].indent > col {
			return nil, false // a multi-line scalar, or an error
		}
		pos = col
	}
	f.content(n, mark)
	return n, true
}

// inline parses the node starting at byte pos of the current line, after
// a key's ": " or (entry) a sequence entry's "- ": a scalar, a flow
// sequence or (entry only) a compact mapping.
func (f *fastYAML) inline(pos int, entry bool) (*yaml.Node, bool) {
	t := f.text(f.li)
	switch t[pos] {
	case '[':
		n, after, ok := f.flowSeq(t, pos)
		if !ok || !f.lineEnd(t, after) {
			return nil, false
		}
		return n, true
	case '-':
		if pos+1 == len(t) || t[pos+1] == ' ' {
			return nil, false // a compact nested sequence
		}
	}
	n, after, ok := f.scalar(t, pos, false)
	if !ok {
		return nil, false
	}
	if after < len(t) && t[after] == ':' {
		if !entry {
			return nil, false
		}
		return f.mapping(pos, pos) // a compact mapping: n was its first key (only spaces and "-" before pos)
	}
	if !f.lineEnd(t, after) {
		return nil, false
	}
	return n, true
}

// lineEnd reports whether t has only spaces and a comment from pos.
func (f *fastYAML) lineEnd(t string, pos int) bool {
	i := pos
	for i < len(t) && t[i] == ' ' {
		i++
	}
	return i == len(t) || t[i] == '#' && i > pos
}

// flowSeq parses a one-line flow sequence of scalars at t[pos] == '['.
// after is the byte after its "]".
func (f *fastYAML) flowSeq(t string, pos int) (n *yaml.Node, after int, ok bool) {
	n = f.node(yaml.SequenceNode, yaml.FlowStyle, "!!seq", "", f.li, pos)
	mark := len(f.stack)
	i := pos + 1
	for {
		for i < len(t) && t[i] == ' ' {
			i++
		}
		if i == len(t) {
			return nil, 0, false
		}
		if t[i] == ']' && len(f.stack) == mark {
			break // []
		}
		s, end, ok := f.scalar(t, i, true)
		if !ok {
			return nil, 0, false
		}
		f.stack = append(f.stack, s)
		for i = end; i < len(t) && t[i] == ' '; i++ {
		}
		if i == len(t) {
			return nil, 0, false
		}
		if t[i] == ']' {
			break
		}
		if t[i] != ',' {
			return nil, 0, false
		}
		i++
		for i < len(t) && t[i] == ' ' {
			i++
		}
		if i < len(t) && t[i] == ']' {
			return nil, 0, false // a trailing comma
		}
	}
	f.content(n, mark)
	return n, i + 1, true
}

// plainFirst marks the ASCII characters a plain scalar of the subset may
// start with (no indicator: - ? : , [ ] { } # & * ! | > ' " % @ `).
var plainFirst = func() (t [128]bool) {
	for c := byte('0'); c <= '9'; c++ {
		t[c] = true
	}
	for c := byte('a'); c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range []byte("/._~$+()=^;\\<") {
		t[c] = true
	}
	return t
}()

// scalar parses a one-line scalar at t[pos]: plain, single- or
// double-quoted. flow means inside a flow sequence. after is the byte
// after it (trailing spaces of a plain scalar are not part of it).
func (f *fastYAML) scalar(t string, pos int, flow bool) (n *yaml.Node, after int, ok bool) {
	switch c := t[pos]; {
	case c == '\'':
		return f.singleQuoted(t, pos)
	case c == '"':
		return f.doubleQuoted(t, pos)
	case c >= 0x80, plainFirst[c]:
	case c == '-' && pos+1 < len(t) && t[pos+1] < 0x80 && plainFirst[t[pos+1]] && t[pos+1] != '<':
	default:
		return nil, 0, false
	}
	i := pos
	end := pos // after the last non-space
	for ; i < len(t); i++ {
		c := t[i]
		if c == ' ' {
			if i+1 < len(t) && t[i+1] == '#' {
				break // a comment
			}
			continue
		}
		if c == ':' && (i+1 == len(t) || t[i+1] == ' ') {
			break // a key's ":"
		}
		if flow {
			switch c {
			case ',', ']':
				return f.plain(t, pos, end)
			case '[', '{', '}', '?', '#', '"', '\'':
				return nil, 0, false
			case ':':
				if n := t[i+1]; n >= 0x80 || !plainFirst[n] {
					return nil, 0, false
				}
			}
		}
		end = i + 1
	}
	if flow && i < len(t) && t[i] == ':' {
		return nil, 0, false // a flow mapping's key
	}
	return f.plain(t, pos, end)
}

// plain makes the plain scalar t[pos:end].
func (f *fastYAML) plain(t string, pos, end int) (*yaml.Node, int, bool) {
	v := t[pos:end]
	if v == "<<" {
		return nil, 0, false // a merge key
	}
	return f.node(yaml.ScalarNode, 0, plainTag(v), v, f.li, pos), end, true
}

// plainTag is the tag yaml.v3 resolves a plain scalar to (resolve.go):
// a word starting like a bool or null is one only if spelt as one; only a
// value starting like a number needs yaml.v3's resolver.
func plainTag(v string) string {
	switch c := v[0]; {
	case c == '+', c == '-', c == '.', c >= '0' && c <= '9':
		n := yaml.Node{Kind: yaml.ScalarNode, Value: v}
		return n.ShortTag()
	case strings.IndexByte("yYnNtTfFoO~", c) >= 0:
		switch v {
		case "true", "True", "TRUE", "false", "False", "FALSE":
			return "!!bool"
		case "~", "null", "Null", "NULL":
			return "!!null"
		}
	}
	return "!!str"
}

// singleQuoted parses 'text' at t[pos], two quotes in it standing for one.
func (f *fastYAML) singleQuoted(t string, pos int) (*yaml.Node, int, bool) {
	var b []byte
	from := pos + 1
	for i := pos + 1; i < len(t); i++ {
		if t[i] != '\'' {
			continue
		}
		if i+1 < len(t) && t[i+1] == '\'' {
			b = append(b, t[from:i+1]...)
			i++
			from = i + 1
			continue
		}
		v := t[pos+1 : i]
		if b != nil {
			v = string(append(b, t[from:i]...))
		}
		return f.node(yaml.ScalarNode, yaml.SingleQuotedStyle, "!!str", v, f.li, pos), i + 1, true
	}
	return nil, 0, false // not closed on this line
}

// doubleQuoted parses "text" at t[pos], with the escapes \\ \" \' \n \t
// \r \0 \a \b \e \f \v and \  (others are left to yaml.v3).
func (f *fastYAML) doubleQuoted(t string, pos int) (*yaml.Node, int, bool) {
	var b []byte
	from := pos + 1
	for i := pos + 1; i < len(t); i++ {
		switch t[i] {
		case '\\':
			if i+1 == len(t) {
				return nil, 0, false
			}
			var c byte
			switch t[i+1] {
			case '\\', '"', '\'', ' ':
				c = t[i+1]
			case 'n':
				c = '\n'
			case 't':
				c = '\t'
			case 'r':
				c = '\r'
			case '0':
				c = 0
			case 'a':
				c = '\a'
			case 'b':
				c = '\b'
			case 'e':
				c = 0x1b
			case 'f':
				c = '\f'
			case 'v':
				c = '\v'
			default:
				return nil, 0, false
			}
			b = append(append(b, t[from:i]...), c)
			i++
			from = i + 1
		case '"':
			v := t[pos+1 : i]
			if b != nil {
				v = string(append(b, t[from:i]...))
			}
			return f.node(yaml.ScalarNode, yaml.DoubleQuotedStyle, "!!str", v, f.li, pos), i + 1, true
		}
	}
	return nil, 0, false // not closed on this line
}

// parseItems parses the items of a block sequence that start on the given
// lines (0-based, as lineStarts numbers them) and end before line end:
// those in the subset with f, each run of the others with yaml.v3. It
// returns the items' nodes, lines counted in data, or ok false when a run
// does not parse alone (an alias to an anchor outside it, say).
func parseItems(data []byte, lines, items []int, end int) (nodes []*yaml.Node, ok bool) {
	nodes = make([]*yaml.Node, 0, len(items))
	ok = eachItem(data, lines, items, end, false, func(_ int, n *yaml.Node) { nodes = append(nodes, n) })
	if !ok {
		return nil, false
	}
	return nodes, true
}

// eachItem is parseItems giving each item's node to fn, in order, with
// its index in items, instead of returning them. With reuse, fn must not
// keep the node nor any node under it: their memory is used again for
// the next items (a 100k-tenant file's nodes took 0.8 GB when they were
// all kept). It reports false as parseItems does, possibly after calling
// fn for some items.
func eachItem(data []byte, lines, items []int, end int, reuse bool, fn func(k int, n *yaml.Node)) bool {
	var f fastYAML
	base := lines[items[0]]
	text := string(data[base:lines[end]]) // one string: values are substrings of it
	done := 0                             // items given to fn
	run := -1                             // the first item of the run for yaml.v3
	flush := func(to int) bool {
		seq, ok := parseOne(data[lines[items[run]]:lines[to]])
		if !ok || seq.Kind != yaml.SequenceNode {
			return false
		}
		shiftLines(seq, items[run])
		for _, n := range seq.Content {
			fn(done, n)
			done++
		}
		run = -1
		return true
	}
	for i, first := range items {
		last := end
		if i+1 < len(items) {
			last = items[i+1]
		}
		if fastItems {
			if n, ok := f.item(text[lines[first]-base:lines[last]-base], first+1); ok {
				if run >= 0 && !flush(first) {
					return false
				}
				fn(done, n)
				done++
				if reuse {
					f.recycle()
				}
				continue
			}
		}
		if run < 0 {
			run = i
		}
	}
	if run >= 0 && !flush(end) {
		return false
	}
	return done == len(items)
}
