package config

import (
	"runtime"
	"sync"
)

// ConcurrentRuleChecker is the optional capability of a RuleChecker whose
// CheckRule (and CheckTenantRules, if it has it) may be called from
// several goroutines at once: Parse then
// compiles the tenants' rules in parts, one per CPU (a 100k-tenant file
// has 200k rules), and reports their problems in the order one loop does.
type ConcurrentRuleChecker interface {
	// CheckRuleConcurrently reports whether CheckRule is safe for
	// concurrent use.
	CheckRuleConcurrently() bool
}

// ruleParts is the number of parts the tenants' rules are checked in (a
// variable for tests; 0 means one per CPU), and ruleCheckMin the fewest
// tenants checked in parts.
var (
	ruleParts    = 0
	ruleCheckMin = 512
)

// tenantRulesParallel checks the tenants' rules with rc in parts at once,
// adding the problems to k in tenant order, and reports whether it did:
// not when rc is not safe for concurrent use or there are few tenants.
func (c *Config) tenantRulesParallel(rc RuleChecker, k *checker) bool {
	cc, ok := rc.(ConcurrentRuleChecker)
	if !ok || !cc.CheckRuleConcurrently() || len(c.Tenants) < ruleCheckMin {
		return false
	}
	parts := ruleParts
	if parts == 0 {
		parts = runtime.GOMAXPROCS(0)
	}
	if parts < 2 {
		return false
	}
	per := (len(c.Tenants) + parts - 1) / parts
	var subs []*checker
	var wg sync.WaitGroup
	for from := 0; from < len(c.Tenants); from += per {
		to := min(from+per, len(c.Tenants))
		sub := &checker{c: c}
		subs = append(subs, sub)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := from; i < to; i++ {
				sub.tenantRules(rc, i)
			}
		}()
	}
	wg.Wait()
	for _, sub := range subs {
		k.probs = append(k.probs, sub.probs...)
	}
	return true
}
