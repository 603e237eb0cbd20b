// Package securityids checks that every requirement of SECURITY.md is proven
// by at least one test named for its id (as the developers' guide asks).
package securityids

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// securityMD prefers the team's shared copy beside the repository; the
// testdata copy (made with `cp ../shared/SECURITY.md testdata/`) keeps the
// test working where shared/ is absent.
func securityMD(t *testing.T) []byte {
	t.Helper()
	if b, err := os.ReadFile("../../../shared/SECURITY.md"); err == nil {
		return b
	}
	b, err := os.ReadFile("testdata/SECURITY.md")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEveryRequirementHasANamedTest(t *testing.T) {
	ids := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^- (S\d\d) `).FindAllSubmatch(securityMD(t), -1) {
		ids[string(m[1])] = false
	}
	if len(ids) < 40 {
		t.Fatalf("found %d requirement ids in SECURITY.md; the format changed?", len(ids))
	}
	name := regexp.MustCompile(`func ((?:Test|Fuzz|test)\w*)\(`)
	sid := regexp.MustCompile(`S\d\d`)
	tests := map[string][]string{}
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == ".git") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range name.FindAllSubmatch(src, -1) {
			for _, id := range sid.FindAll(m[1], -1) {
				if _, ok := ids[string(id)]; ok {
					ids[string(id)] = true
					tests[string(id)] = append(tests[string(id)], string(m[1]))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for id, ok := range ids {
		if !ok {
			missing = append(missing, id)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("no test is named for %s", strings.Join(missing, ", "))
	}
	if testing.Verbose() {
		keys := make([]string, 0, len(tests))
		for k := range tests {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			t.Logf("%s: %s", k, strings.Join(tests[k], ", "))
		}
	}
}

func TestTestdataCopyIsCurrent(t *testing.T) {
	shared, err := os.ReadFile("../../../shared/SECURITY.md")
	if err != nil {
		t.Skip("no shared/ beside the repository")
	}
	local, _ := os.ReadFile("testdata/SECURITY.md")
	if !bytes.Equal(shared, local) {
		t.Errorf("testdata/SECURITY.md differs from ../shared/SECURITY.md: cp ../shared/SECURITY.md internal/securityids/testdata/")
	}
}
