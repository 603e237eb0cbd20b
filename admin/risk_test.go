package admin_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/risk"
	"github.com/realmgate/realmgate/users"
)

// riskAdmin is the broker's part of the risk endpoints over the
// directory alone (the broker's own is tested in package broker).
type riskAdmin struct{ dir *users.Directory }

func (r riskAdmin) ConfirmCompromised(ctx context.Context, actor, tenant, id string) (*users.User, error) {
	return r.dir.SetRisk(ctx, actor, tenant, id, users.RiskCompromised, "high", "confirmed")
}

func (r riskAdmin) DismissRisk(ctx context.Context, actor, tenant, id string) (*users.User, error) {
	return r.dir.SetRisk(ctx, actor, tenant, id, users.RiskDismissed, "", "")
}

func (r riskAdmin) RiskyUsers(ctx context.Context, tenant string, limit int) ([]*users.User, error) {
	p, err := r.dir.ListUsers(ctx, tenant, users.Query{Match: (*users.User).Risky, Count: limit})
	return p.Items, err
}

// TestAPI_RiskyUsers: a tenant admin confirms a user compromised (their
// access is revoked at once), lists the tenant's risky users, dismisses
// the risk; another tenant's admin cannot.
func TestAPI_RiskyUsers(t *testing.T) {
	e := newEnv(t)
	a := e.instance()
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("alpha", "alpha.test"), nil)
	var u users.User
	a.must(t, http.StatusCreated, alphaToken, "POST", "/v1/tenants/alpha/users", admin.NewUser{UserName: "ann"}, &u)
	var list admin.RiskyUserList
	a.must(t, http.StatusOK, alphaToken, "GET", "/v1/tenants/alpha/risky-users", nil, &list)
	if len(list.Users) != 0 {
		t.Fatalf("risky users before = %v, want none", list.Users)
	}
	var got users.User
	a.must(t, http.StatusOK, alphaToken, "POST", "/v1/tenants/alpha/users/"+u.ID+"/confirm-compromised", nil, &got)
	if got.Risk == nil || got.Risk.State != users.RiskCompromised || got.Risk.By != "admin:alpha-admin" || got.Generation != u.Generation+1 {
		t.Errorf("confirm-compromised = %+v (risk %+v), want compromised by admin:alpha-admin and a new generation", got, got.Risk)
	}
	if rv := a.revoked(); !slices.ContainsFunc(rv, func(s string) bool { return strings.HasPrefix(s, u.ID+" admin:alpha-admin") }) {
		t.Errorf("revocations = %v, want ann's by admin:alpha-admin", rv)
	}
	a.must(t, http.StatusOK, alphaToken, "GET", "/v1/tenants/alpha/risky-users", nil, &list)
	if len(list.Users) != 1 || list.Users[0].ID != u.ID {
		t.Errorf("risky users = %v, want ann", list.Users)
	}
	a.must(t, http.StatusForbidden, fileToken, "GET", "/v1/tenants/alpha/risky-users", nil, nil)
	a.must(t, http.StatusForbidden, fileToken, "POST", "/v1/tenants/alpha/users/"+u.ID+"/dismiss-risk", nil, nil)
	a.must(t, http.StatusNotFound, alphaToken, "POST", "/v1/tenants/alpha/users/nosuchuser/confirm-compromised", nil, nil)
	a.must(t, http.StatusBadRequest, alphaToken, "GET", "/v1/tenants/alpha/risky-users?count=0", nil, nil)
	a.must(t, http.StatusOK, alphaToken, "POST", "/v1/tenants/alpha/users/"+u.ID+"/dismiss-risk", nil, &got)
	if got.Risk == nil || got.Risk.State != users.RiskDismissed {
		t.Errorf("dismiss-risk = %+v, want dismissed", got.Risk)
	}
	a.must(t, http.StatusOK, alphaToken, "GET", "/v1/tenants/alpha/risky-users", nil, &list)
	if len(list.Users) != 0 {
		t.Errorf("risky users after dismiss = %v, want none", list.Users)
	}
}

// testGlobalAccess is a global conditional access policy for dry runs.
func testGlobalAccess(t *testing.T) *risk.Set {
	set, err := risk.Compile([]risk.Policy{{Name: "us-mfa", If: `signals.country == "US" && client == "payroll"`, Action: risk.ActionMFA},
		{Name: "anon", If: "signals.anonymizer", Action: risk.ActionDeny, Message: "No anonymizers."}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// TestDryRun_ConditionalAccess: the dry run decides sample signals with
// the policies; a bad signal is a clear 400.
func TestDryRun_ConditionalAccess(t *testing.T) {
	e := newEnv(t)
	a := e.instance()
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("alpha", "alpha.test"), nil)
	id := admin.SampleIdentity{Subject: "u1", Email: "u@alpha.test", EmailVerified: true}
	var out admin.DryRunResult
	a.must(t, http.StatusOK, alphaToken, "POST", "/v1/dry-run", admin.DryRunRequest{Tenant: "alpha", ClientID: "payroll", Identity: id,
		Signals: map[string]any{"country": "US", "new_country": true}}, &out)
	if out.Conditional == nil || !out.Conditional.MFA || out.Conditional.RiskLevel != "medium" || !slices.Equal(out.Conditional.Applied, []string{"us-mfa"}) {
		t.Errorf("dry run access = %+v, want mfa by us-mfa at medium risk", out.Conditional)
	}
	a.must(t, http.StatusOK, alphaToken, "POST", "/v1/dry-run", admin.DryRunRequest{Tenant: "alpha", Identity: id,
		Signals: map[string]any{"anonymizer": true}}, &out)
	if out.Conditional == nil || out.Conditional.Denied != "No anonymizers." || out.Conditional.RiskLevel != "high" {
		t.Errorf("dry run access = %+v, want denied by anon at high risk", out.Conditional)
	}
	var plain admin.DryRunResult
	a.must(t, http.StatusOK, alphaToken, "POST", "/v1/dry-run", admin.DryRunRequest{Tenant: "alpha", Identity: id}, &plain)
	if plain.Conditional != nil {
		t.Errorf("dry run without signals: access = %+v, want none", plain.Conditional)
	}
	a.must(t, http.StatusBadRequest, alphaToken, "POST", "/v1/dry-run", admin.DryRunRequest{Tenant: "alpha", Identity: id,
		Signals: map[string]any{"contry": "US"}}, nil)
}
