package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// MaxFileSize is the largest configuration file Load reads: room for 100k
// tenants with a few rules each (about 600 bytes a tenant).
const MaxFileSize = 128 << 20

// Limits that keep a hostile document (alias bombs, deep nesting) cheap.
// The node budget grows with the file: without aliases a document has fewer
// nodes than bytes, so a large honest file (100k tenants) fits, while an
// alias bomb is still stopped after a bounded number of visits.
const (
	maxVisits = 200_000
	maxDepth  = 64
)

// source remembers where each field of a parsed Config came from.
type source struct {
	file string
	// fields holds every field path of the file with its line, and
	// whether it was given a non-null value: the tenants' fields too,
	// unless tenantParts holds them.
	fields *fieldTable
	// tenantParts holds the tenants' fields instead, when a large tenants
	// list was decoded in parts at once (paralleldecode.go): tenant i's are
	// in tenantParts[i/tenantsPer].
	tenantParts []*fieldTable
	tenantsPer  int
}

// fieldSource is where one field came from.
type fieldSource struct {
	line     int32
	explicit bool // given a non-null value
	// empty is set for a tenant's field given explicitly a value that
	// decoded to the zero value or an empty list or mapping: a field whose
	// "given" flag defaults and validation read (Config.CompactSources
	// keeps it).
	empty bool
}

// field returns where path came from, if the file has it.
func (s source) field(path string) (fieldSource, bool) {
	t := s.fields
	if i, rel, ok := splitTenantPath(path); ok {
		if s.tenantParts != nil {
			if t = nil; i/s.tenantsPer < len(s.tenantParts) {
				t = s.tenantParts[i/s.tenantsPer]
			}
		}
		if t == nil {
			return fieldSource{}, false
		}
		return t.tenantField(i, rel)
	}
	if t == nil {
		return fieldSource{}, false
	}
	f, ok := t.other[path]
	return f, ok
}

// lineOf returns the line of path, or of its nearest ancestor present in the file.
func (s source) lineOf(path string) int {
	for path != "" {
		if f, ok := s.field(path); ok {
			return int(f.line)
		}
		path = parentPath(path)
	}
	return 0
}

// isExplicit reports whether the file gave path a non-null value.
func (s source) isExplicit(path string) bool {
	f, _ := s.field(path)
	return f.explicit
}

// parentPath drops the last ".name" or "[i]" of a dotted path.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// Load reads the configuration file at path, expanding ${VAR} from the
// process environment, and returns it with defaults applied and validated.
// A problem in the file is returned as a *ValidationError listing all of them.
// Options are those of Parse.
func Load(path string, opts ...Option) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	var size int64 // a regular file's size: read in one buffer of that size
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		if size = fi.Size(); size > MaxFileSize {
			return nil, fmt.Errorf("config: %s is larger than %d bytes", path, MaxFileSize)
		}
	}
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	_, err = buf.ReadFrom(io.LimitReader(f, MaxFileSize+1))
	data := buf.Bytes()
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("config: %s is larger than %d bytes", path, MaxFileSize)
	}
	return Parse(path, data, os.LookupEnv, opts...)
}

