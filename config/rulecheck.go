package config

import (
	"fmt"
	"slices"
	"strconv"
)

// RuleChecker compiles a rule in the rule language, which config does not
// know: the caller that does (cmd, with transform) implements it, so config
// keeps importing nothing internal. Passed to Load or Parse with
// WithRuleChecker, it lets every rule that does not compile be reported at
// its file:line together with every other problem of the file.
type RuleChecker interface {
	// CheckRule compiles r, a rule of tenant (empty for a global rule), on
	// its own and returns every fault found, or none.
	CheckRule(tenant string, r Rule) []RuleFault
}

// TenantRuleChecker is the optional capability of a RuleChecker that
// compiles a tenant's rules as one set, after the global rules, as the
// broker runs them. When that succeeds none of the tenant's rules is
// compiled alone (a file of 100k tenants then compiles each tenant once
// instead of once a rule); when it fails, each rule is checked alone with
// CheckRule to say which is at fault and where.
type TenantRuleChecker interface {
	// CheckTenantRules reports whether t's rules compile after global.
	CheckTenantRules(global []Rule, t *Tenant) bool
}

// RuleFault is one reason a rule does not compile.
type RuleFault struct {
	// Field is the part of the rule at fault, named as in the file: "if",
	// "set", "add", "remove", "map.from", "map.to", "map.table", "name",
	// "deny"; empty for the rule as a whole.
	Field string
	// Key is the claim of the set, add or remove entry at fault; empty
	// for the other fields.
	Key string
	// Message says what is wrong.
	Message string
}

// Option changes how Load and Parse read a configuration.
type Option func(*options)

type options struct {
	rules RuleChecker
}

// WithRuleChecker makes Load and Parse compile every global and tenant rule
// with rc and report each fault as a Problem at the rule's file:line.
func WithRuleChecker(rc RuleChecker) Option {
	return func(o *options) { o.rules = rc }
}

// ruleProblems compiles every rule of c with rc.
func (c *Config) ruleProblems(rc RuleChecker) []Problem {
	k := &checker{c: c}
	k.compileRules(rc, "", c.Rules, "rules")
	if c.tenantRulesParallel(rc, k) { // parallelrules.go
		return k.probs
	}
	for i := range c.Tenants {
		k.tenantRules(rc, i)
	}
	return k.probs
}

// tenantRules checks the rules of tenants[i]: as one set first when rc
// can, then, if that fails or rc cannot, each alone.
func (k *checker) tenantRules(rc RuleChecker, i int) {
	t := &k.c.Tenants[i]
	if len(t.Rules) == 0 {
		return
	}
	if tc, ok := rc.(TenantRuleChecker); ok && tc.CheckTenantRules(k.c.Rules, t) {
		return
	}
	k.compileRules(rc, t.ID, t.Rules, tenantsPath+"["+strconv.Itoa(i)+"].rules")
}

func (k *checker) compileRules(rc RuleChecker, tenant string, rules []Rule, path string) {
	for i, r := range rules {
		p := fmt.Sprintf("%s[%d]", path, i)
		for _, f := range rc.CheckRule(tenant, r) {
			k.add(faultPath(p, r, f), "%s", f.Message)
		}
	}
}

// faultPath is the dotted path of the field of rule r (at path p) that f
// is about, like rules[0].set.email or tenants[1].rules[2].remove[0].
func faultPath(p string, r Rule, f RuleFault) string {
	switch {
	case (f.Field == "set" || f.Field == "add") && f.Key != "":
		return p + "." + f.Field + keyPath(f.Key)
	case f.Field == "remove" && f.Key != "":
		if j := slices.Index(r.Remove, f.Key); j >= 0 {
			return fmt.Sprintf("%s.remove[%d]", p, j)
		}
		return p + ".remove"
	case f.Field != "":
		return p + "." + f.Field
	}
	return p
}

// mergeRuleProblems adds to probs the rule problems not already explained:
// a field that could not be decoded, or that validation already reported
// (a missing name, a rule without action), is not reported twice.
func mergeRuleProblems(probs, decodeProbs, ruleProbs []Problem) []Problem {
	reported := make(map[string]bool, len(probs))
	for _, p := range probs {
		reported[p.Field] = true
	}
	for _, p := range ruleProbs {
		if !reported[p.Field] && !coveredBy(p.Field, decodeProbs) {
			probs = append(probs, p)
		}
	}
	return probs
}
