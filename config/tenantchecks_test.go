package config

import (
	"fmt"
	"reflect"
	"testing"
)

// TestOwnTenantChecks_PartsSameAsOneLoop: checking what concerns each
// tenant alone in parts at once gives the problems of one loop, in the
// same order (before sorting by line), interleaved as before with the
// checks across tenants (duplicate ids, domains and provider ids).
func TestOwnTenantChecks_PartsSameAsOneLoop(t *testing.T) {
	data := tenantsYAML(60, "s", func(i int) string {
		switch i % 6 {
		case 0:
			return "    language: xx\n    ip_ranges: [\"10.0.0.1/8\", nope]\n"
		case 1:
			return "    rules:\n      - set: {x: '\"y\"'}\n      - name: r\n"
		case 2:
			return fmt.Sprintf("      - id: idp%d\n        type: nosuch\n", i-1) // a second provider: id of another tenant, unknown type
		case 3:
			return "    default: true\n    members:\n      - idp: nowhere\n"
		case 4:
			return "    domains: [\"corp3.example\", \"bad..name\"]\n"
		}
		return ""
	})
	env := func(string) (string, bool) { return "s", true }
	defer func(m, p int) { ownChecksMin, ownChecksParts = m, p }(ownChecksMin, ownChecksParts)

	problems := func(min, parts int) []Problem {
		ownChecksMin, ownChecksParts = min, parts
		_, err := Parse("t.yaml", data, env)
		if err == nil {
			t.Fatal("Parse = nil error, want the tenants' problems")
		}
		// Parse's problems are sorted by line; the checker's own order
		// is what the parts must keep.
		c := &Config{}
		d := &decoder{src: source{file: "t.yaml"}, lookup: env, maxVisits: maxVisits + len(data)}
		root, err := d.document(data)
		if err != nil {
			t.Fatal(err)
		}
		d.sizeFields(root, 10000)
		d.decode(root, reflect.ValueOf(c).Elem(), 0, 0)
		c.src = d.src
		c.ApplyDefaults()
		return c.problems()
	}
	one := problems(1<<30, 1)
	parts := problems(1, 4)
	if len(one) < 60 {
		t.Fatalf("one loop found %d problems, want at least 60:\n%v", len(one), one)
	}
	if !reflect.DeepEqual(parts, one) {
		for i := range max(len(parts), len(one)) {
			var p, o Problem
			if i < len(parts) {
				p = parts[i]
			}
			if i < len(one) {
				o = one[i]
			}
			if p != o {
				t.Errorf("problem %d in parts = %v, want (one loop) %v", i, p, o)
			}
		}
	}
}
