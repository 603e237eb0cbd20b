package assemble_test

import (
	"strings"
	"testing"
	"time"

	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/internal/assemble"
	"github.com/realmgate/realmgate/risk"
)

// TestTenant_ConditionalAccess: a tenant's conditional_access (from the
// file or the admin API's tenant record) compiles after the global
// policies into its TenantPolicy; a policy that does not compile is a
// problem naming the field; tenants do not share policies.
func TestTenant_ConditionalAccess(t *testing.T) {
	b := assemble.Builder{Issuer: "https://login.example.com", GlobalPolicies: []config.AccessPolicy{
		{Name: "no anonymizers", If: "signals.anonymizer", Action: "deny", Message: "No VPNs."}}}
	acme := config.Tenant{ID: "acme", ConditionalAccess: &config.TenantAccess{
		Policies:     []config.AccessPolicy{{Name: "new country", If: "signals.new_country", Action: "mfa"}},
		AuthContexts: map[string]config.AuthContext{"c1": {MaxAge: config.Duration(10 * time.Minute)}},
		TimeZone:     "Europe/Berlin", Compromised: "mfa", RiskClaim: true}}
	ct, probs := b.Tenant(acme)
	if len(probs) != 0 || ct.Policy == nil || ct.Policy.Conditional == nil {
		t.Fatalf("Tenant(acme) = %+v, %v; want conditional access", ct.Policy, probs)
	}
	ta := ct.Policy.Conditional
	if !ta.CompromisedMFA || !ta.RiskClaim || ta.Set.Zone == nil || ta.Set.Zone.String() != "Europe/Berlin" {
		t.Errorf("TenantAccess = %+v, want compromised mfa, risk claim, Europe/Berlin", ta)
	}
	if r, ok := ta.Set.Context("c1"); !ok || r.MaxAge != 10*time.Minute {
		t.Errorf("Context(c1) = %+v, %v; want max age 10m", r, ok)
	}
	for _, tc := range []struct {
		sig  risk.Signals
		deny bool
		mfa  bool
	}{{risk.Signals{Anonymizer: true}, true, false}, {risk.Signals{NewCountry: true}, false, true}, {risk.Signals{}, false, false}} {
		d, _ := ta.Set.Evaluate(&tc.sig, nil, "app", "acme")
		if d.Deny != tc.deny || d.MFA != tc.mfa {
			t.Errorf("acme Evaluate(%+v) = deny %v mfa %v, want %v %v", tc.sig, d.Deny, d.MFA, tc.deny, tc.mfa)
		}
	}
	// Another tenant without conditional_access has no policy of its own
	// (the global set decides it, broker.ConditionalConfig.Global).
	if ct, _ := b.Tenant(config.Tenant{ID: "globex"}); ct.Policy != nil && ct.Policy.Conditional != nil {
		t.Errorf("globex got acme's conditional access: %+v", ct.Policy.Conditional)
	}
	bad := config.Tenant{ID: "bad", ConditionalAccess: &config.TenantAccess{
		Policies: []config.AccessPolicy{{Name: "typo", If: "signals.new_country ==", Action: "mfa"}}}}
	if _, probs := b.Tenant(bad); len(probs) != 1 || probs[0].Field != "tenants[bad].conditional_access" || !strings.Contains(probs[0].Message, "typo") {
		t.Errorf("Tenant(bad) problems = %+v, want one naming conditional_access and the policy", probs)
	}
}