// Parse reads a configuration from data; filename is used in problem
// reports, and relative file paths in the configuration (metadata_file,
// sp_key_file, sp_cert_file) are taken relative to its directory. Every scalar value has its ${VAR} references replaced by
// lookupEnv(VAR) after YAML parsing, so an expanded value can never add YAML
// structure; "$$" stands for a literal "$", and a "$" followed by anything
// else is kept as is. A variable lookupEnv does not know is an error; a nil
// lookupEnv knows none. Parse refuses unknown keys, applies defaults (see
// ApplyDefaults) and validates: every problem found, in decoding or
// validation, is returned at once as a *ValidationError. With
// WithRuleChecker, the rules that do not compile are among those problems.
func Parse(filename string, data []byte, lookupEnv func(string) (string, bool), opts ...Option) (*Config, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	d := &decoder{
		src:       source{file: filename},
		lookup:    lookupEnv,
		maxVisits: maxVisits + len(data),
	}
	c := &Config{}
	root, err := d.document(data)
	if err != nil {
		return nil, err
	}
	d.sizeFields(root, bytes.Count(data, []byte{'\n'})+1)
	if root != nil {
		d.decode(root, reflect.ValueOf(c).Elem(), 0, 0)
	}
	c.src = d.src
	if filename != "" {
		c.resolvePaths(filepath.Dir(filename))
	}
	c.ApplyDefaults()

	probs := d.problems
	for _, p := range c.problems() {
		if !coveredBy(p.Field, d.problems) {
			probs = append(probs, p)
		}
	}
	if o.rules != nil {
		probs = mergeRuleProblems(probs, d.problems, c.ruleProblems(o.rules))
	}
	if len(probs) > 0 {
		sortProblems(probs)
		return nil, &ValidationError{Problems: probs}
	}
	return c, nil
}

// coveredBy reports whether a decoding problem already explains field: a
// value that could not be read is not reported again as missing or invalid.
func coveredBy(field string, decodeProbs []Problem) bool {
	for _, p := range decodeProbs {
		if p.Field == "" {
			continue
		}
		if field == p.Field || strings.HasPrefix(field, p.Field+".") || strings.HasPrefix(field, p.Field+"[") {
			return true
		}
	}
	return false
}

var yamlLineErr = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document parses data into its root node. A syntax error comes back as a
// *ValidationError naming the line.
func (d *decoder) document(data []byte) (*yaml.Node, error) {
	if doc := parseParallel(data, d); doc != nil { // a large file's tenants, in parts at once (parallelparse.go)
		return d.root(doc)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // empty file: everything defaults; validation says what is missing
		}
		return nil, d.syntaxError(err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, d.syntaxError(err)
	default:
		d.problem(extra.Line, "", "only one YAML document is allowed")
	}
	return d.root(&doc)
}

// root returns a parsed document's root mapping.
func (d *decoder) root(doc *yaml.Node) (*yaml.Node, error) {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil
	}
	root := d.deref(doc.Content[0])
	if root == nil || root.Kind != yaml.MappingNode {
		if root != nil && root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
			return nil, nil // only comments
		}
		line := doc.Content[0].Line
		d.problem(line, "", "want a mapping of configuration keys, got %s", kindName(doc.Content[0]))
		return nil, &ValidationError{Problems: d.problems}
	}
	return root, nil
}

func (d *decoder) syntaxError(err error) error {
	p := Problem{File: d.src.file, Message: strings.TrimPrefix(err.Error(), "yaml: ")}
	if m := yamlLineErr.FindStringSubmatch(err.Error()); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		p.Message = m[2]
	}
	return &ValidationError{Problems: []Problem{p}}
}

// decoder turns a yaml.Node tree into Go values by reflection, recording the
// line of every field and collecting every problem instead of stopping at
// the first.
type decoder struct {
	src      source
	lookup   func(string) (string, bool)
	problems []Problem
	visits   int
	tooBig   bool
	// maxVisits is the node budget for this document.
	maxVisits int
	// tenantLines is about how many lines the tenants list spans, to size
	// the tables of a list decoded in parts.
	tenantLines int
	// path is the dotted field path of the value being decoded, built in
	// place as decode descends (a string is made only for a problem).
	path []byte
	// inTenant is whether a tenants list item is being decoded; its
	// fields' paths are recorded relative to tenantBase, the length of
	// path at "tenants[i]".
	inTenant   bool
	tenantBase int
	// fused is the tenants list, decoded while it was parsed, until decode
	// reaches it (fusedecode.go).
	fused *fusedTenants
}

// record notes that the field at d.path was read at line. For a tenant's
// field it returns the index of its entry in d.src.fields, else -1.
func (d *decoder) record(line int, explicit bool) int {
	f := fieldSource{line: int32(line), explicit: explicit}
	if !d.inTenant {
		d.src.fields.other[string(d.path)] = f
		return -1
	}
	if !d.src.fields.addTenantField(d.path[d.tenantBase:], f) {
		if !d.tooBig {
			d.tooBig = true
			d.problem(line, "", "document too large, too deeply nested or too many aliases")
		}
		return -1
	}
	return len(d.src.fields.entries) - 1
}

