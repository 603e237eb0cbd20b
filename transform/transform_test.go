package transform

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func mustCompile(t testing.TB, global, tenant []Rule, opts Options) *Engine {
	t.Helper()
	e, err := Compile(global, tenant, opts)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return e
}

func set(claim, expr string) []Assignment { return []Assignment{{Claim: claim, Expr: expr}} }

// contosoRules are the rules of the contoso tenant in
// /work/shared/realmgate.example.yaml, as the config loader converts them.
func contosoRules() []Rule {
	return []Rule{
		{Name: "email from upn", If: `has(upstream.upn)`, Set: set("email", `lower(upstream.upn)`)},
		{Name: "groups to roles", Map: &Map{From: "upstream.groups", To: "roles",
			Table: map[string]string{"Finance-Admins": "admin", "Finance-Readers": "reader"}}},
		{Name: "employees only", If: `has(upstream.employee_type) && upstream.employee_type != "employee"`,
			Deny: "only employees may sign in"},
	}
}

func TestNilEngine_PassesThrough(t *testing.T) {
	var e *Engine
	in := map[string]any{"email": "a@b.example", "roles": []string{"x"}}
	out, err := e.Apply(context.Background(), Input{Claims: in})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Errorf("Apply = %v, want %v", out, in)
	}
	out["email"] = "changed"
	if in["email"] != "a@b.example" {
		t.Errorf("nil engine output aliases the input map")
	}
	res, err := e.Explain(context.Background(), Input{Claims: in})
	if err != nil || len(res.Trace) != 0 || res.Claims["roles"] == nil {
		t.Errorf("Explain = %+v, %v; want claims and no trace", res, err)
	}
}

