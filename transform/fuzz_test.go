package transform

import (
	"context"
	"encoding/json"
	"errors"
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