// pushField appends ".name" (or name at the top) to d.path and returns
// the length to give pop afterwards.
func (d *decoder) pushField(name string) int {
	mark := len(d.path)
	if mark > 0 {
		d.path = append(d.path, '.')
	}
	d.path = append(d.path, name...)
	return mark
}

// pushIndex appends "[i]" to d.path.
func (d *decoder) pushIndex(i int) int {
	mark := len(d.path)
	d.path = append(d.path, '[')
	d.path = strconv.AppendInt(d.path, int64(i), 10)
	d.path = append(d.path, ']')
	return mark
}

// pushKey appends map key k to d.path, as childKey does.
func (d *decoder) pushKey(k string) int {
	if isPlainKey(k) {
		return d.pushField(k)
	}
	mark := len(d.path)
	d.path = append(d.path, '[')
	d.path = strconv.AppendQuote(d.path, k)
	d.path = append(d.path, ']')
	return mark
}

// pop takes d.path back to mark.
func (d *decoder) pop(mark int) { d.path = d.path[:mark] }

func (d *decoder) problem(line int, field, format string, args ...any) {
	d.problems = append(d.problems, Problem{File: d.src.file, Line: line, Field: field, Message: fmt.Sprintf(format, args...)})
}

var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

// deref follows aliases.
func (d *decoder) deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i > maxDepth {
			return nil
		}
		n = n.Alias
	}
	return n
}

// budget counts one visit and reports whether decoding may go on.
func (d *decoder) budget(n *yaml.Node, depth int) bool {
	d.visits++
	if d.visits > d.maxVisits || depth > maxDepth {
		if !d.tooBig {
			d.tooBig = true
			d.problem(n.Line, "", "document too large, too deeply nested or too many aliases")
		}
		return false
	}
	return true
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	default:
		return "nothing"
	}
}

// decode stores n into v (settable). d.path is v's dotted field path, line
// the line of its key or list item.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, depth, line int) {
	n = d.deref(n)
	explicit := n != nil && (n.Kind != yaml.ScalarNode || n.ShortTag() != "!!null")
	at := d.record(line, explicit)
	if n == nil || !d.budget(n, depth) || !explicit {
		return // null or empty: leave the zero value (defaults apply)
	}
	d.decodeValue(n, v, depth, line)
	if at >= 0 && emptyValue(v) {
		d.src.fields.entries[at].src.empty = true
	}
}

// emptyValue reports whether v is its type's zero value or an empty list
// or mapping.
func emptyValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Slice, reflect.Map:
		return v.Len() == 0
	}
	return v.IsZero()
}

