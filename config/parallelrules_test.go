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

// wholeRules is faultyRules that can also check a tenant's rules as one
// set: the set compiles unless one of its rules is named bad*.
type wholeRules struct {
	faultyRules
	sets    int
	globals int // global rules seen with each set
}

func (w *wholeRules) CheckTenantRules(global []Rule, t *Tenant) bool {
	w.mu.Lock()
	w.sets++
	w.globals = len(global)
	w.mu.Unlock()
	for _, r := range t.Rules {
		if strings.HasPrefix(r.Name, "bad") {
			return false
		}
	}
	return true
}

// TestTenantRules_WholeSetFirst: a checker that compiles a tenant's rules
// as one set (TenantRuleChecker) is asked once per tenant with rules, with
// the global rules; only the tenants whose set fails have their rules
// checked one by one, and the problems are those of checking every rule
// alone, in one loop or in parts.
func TestTenantRules_WholeSetFirst(t *testing.T) {
	data := tenantsYAML(40, "s", func(i int) string {
		if i == 7 {
			return "" // no rules: nothing to check
		}
		name := "good"
		if i%3 == 1 {
			name = fmt.Sprintf("bad%d", i)
		}
		return fmt.Sprintf("    rules:\n      - name: %s\n        set: {x: '\"y\"'}\n      - name: second\n        set: {z: '\"w\"'}\n", name)
	})
	data = append([]byte("rules:\n  - name: global\n    set: {g: '\"h\"'}\n"), data...)
	env := func(string) (string, bool) { return "s", true }
	defer func(m, p int) { ruleCheckMin, ruleParts = m, p }(ruleCheckMin, ruleParts)
	ruleCheckMin, ruleParts = 1, 3

	alone := &faultyRules{}
	_, aloneErr := Parse("t.yaml", data, env, WithRuleChecker(alone))
	for _, concurrent := range []bool{false, true} {
		t.Run(fmt.Sprintf("concurrent=%v", concurrent), func(t *testing.T) {
			whole := &wholeRules{faultyRules: faultyRules{concurrent: concurrent}}
			_, err := Parse("t.yaml", data, env, WithRuleChecker(whole))
			if fmt.Sprint(err) != fmt.Sprint(aloneErr) || err == nil {
				t.Errorf("Parse with whole sets = %v\nwant (every rule alone) %v", err, aloneErr)
			}
			if whole.sets != 39 || whole.globals != 1 {
				t.Errorf("CheckTenantRules called %d times with %d global rules, want 39 with 1", whole.sets, whole.globals)
			}
			// The global rule, then the two rules of each of the 12 tenants
			// with a bad rule (i%3 == 1, but not 7, which has no rules).
			if want := 1 + 2*12; whole.calls != want {
				t.Errorf("rules checked alone = %d, want %d (rules of failed sets only)", whole.calls, want)
			}
		})
	}
}
