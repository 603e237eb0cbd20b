package config

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// dumpNode writes n's tree: kind, tag, value, anchor, alias, line and
// column of every node (comments aside: nothing reads them).
func dumpNode(b *strings.Builder, n *yaml.Node, depth int) {
	fmt.Fprintf(b, "%*s%d %s %q &%s L%d C%d", depth, "", n.Kind, n.Tag, n.Value, n.Anchor, n.Line, n.Column)
	if n.Alias != nil {
		fmt.Fprintf(b, " *%s@L%d", n.Alias.Anchor, n.Alias.Line)
	}
	b.WriteByte('\n')
	for _, c := range n.Content {
		dumpNode(b, c, depth+1)
	}
}

func oneParse(t *testing.T, data []byte) string {
	t.Helper()
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		t.Fatalf("one parse: %v", err)
	}
	var b strings.Builder
	dumpNode(&b, &doc, 0)
	return b.String()
}

func tenantItems(n int, indent string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%s- id: t%d # tenant %d\n%s  domains: [\"corp%d.example\"]\n\n%s  providers:\n%s    - id: idp%d\n%s      issuer: |\n%s        https://idp%d.example\n%s        - not an item\n# a comment at column 0\n",
			indent, i, i, indent, i, indent, indent, i, indent, indent, i, indent)
	}
	return b.String()
}

// TestParseParts_SameTreeAsOneParse: parsing the tenants in parts gives
// the node tree one parse gives, lines and columns included, wherever the
// sequence is and however it is indented.
func TestParseParts_SameTreeAsOneParse(t *testing.T) {
	tests := []struct {
		name string
		doc  string
	}{
		{"items indented, tenants last", "issuer: https://login.example.com\ntenants:\n" + tenantItems(40, "  ")},
		{"items at column 0, a key after", "issuer: https://login.example.com\ntenants:\n" + tenantItems(40, "") + "clients:\n  - id: app\n"},
		{"comment after the key, keys before and after", "# head\nissuer: x\n\ntenants:   \n  # first\n" + tenantItems(17, "  ") + "\nrules: []\n"},
		{"anchor and alias inside one item", "tenants:\n" + tenantItems(10, "  ") + "  - id: a\n    rules: &r [1, 2]\n    again: *r\n" + tenantItems(10, "  ")},
		{"CRLF line ends", strings.ReplaceAll("issuer: x\ntenants:\n"+tenantItems(12, "  ")+"clients: []\n", "\n", "\r\n")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(tc.doc)
			for _, parts := range []int{2, 3, 7} {
				doc := parseParts(data, parts)
				if doc == nil {
					t.Fatalf("parseParts(%d) = nil, want a tree", parts)
				}
				var b strings.Builder
				dumpNode(&b, doc, 0)
				if got, want := b.String(), oneParse(t, data); got != want {
					t.Fatalf("parseParts(%d) tree differs from one parse:\n%s", parts, firstDiff(got, want))
				}
			}
		})
	}
}

// TestParseParts_LeavesItToOneParse: what parts cannot parse alone, or
// could mean something else in parts, is left to one parse (nil).
func TestParseParts_LeavesItToOneParse(t *testing.T) {
	items := tenantItems(20, "  ")
	tests := []struct {
		name string
		doc  string
	}{
		{"alias to an anchor outside the section", "common: &c {x: 1}\ntenants:\n" + items + "  - <<: *c\n    id: z\n"},
		{"alias to an earlier item", "tenants:\n  - id: a\n    rules: &r [1]\n" + items + "  - id: b\n    rules: *r\n"},
		{"two documents", "tenants:\n" + items + "---\nissuer: x\n"},
		{"flow sequence", "tenants: [" + strings.Repeat("{id: a}, ", 30) + "{id: b}]\n"},
		{"no tenants", "issuer: x\nclients: []\n"},
		{"tenants twice", "tenants:\n" + items + "tenants:\n" + items},
		{"tenants not a sequence", "tenants:\n  a: 1\n  b: 2\n"},
		{"syntax error in an item", "tenants:\n" + items + "  - id: [unclosed\n" + items},
		{"tabs", "tenants:\n" + items + "  - id:\tx\n"},
		{"too few items", "tenants:\n  - id: a\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if doc := parseParts([]byte(tc.doc), 3); doc != nil {
				t.Errorf("parseParts = a tree, want nil (one parse)")
			}
		})
	}
}

// TestParse_LargeFileProblemLines: a file large enough to be parsed in
// parts reports a problem in a late tenant on its line, as one parse does.
func TestParse_LargeFileProblemLines(t *testing.T) {
	defer func(m int) { parallelMin = m }(parallelMin)
	parallelMin = 64 << 10
	var b strings.Builder
	b.WriteString("issuer: https://login.example.com\ntenants:\n")
	n := 0
	for b.Len() < parallelMin+1024 {
		fmt.Fprintf(&b, "  - id: t%d\n    domains: [\"corp%d.example\"]\n    providers:\n      - id: idp%d\n        type: oidc\n        issuer: https://idp%d.example\n        client_id: rg\n        client_secret: s\n", n, n, n, n)
		n++
	}
	b.WriteString("  - id: late\n    domains: [\"late.example\"]\n    colour: blue\n")
	data := []byte(b.String())
	if parseParts(data, 2) == nil {
		t.Fatal("parseParts = nil: the test file is not parsed in parts")
	}
	want := bytes.Count(data[:bytes.Index(data, []byte("    colour: blue"))], []byte{'\n'}) + 1
	_, err := Parse("big.yaml", data, nil)
	ve, ok := err.(*ValidationError)
	if !ok {
		t.Fatalf("Parse = %v, want a *ValidationError", err)
	}
	found := false
	for _, p := range ve.Problems {
		if strings.Contains(p.Message, "colour") {
			found = true
			if p.Line != want {
				t.Errorf("problem %q on line %d, want %d", p.Message, p.Line, want)
			}
		}
	}
	if !found {
		t.Errorf("Parse problems %v, want one naming the unknown field colour", ve.Problems)
	}
}

func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range min(len(g), len(w)) {
		if g[i] != w[i] {
			return fmt.Sprintf("line %d: got  %s\n         want %s", i+1, g[i], w[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(g), len(w))
}
