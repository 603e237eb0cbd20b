package admin_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/users"
)

// fakeGrants keeps grants as the broker would for the API's tests (the
// broker's own rules are tested in package broker): tenant alpha has just-in-time access.
type fakeGrants struct {
	mu     sync.Mutex
	grants map[string]*broker.AccessGrant
	n      int
}

func (in *instance) grants() *fakeGrants {
	in.access = &fakeGrants{grants: map[string]*broker.AccessGrant{}}
	return in.access
}

func (f *fakeGrants) RequestAccess(_ context.Context, r broker.AccessRequest) (*broker.AccessGrant, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Tenant != "alpha" {
		return nil, broker.ErrAccessOff
	}
	if r.Role != "db-admin" || r.Duration > time.Hour || r.Subject == "" {
		return nil, broker.ErrAccessInvalid
	}
	f.n++
	g := &broker.AccessGrant{ID: "g" + string(rune('0'+f.n)), Tenant: r.Tenant, Subject: r.Subject, Email: r.Email, Role: r.Role,
		Duration: r.Duration.String(), Justification: r.Justification, Status: broker.AccessPending, RequestedBy: r.RequestedBy}
	f.grants[g.ID] = g
	return g, nil
}

func (f *fakeGrants) DecideAccess(_ context.Context, tenant, id string, approve bool, approver, _, reason string) (*broker.AccessGrant, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.grants[id]
	if g == nil || g.Tenant != tenant {
		return nil, broker.ErrAccessNotFound
	}
	switch {
	case g.Status == broker.AccessPending && approve:
		g.Status = broker.AccessActive
	case g.Status == broker.AccessPending:
		g.Status = broker.AccessDenied
	case g.Status == broker.AccessActive && !approve:
		g.Status = broker.AccessRevoked
	default:
		return nil, broker.ErrAccessConflict
	}
	g.DecidedBy, g.Reason = approver, reason
	c := *g
	return &c, nil
}

func (f *fakeGrants) ListAccess(_ context.Context, tenant, status string) ([]*broker.AccessGrant, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if tenant != "alpha" {
		return nil, broker.ErrAccessOff
	}
	out := []*broker.AccessGrant{}
	for _, g := range f.grants {
		if g.Tenant == tenant && (status == "" || g.Status == status) {
			c := *g
			out = append(out, &c)
		}
	}
	return out, nil
}

func (f *fakeGrants) AccessOf(_ context.Context, tenant, id string) (*broker.AccessGrant, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.grants[id]
	if g == nil || g.Tenant != tenant {
		return nil, broker.ErrAccessNotFound
	}
	c := *g
	return &c, nil
}

// TestAPI_AccessGrants: request on a user's behalf (by directory id),
// list, approve, revoke, deny; a per-tenant admin limited to its tenant;
// each change in the admin audit log.
func TestAPI_AccessGrants(t *testing.T) {
	e := newEnv(t)
	a := e.instance()
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("alpha", "alpha.test"), nil)
	var u users.User
	a.must(t, http.StatusCreated, alphaToken, "POST", "/v1/tenants/alpha/users",
		admin.NewUser{UserName: "ann", Email: "ann@alpha.test", EmailVerified: true}, &u)
	d, _ := users.Open(e.store, nil)
	if _, err := d.ModifyUser(context.Background(), "test", "alpha", u.ID, func(u *users.User) error { u.Subject = "sub-ann"; return nil }); err != nil {
		t.Fatal(err)
	}
	var g broker.AccessGrant
	a.must(t, http.StatusCreated, alphaToken, "POST", "/v1/tenants/alpha/access-grants",
		admin.NewAccessGrant{User: u.ID, Role: "db-admin", Duration: "45m", Justification: "INC-9"}, &g)
	if g.Subject != "sub-ann" || g.Email != "ann@alpha.test" || g.RequestedBy != "admin:alpha-admin" || g.Status != broker.AccessPending {
		t.Fatalf("requested grant = %+v", g)
	}
	tests := []struct {
		name, token, method, path string
		body                      any
		want                      int
	}{
		{"bad duration", alphaToken, "POST", "/v1/tenants/alpha/access-grants", admin.NewAccessGrant{Subject: "s", Role: "db-admin", Duration: "soon", Justification: "x"}, http.StatusBadRequest},
		{"invalid role", alphaToken, "POST", "/v1/tenants/alpha/access-grants", admin.NewAccessGrant{Subject: "s", Role: "root", Duration: "1m", Justification: "x"}, http.StatusBadRequest},
		{"unknown user", alphaToken, "POST", "/v1/tenants/alpha/access-grants", admin.NewAccessGrant{User: "nope", Role: "db-admin", Duration: "1m", Justification: "x"}, http.StatusNotFound},
		{"unknown field", alphaToken, "POST", "/v1/tenants/alpha/access-grants", map[string]any{"subject": "s", "roles": "x"}, http.StatusBadRequest},
		{"bad status filter", alphaToken, "GET", "/v1/tenants/alpha/access-grants?status=maybe", nil, http.StatusBadRequest},
		{"tenant without access", opToken, "GET", "/v1/tenants/filecorp/access-grants", nil, http.StatusConflict},
		{"other tenant's admin", fileToken, "GET", "/v1/tenants/alpha/access-grants", nil, http.StatusForbidden},
		{"other tenant's admin decides", fileToken, "POST", "/v1/tenants/alpha/access-grants/" + g.ID + "/approve", nil, http.StatusForbidden},
		{"unknown grant", alphaToken, "GET", "/v1/tenants/alpha/access-grants/nope", nil, http.StatusNotFound},
		{"revoke a pending grant", alphaToken, "POST", "/v1/tenants/alpha/access-grants/" + g.ID + "/revoke", nil, http.StatusConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := a.call(t, tt.token, tt.method, tt.path, tt.body, nil); got != tt.want {
				t.Errorf("%s %s = %d, want %d", tt.method, tt.path, got, tt.want)
			}
		})
	}
	var list admin.AccessGrantList
	a.must(t, http.StatusOK, alphaToken, "GET", "/v1/tenants/alpha/access-grants?status=pending", nil, &list)
	if len(list.Grants) != 1 || list.Grants[0].ID != g.ID {
		t.Fatalf("pending = %+v, want the one grant", list.Grants)
	}
	a.must(t, http.StatusOK, alphaToken, "POST", "/v1/tenants/alpha/access-grants/"+g.ID+"/approve", admin.AccessDecision{Reason: "ok"}, &g)
	if g.Status != broker.AccessActive || g.DecidedBy != "admin:alpha-admin" {
		t.Errorf("approved = %+v", g)
	}
	a.must(t, http.StatusConflict, alphaToken, "POST", "/v1/tenants/alpha/access-grants/"+g.ID+"/deny", nil, nil)
	a.must(t, http.StatusOK, opToken, "POST", "/v1/tenants/alpha/access-grants/"+g.ID+"/revoke", nil, &g)
	if g.Status != broker.AccessRevoked {
		t.Errorf("revoked = %+v", g)
	}
	log := a.audit.String()
	for _, want := range []string{`"action":"access.request"`, `"action":"access.approve"`, `"action":"access.revoke"`} {
		if !strings.Contains(log, want) {
			t.Errorf("admin audit lacks %s", want)
		}
	}
}
