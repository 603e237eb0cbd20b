package assemble_test

import (
	"testing"
	"time"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/internal/assemble"
)

// TestAccess_ReservedClientID: the id the configuration refuses is the one
// the broker's access page uses.
func TestAccess_ReservedClientID(t *testing.T) {
	if config.AccessClientID != broker.AccessClientID {
		t.Errorf("config.AccessClientID = %q, want broker.AccessClientID %q", config.AccessClientID, broker.AccessClientID)
	}
}

func TestAccessPolicy(t *testing.T) {
	pol := assemble.Policy(config.Tenant{ID: "acme", Access: &config.Access{ApproverRoles: []string{"approver"},
		Roles: []config.AccessRole{{Name: "db-admin", MaxDuration: config.Duration(2 * time.Hour)}, {Name: "support", SelfActivate: true}}}})
	if pol == nil || pol.Access == nil {
		t.Fatalf("Policy(tenant with access) = %+v, want an access policy", pol)
	}
	want := map[string]broker.AccessRole{"db-admin": {MaxDuration: 2 * time.Hour}, "support": {SelfActivate: true}}
	for name, r := range want {
		if got := pol.Access.Roles[name]; got != r {
			t.Errorf("Access.Roles[%q] = %+v, want %+v", name, got, r)
		}
	}
	if len(pol.Access.ApproverRoles) != 1 || pol.Access.ApproverRoles[0] != "approver" {
		t.Errorf("ApproverRoles = %v", pol.Access.ApproverRoles)
	}
	if c := assemble.Client(config.Client{ID: "a", SSFPushURL: "https://a.example/ssf"}); c.SSFPushURL != "https://a.example/ssf" {
		t.Errorf("Client(ssf_push_url).SSFPushURL = %q", c.SSFPushURL)
	}
}