// decodeValue is decode for a non-null n.
func (d *decoder) decodeValue(n *yaml.Node, v reflect.Value, depth, line int) {
	if v.Kind() != reflect.Pointer && reflect.PointerTo(v.Type()).Implements(textUnmarshalerType) {
		s, ok := d.scalar(n, "a value")
		if !ok {
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			d.problem(n.Line, string(d.path), "%v", err)
		}
		return
	}

	switch v.Kind() {
	case reflect.Pointer:
		nv := reflect.New(v.Type().Elem())
		d.decode(n, nv.Elem(), depth+1, line)
		v.Set(nv)
	case reflect.String:
		if s, ok := d.scalar(n, "a string"); ok {
			v.SetString(strings.Clone(s)) // not a substring of the file's text, which would stay alive with it
		}
	case reflect.Bool:
		s, ok := d.scalar(n, "true or false")
		if !ok {
			return
		}
		switch s {
		case "true", "True", "TRUE":
			v.SetBool(true)
		case "false", "False", "FALSE":
			v.SetBool(false)
		default:
			d.problem(n.Line, string(d.path), "want true or false, got %q", s)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		s, ok := d.scalar(n, "an integer")
		if !ok {
			return
		}
		i, err := strconv.ParseInt(s, 0, v.Type().Bits())
		if err != nil {
			d.problem(n.Line, string(d.path), "want an integer, got %q", s)
			return
		}
		v.SetInt(i)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.problem(n.Line, string(d.path), "want a list, got %s", kindName(n))
			return
		}
		tenants := !d.inTenant && string(d.path) == tenantsPath
		items, parts := n.Content, tenants
		if f := d.fused; tenants && f != nil && f.seq == n {
			d.fused = nil
			var taken bool
			if taken, items = d.takeFused(f, v, depth); taken { // fusedecode.go
				return
			}
			parts = false // the parts gave it back: one decoder
		}
		s := reflect.MakeSlice(v.Type(), len(items), len(items))
		if parts && d.decodeTenantsParallel(items, s, depth) { // paralleldecode.go
			v.Set(s)
			return
		}
		for i, item := range items {
			mark := d.pushIndex(i)
			if tenants {
				d.beginTenant(i)
			}
			d.decode(item, s.Index(i), depth+1, item.Line)
			d.inTenant = d.inTenant && !tenants
			d.pop(mark)
		}
		if tenants {
			d.src.fields.endTenants()
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.problem(n.Line, string(d.path), "want a mapping, got %s", kindName(n))
			return
		}
		m := reflect.MakeMap(v.Type())
		for _, kv := range d.pairs(n, depth) {
			mark := d.pushKey(kv.key.Value)
			ev := reflect.New(v.Type().Elem()).Elem()
			d.decode(kv.value, ev, depth+1, kv.key.Line)
			m.SetMapIndex(reflect.ValueOf(strings.Clone(kv.key.Value)).Convert(v.Type().Key()), ev)
			d.pop(mark)
		}
		v.Set(m)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.problem(n.Line, string(d.path), "want a mapping, got %s", kindName(n))
			return
		}
		fields := structFields(v.Type())
		for _, kv := range d.pairs(n, depth) {
			name := kv.key.Value
			mark := d.pushField(name)
			if idx, ok := fields[name]; ok {
				d.decode(kv.value, v.Field(idx), depth+1, kv.key.Line)
			} else {
				d.problem(kv.key.Line, string(d.path), "unknown field %q%s", name, suggest(name, fields))
			}
			d.pop(mark)
		}
	default:
		d.problem(n.Line, string(d.path), "cannot read a value of type %s", v.Type())
	}
}

// beginTenant starts tenants list item i, whose path d.path now ends with.
func (d *decoder) beginTenant(i int) {
	d.src.fields.beginTenant(i)
	d.inTenant, d.tenantBase = true, len(d.path)
}

// scalar returns n's value with environment references expanded.
func (d *decoder) scalar(n *yaml.Node, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.problem(n.Line, string(d.path), "want %s, got %s", want, kindName(n))
		return "", false
	}
	s, err := expand(n.Value, d.lookup)
	if err != nil {
		d.problem(n.Line, string(d.path), "%v", err)
		return "", false
	}
	return s, true
}

type keyValue struct{ key, value *yaml.Node }

// pairs lists the entries of mapping n: its own keys first, then keys
// brought in by merge keys ("<<: *anchor") that it does not override.
// Non-string and duplicate keys are reported.
func (d *decoder) pairs(n *yaml.Node, depth int) []keyValue {
	out := make([]keyValue, 0, len(n.Content)/2)
	var seen keyLines
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.problem(k.Line, string(d.path), "keys must be plain strings, got %s", kindName(k))
			continue
		}
		if first, dup := seen.get(k.Value); dup {
			d.problem(k.Line, childKey(string(d.path), k.Value), "defined twice (first at line %d)", first)
			continue
		}
		seen.add(k.Value, k.Line)
		out = append(out, keyValue{k, v})
	}
	for _, m := range merges {
		m = d.deref(m)
		if m == nil || !d.budget(m, depth+1) {
			continue
		}
		srcs := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			srcs = m.Content
		}
		for _, s := range srcs {
			s = d.deref(s)
			if s == nil || s.Kind != yaml.MappingNode {
				d.problem(m.Line, string(d.path), "a merge key (<<) needs a mapping or a list of mappings")
				continue
			}
			for _, kv := range d.pairs(s, depth+1) {
				if _, dup := seen.get(kv.key.Value); !dup {
					seen.add(kv.key.Value, kv.key.Line)
					out = append(out, kv)
				}
			}
		}
	}
	return out
}

