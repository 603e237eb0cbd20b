package config_test

import (
	"fmt"
	"strings"
	"testing"

	. "github.com/realmgate/realmgate/config"
	_ "github.com/realmgate/realmgate/idp/builtin"
)

// scaleYAML is a configuration with n tenants, two verified domains and one
// OIDC IdP each (issue 3: config load time at 100k tenants).
func scaleYAML(n int) []byte {
	var b strings.Builder
	b.WriteString("issuer: https://login.example.com\nclients:\n  - id: app\n    redirect_uris: [\"https://app.example.com/cb\"]\n    allowed_tenants: [\"*\"]\ntenants:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - id: t%d\n    name: Tenant %d\n    domains: [\"corp%d.example\", \"*.corp%d.example\"]\n    providers:\n      - id: idp%d\n        type: oidc\n        issuer: https://idp%d.example\n        client_id: realmgate\n        client_secret: s\n", i, i, i, i, i, i)
	}
	return []byte(b.String())
}

// BenchmarkParseTenants measures loading and validating large files.
func BenchmarkParseTenants(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		data := scaleYAML(n)
		b.Run(fmt.Sprintf("tenants=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				cfg, err := Parse("scale.yaml", data, nil)
				if err != nil {
					b.Fatal(err)
				}
				if len(cfg.Tenants) != n {
					b.Fatalf("parsed %d tenants, want %d", len(cfg.Tenants), n)
				}
			}
		})
	}
}