func TestExampleConfigRules(t *testing.T) {
	contoso := mustCompile(t, nil, contosoRules(), Options{Tenant: "contoso"})
	consumers := mustCompile(t, nil, []Rule{{Name: "everyone is a member", Add: set("roles", `"member"`)}}, Options{Tenant: "consumers"})
	tests := []struct {
		name     string
		e        *Engine
		upstream map[string]any
		claims   map[string]any
		want     map[string]any
		denied   string
	}{
		{
			name:     "contoso employee admin",
			e:        contoso,
			upstream: map[string]any{"upn": "Alice.Smith@Contoso.com", "groups": []any{"Finance-Admins", "Everyone"}, "employee_type": "employee"},
			claims:   map[string]any{"sub": "s1", "tid": "contoso"},
			want:     map[string]any{"sub": "s1", "tid": "contoso", "email": "alice.smith@contoso.com", "roles": []any{"admin"}},
		},
		{
			name:     "contoso no upn, single group string",
			e:        contoso,
			upstream: map[string]any{"groups": "Finance-Readers"},
			claims:   map[string]any{},
			want:     map[string]any{"roles": []any{"reader"}},
		},
		{
			name:     "contoso no matching group leaves roles absent",
			e:        contoso,
			upstream: map[string]any{"groups": []string{"Sales"}},
			want:     map[string]any{},
		},
		{
			name:     "contoso contractor denied",
			e:        contoso,
			upstream: map[string]any{"upn": "bob@contoso.com", "employee_type": "contractor"},
			denied:   "only employees may sign in",
		},
		{
			name:   "consumers member added",
			e:      consumers,
			claims: map[string]any{"email": "x@gmail.example"},
			want:   map[string]any{"email": "x@gmail.example", "roles": []any{"member"}},
		},
		{
			name:   "consumers member not duplicated",
			e:      consumers,
			claims: map[string]any{"roles": []any{"member", "beta"}},
			want:   map[string]any{"roles": []any{"member", "beta"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tc.e.Apply(context.Background(), Input{Upstream: tc.upstream, Claims: tc.claims, Tenant: "contoso", IdP: "contoso-adfs", Client: "notes-app"})
			if tc.denied != "" {
				var de *DeniedError
				if !errors.As(err, &de) || !errors.Is(err, ErrDenied) {
					t.Fatalf("Apply error = %v, want a *DeniedError wrapping ErrDenied", err)
				}
				if de.Message != tc.denied || de.Rule != "employees only" {
					t.Errorf("DeniedError = %+v, want rule %q message %q", de, "employees only", tc.denied)
				}
				if out != nil {
					t.Errorf("Apply returned claims %v with a deny", out)
				}
				return
			}
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if !reflect.DeepEqual(out, tc.want) {
				t.Errorf("Apply = %#v, want %#v", out, tc.want)
			}
		})
	}
}

func TestApply_Actions(t *testing.T) {
	tests := []struct {
		name     string
		global   []Rule
		rules    []Rule
		upstream map[string]any
		claims   map[string]any
		want     map[string]any
	}{
		{
			name:  "set literal and input variables",
			rules: []Rule{{Name: "r", Set: []Assignment{{Claim: "a", Expr: `tenant + "/" + idp + "/" + client`}, {Claim: "b", Expr: `42`}}}},
			want:  map[string]any{"a": "contoso/contoso-adfs/notes-app", "b": int64(42)},
		},
		{
			name:   "if false skips the rule",
			rules:  []Rule{{Name: "r", If: `tenant == "other"`, Set: set("a", `"x"`)}},
			claims: map[string]any{"a": "orig"},
			want:   map[string]any{"a": "orig"},
		},
		{
			name:   "set optional none leaves claim, some sets it",
			rules:  []Rule{{Name: "r", Set: []Assignment{{Claim: "a", Expr: `upstream.?missing`}, {Claim: "b", Expr: `upstream.?dept`}}}},
			claims: map[string]any{"a": "keep"}, upstream: map[string]any{"dept": "Finance"},
			want: map[string]any{"a": "keep", "b": "Finance"},
		},
		{
			name:   "set null removes",
			rules:  []Rule{{Name: "r", Set: set("a", `null`)}},
			claims: map[string]any{"a": "x", "b": "y"},
			want:   map[string]any{"b": "y"},
		},
		{
			name:  "set list and map values",
			rules: []Rule{{Name: "r", Set: []Assignment{{Claim: "l", Expr: `["a", 1, true]`}, {Claim: "m", Expr: `{"k": ["v"]}`}}}},
			want:  map[string]any{"l": []any{"a", int64(1), true}, "m": map[string]any{"k": []any{"v"}}},
		},
		{
			name:   "set entries apply in order and later see earlier",
			rules:  []Rule{{Name: "r", Set: []Assignment{{Claim: "a", Expr: `"one"`}, {Claim: "b", Expr: `claims.a + "-two"`}}}},
			want:   map[string]any{"a": "one", "b": "one-two"},
			claims: map[string]any{},
		},
		{
			name:   "add scalar to existing scalar makes a list",
			rules:  []Rule{{Name: "r", Add: set("roles", `"b"`)}},
			claims: map[string]any{"roles": "a"},
			want:   map[string]any{"roles": []any{"a", "b"}},
		},
		{
			name:     "add list dedupes",
			rules:    []Rule{{Name: "r", Add: set("roles", `upstream.r`)}},
			upstream: map[string]any{"r": []string{"a", "b", "a"}},
			claims:   map[string]any{"roles": []string{"b"}},
			want:     map[string]any{"roles": []any{"b", "a"}},
		},
		{
			name:  "add empty list creates nothing",
			rules: []Rule{{Name: "r", Add: set("roles", `[]`)}},
			want:  map[string]any{},
		},
		{
			name: "map list through table with default",
			rules: []Rule{{Name: "r", Map: &Map{From: `upstream["http://schemas.xmlsoap.org/claims/Group"]`, To: "roles",
				Table: map[string]string{"A": "admin", "B": "admin", "C": "reader"}, Default: "guest"}}},
			upstream: map[string]any{"http://schemas.xmlsoap.org/claims/Group": []any{"A", "B", "C", 7}},
			want:     map[string]any{"roles": []any{"admin", "reader"}},
		},
		{
			name:     "map default when nothing matches",
			rules:    []Rule{{Name: "r", Map: &Map{From: "upstream.groups", To: "roles", Table: map[string]string{"A": "admin"}, Default: "guest"}}},
			upstream: map[string]any{"groups": []any{"Z"}},
			want:     map[string]any{"roles": []any{"guest"}},
		},
		{
			name:   "map from claims nested path, missing source",
			rules:  []Rule{{Name: "r", Map: &Map{From: "claims.org.unit", To: "dept", Table: map[string]string{"F": "finance"}}}},
			claims: map[string]any{"org": "flat"},
			want:   map[string]any{"org": "flat"},
		},
		{
			name:   "map from claims nested path",
			rules:  []Rule{{Name: "r", Map: &Map{From: "claims.org.unit", To: "dept", Table: map[string]string{"F": "finance"}}}},
			claims: map[string]any{"org": map[string]any{"unit": "F"}},
			want:   map[string]any{"org": map[string]any{"unit": "F"}, "dept": []any{"finance"}},
		},
		{
			name:   "remove",
			rules:  []Rule{{Name: "r", Remove: []string{"a", "absent"}}},
			claims: map[string]any{"a": 1, "b": 2},
			want:   map[string]any{"b": int64(2)},
		},
		{
			name:     "set then add then map then remove within one rule",
			rules:    []Rule{{Name: "r", Set: set("x", `"s"`), Add: set("x", `"a"`), Map: &Map{From: "upstream.g", To: "x", Table: map[string]string{"G": "m"}}, Remove: []string{"y"}}},
			upstream: map[string]any{"g": "G"}, claims: map[string]any{"y": 1},
			want: map[string]any{"x": []any{"s", "a", "m"}},
		},
		{
			name: "stop ends the tenant list",
			rules: []Rule{
				{Name: "one", Set: set("a", `"1"`), Stop: true},
				{Name: "two", Set: set("a", `"2"`)},
			},
			want: map[string]any{"a": "1"},
		},
		{
			name:   "stop only when its condition holds",
			rules:  []Rule{{Name: "one", If: `false`, Stop: true}, {Name: "two", Set: set("a", `"2"`)}},
			want:   map[string]any{"a": "2"},
			claims: map[string]any{},
		},
		{
			name:   "global rules run first, tenant rules see their output",
			global: []Rule{{Name: "g", Set: set("a", `"global"`)}},
			rules:  []Rule{{Name: "t", Set: set("b", `claims.a + "+tenant"`)}},
			want:   map[string]any{"a": "global", "b": "global+tenant"},
		},
		{
			name:   "global stop skips only global rules",
			global: []Rule{{Name: "g1", Stop: true}, {Name: "g2", Set: set("a", `"g2"`)}},
			rules:  []Rule{{Name: "t", Set: set("b", `"t"`)}},
			want:   map[string]any{"b": "t"},
		},
		{
			name:   "later rule overrides earlier",
			rules:  []Rule{{Name: "one", Set: set("a", `"1"`)}, {Name: "two", Set: set("a", `claims.a + "2"`)}},
			want:   map[string]any{"a": "12"},
			claims: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := mustCompile(t, tc.global, tc.rules, Options{Tenant: "contoso"})
			out, err := e.Apply(context.Background(), Input{Upstream: tc.upstream, Claims: tc.claims, Tenant: "contoso", IdP: "contoso-adfs", Client: "notes-app"})
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if !reflect.DeepEqual(out, tc.want) {
				t.Errorf("Apply = %#v, want %#v", out, tc.want)
			}
		})
	}
}

