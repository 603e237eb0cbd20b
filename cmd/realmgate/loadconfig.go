package main

import (
	"runtime/debug"

	"github.com/realmgate/realmgate/config"
)

// loadGCPercent is the garbage collector's target while the configuration
// file is read: a 100k-tenant file allocates gigabytes of short-lived YAML
// nodes, and collecting at the default 100 % took about a quarter of the
// load's CPU (docs/performance.md); at 400 % the peak heap grows by a
// tenth. The setting the process had (GOGC) is restored after the load.
const loadGCPercent = 400

// loadConfig is config.Load with the collector relaxed while it runs; a
// GOGC above loadGCPercent, or off, is kept.
func loadConfig(path string, opts ...config.Option) (*config.Config, error) {
	prev := debug.SetGCPercent(loadGCPercent)
	if prev < 0 || prev > loadGCPercent {
		debug.SetGCPercent(prev)
	}
	defer debug.SetGCPercent(prev)
	return config.Load(path, opts...)
}
