package transform

import (
	"context"
	"reflect"
	"testing"
)

func TestFunctions(t *testing.T) {
	up := map[string]any{
		"upn":    "Alice.Smith@Contoso.COM",
		"mail":   "alice@contoso.com",
		"groups": []any{"Finance-Admins", "Sales"},
		"csv":    "a,b,,c",
		"sam":    `CONTOSO\alice`,
		"empty":  "",
		"nil":    nil,
	}
	tests := []struct {
		expr string
		want any
	}{
		{`lower(upstream.upn)`, "alice.smith@contoso.com"},
		{`upper(upstream.upn)`, "ALICE.SMITH@CONTOSO.COM"},
		{`lower("ÀÉ")`, "àé"},
		{`upstream.upn.lowerAscii()`, "alice.smith@contoso.com"},
		{`upstream.upn.upperAscii()`, "ALICE.SMITH@CONTOSO.COM"},
		{`mailPrefix(upstream.upn)`, "Alice.Smith"},
		{`mailPrefix("no-at-sign")`, "no-at-sign"},
		{`mailPrefix("a@b@c.com")`, "a@b"},
		{`emailDomain(upstream.upn)`, "contoso.com"},
		{`emailDomain("nodomain")`, ""},
		{`regexReplace(upstream.upn, "@.*$", "@fabrikam.com")`, "Alice.Smith@fabrikam.com"},
		{`regexReplace(upstream.sam, "^[^\\\\]+\\\\(.*)$", "$1")`, "alice"},
		{`regexReplace("a-b-c", upstream.empty + "-", "_")`, "a_b_c"},
		{`regexExtract(upstream.upn, "^([^@]+)@")`, "Alice.Smith"},
		{`regexExtract(upstream.upn, "[a-z]+")`, "lice"},
		{`regexExtract(upstream.upn, "^zzz(.*)")`, ""},
		{`regexExtract(upstream.upn, upstream.empty + "C(on)")`, "on"},
		{`split(upstream.csv, ",")`, []any{"a", "b", "", "c"}},
		{`split("", ",")`, []any{}},
		{`upstream.csv.split(",").size()`, int64(4)},
		{`join(upstream.groups, ";")`, "Finance-Admins;Sales"},
		{`join([], ";")`, ""},
		{`upstream.groups.join("|")`, "Finance-Admins|Sales"},
		{`get(upstream, "mail", "none")`, "alice@contoso.com"},
		{`get(upstream, "missing", "none")`, "none"},
		{`get(upstream, "nil", "was null")`, "was null"},
		{`get(upstream, "missing", [])`, []any{}},
		{`upstream.?missing.orValue("fallback")`, "fallback"},
		{`upstream.groups.filter(g, g.startsWith("Finance-"))`, []any{"Finance-Admins"}},
		{`upstream.groups.exists(g, g.matches("^Fin"))`, true},
		{`upstream.groups.exists(g, g.matches(upstream.empty + "^Fin"))`, true},
		{`upstream.upn.endsWith("@Contoso.COM") ? "internal" : "external"`, "internal"},
		{`upstream.empty == "" ? upstream.mail : upstream.empty`, "alice@contoso.com"},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			e := mustCompile(t, nil, []Rule{{Name: "f", Set: set("out", tc.expr)}}, Options{})
			out, err := e.Apply(context.Background(), Input{Upstream: up})
			if err != nil {
				t.Fatalf("Apply(%s): %v", tc.expr, err)
			}
			if got := out["out"]; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s = %#v, want %#v", tc.expr, got, tc.want)
			}
		})
	}
}