func TestApply_AddLargeListDedupes(t *testing.T) {
	e := mustCompile(t, nil, []Rule{{Name: "r", Add: set("groups", `upstream.groups + upstream.groups`)}}, Options{})
	groups := make([]any, 200)
	want := make([]any, 0, 201)
	want = append(want, "g7")
	for i := range groups {
		groups[i] = "g" + strings.Repeat("x", i%100)
	}
	seen := map[any]bool{"g7": true}
	for _, g := range groups {
		if !seen[g] {
			seen[g] = true
			want = append(want, g)
		}
	}
	out, err := e.Apply(context.Background(), Input{Upstream: map[string]any{"groups": groups}, Claims: map[string]any{"groups": "g7"}})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if got := out["groups"]; !reflect.DeepEqual(got, want) {
		t.Errorf("groups = %d values, want %d distinct values in first-seen order", len(got.([]any)), len(want))
	}
}

func TestCompile_NoRules(t *testing.T) {
	e := mustCompile(t, nil, nil, Options{Tenant: "t"})
	out, err := e.Apply(context.Background(), Input{Claims: map[string]any{"a": "b"}})
	if err != nil || !reflect.DeepEqual(out, map[string]any{"a": "b"}) {
		t.Errorf("Apply with no rules = %v, %v; want the claims unchanged", out, err)
	}
	if e.Tenant() != "t" {
		t.Errorf("Tenant() = %q, want %q", e.Tenant(), "t")
	}
}

