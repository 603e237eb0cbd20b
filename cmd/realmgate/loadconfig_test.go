package main

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

// TestLoadConfigRestoresGC: loading the configuration relaxes the garbage
// collector only while it reads; the process's setting is back after it,
// whether the file loads or not, and a GOGC above the load's or off is kept.
func TestLoadConfigRestoresGC(t *testing.T) {
	good := filepath.Join(t.TempDir(), "ok.yaml")
	if err := os.WriteFile(good, []byte("issuer: https://login.example.test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	for _, tc := range []struct {
		name  string
		path  string
		gc    int
		limit int64
	}{
		{"default", good, 100, math.MaxInt64},
		{"unreadable file", filepath.Join(t.TempDir(), "missing.yaml"), 100, math.MaxInt64},
		{"GOGC above", good, 800, math.MaxInt64},
		{"GOGC off", good, -1, math.MaxInt64},
		{"GOMEMLIMIT low", good, 100, 1 << 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(tc.gc)
			debug.SetMemoryLimit(tc.limit)
			_, _ = loadConfig(tc.path)
			if got := debug.SetGCPercent(tc.gc); got != tc.gc {
				t.Errorf("GC percent after loadConfig = %d, want %d", got, tc.gc)
			}
			if got := debug.SetMemoryLimit(-1); got != tc.limit {
				t.Errorf("memory limit after loadConfig = %d, want %d", got, tc.limit)
			}
		})
	}
}

// TestRelaxGC: while a file loads the collector is off under a memory
// limit, unless the process set a lower limit (then GOGC 400) or GOGC off.
func TestRelaxGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	for _, tc := range []struct {
		name      string
		gc        int
		limit     int64
		wantGC    int
		wantLimit int64
	}{
		{"default", 100, math.MaxInt64, -1, loadMemoryLimit},
		{"GOGC above 400", 800, math.MaxInt64, -1, loadMemoryLimit},
		{"GOGC off", -1, math.MaxInt64, -1, math.MaxInt64},
		{"GOMEMLIMIT low", 100, 1 << 30, loadGCPercent, 1 << 30},
		{"GOMEMLIMIT low, GOGC above 400", 800, 1 << 30, 800, 1 << 30},
		{"GOMEMLIMIT above", 100, 8 << 30, -1, loadMemoryLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(tc.gc)
			debug.SetMemoryLimit(tc.limit)
			restore := relaxGC()
			gotGC, gotLimit := debug.SetGCPercent(-1), debug.SetMemoryLimit(-1)
			debug.SetGCPercent(gotGC)
			restore()
			if gotGC != tc.wantGC || gotLimit != tc.wantLimit {
				t.Errorf("while loading: GC percent %d, memory limit %d; want %d, %d", gotGC, gotLimit, tc.wantGC, tc.wantLimit)
			}
			if gc, limit := debug.SetGCPercent(tc.gc), debug.SetMemoryLimit(-1); gc != tc.gc || limit != tc.limit {
				t.Errorf("after: GC percent %d, memory limit %d; want %d, %d", gc, limit, tc.gc, tc.limit)
			}
		})
	}
}
