package e2etest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"text/template"
)

// WriteConfig executes tmpl with data into realmgate.yaml in a fresh
// directory of the test (removed when it ends) and returns the file's path.
func WriteConfig(t testing.TB, tmpl *template.Template, data any) string {
	t.Helper()
	var b bytes.Buffer
	if err := tmpl.Execute(&b, data); err != nil {
		t.Fatalf("config template %s: %v", tmpl.Name(), err)
	}
	path := filepath.Join(t.TempDir(), "realmgate.yaml")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
