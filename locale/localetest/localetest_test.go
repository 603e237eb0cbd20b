package localetest_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/locale/localetest"
)

// TestMessages_FindsEveryKind writes a small package and a template and
// checks the scan finds each kind of message, and the + it must refuse.
func TestMessages_FindsEveryKind(t *testing.T) {
	dir := t.TempDir()
	src := `package p
func f(p printer, d *page) {
	p.T("from T")
	p.Tf("from Tf %s", x)
	show(nil, "from an argument")
	_ = page{Title: "from a field", Steps: []string{"from a list"}}
	d.Message = "from an assignment"
	msg := "from a variable"
	show(nil, "built "+msg)
}
`
	if err := os.WriteFile(filepath.Join(dir, "p.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "p.html"), []byte(`{{.T "from a template"}} {{$.Tf "and %s" .X}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	s := localetest.Scan{Dir: dir, Fields: map[string]bool{"Title": true, "Message": true, "Steps": true},
		Args: map[string][]int{"T": {0}, "Tf": {0}, "show": {1}}, Vars: map[string]bool{"msg": true}, Templates: []string{"*.html"}}
	got := localetest.Messages(t, s)
	for _, want := range []string{"from T", "from Tf %s", "from an argument", "from a field", "from a list",
		"from an assignment", "from a variable", "from a template", "and %s"} {
		if _, ok := got[want]; !ok {
			t.Errorf("Messages() lacks %q (found %v)", want, got)
		}
	}
	if c := localetest.Concatenated(t, s); len(c) != 1 || !strings.Contains(c[0], "p.go:9") {
		t.Errorf("Concatenated() = %q, want the one + on line 9", c)
	}
}
