package transform

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
)

// amplify is the replacement: "$0" * 600, 1200 bytes that expand
// every one-byte match 600-fold.
var amplify = strings.Repeat("$0", 600)

// s71Attack is the reported rule: regexReplace three deep (3.7 KB of CEL).
func s71Attack(inner string) string {
	e := inner
	for range 3 {
		e = `regexReplace(` + e + `, ".", "` + amplify + `")`
	}
	return e
}

// allocDuring returns the bytes the process allocated while f ran.
func allocDuring(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// maxAttackAlloc is what one refused evaluation may allocate in all: the
// 1 MiB budget, the budgeted functions' working copies and CEL's own
// bookkeeping. Without the budget each attack below allocates gigabytes.
const maxAttackAlloc = 24 << 20

// TestApply_S71_BoundsMemory runs rules that would allocate gigabytes: each
// is refused with ErrLimit (a RuleError: the sign-in fails closed) after
// allocating at most maxAttackAlloc.
func TestApply_S71_BoundsMemory(t *testing.T) {
	big := strings.Repeat("x", 100_000)
	long := make([]any, 200)
	for i := range long {
		long[i] = "g"
	}
	up := map[string]any{"x": "abcdefghij", "dot": ".", "big": big, "l": long,
		"m": long[:60], "bomb": strings.Repeat("a{1000}", 100), "amp": amplify}
	tests := []struct {
		name string
		rule Rule
	}{
		{"nested regexReplace (the report)", Rule{Name: "r", Set: set("out", s71Attack("upstream.x"))}},
		{"nested regexReplace, computed pattern", Rule{Name: "r", Set: set("out",
			`regexReplace(regexReplace(regexReplace(upstream.x, upstream.dot, upstream.amp), upstream.dot, upstream.amp), upstream.dot, upstream.amp)`)}},
		{"regexReplace in a condition", Rule{Name: "r", If: `size(` + s71Attack("upstream.x") + `) > 0`, Deny: "no"}},
		{"error absorbed by ||", Rule{Name: "r", If: `size(` + s71Attack("upstream.x") + `) > 0 || true`, Deny: "no"}},
		{"error absorbed by exists", Rule{Name: "r", If: `[1].exists(i, size(` + s71Attack("upstream.x") + `) > 0) || true`, Deny: "no"}},
		{"nested replace", Rule{Name: "r", Set: set("out",
			`upstream.x.replace("", upstream.amp).replace("$", upstream.amp).replace("$", upstream.amp)`)}},
		{"join of a huge list", Rule{Name: "r", Set: set("out",
			`join(split(join(split(upstream.x, ""), upstream.amp), ""), upstream.amp)`)}},
		{"ext join of a huge list", Rule{Name: "r", Set: set("out",
			`upstream.x.split("").join(upstream.amp).split("").join(upstream.amp)`)}},
		{"repeated concatenation", Rule{Name: "r", Set: set("out",
			`upstream.l.map(g, upstream.big + upstream.big + upstream.big)`)}},
		{"deeply nested calls", Rule{Name: "r", Set: set("out",
			strings.Repeat("lower(upper(", 30)+`upstream.big + upstream.big`+strings.Repeat("))", 30))}},
		{"list of lists", Rule{Name: "r", Set: set("out", `upstream.m.map(a, upstream.m.map(b, upstream.m))`)}},
		{"format precision", Rule{Name: "r", Set: set("out", `"%.999999999f".format([1.5])`)}},
		{"computed regex bomb", Rule{Name: "r", If: `upstream.x.matches(upstream.bomb)`, Deny: "no"}},
		{"rune conversions", Rule{Name: "r", Set: set("out", `upstream.l.map(g, upstream.big.reverse().charAt(0))`)}},
		{"rune counting (work)", Rule{Name: "r", Set: set("out",
			`upstream.l.map(g, `+strings.Repeat("size(upstream.big) + ", 20)+`0)`)}},
		{"indexOf quadratic", Rule{Name: "r", Set: set("out", `upstream.big.indexOf(upstream.big.substring(1) + "y")`)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := mustCompile(t, nil, []Rule{tc.rule}, Options{Tenant: "t"})
			var err error
			n := allocDuring(func() {
				_, err = e.Apply(context.Background(), Input{Upstream: up, Claims: map[string]any{"sub": "s"}})
			})
			var re *RuleError
			if !errors.Is(err, ErrLimit) || !errors.As(err, &re) {
				t.Errorf("Apply = %v, want a RuleError wrapping ErrLimit", err)
			}
			t.Logf("allocated %d bytes: %v", n, err)
			if n > maxAttackAlloc {
				t.Errorf("Apply allocated %d bytes, want at most %d", n, maxAttackAlloc)
			}
		})
	}
}

// TestCompile_S71_RefusesRegexBombs: a constant pattern that would compile
// to a huge program is a compile error, for every function taking one; and
// CEL has no string repetition operator.
func TestCompile_S71_RefusesRegexBombs(t *testing.T) {
	bomb := strings.Repeat("a{1000}", 100)
	for _, expr := range []string{
		`upstream.x.matches("` + bomb + `")`,
		`matches(upstream.x, "` + bomb + `")`,
		`regexReplace(upstream.x, "` + bomb + `", "")`,
		`regexExtract(upstream.x, "` + bomb + `") == ""`,
		`"$0" * 600 == ""`,
	} {
		var err error
		n := allocDuring(func() { _, err = Compile(nil, []Rule{{Name: "r", If: expr, Deny: "no"}}, Options{}) })
		if !errors.Is(err, ErrCompile) {
			t.Errorf("Compile(%.40q) = %v, want ErrCompile", expr, err)
		}
		if n > maxAttackAlloc {
			t.Errorf("Compile(%.40q) allocated %d bytes, want at most %d", expr, n, maxAttackAlloc)
		}
	}
}

// TestApply_S71_NormalRulesFit: realistic rules over a large identity stay
// well within the budget, and the budget is per evaluation (a second
// sign-in starts afresh).
func TestApply_S71_NormalRulesFit(t *testing.T) {
	groups := make([]any, 1000)
	for i := range groups {
		groups[i] = "CN=Group " + strings.Repeat("x", 40) + ",OU=Groups,DC=contoso,DC=com"
	}
	rules := []Rule{
		{Name: "joined", Set: set("joined", `join(upstream.groups, ";").size() > 0 ? "yes" : "no"`)},
		{Name: "cn", Set: set("cns", `upstream.groups.map(g, regexExtract(g, "^CN=([^,]+)"))`)},
		{Name: "lower", Set: set("email", `lower(regexReplace(upstream.upn, "@.*$", "@contoso.com"))`)},
		{Name: "dyn", Set: set("dyn", `regexReplace(upstream.upn, upstream.pat, "$1")`)},
	}
	e := mustCompile(t, nil, rules, Options{Tenant: "t", MaxOutputBytes: 1 << 20})
	in := Input{Upstream: map[string]any{"groups": groups, "upn": "Alice@Contoso.COM", "pat": "^(.*)@.*$"}}
	for i := range 3 {
		out, err := e.Apply(context.Background(), in)
		if err != nil {
			t.Fatalf("Apply #%d = %v, want success", i, err)
		}
		if out["email"] != "alice@contoso.com" || out["dyn"] != "Alice" || len(out["cns"].([]any)) != 1000 {
			t.Fatalf("Apply #%d = email %v, dyn %v, want alice@contoso.com, Alice and 1000 cns", i, out["email"], out["dyn"])
		}
	}
}

// TestApply_S71_MaxEvalBytes: the budget is configurable per engine.
func TestApply_S71_MaxEvalBytes(t *testing.T) {
	rules := []Rule{{Name: "r", Set: set("out", `upstream.x + upstream.x`)}}
	in := Input{Upstream: map[string]any{"x": strings.Repeat("a", 1000)}}
	if _, err := mustCompile(t, nil, rules, Options{MaxEvalBytes: 1500}).Apply(context.Background(), in); !errors.Is(err, ErrLimit) {
		t.Errorf("Apply with a 1500-byte budget = %v, want ErrLimit", err)
	}
	if _, err := mustCompile(t, nil, rules, Options{}).Apply(context.Background(), in); err != nil {
		t.Errorf("Apply with the default budget = %v, want success", err)
	}
}
