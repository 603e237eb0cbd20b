package main

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/transform"
)

// compileRulesParts is the number of parts the tenants' engines are
// compiled in at once (a variable for tests; 0 means one per CPU).
var compileRulesParts = 0

// compileRules compiles every tenant's rule engine (the global rules, then
// the tenant's), in parts at once: tenants are independent, and transform's
// expression cache is safe for concurrent use. Errors come in tenant order,
// as one loop gives them. An engine kept by the rule check (keep, may be
// nil) is used as it is.
func compileRules(cfg *config.Config, keep *compiledRules) (map[string]*transform.Engine, error) {
	type result struct {
		eng *transform.Engine
		err error
	}
	results := make([]result, len(cfg.Tenants))
	parts := compileRulesParts
	if parts == 0 {
		parts = runtime.GOMAXPROCS(0)
	}
	parts = max(1, min(parts, len(cfg.Tenants)/64))
	per := (len(cfg.Tenants) + parts - 1) / parts
	var wg sync.WaitGroup
	for from := 0; from < len(cfg.Tenants); from += per {
		to := min(from+per, len(cfg.Tenants))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := from; i < to; i++ {
				eng, err := keep.compile(cfg.Rules, cfg.Tenants[i])
				results[i] = result{eng, err}
			}
		}()
	}
	wg.Wait()
	engines := make(map[string]*transform.Engine, len(cfg.Tenants))
	var errs []error
	for i, r := range results {
		t := cfg.Tenants[i]
		if r.err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", t.ID, r.err))
			continue
		}
		engines[t.ID] = r.eng
	}
	return engines, errors.Join(errs...)
}