// keyLines is the set of a mapping's keys seen so far, with their lines:
// a list while it is short (most mappings have a few keys, and a map each
// cost a tenth of decoding 100k tenants), a map beyond.
type keyLines struct {
	list [keyLinesListMax]keyLine
	n    int // of list in use
	m    map[string]int
}

type keyLine struct {
	key  string
	line int
}

// keyLinesListMax is the most keys keyLines keeps in its list.
const keyLinesListMax = 16

func (s *keyLines) get(k string) (int, bool) {
	if s.m != nil {
		line, ok := s.m[k]
		return line, ok
	}
	for _, e := range s.list[:s.n] {
		if e.key == k {
			return e.line, true
		}
	}
	return 0, false
}

func (s *keyLines) add(k string, line int) {
	if s.m == nil && s.n < keyLinesListMax {
		s.list[s.n] = keyLine{k, line}
		s.n++
		return
	}
	if s.m == nil {
		s.m = make(map[string]int, 2*keyLinesListMax)
		for _, e := range s.list[:s.n] {
			s.m[e.key] = e.line
		}
		s.n = 0
	}
	s.m[k] = line
}

// childKey is the path of key k under path.
func childKey(path, k string) string {
	if path == "" {
		return strings.TrimPrefix(keyPath(k), ".")
	}
	return path + keyPath(k)
}

// keyPath renders a map key as a path element: .name, or ["odd key"].
func keyPath(k string) string {
	if isPlainKey(k) {
		return "." + k
	}
	return "[" + strconv.Quote(k) + "]"
}

// fieldsByType caches structFields: a file of 100k tenants decodes 100k
// Tenant and Provider mappings, and reading struct tags each time cost
// about a tenth of the load.
var fieldsByType sync.Map // reflect.Type -> map[string]int

// structFields maps yaml key names to field indexes. The map is shared:
// callers must not change it.
func structFields(t reflect.Type) map[string]int {
	if m, ok := fieldsByType.Load(t); ok {
		return m.(map[string]int)
	}
	m, _ := fieldsByType.LoadOrStore(t, readStructFields(t))
	return m.(map[string]int)
}

// readStructFields maps t's yaml key names to field indexes.
func readStructFields(t reflect.Type) map[string]int {
	out := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		out[name] = i
	}
	return out
}

// suggest proposes the known field closest to a misspelt one.
func suggest(name string, fields map[string]int) string {
	best, bestDist := "", 3
	for f := range fields {
		if dist := editDistance(strings.ToLower(name), f); dist < bestDist || (dist == bestDist && f < best) {
			best, bestDist = f, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expand replaces ${VAR} in s with lookup(VAR) in a single pass (an
// expanded value is never expanded again). "$$" is a literal "$"; a "$"
// followed by anything else is kept.
func expand(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	var missing []string
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", errors.New(`unterminated "${": write "$$" for a literal "$"`)
			}
			name := s[i+2 : i+2+end]
			if !envName.MatchString(name) {
				return "", fmt.Errorf("invalid environment variable name %q in ${...}", name)
			}
			val, ok := lookup(name)
			if !ok {
				missing = append(missing, name)
			}
			b.WriteString(val)
			i += 2 + end
		default:
			b.WriteByte(c)
		}
	}
	switch len(missing) {
	case 0:
		return b.String(), nil
	case 1:
		return "", fmt.Errorf("environment variable %s is not set", missing[0])
	default:
		return "", fmt.Errorf("environment variables %s are not set", strings.Join(missing, ", "))
	}
}