func TestApply_DoesNotMutateInput(t *testing.T) {
	e := mustCompile(t, nil, []Rule{{Name: "r", Add: set("roles", `"b"`), Remove: []string{"x"}}}, Options{})
	roles := []any{"a"}
	claims := map[string]any{"roles": roles, "x": 1}
	up := map[string]any{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": "u@c.com"}
	if _, err := e.Apply(context.Background(), Input{Claims: claims, Upstream: up}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if len(claims) != 2 || len(roles) != 1 || roles[0] != "a" || len(up) != 1 {
		t.Errorf("input changed: claims=%v roles=%v upstream=%v", claims, roles, up)
	}
}

func TestCompile_S51_ReservedClaimsRefused(t *testing.T) {
	for _, c := range Reserved {
		for _, r := range []Rule{
			{Name: "set", Set: set(c, `"x"`)},
			{Name: "add", Add: set(c, `"x"`)},
			{Name: "remove", Remove: []string{c}},
			{Name: "map", Map: &Map{From: "upstream.g", To: c, Table: map[string]string{"a": "b"}}},
		} {
			t.Run(r.Name+" "+c, func(t *testing.T) {
				_, err := Compile(nil, []Rule{r}, Options{Tenant: "contoso"})
				var ce *CompileError
				if !errors.As(err, &ce) || !errors.Is(err, ErrCompile) {
					t.Fatalf("Compile(%s %s) error = %v, want *CompileError", r.Name, c, err)
				}
				if !strings.Contains(ce.Msg, "reserved") || ce.Rule != r.Name || ce.Tenant != "contoso" {
					t.Errorf("CompileError = %+v, want reserved-claim refusal naming tenant and rule", ce)
				}
			})
		}
	}
	for _, c := range []string{"tid", "idp", "sub", "iss"} {
		if !IsReserved(c) {
			t.Errorf("IsReserved(%q) = false, want true", c)
		}
	}
}

func TestCompile_Errors(t *testing.T) {
	tests := []struct {
		name       string
		global     bool
		rule       Rule
		wantField  string
		wantLine   int
		wantColumn int
		wantMsg    string
	}{
		{name: "undeclared variable", rule: Rule{Name: "r", Set: set("email", "lower(person.upn)")}, wantField: "set email", wantLine: 1, wantColumn: 7, wantMsg: "undeclared reference"},
		{name: "syntax error line 2", rule: Rule{Name: "r", If: "true &&\n  (", Stop: true}, wantField: "if", wantLine: 2, wantMsg: "Syntax error"},
		{name: "condition not bool", rule: Rule{Name: "r", If: `"yes"`, Stop: true}, wantField: "if", wantMsg: "want bool"},
		{name: "wrong argument type", rule: Rule{Name: "r", Set: set("a", `lower(1)`)}, wantField: "set a", wantLine: 1, wantMsg: "no matching overload"},
		{name: "invalid constant regex", rule: Rule{Name: "r", Set: set("a", `regexReplace(upstream.upn, "(", "")`)}, wantField: "set a", wantMsg: "invalid pattern"},
		{name: "empty expression", rule: Rule{Name: "r", Set: set("a", " ")}, wantField: "set a", wantMsg: "empty expression"},
		{name: "expression too long", rule: Rule{Name: "r", Set: set("a", `"`+strings.Repeat("x", 5000)+`"`)}, wantField: "set a", wantMsg: "longer than"},
		{name: "no name", rule: Rule{Set: set("a", `"x"`)}, wantField: "name", wantMsg: "needs a name"},
		{name: "no action", rule: Rule{Name: "r", If: "true"}, wantMsg: "no action"},
		{name: "deny with action", rule: Rule{Name: "r", Deny: "no", Set: set("a", `"x"`)}, wantField: "deny", wantMsg: "other actions"},
		{name: "claim set twice", rule: Rule{Name: "r", Set: []Assignment{{Claim: "a", Expr: "1"}, {Claim: "a", Expr: "2"}}}, wantField: "set a", wantMsg: "twice"},
		{name: "empty claim", rule: Rule{Name: "r", Remove: []string{""}}, wantField: "remove ", wantMsg: "empty claim"},
		{name: "control char claim", rule: Rule{Name: "r", Remove: []string{"a\nb"}}, wantMsg: "invalid characters"},
		{name: "map bad root", rule: Rule{Name: "r", Map: &Map{From: "person.groups", To: "roles", Table: map[string]string{"a": "b"}}}, wantField: "map.from", wantMsg: "upstream, claims or user"},
		{name: "map bad index", rule: Rule{Name: "r", Map: &Map{From: "upstream[groups]", To: "roles", Table: map[string]string{"a": "b"}}}, wantField: "map.from", wantMsg: "quoted"},
		{name: "map no key", rule: Rule{Name: "r", Map: &Map{From: "upstream", To: "roles", Table: map[string]string{"a": "b"}}}, wantField: "map.from"},
		{name: "map empty table", rule: Rule{Name: "r", Map: &Map{From: "upstream.g", To: "roles"}}, wantField: "map.table"},
		{name: "global rule named global", global: true, rule: Rule{Name: "g", Set: set("a", "nope")}, wantField: "set a", wantMsg: "undeclared"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.global {
				_, err = Compile([]Rule{tc.rule}, nil, Options{Tenant: "contoso"})
			} else {
				_, err = Compile(nil, []Rule{tc.rule}, Options{Tenant: "contoso"})
			}
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("Compile error = %v, want *CompileError", err)
			}
			if ce.Tenant != "contoso" || ce.Global != tc.global {
				t.Errorf("CompileError tenant/global = %q/%v, want contoso/%v", ce.Tenant, ce.Global, tc.global)
			}
			if tc.wantField != "" && ce.Field != tc.wantField {
				t.Errorf("CompileError.Field = %q, want %q", ce.Field, tc.wantField)
			}
			if tc.wantLine != 0 && ce.Line != tc.wantLine {
				t.Errorf("CompileError.Line = %d, want %d (%v)", ce.Line, tc.wantLine, ce)
			}
			if tc.wantColumn != 0 && ce.Column != tc.wantColumn {
				t.Errorf("CompileError.Column = %d, want %d (%v)", ce.Column, tc.wantColumn, ce)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Compile error = %q, want it to contain %q", err, tc.wantMsg)
			}
			label := `tenant "contoso" rule`
			if tc.global {
				label = `global rule "g"`
			}
			if !strings.Contains(err.Error(), label) {
				t.Errorf("Compile error = %q, want it to name %s", err, label)
			}
		})
	}
}

