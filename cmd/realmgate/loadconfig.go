package main

import (
	"runtime/debug"

	"github.com/realmgate/realmgate/config"
)

// loadGCPercent is the garbage collector's target while the configuration
// file is read when a memory limit below loadMemoryLimit is set: a
// 100k-tenant file allocates gigabytes of short-lived YAML nodes, and
// collecting at the default 100 % took about a quarter of the load's CPU
// (docs/performance.md).
const loadGCPercent = 400

// loadMemoryLimit bounds the heap while the configuration file is read
// with the collector off: most of what loading allocates stays live until
// the end (the node tree, the decoded tenants), so collecting before then
// frees little; a 100k-tenant file (60 MB) peaks at about 2.4 GB. Past
// the limit the collector runs as the runtime's soft memory limit says.
const loadMemoryLimit = 4 << 30

// loadConfig is config.Load with the collector relaxed while it runs.
func loadConfig(path string, opts ...config.Option) (*config.Config, error) {
	defer relaxGC()()
	return config.Load(path, opts...)
}

// relaxGC relaxes the collector for a load and returns what restores the
// process's settings. The collector is turned off under loadMemoryLimit;
// with a lower GOMEMLIMIT set, it runs at loadGCPercent instead; a GOGC
// above loadGCPercent, or off, is kept.
func relaxGC() (restore func()) {
	prevPercent := debug.SetGCPercent(-1)
	prevLimit := debug.SetMemoryLimit(-1) // -1 reads it
	switch {
	case prevPercent < 0: // GOGC=off: the process's choice
	case prevLimit < loadMemoryLimit:
		debug.SetGCPercent(max(prevPercent, loadGCPercent))
	default:
		debug.SetMemoryLimit(loadMemoryLimit)
	}
	return func() {
		debug.SetMemoryLimit(prevLimit)
		debug.SetGCPercent(prevPercent)
	}
}
