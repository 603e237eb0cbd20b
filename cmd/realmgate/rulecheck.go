package main

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/internal/assemble"
	"github.com/realmgate/realmgate/transform"
)

// ruleChecker compiles the configuration's rules for config.Load
// (config.WithRuleChecker), so that a rule that does not compile is
// reported at its file:line together with every other problem.
type ruleChecker struct {
	// keep, when not nil, holds what the checker compiled until the caller
	// has compiled the tenants' engines (compileRules, buildBroker):
	// transform caches compiled expressions only while something uses them,
	// so without this every expression of a file was compiled twice.
	keep *compiledRules
}

// compiledRules are engines kept alive for transform's expression cache,
// and the tenants' engines that compiled whole, for the broker to use.
type compiledRules struct {
	mu      sync.Mutex
	engines []*transform.Engine
	// tenants are the engines CheckTenantRules compiled, by tenant id.
	tenants map[string]*transform.Engine
}

// compile is assemble.Engine, with an engine the rule check compiled from
// the same rules when there is one (nil keep: always assemble.Engine).
func (k *compiledRules) compile(global []config.Rule, t config.Tenant) (*transform.Engine, error) {
	if k != nil {
		k.mu.Lock()
		eng, ok := k.tenants[t.ID]
		k.mu.Unlock()
		if ok {
			return eng, nil
		}
	}
	return assemble.Engine(global, t)
}

var _ config.RuleChecker = ruleChecker{}

// CheckRule compiles r alone, as a global rule when tenant is empty.
func (rc ruleChecker) CheckRule(tenant string, r config.Rule) []config.RuleFault {
	rules := assemble.Rules([]config.Rule{r})
	var (
		eng *transform.Engine
		err error
	)
	if tenant == "" {
		eng, err = transform.Compile(rules, nil, transform.Options{})
	} else {
		eng, err = transform.Compile(nil, rules, transform.Options{Tenant: tenant})
	}
	if err == nil {
		if rc.keep != nil {
			rc.keep.mu.Lock()
			rc.keep.engines = append(rc.keep.engines, eng)
			rc.keep.mu.Unlock()
		}
		return nil
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	faults := make([]config.RuleFault, 0, len(errs))
	for _, e := range errs {
		var ce *transform.CompileError
		if !errors.As(e, &ce) {
			faults = append(faults, config.RuleFault{Message: e.Error()})
			continue
		}
		f := config.RuleFault{Field: ce.Field, Message: ce.Msg}
		// transform names an entry "set email", "add groups", "remove x".
		if kind, key, ok := strings.Cut(ce.Field, " "); ok {
			f.Field, f.Key = kind, key
		}
		if ce.Line > 0 {
			f.Message = fmt.Sprintf("expression %d:%d: %s", ce.Line, ce.Column, ce.Msg)
		}
		faults = append(faults, f)
	}
	return faults
}

var _ config.TenantRuleChecker = ruleChecker{}

// CheckTenantRules compiles t's engine, the global rules then t's, as the
// broker will, and keeps it for the broker (keep.compile) when it compiles.
func (rc ruleChecker) CheckTenantRules(global []config.Rule, t *config.Tenant) bool {
	eng, err := assemble.Engine(global, *t)
	if err != nil {
		return false
	}
	if rc.keep != nil {
		rc.keep.mu.Lock()
		if rc.keep.tenants == nil {
			rc.keep.tenants = map[string]*transform.Engine{}
		}
		rc.keep.tenants[t.ID] = eng
		rc.keep.mu.Unlock()
	}
	return true
}

var _ config.ConcurrentRuleChecker = ruleChecker{}

// CheckRuleConcurrently reports that CheckRule is safe for concurrent use:
// it compiles into new engines, transform's expression cache is a
// sync.Map, and keep has its mutex.
func (ruleChecker) CheckRuleConcurrently() bool { return true }
