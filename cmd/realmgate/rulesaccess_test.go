package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const accessConfig = `issuer: http://127.0.0.1:8080
clients:
  - id: payroll
    redirect_uris: ["http://127.0.0.1:9000/callback"]
    allowed_tenants: ["*"]
conditional_access:
  geoip:
    country_db: ../../testdata/geoip/test-city.mmdb
  policies:
    - name: no anonymizers
      if: signals.anonymizer
      action: deny
      message: No VPNs.
tenants:
  - id: contoso
    domains: ["contoso.com"]
    providers:
      - id: contoso-entra
        type: oidc
        issuer: https://login.example.com/v2.0
        client_id: rg
        client_secret: not-a-real-secret
    conditional_access:
      policies:
        - name: new country
          if: POLICY
          action: mfa
`

// TestRulesTest_Signals: rules test --signals decides sample signals with
// the global and tenant policies; check-config compiles the policies.
func TestRulesTest_Signals(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", strings.Replace(accessConfig, "POLICY", "signals.new_country", 1))
	bad := write("bad.yaml", strings.Replace(accessConfig, "POLICY", "signals.new_country ==", 1))
	nodb := write("nodb.yaml", strings.Replace(strings.Replace(accessConfig, "POLICY", "true", 1), "test-city.mmdb", "missing.mmdb", 1))
	id := write("id.json", `{"sub": "alice"}`)
	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{"step-up", []string{"rules", "test", "--config", good, "--tenant", "contoso", "--signals", write("s1.json", `{"new_country": true}`), id}, 0,
			"result: access requires multi-factor authentication"},
		{"global deny", []string{"rules", "test", "--config", good, "--tenant", "contoso", "--signals", write("s2.json", `{"anonymizer": true}`), id}, 1,
			`DENIED by policy "no anonymizers": No VPNs.`},
		{"allowed", []string{"rules", "test", "--config", good, "--tenant", "contoso", "--signals", write("s3.json", `{"country": "DE"}`), id}, 0,
			"result: access allowed"},
		{"unknown signal", []string{"rules", "test", "--config", good, "--tenant", "contoso", "--signals", write("s4.json", `{"contry": "DE"}`), id}, 1,
			"signals.contry: unknown signal"},
		{"check-config ok", []string{"check-config", good}, 0, "ok (1 tenant"},
		{"check-config bad policy", []string{"check-config", bad}, 1, `policies[0] (new country): if:`},
		{"check-config missing database", []string{"check-config", nodb}, 1, "conditional_access.geoip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			all := out.String() + errb.String()
			if code != tc.wantCode || !strings.Contains(all, tc.want) {
				t.Errorf("run(%q) = %d:\n%s\nwant %d and %q", tc.args, code, all, tc.wantCode, tc.want)
			}
		})
	}
}
