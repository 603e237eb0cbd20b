package config_test

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/realmgate/realmgate/config"
)

func TestOutbound_S70_Parse(t *testing.T) {
	c, err := Parse("ob.yaml", []byte(opsBase+`outbound:
  allow_loopback: true
  allow_private: true
  allow_cidrs: ["10.20.0.0/16", "169.254.169.254/32", "10.1.2.3/8"]
  max_body_bytes: 4096
  timeout: 5s
`), lookupMap(nil))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	o := c.Outbound
	if !o.AllowLoopback || !o.AllowPrivate || o.MaxBodyBytes != 4096 || o.Timeout.Duration() != 5*time.Second {
		t.Errorf("outbound = %+v, want every field read", o)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16"), netip.MustParsePrefix("169.254.169.254/32"), netip.MustParsePrefix("10.0.0.0/8")}
	if got := o.Prefixes(); !slices.Equal(got, want) {
		t.Errorf("Prefixes() = %v, want %v", got, want)
	}
	if d, err := Parse("ob.yaml", []byte(opsBase), lookupMap(nil)); err != nil || d.Outbound.AllowLoopback || d.Outbound.AllowPrivate || len(d.Outbound.AllowCIDRs) != 0 {
		t.Errorf("default outbound = %+v, %v; want nothing internal allowed", d.Outbound, err)
	}
}

func TestOutbound_S70_Problems(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, field, msg string
	}{
		{"not a cidr", "outbound:\n  allow_cidrs: [internal]\n", "outbound.allow_cidrs[0]", "not a CIDR prefix"},
		{"bare address", "outbound:\n  allow_cidrs: [10.0.0.1]\n", "outbound.allow_cidrs[0]", "not a CIDR prefix"},
		{"negative body", "outbound:\n  max_body_bytes: -1\n", "outbound.max_body_bytes", "out of range"},
		{"huge body", "outbound:\n  max_body_bytes: 1099511627776\n", "outbound.max_body_bytes", "out of range"},
		{"long timeout", "outbound:\n  timeout: 2h\n", "outbound.timeout", "out of range"},
		{"unknown key", "outbound:\n  allow_metadata: true\n", "outbound.allow_metadata", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("ob.yaml", []byte(opsBase+tc.yaml), lookupMap(nil))
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Parse = %v, want a ValidationError", err)
			}
			for _, p := range ve.Problems {
				if p.Field == tc.field && strings.Contains(p.Message, tc.msg) {
					return
				}
			}
			t.Errorf("Parse problems = %v, want %s: ...%s...", err, tc.field, tc.msg)
		})
	}
}

func TestOutbound_S70_WarnsWhenTenantAdminsMeetInternalAddresses(t *testing.T) {
	const admin = `admin_api:
  tokens:
    - name: acme-admin
      token: 0123456789abcdef0123456789abcdef
      tenant: acme
`
	for _, tc := range []struct {
		name, yaml string
		warn       bool
	}{
		{"loopback and a tenant admin", admin + "outbound:\n  allow_loopback: true\n", true},
		{"private and a tenant admin", admin + "outbound:\n  allow_private: true\n", true},
		{"default and a tenant admin", admin, false},
		{"loopback without the admin api", "outbound:\n  allow_loopback: true\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("ob.yaml", []byte(opsBase+tc.yaml), lookupMap(nil))
			if err != nil {
				t.Fatal(err)
			}
			w := strings.Join(c.Warnings(), "\n")
			if got := strings.Contains(w, "outbound: allows internal addresses"); got != tc.warn {
				t.Errorf("Warnings() = %q, want the outbound warning %v", w, tc.warn)
			}
		})
	}
}