func TestCompile_ReportsAllErrors(t *testing.T) {
	_, err := Compile(nil, []Rule{
		{Name: "a", Set: set("x", "bad1")},
		{Name: "a", Set: set("sub", `"x"`)},
	}, Options{Tenant: "t"})
	if err == nil {
		t.Fatal("Compile = nil error, want errors")
	}
	for _, want := range []string{`rule "a": set x: 1:1`, "duplicate rule name", `claim "sub" is reserved`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Compile error = %q, want it to contain %q", err, want)
		}
	}
}

func TestApply_FailClosed(t *testing.T) {
	tests := []struct {
		name     string
		rule     Rule
		upstream map[string]any
		claims   map[string]any
		wantMsg  string
	}{
		{name: "missing key", rule: Rule{Name: "r", Set: set("email", `lower(upstream.upn)`)}, wantMsg: "no such key"},
		{name: "missing key in condition", rule: Rule{Name: "r", If: `upstream.employee_type != "employee"`, Deny: "x"}, wantMsg: "if: no such key"},
		{name: "condition dyn not bool", rule: Rule{Name: "r", If: `upstream.flag`, Stop: true}, upstream: map[string]any{"flag": "yes"}, wantMsg: "not bool"},
		{name: "wrong runtime type", rule: Rule{Name: "r", Set: set("a", `lower(upstream.groups)`)}, upstream: map[string]any{"groups": []any{"x"}}, wantMsg: "no such overload"},
		{name: "join non-string", rule: Rule{Name: "r", Set: set("a", `join(upstream.l, ",")`)}, upstream: map[string]any{"l": []any{"a", 1}}, wantMsg: "element 1"},
		{name: "invalid dynamic regex", rule: Rule{Name: "r", Set: set("a", `regexReplace("x", upstream.p, "")`)}, upstream: map[string]any{"p": "("}, wantMsg: "invalid regex"},
		{name: "division by zero", rule: Rule{Name: "r", Set: set("a", `1 / (size(upstream) - size(upstream))`)}, wantMsg: "division by zero"},
		{name: "NaN result", rule: Rule{Name: "r", Set: set("a", `0.0 / 0.0`)}, wantMsg: "not a JSON number"},
		{name: "bytes result", rule: Rule{Name: "r", Set: set("a", `b"x"`)}, wantMsg: "cannot be a claim value"},
		{name: "map with int keys", rule: Rule{Name: "r", Set: set("a", `{1: "x"}`)}, wantMsg: "want string"},
		{name: "type value", rule: Rule{Name: "r", Add: set("a", `type(1)`)}, wantMsg: "cannot be a claim value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := mustCompile(t, nil, []Rule{tc.rule}, Options{Tenant: "contoso"})
			out, err := e.Apply(context.Background(), Input{Upstream: tc.upstream, Claims: tc.claims})
			var re *RuleError
			if !errors.As(err, &re) {
				t.Fatalf("Apply error = %v, want *RuleError", err)
			}
			if errors.Is(err, ErrDenied) {
				t.Errorf("Apply error %v is ErrDenied; a runtime failure must not look like a deny", err)
			}
			if out != nil {
				t.Errorf("Apply returned claims %v with an error", out)
			}
			if re.Rule != "r" || re.Tenant != "contoso" || !strings.Contains(err.Error(), `tenant "contoso" rule "r"`) {
				t.Errorf("RuleError = %v, want it to name tenant and rule", err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Apply error = %q, want it to contain %q", err, tc.wantMsg)
			}
		})
	}
}

