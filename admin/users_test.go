package admin_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/users"
)

// revocations records what the directory asked to revoke (the broker's
// part, tested in package broker).
type revocations struct {
	mu   sync.Mutex
	list []string
}

func (r *revocations) RevokeUser(_ context.Context, u *users.User, actor, reason string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, u.ID+" "+actor+" "+reason)
	return nil
}

var instanceRevocations sync.Map // *instance -> *revocations

func (in *instance) directory(s broker.Store) *users.Directory {
	d, ok := users.Open(s, nil)
	if !ok {
		return nil
	}
	r := &revocations{}
	d.SetRevoker(r)
	instanceRevocations.Store(in, r)
	return d
}

func (in *instance) revoked() []string {
	v, _ := instanceRevocations.Load(in)
	r := v.(*revocations)
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.list...)
}

// TestAPI_Users: provision, search, read, attributes, suspend, revoke and
// delete through the admin API, a per-tenant admin limited to its tenant.
func TestAPI_Users(t *testing.T) {
	e := newEnv(t)
	a := e.instance()
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("alpha", "alpha.test"), nil)
	var u users.User
	a.must(t, http.StatusCreated, alphaToken, "POST", "/v1/tenants/alpha/users",
		admin.NewUser{UserName: "ann", Email: "Ann@alpha.test", EmailVerified: true, Groups: []string{"Engineers"}}, &u)
	if u.ID == "" || len(u.Groups) != 1 || u.Groups[0].Display != "Engineers" {
		t.Fatalf("created user = %+v, want an id and group Engineers", u)
	}
	a.must(t, http.StatusCreated, alphaToken, "POST", "/v1/tenants/alpha/users", admin.NewUser{UserName: "bob"}, nil)
	a.must(t, http.StatusConflict, alphaToken, "POST", "/v1/tenants/alpha/users", admin.NewUser{UserName: "ANN"}, nil)
	a.must(t, http.StatusBadRequest, alphaToken, "POST", "/v1/tenants/alpha/users", admin.NewUser{Email: "a@b@c"}, nil)
	a.must(t, http.StatusBadRequest, alphaToken, "POST", "/v1/tenants/alpha/users", map[string]any{"nope": 1}, nil)

	var page admin.UserPage
	a.must(t, http.StatusOK, alphaToken, "GET", "/v1/tenants/alpha/users?email=ann@ALPHA.test", nil, &page)
	if page.Total != 1 || page.Users[0].ID != u.ID {
		t.Fatalf("search by email = %+v, want ann", page)
	}
	a.must(t, http.StatusOK, alphaToken, "GET", "/v1/tenants/alpha/users?count=1", nil, &page)
	if page.Total != 2 || len(page.Users) != 1 || page.Next == "" {
		t.Fatalf("first page of 1 = %+v, want 1 of 2 and a cursor", page)
	}
	a.must(t, http.StatusOK, alphaToken, "GET", "/v1/tenants/alpha/users?count=1&after="+page.Next, nil, &page)
	if len(page.Users) != 1 {
		t.Fatalf("second page = %+v", page)
	}
	a.must(t, http.StatusBadRequest, alphaToken, "GET", "/v1/tenants/alpha/users?status=gone", nil, nil)
	a.must(t, http.StatusBadRequest, alphaToken, "GET", "/v1/tenants/alpha/users?count=-1", nil, nil)

	path := "/v1/tenants/alpha/users/" + u.ID
	a.must(t, http.StatusOK, alphaToken, "PUT", path+"/attributes", map[string]any{"plan": "gold"}, &u)
	if u.Attributes["plan"] != "gold" {
		t.Fatalf("attributes = %v, want plan gold", u.Attributes)
	}
	a.must(t, http.StatusOK, alphaToken, "POST", path+"/suspend", nil, &u)
	if u.Status != users.StatusSuspended {
		t.Fatalf("status after suspend = %q", u.Status)
	}
	a.must(t, http.StatusOK, alphaToken, "GET", "/v1/tenants/alpha/users?status=suspended", nil, &page)
	if page.Total != 1 || page.Users[0].ID != u.ID {
		t.Fatalf("search by status = %+v", page)
	}
	a.must(t, http.StatusOK, opToken, "POST", path+"/activate", nil, nil)
	a.must(t, http.StatusOK, opToken, "POST", path+"/revoke", nil, nil)
	a.must(t, http.StatusNoContent, alphaToken, "DELETE", path, nil, nil)
	a.must(t, http.StatusNotFound, alphaToken, "GET", path, nil, nil)
	a.must(t, http.StatusNotFound, alphaToken, "POST", path+"/suspend", nil, nil)

	want := []string{u.ID + " admin:alpha-admin suspended", u.ID + " admin:ops revoked", u.ID + " admin:alpha-admin deleted"}
	if got := a.revoked(); len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("revocations = %q, want %q", got, want)
	}
	// No user is provisioned into a tenant that does not exist.
	a.must(t, http.StatusNotFound, opToken, "POST", "/v1/tenants/nosuch/users", admin.NewUser{UserName: "ghost"}, nil)
	// Alpha's admin sees nothing of beta's directory.
	a.must(t, http.StatusForbidden, alphaToken, "GET", "/v1/tenants/beta/users", nil, nil)
}
