package config_test

import (
	"errors"
	"strings"
	"testing"

	. "github.com/realmgate/realmgate/config"
)

func TestValidate_Branding(t *testing.T) {
	tb := func(c *Config) *Branding {
		c.Tenants[0].Branding = &Branding{}
		return c.Tenants[0].Branding
	}
	cb := func(c *Config) *Branding {
		c.Clients[0].Branding = &Branding{}
		return c.Clients[0].Branding
	}
	tests := []struct {
		name      string
		mutate    func(c *Config)
		wantField string // "" means valid
		wantMsg   string
	}{
		{"full tenant block", func(c *Config) {
			*tb(c) = Branding{DisplayName: "Acme", LogoURL: "https://cdn.acme.example/logo.png", PrimaryColor: "#1d4ed8",
				AccentColor: "#0B5CAD", SupportURL: "https://acme.example/help"}
		}, "", ""},
		{"mailto support link", func(c *Config) { cb(c).SupportURL = "mailto:it@acme.example" }, "", ""},
		{"uploaded logo hash", func(c *Config) { tb(c).Logo = strings.Repeat("ab", 32) }, "", ""},
		{"black passes", func(c *Config) { tb(c).PrimaryColor = "#000000" }, "", ""},
		{"colour name", func(c *Config) { tb(c).PrimaryColor = "red" }, "tenants[0].branding.primary_color", "#rrggbb"},
		{"short hex", func(c *Config) { tb(c).PrimaryColor = "#abc" }, "tenants[0].branding.primary_color", "#rrggbb"},
		{"css injection", func(c *Config) { tb(c).AccentColor = "#000;}body{x" }, "tenants[0].branding.accent_color", "#rrggbb"},
		{"not hex digits", func(c *Config) { cb(c).AccentColor = "#12345g" }, "clients[0].branding.accent_color", "#rrggbb"},
		// WCAG 2.2 §1.4.3: white text on the button needs 4.5:1.
		{"yellow refused with its ratio", func(c *Config) { tb(c).PrimaryColor = "#ffcc00" }, "tenants[0].branding.primary_color", "contrast of 1.51:1 against white, below the 4.5:1"},
		{"white refused", func(c *Config) { cb(c).PrimaryColor = "#ffffff" }, "clients[0].branding.primary_color", "contrast of 1.00:1"},
		{"just below 4.5 refused", func(c *Config) { tb(c).AccentColor = "#777777" }, "tenants[0].branding.accent_color", "4.47:1"},
		{"just above 4.5 passes", func(c *Config) { tb(c).AccentColor = "#767676" }, "", ""},
		{"logo over http", func(c *Config) { tb(c).LogoURL = "http://cdn.acme.example/logo.png" }, "tenants[0].branding.logo_url", "https"},
		{"logo with user info", func(c *Config) { tb(c).LogoURL = "https://u:p@cdn.acme.example/l.png" }, "tenants[0].branding.logo_url", "https"},
		{"logo relative", func(c *Config) { cb(c).LogoURL = "/logo.png" }, "clients[0].branding.logo_url", "https"},
		{"logo not a hash", func(c *Config) { tb(c).Logo = "../../etc/passwd" }, "tenants[0].branding.logo", "admin API"},
		{"support javascript", func(c *Config) { tb(c).SupportURL = "javascript:alert(1)" }, "tenants[0].branding.support_url", "https URL or mailto"},
		{"support http", func(c *Config) { tb(c).SupportURL = "http://acme.example/help" }, "tenants[0].branding.support_url", "https URL or mailto"},
		{"support data", func(c *Config) { cb(c).SupportURL = "data:text/html,<script>1</script>" }, "clients[0].branding.support_url", "https URL or mailto"},
		{"support mailto without address", func(c *Config) { cb(c).SupportURL = "mailto:" }, "clients[0].branding.support_url", "mailto"},
		{"name too long", func(c *Config) { tb(c).DisplayName = strings.Repeat("n", 101) }, "tenants[0].branding.display_name", "100"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mutate(c)
			err := c.Validate()
			if tc.wantField == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v, want *ValidationError", err)
			}
			if len(ve.Problems) != 1 {
				t.Errorf("Validate() reported %d problems, want 1:\n%v", len(ve.Problems), err)
			}
			if p := ve.Problems[0]; p.Field != tc.wantField || !strings.Contains(p.Message, tc.wantMsg) {
				t.Errorf("Validate() = %q, want %s: ...%s...", p, tc.wantField, tc.wantMsg)
			}
		})
	}
}
