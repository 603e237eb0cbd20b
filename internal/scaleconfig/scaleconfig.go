// Package scaleconfig writes configuration files with many tenants, for
// the config-load benchmarks and tests (issue 21: a 100k-tenant file loads
// in seconds) and for measuring `realmgate check-config` and serve startup
// on them (go run ./internal/scaleconfig/gen). Nothing is committed at that
// size: the file is made when needed.
package scaleconfig

import (
	"bufio"
	"fmt"
	"io"
)

// Options shape the file.
type Options struct {
	// Tenants is how many tenants the file has.
	Tenants int
	// SharedIssuer, when set, is the issuer of every tenant's OIDC IdP (one
	// multi-tenant IdP, each tenant its own client); otherwise each tenant
	// has its own IdP at https://idp<i>.example.
	SharedIssuer string
	// AllowLoopback lets the IdPs be on 127.0.0.1 (outbound.allow_loopback),
	// for tests whose shared issuer is a local server.
	AllowLoopback bool
}

// Write writes a valid configuration file with o.Tenants tenants, each with
// two verified domains, one OIDC IdP and two rules (a group table of its
// own and a conditional CEL action, the same recipe in every tenant, as
// tenants onboarded from one template have), plus one client that may use
// every tenant.
func Write(w io.Writer, o Options) error {
	b := bufio.NewWriterSize(w, 1<<16)
	if o.AllowLoopback {
		b.WriteString("outbound:\n  allow_loopback: true\n")
	}
	b.WriteString(`issuer: https://login.example.com
keys:
  secret: scale-test-secret-0123456789abcdef0123
clients:
  - id: app
    secret: app-secret-0123456789abcdef-0123456789
    redirect_uris: ["https://app.example.com/cb"]
    allowed_tenants: ["*"]
    claims: [roles]
tenants:
`)
	for i := range o.Tenants {
		issuer := o.SharedIssuer
		if issuer == "" {
			issuer = fmt.Sprintf("https://idp%d.example", i)
		}
		fmt.Fprintf(b, `  - id: t%d
    name: Tenant %d
    domains: ["corp%d.example", "*.corp%d.example"]
    providers:
      - id: idp%d
        type: oidc
        issuer: %s
        client_id: realmgate-t%d
        client_secret: secret-%d
    rules:
      - name: groups to roles
        map:
          from: upstream.groups
          to: roles
          table:
            Admins-%d: admin
            Readers: reader
      - name: finance staff are members
        if: 'has(upstream.department) && upstream.department == "Finance"'
        add:
          roles: '"member"'
`, i, i, i, i, i, issuer, i, i, i)
	}
	return b.Flush()
}
