package store_test

import (
	"go/build"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/realmgate/realmgate/"

// imports returns the non-test imports of the package in dir (relative to
// the module root) and, through every package of this module it reaches,
// the transitive closure of them.
func imports(t *testing.T, dir string) []string {
	t.Helper()
	seen := map[string]bool{}
	var walk func(dir string)
	walk = func(dir string) {
		pkg, err := build.Default.ImportDir(filepath.Join("..", filepath.FromSlash(dir)), 0)
		if err != nil {
			t.Fatalf("ImportDir(%q) = %v", dir, err)
		}
		for _, p := range pkg.Imports {
			if seen[p] {
				continue
			}
			seen[p] = true
			if rest, ok := strings.CutPrefix(p, module); ok {
				walk(rest)
			}
		}
	}
	walk(dir)
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// TestImports_StoresDependOnStoreOnly: the store contract stands alone, so a
// store implementation never pulls in the broker and its HTTP framework,
// rule engine and metrics.
func TestImports_StoresDependOnStoreOnly(t *testing.T) {
	for _, p := range imports(t, "store") {
		if first, _, _ := strings.Cut(p, "/"); strings.Contains(first, ".") {
			t.Errorf("store imports %q, want the standard library only", p)
		}
	}
	for _, dir := range []string{"broker/memstore", "broker/redisstore", "broker/storetest"} {
		t.Run(dir, func(t *testing.T) {
			for _, p := range imports(t, dir) {
				if rest, ok := strings.CutPrefix(p, module); ok && rest != "store" {
					t.Errorf("%s imports %q, want no package of realmgate but store", dir, p)
				}
				for _, banned := range []string{"labstack/echo", "google/cel-go", "prometheus"} {
					if strings.Contains(p, banned) {
						t.Errorf("%s imports %q", dir, p)
					}
				}
			}
		})
	}
}
