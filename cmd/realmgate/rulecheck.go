package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/internal/assemble"
	"github.com/realmgate/realmgate/transform"
)

// ruleChecker compiles the configuration's rules for config.Load
// (config.WithRuleChecker), so that a rule that does not compile is
// reported at its file:line together with every other problem.
type ruleChecker struct{}

var _ config.RuleChecker = ruleChecker{}

// CheckRule compiles r alone, as a global rule when tenant is empty.
func (ruleChecker) CheckRule(tenant string, r config.Rule) []config.RuleFault {
	rules := assemble.Rules([]config.Rule{r})
	var err error
	if tenant == "" {
		_, err = transform.Compile(rules, nil, transform.Options{})
	} else {
		_, err = transform.Compile(nil, rules, transform.Options{Tenant: tenant})
	}
	if err == nil {
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
