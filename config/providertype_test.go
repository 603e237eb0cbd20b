package config

import (
	"errors"
	"strings"
	"testing"
)

// fakeType is a provider type registered by this test alone: config
// validates a provider through whatever type its package registered.
var fakeChecked []string

func init() {
	RegisterProviderType(ProviderType{Name: "fake-type", DisplayName: "Fake", OpenID: true,
		Fields: []string{"issuer", "client_id", "scopes"}, Settings: []string{"realm"},
		Check: func(c *ProviderCheck) {
			fakeChecked = append(fakeChecked, c.P.ID)
			if c.P.Settings["realm"] == "" {
				c.Problem("settings.realm", "is required for type %q", c.Type.Name)
			}
		}})
}

// TestProviderType_ValidatesThroughTheRegistry: the checks every provider
// gets (a registered type, only its settings, client_id when it uses
// one, URLs, openid) and the type's own, with the type's defaults.
func TestProviderType_ValidatesThroughTheRegistry(t *testing.T) {
	tests := []struct {
		name      string
		p         Provider
		wantField string
		wantMsg   string
	}{
		{"valid", Provider{ID: "f", Type: "fake-type", ClientID: "c", Settings: map[string]string{"realm": "r"}}, "", ""},
		{"pending, a setting of every type", Provider{ID: "f", Type: "fake-type", ClientID: "c", Pending: true, Settings: map[string]string{"realm": "r"}}, "", ""},
		{"its own check", Provider{ID: "f", Type: "fake-type", ClientID: "c"}, "tenants[0].providers[0].settings.realm", `is required for type "fake-type"`},
		{"a setting it does not take", Provider{ID: "f", Type: "fake-type", ClientID: "c", Settings: map[string]string{"realm": "r", "colour": "x"}},
			"tenants[0].providers[0].settings.colour", "is not a setting of providers of type \"fake-type\" (want realm)"},
		{"a field it does not use", Provider{ID: "f", Type: "fake-type", ClientID: "c", Settings: map[string]string{"realm": "r"}, AuthURL: "https://x.test/a"},
			"tenants[0].providers[0].auth_url", "is not used by providers of type \"fake-type\""},
		{"client_id it uses", Provider{ID: "f", Type: "fake-type", Settings: map[string]string{"realm": "r"}},
			"tenants[0].providers[0].client_id", "is required"},
		{"a URL field", Provider{ID: "f", Type: "fake-type", ClientID: "c", Issuer: "http://idp.example", Settings: map[string]string{"realm": "r"}},
			"tenants[0].providers[0].issuer", "must use https"},
		{"openid", Provider{ID: "f", Type: "fake-type", ClientID: "c", Scopes: []string{"email"}, Settings: map[string]string{"realm": "r"}},
			"tenants[0].providers[0].scopes", "must include \"openid\""},
		{"unknown type", Provider{ID: "f", Type: "nosuch"}, "tenants[0].providers[0].type", "fake-type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &Config{Issuer: "https://login.example.com", Tenants: []Tenant{{ID: "t", Providers: []Provider{tc.p}}}}
			c.ApplyDefaults()
			err := c.Validate()
			if tc.wantField == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				if p := c.Tenants[0].Providers[0]; p.Name != "Fake" || len(p.Scopes) != len(DefaultScopes) {
					t.Errorf("defaults: name %q scopes %v, want the type's name and the OpenID scopes", p.Name, p.Scopes)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v, want problems", err)
			}
			for _, p := range ve.Problems {
				if p.Field == tc.wantField && strings.Contains(p.Message, tc.wantMsg) {
					return
				}
			}
			t.Errorf("Validate() = %v, want %s: ...%s...", err, tc.wantField, tc.wantMsg)
		})
	}
	if len(fakeChecked) == 0 {
		t.Error("the type's Check never ran")
	}
}

// TestRegisterProviderType_Refuses: a taken name or a field providers do
// not have is a programming error, found at init.
func TestRegisterProviderType_Refuses(t *testing.T) {
	for name, pt := range map[string]ProviderType{
		"taken":         {Name: "fake-type"},
		"unknown field": {Name: "fake-2", Fields: []string{"colour"}},
		"common field":  {Name: "fake-3", Fields: []string{"name"}},
		"no name":       {},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("RegisterProviderType(%+v) did not panic", pt)
				}
			}()
			RegisterProviderType(pt)
		})
	}
}
