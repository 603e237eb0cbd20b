package config_test

import (
	"cmp"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/realmgate/realmgate/config"
)

// TestUpstreamConcurrency: upstream_concurrency is read, 0 keeps the
// default, and values out of range are reported.
func TestUpstreamConcurrency(t *testing.T) {
	base, err := os.ReadFile(filepath.Join("..", "testdata", "config", "realmgate.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	env := func(k string) (string, bool) { return "value-of-" + k, true }
	for _, tc := range []struct {
		line    string
		want    int
		problem string
	}{
		{"", 0, ""},
		{"upstream_concurrency: 8", 8, ""},
		{"upstream_concurrency: 0", 0, ""},
		{"upstream_concurrency: -1", 0, "upstream_concurrency"},
		{"upstream_concurrency: 1000000", 0, "upstream_concurrency"},
	} {
		t.Run(cmp.Or(tc.line, "unset"), func(t *testing.T) {
			doc := string(base) + "\n" + tc.line + "\n"
			c, err := Parse("realmgate.yaml", []byte(doc), env)
			if tc.problem != "" {
				if err == nil || !strings.Contains(err.Error(), tc.problem) {
					t.Fatalf("Parse with %q = %v, want a problem naming %s", tc.line, err, tc.problem)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse with %q: %v", tc.line, err)
			}
			if c.UpstreamConcurrency != tc.want {
				t.Errorf("Parse with %q: UpstreamConcurrency = %d, want %d", tc.line, c.UpstreamConcurrency, tc.want)
			}
		})
	}
}
