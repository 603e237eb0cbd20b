package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigReference_UpToDate regenerates docs/configuration.md from the
// config package and fails while the committed file differs: a field added,
// renamed or documented differently must reach the reference.
func TestConfigReference_UpToDate(t *testing.T) {
	got, err := Generate("../../config")
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	want, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("docs/configuration.md is out of date (run go generate ./config); first difference at line %d:\ncommitted: %s\ngenerated: %s", i+1, wl[i], gl[i])
			}
		}
		t.Fatalf("docs/configuration.md is out of date (run go generate ./config): %d lines committed, %d generated", len(wl), len(gl))
	}
}

// TestConfigReference_EveryKeyPresent: every YAML key of the known settings
// the README once left out (and a sample of others) is in the reference.
func TestConfigReference_EveryKeyPresent(t *testing.T) {
	doc, err := Generate("../../config")
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	for _, want := range []string{"## `tenants[].impersonation`", "| `upstream_logout` |", "| `upstream_concurrency` |",
		"| `max_body_bytes` |", "| `master_name` |", "| `relay_state_allowlist` |"} {
		if !bytes.Contains(doc, []byte(want)) {
			t.Errorf("reference lacks %q", want)
		}
	}
}

// TestConfigReference_UndocumentedFieldFails: a config struct field without
// a doc comment makes Generate fail naming it.
func TestConfigReference_UndocumentedFieldFails(t *testing.T) {
	dir := t.TempDir()
	files, err := filepath.Glob("../../config/*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(f) == "config.go" {
			b = bytes.Replace(b, []byte("\tIssuer string `yaml:\"issuer\"`"), []byte("\tIssuer string `yaml:\"issuer\"`\n\tUndocumented string `yaml:\"undocumented\"`"), 1)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, err = Generate(dir)
	if !errors.Is(err, ErrUndocumented) || !strings.Contains(err.Error(), "config.Config.Undocumented") {
		t.Errorf("Generate(with an undocumented field) = %v, want ErrUndocumented naming config.Config.Undocumented", err)
	}
}
