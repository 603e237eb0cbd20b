package microsoft

import (
	"reflect"
	"testing"

	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/idp"
	conn "github.com/realmgate/realmgate/providers/oidc"
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
		{"any with tenants", config.Provider{Accounts: AccountsAny, AllowedTenants: []string{tid}}, template, true, []string{tid}},
		{"work", config.Provider{Accounts: AccountsWork, AllowedTenants: []string{tid}}, template, false, []string{tid}},
		{"personal", config.Provider{Accounts: AccountsPersonal},
			"https://login.microsoftonline.com/" + ConsumerTenant + "/v2.0", false, nil},
		{"national cloud", config.Provider{Issuer: "https://login.microsoftonline.us/{tenantid}/v2.0", Accounts: AccountsWork},
			"https://login.microsoftonline.us/{tenantid}/v2.0", false, nil},
		{"pinned directory", config.Provider{Issuer: "https://login.microsoftonline.com/" + tid + "/v2.0"},
			"https://login.microsoftonline.com/" + tid + "/v2.0", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.p.ID, tt.p.Type, tt.p.ClientID = "ms", Name, "c"
			got := Config(&tt.p, idp.Env{})
			if got.Issuer != tt.wantIssuer || got.PersonalAccounts != tt.wantPersonal || !reflect.DeepEqual(got.AllowedTenants, tt.wantTenants) {
				t.Errorf("Config(%+v) = issuer %q personal %v tenants %v, want %q %v %v", tt.p,
					got.Issuer, got.PersonalAccounts, got.AllowedTenants, tt.wantIssuer, tt.wantPersonal, tt.wantTenants)
			}
			if _, err := conn.New(got); err != nil {
				t.Errorf("conn.New(Config(%+v)) = %v", tt.p, err)
			}
		})
	}
}
