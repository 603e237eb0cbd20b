package ruleimport

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/transform"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want func(*testing.T, *RuleSet)
	}{
		{"annotations and template", "@RuleTemplate = \"PassThroughClaims\"\n@RuleName = \"Pass \\\"quoted\\\" email\"\nc:[Type == \"t\"] => issue(claim = c);",
			func(t *testing.T, rs *RuleSet) {
				r := rs.Rules[0]
				if r.Name != `Pass "quoted" email` || r.Template != "PassThroughClaims" || r.Action.Copy != "c" {
					t.Errorf("rule = %+v", r)
				}
			}},
		{"keywords in any case, no final semicolon", `C:[TYPE == "t", VALUE =~ "x"] => ISSUE(TYPE = "u", VALUE = C.VALUE)`,
			func(t *testing.T, rs *RuleSet) {
				r := rs.Rules[0]
				if r.Conds[0].Tests[1].Prop != "Value" || r.Action.Verb != "issue" || len(r.Action.Params) != 2 {
					t.Errorf("rule = %+v", r)
				}
			}},
		{"backslashes stay as written", `=> issue(Type = "t", Value = "a\\b\d\"");`,
			func(t *testing.T, rs *RuleSet) {
				if v := rs.Rules[0].Action.Params[1].Expr.(*StrLit).Val; v != `a\\b\d"` {
					t.Errorf("value = %q, want %q", v, `a\\b\d"`)
				}
			}},
		{"aggregates", `NOT EXISTS([Type == "a"]) && exists([Type == "b"]) && COUNT([Type == "c"]) >= 2 => add(Type = "d", Value = "1");`,
			func(t *testing.T, rs *RuleSet) {
				c := rs.Rules[0].Conds
				if c[0].Agg != aggNotExists || c[1].Agg != aggExists || c[2].Agg != aggCount || c[2].CountOp != tokGe || c[2].Count != 2 {
					t.Errorf("conds = %+v %+v %+v", c[0], c[1], c[2])
				}
			}},
		{"store query", `c:[Type == "w"] => issue(store = "Active Directory", types = ("a", "b"), query = ";mail,cn;{0}", param = c.Value);`,
			func(t *testing.T, rs *RuleSet) {
				s := rs.Rules[0].Action.Store
				if s.Store != "Active Directory" || !reflect.DeepEqual(s.Types, []string{"a", "b"}) || len(s.Params) != 1 {
					t.Errorf("store = %+v", s)
				}
			}},
		{"comments", "// a comment\n/* another */ => issue(Type = \"t\", Value = \"v\");",
			func(t *testing.T, rs *RuleSet) {
				if len(rs.Rules) != 1 || rs.Rules[0].Pos != (Pos{2, 15}) {
					t.Errorf("rules = %+v", rs.Rules)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs, errs := Parse(tc.src)
			if len(errs) > 0 {
				t.Fatalf("Parse(%q): %v", tc.src, errs)
			}
			if len(rs.Rules) == 0 {
				t.Fatalf("Parse(%q): no rules", tc.src)
			}
			tc.want(t, rs)
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		src  string
		pos  string
		msg  string
		keep int // rules still parsed
	}{
		{`c:[Type = "t"] => issue(claim = c);`, "1:9", "expected ==, !=, =~ or !~ after Type", 0},
		{"c:[Type == \"t\"] => issue(claim = c)\nc:[Type == \"u\"] => issue(claim = c);", "1:36", `expected ";"`, 1},
		{`c:[Type == "t"] => emit(claim = c);`, "1:20", "expected issue or add", 0},
		{`c:[Type == "t"] => issue(Value = "v");`, "1:20", "without Type", 0},
		{`c:[Type == "t] => issue(claim = c);`, "1:12", "string never closed", 0},
		{"=> issue(Type = \"t\", Value = \"v\");\n@RuleName = 5\n=> issue(Type = \"u\", Value = \"v\");", "2:13", `expected "string"`, 1},
		{`c:[Type == "t"] & c2:[Type == "u"] => issue(claim = c);`, "1:17", `"&" alone`, 0},
		{`c:[Type == "t"] => issue(Type = "u", Value = c.Name);`, "1:48", `no property "Name"`, 0},
	}
	for _, tc := range tests {
		t.Run(tc.src, func(t *testing.T) {
			rs, errs := Parse(tc.src)
			if len(errs) == 0 {
				t.Fatalf("Parse(%q): no error", tc.src)
			}
			if errs[0].Pos.String() != tc.pos || !strings.Contains(errs[0].Msg, tc.msg) {
				t.Errorf("Parse(%q) error = %s, want at %s containing %q", tc.src, errs[0], tc.pos, tc.msg)
			}
			if len(rs.Rules) != tc.keep {
				t.Errorf("Parse(%q) kept %d rules, want %d", tc.src, len(rs.Rules), tc.keep)
			}
		})
	}
}

// run imports src and applies it to upstream.
func run(t *testing.T, src string, opts Options, upstream map[string]any, client string) (map[string]any, error) {
	t.Helper()
	rs, perr := Parse(src)
	if len(perr) > 0 {
		t.Fatalf("Parse: %v", perr)
	}
	res := Convert(rs, opts)
	if len(res.Problems) > 0 {
		t.Fatalf("Convert: %v", res.Problems)
	}
	rules := make([]transform.Rule, len(res.Rules))
	for i, r := range res.Rules {
		rules[i] = TransformRule(r)
	}
	eng, err := transform.Compile(nil, rules, transform.Options{Tenant: "t"})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return eng.Apply(context.Background(), transform.Input{Upstream: upstream, Claims: map[string]any{}, Client: client})
}

func TestConvertSemantics(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		opts     Options
		upstream map[string]any
		client   string
		want     map[string]any
		denied   bool
	}{
		{name: "a selector tests another's value (join)",
			src:      `c1:[Type == "a"] && c2:[Type == "b", Value == c1.Value] => issue(Type = "c", Value = c2.Value + "!");`,
			upstream: map[string]any{"a": list("x", "y"), "b": list("y", "z")},
			want:     map[string]any{"c": list("y!")}},
		{name: "a rule does not see what later rules issue",
			src:      "c:[Type == \"b\"] => issue(Type = \"seen\", Value = c.Value);\n=> issue(Type = \"b\", Value = \"late\");",
			upstream: map[string]any{},
			want:     map[string]any{"b": list("late")}},
		{name: "a later rule sees what earlier rules added, the output does not",
			src:      "=> add(Type = \"tmp\", Value = \"1\");\nc:[Type == \"tmp\"] => issue(Type = \"out\", Value = c.Value + \"2\");",
			upstream: map[string]any{},
			want:     map[string]any{"out": list("12")}},
		{name: "issue of a type the rule reads: the output comes from the input as it was",
			src:      "c:[Type == \"g\"] => issue(Type = \"g\", Value = c.Value + \"x\");\nc:[Type == \"g\"] => issue(Type = \"h\", Value = c.Value);",
			upstream: map[string]any{"g": "a"},
			want:     map[string]any{"g": list("ax"), "h": list("a", "ax")}},
		{name: "NOT EXISTS",
			src:      `NOT EXISTS([Type == "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"]) => issue(Type = "noemail", Value = "true");`,
			upstream: map[string]any{"email": "a@b.c"},
			want:     map[string]any{}},
		{name: "COUNT",
			src:      `COUNT([Type == "g", Value =~ "^a"]) > 1 => issue(Type = "many", Value = "yes");`,
			upstream: map[string]any{"g": list("ab", "ac", "b")},
			want:     map[string]any{"many": list("yes")}},
		{name: "Issuer tests hold for the upstream IdP's claims",
			src:      `c:[Type == "g", Issuer =~ "^(AD AUTHORITY|SELF AUTHORITY)$", OriginalIssuer != "LOCAL AUTHORITY"] => issue(claim = c);`,
			upstream: map[string]any{"g": "v"},
			want:     map[string]any{"g": list("v")}},
		{name: "ValueType test",
			src:      `c:[Type == "g", ValueType == "http://www.w3.org/2001/XMLSchema#string"] => issue(claim = c);`,
			upstream: map[string]any{"g": list("v", true)},
			want:     map[string]any{"g": list("v")}},
		{name: "regexreplace with .NET substitutions",
			src:      `c:[Type == "g"] => issue(Type = "h", Value = regexreplace(c.Value, "(\w+)@(\w+)", "$2$1x-$&-$$"));`,
			upstream: map[string]any{"g": "me@corp"},
			want:     map[string]any{"h": list("corpmex-me@corp-$")}},
		{name: "client scope: another client",
			src: `=> issue(Type = "g", Value = "v");`, opts: Options{Client: "payroll"},
			upstream: map[string]any{}, client: "other", want: map[string]any{}},
		{name: "client scope: its client",
			src: `=> issue(Type = "g", Value = "v");`, opts: Options{Client: "payroll"},
			upstream: map[string]any{}, client: "payroll", want: map[string]any{"g": list("v")}},
		{name: "permit all, then a deny",
			src:      "=> issue(Type = \"http://schemas.microsoft.com/authorization/claims/permit\", Value = \"true\");\nc:[Type == \"g\", Value == \"x\"] => issue(Type = \"http://schemas.microsoft.com/authorization/claims/deny\", Value = \"true\");",
			upstream: map[string]any{"g": list("x")}, denied: true},
		{name: "permit all",
			src:      "=> issue(Type = \"http://schemas.microsoft.com/authorization/claims/permit\", Value = \"true\");\nc:[Type == \"g\", Value == \"x\"] => issue(Type = \"http://schemas.microsoft.com/authorization/claims/deny\", Value = \"true\");",
			upstream: map[string]any{"g": list("y")}, want: map[string]any{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(t, tc.src, tc.opts, tc.upstream, tc.client)
			if tc.denied {
				if !errors.Is(err, transform.ErrDenied) {
					t.Fatalf("Apply = %v, %v; want denied", out, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if !reflect.DeepEqual(out, tc.want) {
				t.Errorf("Apply\n got %#v\nwant %#v", out, tc.want)
			}
		})
	}
}

func TestConvertProblems(t *testing.T) {
	tests := []struct{ src, pos, msg string }{
		{`c:[] => issue(claim = c);`, "1:1", "matches claims of any type"},
		{`c:[Type =~ "^http"] => issue(claim = c);`, "1:4", "cannot be converted: realmgate reads claims by type"},
		{`c:[Type == "g", Issuer == "SELF AUTHORITY"] => issue(claim = c);`, "1:17", "never holds"},
		{`c:[Type == "g"] => issue(claim = d);`, "1:20", "no selector binds d"},
		{`c:[Type == "g"] => issue(Type = "sub", Value = c.Value);`, "1:20", `claim "sub" is reserved`},
		{`c:[Type == "g"] => issue(Type = "h", Value = c.Properties["p"]);`, "1:46", "cannot be converted"},
		{`c:[Type == "g"] => issue(Type = "h", Value = regexreplace(c.Value, "(a)\1", "x"));`, "1:68", "backreferences"},
		{`c:[Type == "g"] => issue(Type = "h", Value = regexreplace(c.Value, "a", "$_"));`, "1:73", "no RE2 equivalent"},
		{`c:[Type == "a"] && EXISTS([Type == "g", Value == c.Value]) => issue(Type = "h", Value = "v");`, "1:20", "refers to a claim variable"},
		{`EXISTS([Type == "g", Value == c.Value]) => issue(Type = "h", Value = "v");`, "1:31", "c is not bound"},
	}
	for _, tc := range tests {
		t.Run(tc.src, func(t *testing.T) {
			rs, perr := Parse(tc.src)
			if len(perr) > 0 {
				t.Fatalf("Parse: %v", perr)
			}
			res := Convert(rs, Options{})
			if len(res.Problems) != 1 {
				t.Fatalf("Convert(%q) problems = %v, want one", tc.src, res.Problems)
			}
			if p := res.Problems[0]; p.Pos.String() != tc.pos || !strings.Contains(p.Msg+" "+p.Hint, tc.msg) {
				t.Errorf("Convert(%q) problem = %s, want at %s containing %q", tc.src, p, tc.pos, tc.msg)
			}
			if len(res.Rules) != 0 {
				t.Errorf("Convert(%q) rules = %v, want none", tc.src, res.Rules)
			}
		})
	}
}

func TestReplacement(t *testing.T) {
	for in, want := range map[string]string{
		"${user}@x": "${user}@x", "$1a": "${1}a", "$&": "${0}", "$$": "$$", "a$b": "a$$b", "$": "$", "FABRIKAM\\${user}": "FABRIKAM\\${user}",
	} {
		if got, err := replacement(in); err != nil || got != want {
			t.Errorf("replacement(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
