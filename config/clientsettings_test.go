package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	. "github.com/realmgate/realmgate/config"
)

func TestValidate_ClientSettings(t *testing.T) {
	cl := func(c *Config) *Client { return &c.Clients[0] }
	tests := []struct {
		name      string
		mutate    func(c *Config)
		wantField string // "" means valid
		wantMsg   string
	}{
		{"lifetimes within bounds", func(c *Config) {
			x := cl(c)
			x.AccessTokenLifetime, x.IDTokenLifetime, x.RefreshTokenLifetime = Duration(5*time.Minute), Duration(time.Hour), Duration(8760*time.Hour)
		}, "", ""},
		{"access token too long", func(c *Config) { cl(c).AccessTokenLifetime = Duration(25 * time.Hour) }, "clients[0].access_token_lifetime", "at most 24h"},
		{"ID token too short", func(c *Config) { cl(c).IDTokenLifetime = Duration(time.Second) }, "clients[0].id_token_lifetime", "at least 30s"},
		{"refresh too long", func(c *Config) { cl(c).RefreshTokenLifetime = Duration(8761 * time.Hour) }, "clients[0].refresh_token_lifetime", "at most"},
		{"pairwise on one host", func(c *Config) {
			x := cl(c)
			x.SubjectType, x.RedirectURIs = SubjectPairwise, []string{"https://app.example.com/cb", "https://app.example.com/other"}
		}, "", ""},
		{"pairwise on two hosts", func(c *Config) {
			x := cl(c)
			x.SubjectType, x.RedirectURIs = SubjectPairwise, []string{"https://app.example.com/cb", "https://m.example.com/cb"}
		}, "clients[0].redirect_uris[1]", "one host"},
		{"pairwise on two hosts with a sector identifier", func(c *Config) {
			x := cl(c)
			x.SubjectType, x.RedirectURIs = SubjectPairwise, []string{"https://app.example.com/cb", "https://m.example.com/cb"}
			x.SectorIdentifierURI = "https://example.com/sector.json"
		}, "", ""},
		{"sector identifier over http", func(c *Config) {
			x := cl(c)
			x.SubjectType, x.SectorIdentifierURI = SubjectPairwise, "http://example.com/sector.json"
		}, "clients[0].sector_identifier_uri", ""},
		{"sector identifier without pairwise", func(c *Config) { cl(c).SectorIdentifierURI = "https://example.com/s.json" }, "clients[0].sector_identifier_uri", "only with subject_type pairwise"},
		{"unknown subject type", func(c *Config) { cl(c).SubjectType = "private" }, "clients[0].subject_type", `unknown subject type "private"`},
		{"third party", func(c *Config) { cl(c).ThirdParty, cl(c).ClientName = true, "Photo Printer" }, "", ""},
		{"client name too long", func(c *Config) { cl(c).ClientName = strings.Repeat("n", 129) }, "clients[0].client_name", "128"},
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
