package transform

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzCompileApply compiles arbitrary rule text and runs it over arbitrary
// JSON identities: it must never panic, and must never let a rule change a
// reserved claim. Run: go test -fuzz FuzzCompileApply -fuzztime 10m ./transform/
func FuzzCompileApply(f *testing.F) {
	f.Add(`has(upstream.upn)`, `lower(upstream.upn)`, "upstream.groups", `{"upn":"A@B.com","groups":["x"]}`)
	f.Add(`true`, `regexReplace(upstream.a, upstream.b, "$1")`, `upstream["u"]`, `{"a":"aaa","b":"(a+)+"}`)
	f.Add(`upstream.n > 3`, `[upstream.n, upstream.n * 2]`, "claims.x", `{"n":5}`)
	f.Add(`get(upstream, "k", 1) == 1`, `split(join(upstream.l, ","), ",")`, "upstream.l", `{"l":["a","b"]}`)
	f.Add(`"a" in upstream.l`, `upstream.?m.orValue({"a": [1, 2.5, null]})`, "upstream.m.a", `{"m":{"a":[true]}}`)
	f.Fuzz(func(t *testing.T, cond, expr, from, identity string) {
		e, err := Compile(nil, []Rule{
			{Name: "a", If: cond, Set: set("out", expr), Add: set("roles", expr)},
			{Name: "b", Map: &Map{From: from, To: "roles", Table: map[string]string{"x": "y"}, Default: "d"}},
		}, Options{Tenant: "fuzz", CostLimit: 10_000})
		if err != nil {
			if !errors.Is(err, ErrCompile) {
				t.Fatalf("Compile error %v does not wrap ErrCompile", err)
			}
			return
		}
		var up map[string]any
		if json.Unmarshal([]byte(identity), &up) != nil {
			up = map[string]any{"raw": identity}
		}
		claims := map[string]any{"sub": "s", "tid": "fuzz"}
		out, err := e.Apply(context.Background(), Input{Upstream: up, Claims: claims})
		if err != nil {
			return
		}
		if out["sub"] != "s" || out["tid"] != "fuzz" {
			t.Fatalf("reserved claims changed: %v", out)
		}
		if _, err := json.Marshal(out); err != nil {
			t.Fatalf("output is not JSON-encodable: %v", err)
		}
	})
}

// maxFuzzAlloc bounds what one Apply of an arbitrary rule may allocate:
// the 1 MiB evaluation budget (its functions' working copies included),
// CEL's per-operation bookkeeping under the 100,000 cost limit and the
// conversion of the result.
const maxFuzzAlloc = 48 << 20

// FuzzApplyBounded_S71 runs arbitrary expressions, seeded with the
// amplification attacks of SECURITY S71, and checks that no evaluation
// allocates more than maxFuzzAlloc, whatever the rule: it succeeds or
// fails with an error, never grows without bound. Run:
// go test ./transform -run '^$' -fuzz FuzzApplyBounded_S71 -fuzztime 10m -parallel 1
func FuzzApplyBounded_S71(f *testing.F) {
	amp := strings.Repeat("$0", 600)
	f.Add(s71Attack("upstream.s"), `{"s":"abcdefghij"}`)
	f.Add(`regexReplace(regexReplace(upstream.s, upstream.p, upstream.r), upstream.p, upstream.r)`,
		`{"s":"abcdefghij","p":".","r":"`+amp+`"}`)
	f.Add(`upstream.s.replace("", upstream.r).replace("$", upstream.r)`, `{"s":"abcdefghij","r":"`+amp+`"}`)
	f.Add(`join(split(join(split(upstream.s, ""), upstream.r), ""), upstream.r)`, `{"s":"abcdefghij","r":"`+amp+`"}`)
	f.Add(`upstream.l.map(a, upstream.l.map(b, upstream.s + upstream.s + upstream.s))`, `{"s":"abcdefghij","l":[1,2,3,4,5,6,7,8]}`)
	f.Add(`"%.99999999f".format([upstream.n])`, `{"n":1.5}`)
	f.Add(`upstream.s.matches(upstream.p)`, `{"s":"a","p":"a{1000}a{1000}a{1000}"}`)
	f.Add(`lower(upper(lower(upper(upstream.s + upstream.s))))`, `{"s":"\u0130\u0130"}`)
	f.Add(`[upstream.s, upstream.s].map(x, x.split("").join(x)).join(upstream.s)`, `{"s":"abcdefghijklmnop"}`)
	f.Fuzz(func(t *testing.T, expr, identity string) {
		e, err := Compile(nil, []Rule{{Name: "a", Set: set("out", expr)}}, Options{Tenant: "fuzz"})
		if err != nil {
			return
		}
		var up map[string]any
		if json.Unmarshal([]byte(identity), &up) != nil {
			up = map[string]any{"raw": identity}
		}
		n := allocDuring(func() { _, err = e.Apply(context.Background(), Input{Upstream: up}) })
		if n > maxFuzzAlloc {
			t.Fatalf("Apply(%.200q) allocated %d bytes (err %v), over %d", expr, n, err, maxFuzzAlloc)
		}
	})
}
