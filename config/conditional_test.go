package config_test

import (
	"strings"
	"testing"

	. "github.com/realmgate/realmgate/config"
)

// TestValidate_ConditionalAccess: every bad conditional access setting is
// reported with its field.
func TestValidate_ConditionalAccess(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(c *Config)
		field string
		want  string
	}{
		{"unknown action", func(c *Config) {
			c.Tenants[0].ConditionalAccess = &TenantAccess{Policies: []AccessPolicy{{Name: "p", Action: "block"}}}
		}, "tenants[0].conditional_access.policies[0].action", `"block": want one of`},
		{"deny without message", func(c *Config) {
			c.ConditionalAccess.Policies = []AccessPolicy{{Name: "p", Action: "deny"}}
		}, "conditional_access.policies[0].message", "needs a message"},
		{"shorten without lifetime", func(c *Config) {
			c.Tenants[0].ConditionalAccess = &TenantAccess{Policies: []AccessPolicy{{Name: "p", Action: "shorten_session"}}}
		}, "tenants[0].conditional_access.policies[0].session_lifetime", "positive"},
		{"duplicate name", func(c *Config) {
			c.ConditionalAccess.Policies = []AccessPolicy{{Name: "p", Action: "mfa"}, {Name: "p", Action: "mfa"}}
		}, "conditional_access.policies[1].name", "used twice"},
		{"context id", func(c *Config) {
			c.Tenants[0].ConditionalAccess = &TenantAccess{AuthContexts: map[string]AuthContext{"c26": {MFA: true}}}
		}, "tenants[0].conditional_access.auth_contexts", "c1 to c25"},
		{"bad cidr", func(c *Config) { c.ConditionalAccess.DenyIPs = []string{"10.0.0.0/33"} }, "conditional_access.deny_ips[0]", "CIDR"},
		{"location without networks", func(c *Config) {
			c.ConditionalAccess.Locations = []NamedLocation{{Name: "hq"}}
		}, "conditional_access.locations[0]", "neither cidrs nor countries"},
		{"bad country", func(c *Config) {
			c.ConditionalAccess.Locations = []NamedLocation{{Name: "eu", Countries: []string{"germany"}}}
		}, "conditional_access.locations[0].countries[0]", "alpha-2"},
		{"time zone", func(c *Config) {
			c.Tenants[0].ConditionalAccess = &TenantAccess{TimeZone: "Mars/Olympus"}
		}, "tenants[0].conditional_access.time_zone", "IANA"},
		{"compromised action", func(c *Config) {
			c.Tenants[0].ConditionalAccess = &TenantAccess{Compromised: "ignore"}
		}, "tenants[0].conditional_access.compromised", "deny or mfa"},
		{"webhook", func(c *Config) {
			c.Tenants[0].ConditionalAccess = &TenantAccess{WebhookURL: "ftp://x"}
		}, "tenants[0].conditional_access.webhook_url", "https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.edit(c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want %s: ...%s...", err, tc.field, tc.want)
			}
		})
	}
	c := validConfig()
	c.ConditionalAccess = ConditionalAccess{Locations: []NamedLocation{{Name: "hq", CIDRs: []string{"203.0.113.0/24"}, Trusted: true}},
		Policies: []AccessPolicy{{Name: "p", If: "signals.new_country", Action: "mfa"}}}
	c.Tenants[0].ConditionalAccess = &TenantAccess{AuthContexts: map[string]AuthContext{"c1": {MFA: true, MaxAge: Duration(600e9)}}}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate(valid conditional access) = %v", err)
	}
}

// TestValidate_RiskLevelRegistrable: a client registers for risk_level by
// name; other claims realmgate sets stay unregistrable.
func TestValidate_RiskLevelRegistrable(t *testing.T) {
	c := validConfig()
	c.Clients[0].Claims = []string{"risk_level"}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate(claims: [risk_level]) = %v, want nil", err)
	}
	c.Clients[0].Claims = []string{"acrs"}
	if err := c.Validate(); err == nil {
		t.Error("Validate(claims: [acrs]) = nil, want an error (acrs comes with the claims parameter)")
	}
}
