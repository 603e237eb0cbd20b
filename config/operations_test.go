package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	. "github.com/realmgate/realmgate/config"
	_ "github.com/realmgate/realmgate/idp/builtin"
)

const opsBase = `issuer: https://login.example.com
tenants:
  - id: acme
    domains: [acme.example]
    rate_limits:
      starts_per_tenant: 50/1m
      failures_per_tenant: "off"
    providers:
      - id: acme-idp
        type: oidc
        issuer: https://idp.acme.example
        client_id: rg
        client_secret: s
  - id: globex
`

func TestOperations_RateLimitsAndDefaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		want RateLimits
		ops  string
		keep int64
	}{
		{"defaults", opsBase, DefaultRateLimits, "", DefaultAuditMaxEvents},
		{"set", opsBase + `rate_limits:
  starts_per_ip: 10/30s
  failures_per_ip: "off"
audit:
  max_events_per_tenant: 0
ops:
  listen: "off"
`, RateLimits{StartsPerIP: Rate{10, Duration(30 * time.Second)}, StartsPerTenant: DefaultRateLimits.StartsPerTenant,
			FailuresPerIP: RateOff, FailuresPerTenant: DefaultRateLimits.FailuresPerTenant}, OpsOff, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("ops.yaml", []byte(tc.yaml), lookupMap(nil))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if c.RateLimits != tc.want {
				t.Errorf("rate_limits = %+v, want %+v", c.RateLimits, tc.want)
			}
			if c.Ops.Listen != tc.ops || c.Audit.MaxEventsPerTenant != tc.keep {
				t.Errorf("ops.listen %q audit.max_events_per_tenant %d, want %q %d", c.Ops.Listen, c.Audit.MaxEventsPerTenant, tc.ops, tc.keep)
			}
			acme := c.Tenant("acme").RateLimits
			if acme.StartsPerTenant == nil || *acme.StartsPerTenant != (Rate{50, Duration(time.Minute)}) || acme.FailuresPerTenant == nil || !acme.FailuresPerTenant.Off() {
				t.Errorf("acme rate_limits = %+v, want starts 50/1m and failures off", acme)
			}
			if g := c.Tenant("globex").RateLimits; g.StartsPerTenant != nil || g.FailuresPerTenant != nil {
				t.Errorf("globex rate_limits = %+v, want none (inherit)", g)
			}
		})
	}
}

func TestOperations_Problems(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, field, msg string
		line                   int
	}{
		{"not a rate", "rate_limits:\n  starts_per_ip: lots\n", "rate_limits.starts_per_ip", "want <count>/<window>", 16},
		{"zero count", "rate_limits:\n  starts_per_ip: 0/1m\n", "rate_limits.starts_per_ip", "at least 1", 16},
		{"short window", "rate_limits:\n  failures_per_ip: 5/100ms\n", "rate_limits.failures_per_ip", "between 1s and 24h", 16},
		{"bad unit", "rate_limits:\n  failures_per_tenant: 5/1y\n", "rate_limits.failures_per_tenant", "invalid duration", 16},
		{"tenant override", strings.Replace(opsBase, "50/1m", "-3/1m", 1), "tenants[0].rate_limits.starts_per_tenant", "at least 1", 6},
		{"ops listen", "ops:\n  listen: nowhere\n", "ops.listen", "host:port", 16},
		{"ops listen on the main port", "listen: 127.0.0.1:8080\nops:\n  listen: 127.0.0.1:8080\n", "ops.listen", "must differ", 17},
		{"audit", "audit:\n  max_events_per_tenant: -1\n", "audit.max_events_per_tenant", "between 0 and", 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := tc.yaml
			if !strings.HasPrefix(y, "issuer") {
				y = opsBase + y
			}
			_, err := Parse("ops.yaml", []byte(y), lookupMap(nil))
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Parse = %v, want a ValidationError", err)
			}
			for _, p := range ve.Problems {
				if p.Field == tc.field && strings.Contains(p.Message, tc.msg) {
					if p.Line != tc.line {
						t.Errorf("problem %q at line %d, want %d", p, p.Line, tc.line)
					}
					return
				}
			}
			t.Errorf("Parse problems = %v, want %s: ...%s...", err, tc.field, tc.msg)
		})
	}
}

// TestOperations_ZeroCountInCode: a Config built in code with a zero count
// (not the zero Rate, which means unset) is refused rather than read as off.
func TestOperations_ZeroCountInCode(t *testing.T) {
	c, err := Parse("ops.yaml", []byte(opsBase), lookupMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	c.RateLimits.StartsPerIP = Rate{Limit: 0, Window: Duration(time.Minute)}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "rate_limits.starts_per_ip: the count must be at least 1") {
		t.Errorf("Validate() = %v, want the zero count refused", err)
	}
}

func TestOperations_Warnings(t *testing.T) {
	c, err := Parse("ops.yaml", []byte(opsBase+"ops:\n  listen: 0.0.0.0:9090\nrate_limits:\n  starts_per_ip: \"off\"\n  failures_per_ip: \"off\"\n"), lookupMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(c.Warnings(), "\n")
	for _, want := range []string{"ops.listen: \"0.0.0.0:9090\" is not a loopback address", "rate_limits: no per-IP limit"} {
		if !strings.Contains(w, want) {
			t.Errorf("Warnings() = %q, want one containing %q", w, want)
		}
	}
}

func TestRate_Text(t *testing.T) {
	for _, tc := range []struct{ in, out string }{
		{"120/1m", "120/1m"}, {" 5 / 90s ", "5/1m30s"}, {"off", "off"}, {"30/1d", "30/24h"},
	} {
		var r Rate
		if err := r.UnmarshalText([]byte(tc.in)); err != nil {
			t.Fatalf("UnmarshalText(%q) = %v", tc.in, err)
		}
		if got, _ := r.MarshalText(); string(got) != tc.out {
			t.Errorf("Rate(%q) = %q, want %q", tc.in, got, tc.out)
		}
	}
	for _, bad := range []string{"", "5", "/1m", "x/1m", "5/"} {
		var r Rate
		if err := r.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) = nil, want an error", bad)
		}
	}
}
