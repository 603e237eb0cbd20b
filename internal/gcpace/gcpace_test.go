package gcpace

import (
	"context"
	"log/slog"
	"os"
	"runtime/debug"
	"testing"
)

func TestPercentFor(t *testing.T) {
	tests := []struct {
		name string
		live uint64
		want int
	}{
		{"nothing measured yet", 0, 1600},
		{"tiny heap: capped", 1 << 20, 1600},
		{"4 MiB: the whole 64 MiB of headroom", 4 << 20, 1600},
		{"6 MiB: realmgate under load", 6 << 20, 1066},
		{"16 MiB: 64 MiB of headroom is 400%", 16 << 20, 400},
		{"32 MiB", 32 << 20, 200},
		{"64 MiB: the default", 64 << 20, 100},
		{"large heap never below the default", 4 << 30, 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := PercentFor(tc.live); got != tc.want {
				t.Errorf("PercentFor(%d) = %d, want %d", tc.live, got, tc.want)
			}
		})
	}
}

// TestStart_EnvironmentWins: an operator's GOGC is never overridden.
func TestStart_EnvironmentWins(t *testing.T) {
	prev := debug.SetGCPercent(123)
	defer debug.SetGCPercent(prev)
	t.Setenv("GOGC", "123")
	Start(t.Context(), slog.New(slog.DiscardHandler))
	if got := debug.SetGCPercent(123); got != 123 {
		t.Errorf("GOGC after Start with GOGC set = %d, want 123", got)
	}
}

// TestStart_SetsFromLiveHeap: without GOGC the percent follows the live heap.
func TestStart_SetsFromLiveHeap(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	unsetenv(t, "GOGC")
	unsetenv(t, "GOMEMLIMIT")
	Start(ctx, slog.New(slog.DiscardHandler))
	if got := debug.SetGCPercent(100); got <= 100 || got > gcMaxPercent {
		t.Errorf("GOGC after Start on a test binary's small heap = %d, want 101..%d", got, gcMaxPercent)
	}
}

// unsetenv removes key for the rest of the test; t.Setenv restores it after.
func unsetenv(t *testing.T, key string) {
	t.Helper()
	t.Setenv(key, "")
	if err := os.Unsetenv(key); err != nil {
		t.Fatal(err)
	}
}
