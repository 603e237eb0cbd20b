package assemble

import (
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/providers/oidc"
)

func TestMicrosoftConfig(t *testing.T) {
	const tid = "11111111-2222-3333-4444-555555555555"
	const template = "https://login.microsoftonline.com/{tenantid}/v2.0"
	tests := []struct {
		name         string
		p            config.Provider
		wantIssuer   string
		wantPersonal bool
		wantTenants  []string
	}{
		{"default: any account through common", config.Provider{}, template, true, nil},
		{"any with tenants", config.Provider{Accounts: config.AccountsAny, AllowedTenants: []string{tid}}, template, true, []string{tid}},
		{"work", config.Provider{Accounts: config.AccountsWork, AllowedTenants: []string{tid}}, template, false, []string{tid}},
		{"personal", config.Provider{Accounts: config.AccountsPersonal},
			"https://login.microsoftonline.com/" + config.MicrosoftConsumerTenant + "/v2.0", false, nil},
		{"national cloud", config.Provider{Issuer: "https://login.microsoftonline.us/{tenantid}/v2.0", Accounts: config.AccountsWork},
			"https://login.microsoftonline.us/{tenantid}/v2.0", false, nil},
		{"pinned directory", config.Provider{Issuer: "https://login.microsoftonline.com/" + tid + "/v2.0"},
			"https://login.microsoftonline.com/" + tid + "/v2.0", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.p.ID, tt.p.Type, tt.p.ClientID = "ms", config.ProviderMicrosoft, "c"
			got := microsoftConfig(&tt.p, nil, nil)
			if got.Issuer != tt.wantIssuer || got.PersonalAccounts != tt.wantPersonal || !reflect.DeepEqual(got.AllowedTenants, tt.wantTenants) {
				t.Errorf("microsoftConfig(%+v) = issuer %q personal %v tenants %v, want %q %v %v", tt.p,
					got.Issuer, got.PersonalAccounts, got.AllowedTenants, tt.wantIssuer, tt.wantPersonal, tt.wantTenants)
			}
			if _, err := oidc.New(got); err != nil {
				t.Errorf("oidc.New(microsoftConfig(%+v)) = %v", tt.p, err)
			}
		})
	}
}

// TestSAMLConnector_Errors: files that went missing or changed since the
// configuration was checked stop the build with the provider named.
func TestSAMLConnector_Errors(t *testing.T) {
	dir := t.TempDir()
	logger := slog.New(slog.DiscardHandler)
	if err := os.WriteFile(filepath.Join(dir, "bad.key"), []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		p    config.Provider
		want string
	}{
		{"missing metadata file", config.Provider{MetadataFile: filepath.Join(dir, "none.xml")}, "none.xml"},
		{"bad key file", config.Provider{Metadata: "<x/>", SPKeyFile: filepath.Join(dir, "bad.key"), SPCertFile: filepath.Join(dir, "bad.key")}, "sp key"},
		{"binding", config.Provider{MetadataURL: "https://idp.example/md", Binding: "artifact"}, "binding"},
		{"idp initiated without allow-list", config.Provider{MetadataURL: "https://idp.example/md", IdPInitiated: true}, "RelayState allow-list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.p.ID, tc.p.Type = "s", config.ProviderSAML
			_, err := samlConnector(&tc.p, "https://login.example.com", nil, logger)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("samlConnector(%s) = %v, want an error mentioning %q", tc.name, err, tc.want)
			}
		})
	}
}
