package config

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// faultyRules faults every rule named bad*, on its set entry x; calls
// counts the rules it checked.
type faultyRules struct {
	mu         sync.Mutex
	calls      int
	concurrent bool
}

func (f *faultyRules) CheckRule(tenant string, r Rule) []RuleFault {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	if strings.HasPrefix(r.Name, "bad") {
		return []RuleFault{{Field: "set", Key: "x", Message: "bad rule of " + tenant}, {Message: "and the whole rule"}}
	}
	return nil
}

func (f *faultyRules) CheckRuleConcurrently() bool { return f.concurrent }

// TestTenantRulesParallel_SameProblemsAsOneLoop: checking the tenants'
// rules in parts reports the problems, lines and order of one loop.
func TestTenantRulesParallel_SameProblemsAsOneLoop(t *testing.T) {
	data := tenantsYAML(40, "s", func(i int) string {
		name := "good"
		if i%3 == 1 {
			name = fmt.Sprintf("bad%d", i)
		}
		return fmt.Sprintf("    rules:\n      - name: %s\n        set: {x: '\"y\"'}\n      - name: second\n        set: {z: '\"w\"'}\n", name)
	})
	env := func(string) (string, bool) { return "s", true }
	defer func(m, p int) { ruleCheckMin, ruleParts = m, p }(ruleCheckMin, ruleParts)
	ruleCheckMin, ruleParts = 1, 3

	one := &faultyRules{}
	_, oneErr := Parse("t.yaml", data, env, WithRuleChecker(one))
	parts := &faultyRules{concurrent: true}
	_, partsErr := Parse("t.yaml", data, env, WithRuleChecker(parts))
	op, _ := oneErr.(*ValidationError)
	pp, _ := partsErr.(*ValidationError)
	if op == nil || len(op.Problems) != 2*13 {
		t.Fatalf("Parse (one loop) = %v, want 26 rule problems", oneErr)
	}
	if pp == nil || !reflect.DeepEqual(pp.Problems, op.Problems) {
		t.Errorf("Parse in parts = %v\nwant (one loop) %v", partsErr, oneErr)
	}
	if one.calls != 80 || parts.calls != 80 {
		t.Errorf("rules checked: one loop %d, in parts %d; want 80 each", one.calls, parts.calls)
	}

	c := &Config{Tenants: make([]Tenant, 4)}
	if !c.tenantRulesParallel(parts, &checker{c: c}) {
		t.Error("tenantRulesParallel(concurrent checker) = false, want true")
	}
	if c.tenantRulesParallel(one, &checker{c: c}) {
		t.Error("tenantRulesParallel(checker not safe for concurrent use) = true, want false")
	}
}
