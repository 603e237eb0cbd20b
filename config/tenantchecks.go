package config

import (
	"runtime"
	"sync"
)

// ownChecksMin is the fewest tenants whose own checks run in parts at
// once (a variable for tests), and ownChecksParts the number of parts (0:
// one per CPU).
var (
	ownChecksMin   = 512
	ownChecksParts = 0
)

// ownProblems are the problems of one tenant's own checks, in the places
// the tenants loop puts them: after the tenant's domains and subdomain,
// after each provider's id, and last the rules'.
type ownProblems struct {
	head      []Problem
	providers [][]Problem
	rules     []Problem
}

// ownTenantChecks runs ownChecks for every tenant, in parts at once for a
// long list (a file of 100k tenants has 100k providers and 200k rules to
// check): the checks read the configuration and its field sources and
// change nothing, and each part has a checker of its own.
func (k *checker) ownTenantChecks() []ownProblems {
	out := make([]ownProblems, len(k.c.Tenants))
	if k.only != nil { // ValidateTenants: these tenants' alone
		sub := &checker{c: k.c}
		for i := range k.only {
			if i >= 0 && i < len(out) {
				out[i] = sub.ownChecks(i)
			}
		}
		return out
	}
	parts := ownChecksParts
	if parts == 0 {
		parts = runtime.GOMAXPROCS(0)
	}
	if len(k.c.Tenants) < ownChecksMin || parts < 2 {
		parts = 1
	}
	per := (len(out) + parts - 1) / max(parts, 1)
	var wg sync.WaitGroup
	for from := 0; from < len(out); from += per {
		to := min(from+per, len(out))
		sub := &checker{c: k.c}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := from; i < to; i++ {
				out[i] = sub.ownChecks(i)
			}
		}()
	}
	wg.Wait()
	return out
}
