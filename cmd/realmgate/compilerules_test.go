package main

import (
	"fmt"
	"testing"

	"github.com/realmgate/realmgate/config"
)

// TestCompileRules_PartsSameAsOneLoop: compiling the tenants' engines in
// parts at once gives the engines and the errors, in tenant order, that
// one loop gives.
func TestCompileRules_PartsSameAsOneLoop(t *testing.T) {
	cfg := &config.Config{Rules: []config.Rule{{Name: "global", Set: map[string]string{"g": `"1"`}}}}
	for i := range 300 {
		tn := config.Tenant{ID: fmt.Sprintf("t%d", i)}
		switch i % 5 {
		case 0:
			tn.Rules = []config.Rule{{Name: "ok", If: `claims.email.endsWith("@corp.example")`, Set: map[string]string{"x": `"y"`}}}
		case 1:
			tn.Rules = []config.Rule{{Name: "bad", If: `claims.email.endsWith(`}}
		case 2:
			tn.Rules = []config.Rule{{Name: fmt.Sprintf("bad%d", i), Set: map[string]string{"x": "nope("}}}
		}
		cfg.Tenants = append(cfg.Tenants, tn)
	}
	defer func(p int) { compileRulesParts = p }(compileRulesParts)
	compileRulesParts = 1
	oneEngines, oneErr := compileRules(cfg, nil)
	compileRulesParts = 3
	engines, err := compileRules(cfg, nil)
	if oneErr == nil {
		t.Fatal("compileRules (one loop) = nil error, want the bad rules' errors")
	}
	if fmt.Sprint(err) != fmt.Sprint(oneErr) {
		t.Errorf("compileRules in parts error =\n%v\nwant (one loop)\n%v", err, oneErr)
	}
	if len(engines) != len(oneEngines) {
		t.Fatalf("compileRules in parts = %d engines, want %d", len(engines), len(oneEngines))
	}
	for id, want := range oneEngines {
		got, ok := engines[id]
		if !ok || (got == nil) != (want == nil) {
			t.Errorf("engine of %s in parts = %v (present %v), want %v", id, got, ok, want)
		}
	}
}

// TestRuleChecker_TenantEnginesKeptForTheBroker: a tenant whose rules
// compile as one set after the global rules is compiled once: the rule
// check keeps its engine and compile (the broker's and check-config's
// compiler) hands out that engine instead of compiling again. A set that
// does not compile is not kept, and compile then reports its error.
func TestRuleChecker_TenantEnginesKeptForTheBroker(t *testing.T) {
	global := []config.Rule{{Name: "global", Set: map[string]string{"g": `"1"`}}}
	good := config.Tenant{ID: "good", Rules: []config.Rule{{Name: "ok", Set: map[string]string{"x": `"y"`}}}}
	clash := config.Tenant{ID: "clash", Rules: []config.Rule{{Name: "twice", Set: map[string]string{"x": `"y"`}}, {Name: "twice", Set: map[string]string{"z": `"y"`}}}}
	rc := ruleChecker{keep: &compiledRules{}}
	if !rc.CheckTenantRules(global, &good) {
		t.Fatal("CheckTenantRules(good) = false, want true")
	}
	if rc.CheckTenantRules(global, &clash) {
		t.Error("CheckTenantRules(two rules of one name) = true, want false")
	}
	kept := rc.keep.tenants["good"]
	if kept == nil {
		t.Fatal("the engine of a tenant whose rules compiled was not kept")
	}
	if eng, err := rc.keep.compile(global, good); err != nil || eng != kept {
		t.Errorf("compile(good) = %p, %v; want the kept engine %p", eng, err, kept)
	}
	if _, err := rc.keep.compile(global, clash); err == nil {
		t.Error("compile(clash) = nil error, want the duplicate name")
	}
	var none *compiledRules
	if eng, err := none.compile(global, good); err != nil || eng == nil || eng == kept {
		t.Errorf("compile without a rule check = %p, %v; want a new engine", eng, err)
	}
}
