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
	oneEngines, oneErr := compileRules(cfg)
	compileRulesParts = 3
	engines, err := compileRules(cfg)
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
