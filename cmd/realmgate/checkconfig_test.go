package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckConfig_RuleErrorsWithEverythingElse: one run of check-config
// reports the ordinary problems and the rules that do not compile (a global
// rule and a tenant rule) together, each at its file:line, sorted by line.
func TestCheckConfig_RuleErrorsWithEverythingElse(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(bad, []byte(`issuer: ftp://example.com
clients:
  - id: app
    redirect_uris: ["http://evil.example/cb"]
    allowed_tenants: ["acme"]
rules:
  - name: global-role
    map:
      from: upstream..groups
      to: roles
      table: {admins: admin}
tenants:
  - id: acme
    providers:
      - id: idp
        type: oidc
        issuer: https://idp.example.com
        client_id: x
    rules:
      - name: fine
        set:
          department: upstream.department
      - name: broken
        if: nosuchfn(upstream.email)
        deny: not allowed
      - name: lowercase-email
        set:
          email: lower(upstream.email
`), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"check-config", bad}, &out, &errb)
	if code != 1 {
		t.Fatalf("check-config = %d, want 1; output:\n%s%s", code, out.String(), errb.String())
	}
	want := []string{
		bad + `:1: issuer: "ftp://example.com" must use https`,
		bad + `:4: clients[0].redirect_uris[0]: "http://evil.example/cb" must use https`,
		bad + `:9: rules[0].map.from: path "upstream..groups"`,
		bad + `:24: tenants[0].rules[1].if: expression 1:9: undeclared reference to 'nosuchfn'`,
		bad + `:28: tenants[0].rules[2].set.email: expression 1:21: Syntax error`,
	}
	lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("check-config printed %d lines, want %d:\n%s", len(lines), len(want), errb.String())
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("check-config line %d = %q, want it to start with %q", i+1, lines[i], w)
		}
	}
}
