package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestImportADFSCheckConfig: what `rules import-adfs` and `rules
// import-entra` print, written into a configuration file with --config
// and --tenant, is accepted by check-config, for every file of the corpus.
func TestImportADFSCheckConfig(t *testing.T) {
	base := filepath.Join("..", "..", "testdata", "adfs", "realmgate.yaml")
	tests := []struct {
		cmd   []string
		input string
	}{
		{[]string{"rules", "import-adfs"}, "pass-through-or-filter.txt"},
		{[]string{"rules", "import-adfs"}, "transform.txt"},
		{[]string{"rules", "import-adfs"}, "group-membership.txt"},
		{[]string{"rules", "import-adfs"}, "permit-deny.txt"},
		{[]string{"rules", "import-adfs"}, "custom.txt"},
		{[]string{"rules", "import-adfs"}, "claim-rule-language.txt"},
		{[]string{"rules", "import-adfs", "--ldap-from-upstream"}, "ldap-attributes.txt"},
		{[]string{"rules", "import-entra"}, "entra-policy.json"},
	}
	for _, tc := range tests {
		t.Run(tc.input, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append(append([]string{}, tc.cmd...), "--config", base, "--tenant", "contoso", filepath.Join("..", "..", "testdata", "adfs", tc.input))
			if code := run(args, &out, &errb); code != 0 {
				t.Fatalf("%v = %d, stderr:\n%s", args, code, errb.String())
			}
			path := filepath.Join(t.TempDir(), "realmgate.yaml")
			if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			var cout, cerr bytes.Buffer
			if code := run([]string{"check-config", path}, &cout, &cerr); code != 0 {
				t.Fatalf("check-config = %d:\n%s\n--- file ---\n%s", code, cerr.String(), out.String())
			}
		})
	}
}

// TestImportADFSReports: what cannot be converted is reported on stderr as
// FILE:LINE:COL with a suggestion, and the exit status is 1; the rules
// printed are a YAML document of their own.
func TestImportADFSReports(t *testing.T) {
	in := filepath.Join("..", "..", "testdata", "adfs", "unconvertible.txt")
	var out, errb bytes.Buffer
	if code := run([]string{"rules", "import-adfs", in}, &out, &errb); code != 1 {
		t.Fatalf("import-adfs = %d, want 1; stderr:\n%s", code, errb.String())
	}
	for _, want := range []string{
		in + `:16:43: not converted: rule "rule at line 16": the SQL attribute store query`,
		in + ":23:12: not converted: typographic quote",
		in + `:25:143: not converted: rule "rule at line 25": unknown function toupper (`,
		"12 constructs not converted",
	} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb.String())
		}
	}
	var doc struct {
		Rules []map[string]any `yaml:"rules"`
	}
	if err := yaml.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("output is not YAML: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "# NOT CONVERTED") {
		t.Errorf("output lacks the NOT CONVERTED comment:\n%s", out.String())
	}
	for _, args := range [][]string{
		{"rules", "import-adfs"},
		{"rules", "import-adfs", "--tenant", "contoso", in},
		{"rules", "import-entra", "a.json", "b.json"},
	} {
		var o, e bytes.Buffer
		if code := run(args, &o, &e); code != 2 {
			t.Errorf("%v = %d, want 2 (usage)", args, code)
		}
	}
}

// TestImportADFSTrust: `import-adfs-trust --config` writes the SAML app
// and its rules into the file, which check-config accepts; importing again
// replaces them instead of adding a second copy.
func TestImportADFSTrust(t *testing.T) {
	base := filepath.Join("..", "..", "testdata", "adfs", "realmgate.yaml")
	in := filepath.Join("..", "..", "testdata", "adfs", "trust-wiki.json")
	cfg := base
	for round := 1; round <= 2; round++ {
		var out, errb bytes.Buffer
		args := []string{"import-adfs-trust", "--tenant", "contoso", "--ldap-from-upstream", "--config", cfg, in}
		if code := run(args, &out, &errb); code != 0 {
			t.Fatalf("round %d: %v = %d:\n%s", round, args, code, errb.String())
		}
		cfg = filepath.Join(t.TempDir(), "realmgate.yaml")
		if err := os.WriteFile(cfg, out.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		var cout, cerr bytes.Buffer
		if code := run([]string{"check-config", cfg}, &cout, &cerr); code != 0 {
			t.Fatalf("round %d: check-config = %d:\n%s\n--- file ---\n%s", round, code, cerr.String(), out.String())
		}
		if !strings.Contains(cout.String(), "(1 tenant, 2 clients)") {
			t.Errorf("round %d: check-config says %q, want 2 clients", round, cout.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"import-adfs-trust", in}, &out, &errb); code != 2 {
		t.Errorf("import-adfs-trust without --tenant = %d, want 2", code)
	}
}
