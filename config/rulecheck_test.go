package config_test

import (
	"errors"
	"testing"

	. "github.com/realmgate/realmgate/config"
	_ "github.com/realmgate/realmgate/idp/builtin"
)

// fakeRules stands in for the rule compiler: it returns the faults listed
// for a rule by "tenant/name", and records which rules it saw.
type fakeRules struct {
	faults map[string][]RuleFault
	seen   []string
}

func (f *fakeRules) CheckRule(tenant string, r Rule) []RuleFault {
	f.seen = append(f.seen, tenant+"/"+r.Name)
	return f.faults[tenant+"/"+r.Name]
}

const ruleDoc = `issuer: https://login.example.com
rules:
  - name: g
    set:
      "https://example.com/role": upstream.role
tenants:
  - id: acme
    providers:
      - id: idp
        type: oidc
        issuer: https://idp.acme.example
        client_id: rg
    rules:
      - name: t
        if: upstream.x
        remove: [a, b]
        stop: true
      - set:
          email: upstream.mail
`

func TestParse_WithRuleChecker(t *testing.T) {
	// tenants[0].rules[1] has no name: validation reports it whatever the checker says.
	for _, tc := range []struct {
		name   string
		faults map[string][]RuleFault
		want   []string // Problem.String() of every problem, in order
	}{
		{"no faults", nil, []string{`f.yaml:18: tenants[0].rules[1].name: is required`}},
		{"each fault at its field's line", map[string][]RuleFault{
			"/g":     {{Field: "set", Key: "https://example.com/role", Message: "bad expr"}},
			"acme/t": {{Field: "if", Message: "bad cond"}, {Field: "remove", Key: "b", Message: "reserved"}, {Message: "whole rule"}},
		}, []string{
			`f.yaml:5: rules[0].set["https://example.com/role"]: bad expr`,
			`f.yaml:14: tenants[0].rules[0]: whole rule`,
			`f.yaml:15: tenants[0].rules[0].if: bad cond`,
			`f.yaml:16: tenants[0].rules[0].remove[1]: reserved`,
			`f.yaml:18: tenants[0].rules[1].name: is required`,
		}},
		{"a field validation reported is not reported twice", map[string][]RuleFault{
			"acme/": {{Field: "name", Message: "a rule needs a name"}, {Field: "set", Key: "email", Message: "bad expr"}},
		}, []string{
			`f.yaml:18: tenants[0].rules[1].name: is required`,
			`f.yaml:19: tenants[0].rules[1].set.email: bad expr`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := &fakeRules{faults: tc.faults}
			_, err := Parse("f.yaml", []byte(ruleDoc), nil, WithRuleChecker(rc))
			var got []string
			var ve *ValidationError
			if errors.As(err, &ve) {
				for _, p := range ve.Problems {
					got = append(got, p.String())
				}
			} else if err != nil {
				t.Fatalf("Parse = %v, want a *ValidationError", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("Parse problems = %q, want %q", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("Parse problem %d = %q, want %q", i, got[i], tc.want[i])
				}
			}
			if want := []string{"/g", "acme/t", "acme/"}; len(rc.seen) != len(want) {
				t.Errorf("rule checker saw %q, want %q", rc.seen, want)
			}
		})
	}
}
