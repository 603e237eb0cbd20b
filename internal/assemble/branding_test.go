package assemble_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/internal/assemble"
)

// TestCompiler_Branding: an admin API tenant's and client's branding is
// validated like the file's (a colour below 4.5:1 refused with its ratio)
// and reaches the broker's directory.
func TestCompiler_Branding(t *testing.T) {
	file := &config.Config{Issuer: "https://login.example.com"}
	tenant := func(b *config.Branding) *admin.Tenant {
		return &admin.Tenant{Tenant: config.Tenant{ID: "alpha", Name: "Alpha", Branding: b}}
	}
	client := func(b *config.Branding) admin.Client {
		return admin.Client{Client: config.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}, AllowedTenants: []string{"*"}, Branding: b}}
	}
	tests := []struct {
		name      string
		st        admin.State
		wantField string // "" compiles
		wantMsg   string
	}{
		{"valid", admin.State{Tenants: []*admin.Tenant{tenant(&config.Branding{DisplayName: "Alpha Inc", PrimaryColor: "#0b5cad"})},
			Clients: []admin.Client{client(&config.Branding{SupportURL: "mailto:help@app.example"})}}, "", ""},
		{"tenant colour too light", admin.State{Tenants: []*admin.Tenant{tenant(&config.Branding{PrimaryColor: "#ffcc00"})}},
			"tenants[alpha].branding.primary_color", "1.51:1"},
		{"client support link javascript", admin.State{Clients: []admin.Client{client(&config.Branding{SupportURL: "javascript:alert(1)"})}},
			"branding.support_url", "https URL or mailto"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := assemble.NewCompiler(file, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
			got, err := c.Compile(context.Background(), &tc.st, true) // probe: a write, validated
			if tc.wantField == "" {
				if err != nil {
					t.Fatalf("Compile() = %v", err)
				}
				if p := got.Directory.Policies["alpha"].Branding; p == nil || p.DisplayName != "Alpha Inc" || p.PrimaryColor != "#0b5cad" {
					t.Errorf("alpha's branding = %+v, want the configured one", p)
				}
				if len(got.Clients) == 0 || got.Clients[len(got.Clients)-1].Branding == nil {
					t.Errorf("client app has no branding in %+v", got.Clients)
				}
				return
			}
			var ve *admin.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Compile() = %v, want a ValidationError", err)
			}
			found := false
			for _, p := range ve.Problems {
				found = found || (strings.Contains(p.Field, tc.wantField) && strings.Contains(p.Message, tc.wantMsg))
			}
			if !found {
				t.Errorf("problems = %+v, want %s: ...%s...", ve.Problems, tc.wantField, tc.wantMsg)
			}
		})
	}
}
