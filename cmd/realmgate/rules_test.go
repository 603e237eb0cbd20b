package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRulesTest(t *testing.T) {
	for _, k := range exampleEnv {
		t.Setenv(k, "value-of-"+k)
	}
	contractor := filepath.Join(t.TempDir(), "contractor.json")
	os.WriteFile(contractor, []byte(`{"upn":"bob@contoso.com","employee_type":"contractor","groups":["Finance-Readers"]}`), 0o600)
	example := "../../testdata/config/realmgate.example.yaml"
	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		want     []string
	}{
		{"employee", []string{"rules", "test", "--config", example, "--tenant", "contoso", "../../testdata/identities/contoso-adfs.json"}, 0,
			[]string{`set email: (none) -> "alice.anders@contoso.com"`, `roles: ["admin"]`, `rule "employees only" (tenant): condition false`}},
		{"contractor denied", []string{"rules", "test", "--config", example, "--tenant", "contoso", contractor}, 1,
			[]string{`DENIED by rule "employees only": only employees may sign in`}},
		{"consumers add member", []string{"rules", "test", "--config", example, "--tenant", "consumers", contractor}, 0,
			[]string{`roles: ["member"]`}},
		{"unknown tenant", []string{"rules", "test", "--config", example, "--tenant", "nope", contractor}, 1, []string{`no tenant "nope"`}},
		{"not json", []string{"rules", "test", "--config", example, "--tenant", "contoso", example}, 1, []string{"JSON object"}},
		{"usage", []string{"rules"}, 2, []string{"usage"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			all := out.String() + errb.String()
			if code != tc.wantCode {
				t.Fatalf("run(%q) = %d, want %d:\n%s", tc.args, code, tc.wantCode, all)
			}
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("run(%q) output lacks %q:\n%s", tc.args, w, all)
				}
			}
		})
	}
}

// TestRulesTest_NoSecretsNeeded: the example configuration references eight
// secrets; rules play no part with them, so `rules test` runs with none set
// and names each missing variable once in a warning.
func TestRulesTest_NoSecretsNeeded(t *testing.T) {
	for _, k := range exampleEnv {
		t.Setenv(k, "") // restored after the test
		os.Unsetenv(k)
	}
	args := []string{"rules", "test", "--config", "../../testdata/config/realmgate.example.yaml", "--tenant", "contoso",
		"../../testdata/identities/contoso-adfs.json"}
	var out, errb bytes.Buffer
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("run(%q) = %d, want 0:\n%s%s", args, code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), `roles: ["admin"]`) {
		t.Errorf("run(%q) output lacks the roles:\n%s", args, out.String())
	}
	for _, k := range exampleEnv {
		if n := strings.Count(errb.String(), "variable "+k+" is not set"); n != 1 {
			t.Errorf("stderr names %s %d times, want once:\n%s", k, n, errb.String())
		}
	}
}