func TestApply_CostLimit(t *testing.T) {
	rule := Rule{Name: "expensive", If: `upstream.groups.map(g, upstream.groups.map(h, g + h)).size() > 0`, Stop: true}
	groups := make([]any, 60)
	for i := range groups {
		groups[i] = strings.Repeat("g", 20)
	}
	in := Input{Upstream: map[string]any{"groups": groups}}
	cheap := mustCompile(t, nil, []Rule{rule}, Options{CostLimit: 1_000_000})
	if _, err := cheap.Apply(context.Background(), in); err != nil {
		t.Fatalf("Apply with a high cost limit: %v", err)
	}
	e := mustCompile(t, nil, []Rule{rule}, Options{CostLimit: 1000})
	_, err := e.Apply(context.Background(), in)
	var re *RuleError
	if !errors.As(err, &re) || re.Rule != "expensive" || !strings.Contains(err.Error(), "cost limit") {
		t.Errorf("Apply error = %v, want a cost limit *RuleError naming rule %q", err, "expensive")
	}
}

func TestApply_Cancelled(t *testing.T) {
	e := mustCompile(t, nil, []Rule{{Name: "r", Set: set("a", `"x"`)}}, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Apply(ctx, Input{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Apply(cancelled ctx) error = %v, want context.Canceled", err)
	}
}

func TestApply_OutputCap(t *testing.T) {
	big := strings.Repeat("x", 40<<10)
	tests := []struct {
		name   string
		opts   Options
		rules  []Rule
		claims map[string]any
		rule   string // want a RuleError naming it; "" for the total cap
	}{
		{name: "one value over 64 KiB", rules: []Rule{{Name: "grow", Set: set("a", `upstream.big + upstream.big`)}}, rule: "grow"},
		{name: "added list over the cap", rules: []Rule{{Name: "grow", Add: set("a", `[upstream.big, upstream.big + "y"]`)}}, rule: "grow"},
		{name: "total over 64 KiB", rules: []Rule{{Name: "copy", Set: []Assignment{{Claim: "a", Expr: `upstream.big`}, {Claim: "b", Expr: `upstream.big`}}}}},
		{name: "input claims alone over a small cap", opts: Options{MaxOutputBytes: 100}, rules: []Rule{{Name: "noop", Stop: true}},
			claims: map[string]any{"a": strings.Repeat("y", 200)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := mustCompile(t, nil, tc.rules, tc.opts)
			out, err := e.Apply(context.Background(), Input{Upstream: map[string]any{"big": big}, Claims: tc.claims})
			if !errors.Is(err, ErrOutputTooLarge) || out != nil {
				t.Fatalf("Apply = %d claims, %v; want ErrOutputTooLarge", len(out), err)
			}
			var re *RuleError
			if tc.rule != "" && (!errors.As(err, &re) || re.Rule != tc.rule) {
				t.Errorf("Apply error = %v, want it to name rule %q", err, tc.rule)
			}
		})
	}
	e := mustCompile(t, nil, []Rule{{Name: "copy", Set: set("a", `upstream.big`)}}, Options{})
	if _, err := e.Apply(context.Background(), Input{Upstream: map[string]any{"big": big}}); err != nil {
		t.Errorf("Apply with 40 KiB of output: %v, want success", err)
	}
}

func TestApply_SAMLAliases(t *testing.T) {
	const upnURI = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"
	const groupURI = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
	e := mustCompile(t, nil, []Rule{{Name: "r", Set: []Assignment{
		{Claim: "by_alias", Expr: `upstream.upn`},
		{Claim: "by_uri", Expr: `upstream["` + upnURI + `"]`},
		{Claim: "groups", Expr: `upstream.groups`},
		{Claim: "name", Expr: `upstream.name`},
	}}}, Options{})
	up := map[string]any{
		upnURI:            "alice@contoso.com",
		groupURI:          []string{"S-1-5-21-1004336348-1177238915-682003330-512"},
		"name":            "already here",
		wsClaims + "name": "CONTOSO\\alice",
	}
	out, err := e.Apply(context.Background(), Input{Upstream: up})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	want := map[string]any{"by_alias": "alice@contoso.com", "by_uri": "alice@contoso.com",
		"groups": []any{"S-1-5-21-1004336348-1177238915-682003330-512"}, "name": "already here"}
	if !reflect.DeepEqual(out, want) {
		t.Errorf("Apply = %#v, want %#v", out, want)
	}
	for uri, alias := range map[string]string{upnURI: "upn", groupURI: "groups", "urn:oid:0.9.2342.19200300.100.1.3": "email"} {
		if got, ok := Alias(uri); !ok || got != alias {
			t.Errorf("Alias(%q) = %q, %v; want %q", uri, got, ok, alias)
		}
	}
}

func TestApply_InputValueTypes(t *testing.T) {
	e := mustCompile(t, nil, []Rule{{Name: "r", Set: []Assignment{
		{Claim: "n", Expr: `upstream.n + 1`},
		{Claim: "f", Expr: `upstream.f * 2.0`},
		{Claim: "i", Expr: `upstream.i == 3`},
		{Claim: "ss", Expr: `upstream.ss.size()`},
		{Claim: "ts", Expr: `upstream.ts + duration("1h")`},
		{Claim: "deep", Expr: `upstream.m.k[0]`},
		{Claim: "ptr", Expr: `upstream.p`},
	}}}, Options{})
	s := "pointed"
	ts := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	var raw map[string]any
	dec := json.NewDecoder(strings.NewReader(`{"n": 41, "f": 1.25, "m": {"k": ["v"]}}`))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		t.Fatal(err)
	}
	raw["i"] = int32(3)
	raw["ss"] = []string{"a", "b"}
	raw["ts"] = ts
	raw["p"] = &s
	out, err := e.Apply(context.Background(), Input{Upstream: raw})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	want := map[string]any{"n": int64(42), "f": 2.5, "i": true, "ss": int64(2), "ts": ts.Add(time.Hour), "deep": "v", "ptr": "pointed"}
	if !reflect.DeepEqual(out, want) {
		t.Errorf("Apply = %#v, want %#v", out, want)
	}
	if _, err := e.Apply(context.Background(), Input{Upstream: map[string]any{"c": make(chan int)}}); err == nil {
		t.Errorf("Apply with a channel upstream value = nil error, want an error")
	}
	deep := map[string]any{}
	cur := deep
	for i := 0; i < 100; i++ {
		next := map[string]any{}
		cur["x"] = next
		cur = next
	}
	if _, err := e.Apply(context.Background(), Input{Upstream: deep}); err == nil || !strings.Contains(err.Error(), "too deeply") {
		t.Errorf("Apply with 100-deep upstream = %v, want a nesting error", err)
	}
}

func TestExplain_Trace(t *testing.T) {
	e := mustCompile(t, []Rule{{Name: "global tag", Add: set("roles", `"user"`)}}, contosoRules(), Options{Tenant: "contoso"})
	res, err := e.Explain(context.Background(), Input{Upstream: map[string]any{"upn": "A@Contoso.com", "groups": []any{"Finance-Admins"}}})
	if err != nil {
		t.Fatalf("Explain: %v", err)
	}
	want := []Step{
		{Rule: "global tag", Global: true, Matched: true, Changes: []Change{{Action: "add", Claim: "roles", After: []any{"user"}}}},
		{Rule: "email from upn", Matched: true, Changes: []Change{{Action: "set", Claim: "email", After: "a@contoso.com"}}},
		{Rule: "groups to roles", Matched: true, Changes: []Change{{Action: "map", Claim: "roles", Before: []any{"user"}, After: []any{"user", "admin"}}}},
		{Rule: "employees only"},
	}
	if !reflect.DeepEqual(res.Trace, want) {
		t.Errorf("Explain trace = %+v, want %+v", res.Trace, want)
	}
	if got := res.Claims["roles"]; !reflect.DeepEqual(got, []any{"user", "admin"}) {
		t.Errorf("Explain claims roles = %v, want [user admin]", got)
	}

	res, err = e.Explain(context.Background(), Input{Upstream: map[string]any{"employee_type": "contractor"}})
	if !errors.Is(err, ErrDenied) {
		t.Fatalf("Explain error = %v, want ErrDenied", err)
	}
	last := res.Trace[len(res.Trace)-1]
	if last.Rule != "employees only" || last.Denied != "only employees may sign in" || !last.Matched {
		t.Errorf("Explain last step = %+v, want the deny", last)
	}

	res, err = e.Explain(context.Background(), Input{Upstream: map[string]any{"upn": 7}})
	if err == nil || len(res.Trace) != 2 || res.Trace[1].Err == "" || res.Trace[1].Rule != "email from upn" {
		t.Errorf("Explain on failure = %+v, %v; want the failing step with Err", res.Trace, err)
	}
}

func TestEngine_Concurrent(t *testing.T) {
	e := mustCompile(t, nil, contosoRules(), Options{Tenant: "contoso"})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				out, err := e.Apply(context.Background(), Input{Upstream: map[string]any{"upn": "X@contoso.com", "groups": []any{"Finance-Admins"}}})
				if err != nil || out["email"] != "x@contoso.com" {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Apply failed: %v", err)
	}
}

func TestSortedAssignments(t *testing.T) {
	got := SortedAssignments(map[string]string{"b": "2", "a": "1", "c": "3"})
	want := []Assignment{{"a", "1"}, {"b", "2"}, {"c", "3"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("SortedAssignments = %v, want %v", got, want)
	}
}

func TestCompile_SharesAndReleasesPrograms(t *testing.T) {
	rules := []Rule{{Name: "r", Set: set("a", `"shared-program-test-" + tenant`)}}
	e1 := mustCompile(t, nil, rules, Options{Tenant: "t1"})
	e2 := mustCompile(t, nil, rules, Options{Tenant: "t2"})
	if e1.rules[0].set[0].prg != e2.rules[0].set[0].prg {
		t.Errorf("two tenants with the same expression got two programs, want one shared")
	}
	e3 := mustCompile(t, nil, rules, Options{Tenant: "t3", CostLimit: 7})
	if e3.rules[0].set[0].prg == e1.rules[0].set[0].prg {
		t.Errorf("a different cost limit shared a program")
	}
	out, err := e2.Apply(context.Background(), Input{Tenant: "t2"})
	if err != nil || out["a"] != "shared-program-test-t2" {
		t.Fatalf("Apply = %v, %v", out, err)
	}
	key := progKey{src: rules[0].Set[0].Expr, costLimit: DefaultCostLimit}
	if cachedProgram(key) == nil {
		t.Fatalf("program not cached")
	}
	e1, e2, e3 = nil, nil, nil
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		if _, ok := progCache.Load(key); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("program cache entry still present after its engines were collected")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
