package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/realmgate/realmgate/internal/scaleconfig"
)

// nodeDiff describes the first difference between trees a and b in what
// any reader of a node tree sees (comments aside), or "".
func nodeDiff(a, b *yaml.Node, path string) string {
	if a.Kind != b.Kind || a.Style != b.Style || a.Tag != b.Tag || a.ShortTag() != b.ShortTag() || a.Value != b.Value ||
		a.Line != b.Line || a.Column != b.Column || len(a.Content) != len(b.Content) || a.Anchor != b.Anchor || (a.Alias == nil) != (b.Alias == nil) {
		return fmt.Sprintf("%s: fast {kind %d style %d tag %s %q L%d C%d %d children}, yaml.v3 {kind %d style %d tag %s %q L%d C%d %d children}",
			path, a.Kind, a.Style, a.Tag, a.Value, a.Line, a.Column, len(a.Content), b.Kind, b.Style, b.Tag, b.Value, b.Line, b.Column, len(b.Content))
	}
	for i := range a.Content {
		if d := nodeDiff(a.Content[i], b.Content[i], fmt.Sprintf("%s/%d", path, i)); d != "" {
			return d
		}
	}
	return ""
}

// fastVersusYAMLv3 parses one sequence item with fastYAML and with
// yaml.v3. It reports whether fastYAML took it, and fails t when fastYAML
// took what yaml.v3 refuses or made another tree.
func fastVersusYAMLv3(t *testing.T, f *fastYAML, src string) bool {
	t.Helper()
	got, ok := f.item(src, 1)
	if !ok {
		return false
	}
	dec := yaml.NewDecoder(strings.NewReader(src))
	var doc yaml.Node
	err := dec.Decode(&doc)
	if err == nil {
		var extra yaml.Node
		if err = dec.Decode(&extra); errors.Is(err, io.EOF) {
			err = nil
		} else if err == nil {
			err = errors.New("a second document")
		}
	}
	if err != nil {
		t.Fatalf("fastYAML took %q, which yaml.v3 refuses: %v", src, err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.SequenceNode || len(doc.Content[0].Content) != 1 {
		t.Fatalf("fastYAML took %q, which yaml.v3 reads as something other than one sequence item", src)
	}
	if d := nodeDiff(got, doc.Content[0].Content[0], "item"); d != "" {
		t.Fatalf("fastYAML and yaml.v3 differ on %q:\n%s", src, d)
	}
	return true
}

// itemTexts splits a file's top-level tenants list into its items'
// texts, as parseParts slices them.
func itemTexts(data []byte) []string {
	lines := lineStarts(data)
	_, items, end := tenantsSection(data, lines)
	var out []string
	for i, first := range items {
		last := end
		if i+1 < len(items) {
			last = items[i+1]
		}
		out = append(out, string(data[lines[first]:lines[last]]))
	}
	return out
}

func generated(t testing.TB, tenants int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := scaleconfig.Write(&b, scaleconfig.Options{Tenants: tenants, SharedIssuer: "https://login.idp.example"}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func exampleTenants(t testing.TB) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "config", "realmgate.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	items := itemTexts(data)
	if len(items) == 0 {
		t.Fatal("realmgate.example.yaml: no tenants found")
	}
	return items
}

// fastAccepted are items in the subset: fastYAML must take each and make
// yaml.v3's tree.
var fastAccepted = []string{
	"- a\n",
	"  - id: t1 # c\n    name: Tenant 1\n",
	"  - id: t1\n    domains: [\"a.example\", '*.b.example', c, 'it''s', \"q\\\"\\\\ \\' \\n\\t\\e\"]\n",
	"  - id: t1\n    providers:\n    - id: x\n      type: oidc\n    - id: y\n    rules: []\n",
	"  - id: t1\n    map:\n      from: a\n\n      # note\n      to: b\n# col 0\n    n: 1\n",
	"  - a:\n    b:\n  # x\n",
	"  -\n",
	"  - # c\n    a: b\n",
	"  -\n    - a\n    - b\n",
	"  - a: x\n    b:",
	"  - a:  # c\n    b: [a:b, c, https://x.example/y]\n",
	"  - a: [ ]\n",
	"  - t: true\n    f: False\n    n: null\n    i: 0x1F\n    fl: 1.5e3\n    ts: 2001-12-14\n    inf: -.inf\n    tilde: ~\n    o: on\n    y: yes\n    neg: -5\n",
	"  - 'key': \"v\"\n    \"k2\": 'v'\n    key with spaces: v w\n    urn:oid:1.2: x\n",
	"  - name: Café Zürich 東京\n    x: [é, b]\n",
	"  - if: 'has(upstream.department) && upstream.department == \"Finance\"'\n",
	"  - a: b#c\n    d: e:f\n    g: x  \n    h: a,b]}\n",
	"  -   a: 1\n      b: 2\n",
	"  - a\n  \n  # trailing\n",
	"  - a:b\n",
	"  - TRUE: Null\n    True: NULL\n    false: FALSE\n    x: [tRue, nULL, No, off, Y, ~x, .5, .nan, +1, 0o17, 0b101, 1_000, 3e, -0b1]\n",
}

// fastRefused are items outside the subset (or not YAML): fastYAML must
// leave them to yaml.v3.
var fastRefused = []string{
	"  - a: &x 1\n    b: *x\n",
	"  - a: !!str 1\n",
	"  - <<: {a: 1}\n",
	"  - <<: x\n",
	"  - a: |\n      text\n",
	"  - a: >\n      text\n",
	"  - a: {b: c}\n",
	"  - a: plain\n      continued\n",
	"  - a: 'open\n      close'\n",
	"  - a: \"x\\u00e9\"\n",
	"  - ? a\n    : b\n",
	"  - a:\tb\n",
	"  - a: b\r\n",
	"  - - a\n",
	"  - a: b: c\n",
	"  - a: - b\n",
	"  - a: [b, c,]\n",
	"  - a: [b: c]\n",
	"  - a: [b\n",
	"  - a: 'b' c\n",
	"  - a: b\n   c: d\n",
	"  - a: b\n      c: d\n",
	"---\n- a\n",
	"  - a\n  - b\n",
	"  - a: \u0085\n",
	"  - a: \ufeffb\n",
	"  - a: x \U0001F600\n",
	"  - a: %x\n",
	"  - a: @x\n",
	"  - a: `x\n",
	"a: b\n",
	"  - a: \"x\\/\"\n",
}

// TestFastYAML_SameTreeAsYAMLv3: what fastYAML takes it parses to
// yaml.v3's tree; the subset covers the generated tenants, the example
// configuration's and common hand-written forms; the rest is refused.
func TestFastYAML_SameTreeAsYAMLv3(t *testing.T) {
	var f fastYAML
	t.Run("accepted", func(t *testing.T) {
		for _, src := range fastAccepted {
			if !fastVersusYAMLv3(t, &f, src) {
				t.Errorf("fastYAML refused %q, want it in the subset", src)
			}
		}
	})
	t.Run("refused", func(t *testing.T) {
		for _, src := range fastRefused {
			if _, ok := f.item(src, 1); ok {
				t.Errorf("fastYAML took %q, want it left to yaml.v3", src)
			}
		}
	})
	t.Run("generated tenants", func(t *testing.T) {
		for i, src := range itemTexts(generated(t, 50)) {
			if !fastVersusYAMLv3(t, &f, src) {
				t.Errorf("generated tenant %d: fastYAML refused %q", i, src)
			}
		}
	})
	t.Run("example tenants", func(t *testing.T) {
		for i, src := range exampleTenants(t) {
			if !fastVersusYAMLv3(t, &f, src) {
				t.Errorf("example tenant %d: fastYAML refused %q", i, src)
			}
		}
	})
}

// FuzzFastYAMLSameAsYAMLv3: for every text fastYAML takes, yaml.v3 takes
// it too and makes the same tree. Each input is tried as it is, and as
// the lines that shape's bytes pick (an indentation and a line made of
// the pieces YAML's block structure is made of), which reaches odd
// indentation much sooner than mutating bytes.
//
//	go test ./config -run '^$' -fuzz FuzzFastYAML -fuzztime 3m
func FuzzFastYAMLSameAsYAMLv3(f *testing.F) {
	var seeds []string
	seeds = append(seeds, itemTexts(generated(f, 3))...)
	seeds = append(seeds, exampleTenants(f)...)
	seeds = append(seeds, fastAccepted...)
	seeds = append(seeds, fastRefused...)
	for i, s := range seeds {
		f.Add(s, []byte{byte(i), byte(i * 7), byte(i * 13), byte(i * 31), byte(i * 5), byte(i * 11)})
	}
	f.Fuzz(func(t *testing.T, src string, shape []byte) {
		var fy fastYAML
		fastVersusYAMLv3(t, &fy, src)
		fastVersusYAMLv3(t, &fy, shapedYAML(shape))
	})
}

// shapePieces are the line bodies shapedYAML builds from.
var shapePieces = []string{
	"- a", "- a: b", "- a:", "-", "- 'a': \"b\"", "a: b", "a:", "b: 1", "c: [x, 'y', \"z\"]", "d: []", "e: true",
	"# c", "", "f: g # c", "- - a", "h: 'i''j'", "k: \"l\\n\"", "m:  ", "- n: [o]", "p: q: r", "s", "t: ~",
	"u: a #b", "v: -1", "w: 0x1F", "x: é", "- é: ü", "y: a:b", "z: [a, b", "- [a]", "aa: 'b", "bb: b c  ",
}

// shapedYAML turns bytes into lines: each pair picks an indentation
// (0-7 spaces) and a piece; the first line is always a sequence entry.
func shapedYAML(shape []byte) string {
	var b strings.Builder
	b.WriteString("- ")
	for i := 0; i+1 < len(shape); i += 2 {
		if i > 0 {
			b.WriteString(strings.Repeat(" ", int(shape[i]%8)))
		}
		b.WriteString(shapePieces[int(shape[i+1])%len(shapePieces)])
		b.WriteByte('\n')
	}
	return b.String()
}

// TestParse_FastItemsSameResult: a whole file parsed in parts with the
// fast path gives the Config, or the problems with their lines, that it
// gives without it and that one parse gives.
func TestParse_FastItemsSameResult(t *testing.T) {
	good := generated(t, 300)
	lines := strings.SplitAfter(string(good), "\n")
	// Problems in tenants far down the list: an unknown field, a bad type,
	// a duplicate key, a tenant outside the subset with an error of its own.
	bad := append([]string(nil), lines...)
	at := func(tenant int) int {
		for i, l := range bad {
			if l == fmt.Sprintf("  - id: t%d\n", tenant) {
				return i
			}
		}
		t.Fatalf("tenant t%d not found", tenant)
		return 0
	}
	bad[at(250)+1] = "    nmae: Tenant 250\n"
	bad[at(260)+1] = "    domains: {a: b}\n"
	bad[at(270)+1] = "    id: again\n"
	bad[at(280)+1] = "    name: &n Tenant 280\n    display: *n\n"
	badData := []byte(strings.Join(bad, ""))

	defer func(min int, fast bool) { parallelMin, fastItems = min, fast }(parallelMin, fastItems)
	parse := func(data []byte, parts, fast bool) (*Config, string) {
		parallelMin, fastItems = 1<<30, fast
		if parts {
			parallelMin = 0
		}
		c, err := Parse("scale.yaml", data, nil)
		if err != nil {
			return nil, err.Error()
		}
		return c, ""
	}
	wantCfg, wantErr := parse(good, true, false)
	if wantErr != "" {
		t.Fatalf("Parse(generated) = %s", wantErr)
	}
	if gotCfg, gotErr := parse(good, true, true); gotErr != "" || !reflect.DeepEqual(gotCfg, wantCfg) {
		t.Errorf("Parse(generated) with the fast path differs from without it (error %q)", gotErr)
	}
	if one, _ := parse(good, false, false); !reflect.DeepEqual(one.Tenants, wantCfg.Tenants) {
		t.Errorf("Parse(generated) in parts differs from one parse")
	}

	_, slowErr := parse(badData, true, false)
	_, fastErr := parse(badData, true, true)
	_, oneErr := parse(badData, false, false)
	if fastErr != slowErr || fastErr != oneErr {
		t.Errorf("Parse(bad) problems differ:\nfast path: %s\nwithout:   %s\none parse: %s", fastErr, slowErr, oneErr)
	}
	for _, want := range []string{
		fmt.Sprintf("scale.yaml:%d", at(250)+2),
		fmt.Sprintf("scale.yaml:%d", at(260)+2),
		fmt.Sprintf("scale.yaml:%d", at(270)+2),
		fmt.Sprintf("scale.yaml:%d", at(280)+3),
	} {
		if !strings.Contains(fastErr, want) {
			t.Errorf("Parse(bad) = %s\nwant a problem at %s", fastErr, want)
		}
	}
}

// TestParseItems_RunsAroundFastItems: items outside the subset between
// fast ones are parsed by yaml.v3 with the right lines, an alias to an
// anchor in the same run included; one to an anchor in another run sends
// the file back to one parse.
func TestParseItems_RunsAroundFastItems(t *testing.T) {
	doc := "issuer: x\ntenants:\n" +
		"  - id: a\n" +
		"  - id: b\n    name: &n B\n" +
		"  - id: c\n    name: *n\n" +
		"  - id: d\n    rules: |\n      x\n" +
		"  - id: e\n" +
		"  - id: f\n    name: *n\n" +
		"  - id: g\n"
	data := []byte(doc)
	lines := lineStarts(data)
	_, items, end := tenantsSection(data, lines)
	nodes, ok := parseItems(data, lines, items[:5], items[5])
	if !ok || len(nodes) != 5 {
		t.Fatalf("parseItems(a..e) = %d nodes, %v; want 5, true", len(nodes), ok)
	}
	var full yaml.Node
	if err := yaml.Unmarshal(data, &full); err != nil {
		t.Fatal(err)
	}
	want := full.Content[0].Content[3].Content
	for i, n := range nodes {
		if d := nodeDiff(n, want[i], fmt.Sprintf("item %d", i)); d != "" {
			t.Errorf("parseItems: %s", d)
		}
	}
	if _, ok := parseItems(data, lines, items, end); ok {
		t.Errorf("parseItems(a..g) took an alias (f) to an anchor in another run (b)")
	}
}

// BenchmarkParseParts measures parsing the tenants of a generated file in
// parts (parseParts, two parts), with the fast path and without it.
//
//	go test ./config -run '^$' -bench ParseParts -benchmem
func BenchmarkParseParts(b *testing.B) {
	data := generated(b, 20_000)
	defer func(fast bool) { fastItems = fast }(fastItems)
	for _, fast := range []bool{false, true} {
		b.Run(fmt.Sprintf("tenants=20000/fast=%v", fast), func(b *testing.B) {
			fastItems = fast
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if parseParts(data, 2) == nil {
					b.Fatal("parseParts = nil")
				}
			}
		})
	}
}
