package main

import (
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
	for _, tc := range []struct {
		name string
		path string
		gc   int
	}{
		{"default", good, 100},
		{"unreadable file", filepath.Join(t.TempDir(), "missing.yaml"), 100},
		{"GOGC above", good, 800},
		{"GOGC off", good, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(tc.gc)
			_, _ = loadConfig(tc.path)
			if got := debug.SetGCPercent(tc.gc); got != tc.gc {
				t.Errorf("GC percent after loadConfig = %d, want %d", got, tc.gc)
			}
		})
	}
}
