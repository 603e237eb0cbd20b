package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestBenchmarkRuns runs `go run ./bench` end to end with every flow for a
// fraction of a second, so the documented benchmark keeps working: the
// processes start and stop, every flow completes without an error, the
// memory step reads the session records, and realmgate and the baseline
// make the same Redis round trips (else the benchmark prints WARNING: a new
// store call in one of realmgate's flows was not mirrored in baseline.go),
// counted on requests made one after another, not in the timed windows,
// whose counts drift on a busy machine.
func TestBenchmarkRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis, realmgate, the baseline and the upstream")
	}
	text := runBench(t, "-duration", "600ms", "-warmup", "200ms", "-rounds", "1",
		"-concurrency", "4", "-login-concurrency", "4")
	if strings.Contains(text, "WARNING") {
		t.Errorf("realmgate and the baseline differ in Redis round trips:\n%s", text)
	}
	// The round trips are counted on requests made one after another, so
	// the comparison holds however busy the machine is; it must be made.
	if strings.Contains(text, "not compared") || strings.Contains(text, "round trips not counted") {
		t.Errorf("round trips were not counted for every flow:\n%s", text)
	}
	for _, flow := range allFlows {
		for _, target := range []string{"realmgate", "baseline"} {
			// A fast machine may use up the token flow's pre-minted codes
			// before the window ends: the row then says so after "errors 0".
			re := regexp.MustCompile(`(?m)^` + flow + ` +` + target + ` +max +\d+ req/s .* errors 0( \(codes used up: window shortened\))?$`)
			if !re.MatchString(text) {
				t.Errorf("no error-free %s row for %s in the output:\n%s", target, flow, text)
			}
		}
	}
	for _, want := range []string{"kept after the sign-in", "  ss    string", "Targets (issue 6):", "Redis memory per SSO session"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
}

// runBench builds the benchmark and runs it with args from the module root,
// as the README runs it, within three minutes; it returns the output and
// fails the test if the benchmark fails.
func runBench(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "bench")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build ./bench: %v\n%s", err, out)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bench %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
