package users_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/broker/redisstore"
	"github.com/realmgate/realmgate/internal/redistest"
	"github.com/realmgate/realmgate/users"
)

var redisServer *redistest.Server

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if redisServer, err = redistest.StartProcess(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer redisServer.Stop()
	return m.Run()
}

// eachStore runs fn against a Directory on memstore and on a real Redis.
func eachStore(t *testing.T, fn func(t *testing.T, d *users.Directory)) {
	t.Run("memstore", func(t *testing.T) {
		s := memstore.New()
		t.Cleanup(func() { _ = s.Close() })
		fn(t, users.New(s, nil))
	})
	t.Run("redis", func(t *testing.T) {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		s, err := redisstore.New(redisstore.Options{Addrs: []string{redisServer.Addr()}, Prefix: "ut:" + hex.EncodeToString(b) + ":"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		fn(t, users.New(s, nil))
	})
}

func mustCreate(t *testing.T, d *users.Directory, u *users.User) *users.User {
	t.Helper()
	if err := d.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser(%+v) = %v", u, err)
	}
	return u
}

func TestDirectory_CRUDAndLookups(t *testing.T) {
	eachStore(t, func(t *testing.T, d *users.Directory) {
		ctx := t.Context()
		u := mustCreate(t, d, &users.User{Tenant: "acme", UserName: "Alice@Acme.test", ExternalID: "ext-1",
			Email: "Alice@Acme.test", EmailVerified: true, Name: users.Name{GivenName: "Alice"},
			Attributes: map[string]any{"plan": "gold"}})
		if u.ID == "" || u.Version != 1 || u.Status != users.StatusActive {
			t.Fatalf("created user = %+v; want an id, version 1, active", u)
		}
		got, err := d.GetUser(ctx, "acme", u.ID)
		if err != nil || got.UserName != "Alice@Acme.test" || got.Attributes["plan"] != "gold" || got.Name.GivenName != "Alice" {
			t.Fatalf("GetUser = %+v, %v", got, err)
		}
		for name, find := range map[string]func() (*users.User, error){
			"userName case-insensitive": func() (*users.User, error) { return d.UserByUserName(ctx, "acme", "alice@ACME.test") },
			"externalId":                func() (*users.User, error) { return d.UserByExternalID(ctx, "acme", "ext-1") },
		} {
			if got, err := find(); err != nil || got.ID != u.ID {
				t.Errorf("%s: got %v, %v; want %s", name, got, err, u.ID)
			}
		}
		if us, err := d.UsersByEmail(ctx, "acme", "ALICE@acme.test", 10); err != nil || len(us) != 1 || us[0].ID != u.ID {
			t.Fatalf("UsersByEmail = %v, %v; want [%s]", us, err, u.ID)
		}
		// Another tenant sees nothing.
		if _, err := d.GetUser(ctx, "other", u.ID); !errors.Is(err, users.ErrNotFound) {
			t.Fatalf("GetUser(other tenant) = %v, want ErrNotFound", err)
		}
		if _, err := d.UserByExternalID(ctx, "other", "ext-1"); !errors.Is(err, users.ErrNotFound) {
			t.Fatalf("UserByExternalID(other tenant) = %v, want ErrNotFound", err)
		}
		// Uniqueness.
		if err := d.CreateUser(ctx, &users.User{Tenant: "acme", UserName: "ALICE@acme.test"}); !errors.Is(err, users.ErrTaken) {
			t.Fatalf("CreateUser(same userName) = %v, want ErrTaken", err)
		}
		// Optimistic concurrency.
		stale := *got
		got.DisplayName = "Alice A."
		if err := d.UpdateUser(ctx, "test", got); err != nil || got.Version != 2 {
			t.Fatalf("UpdateUser = %v (version %d), want nil, 2", err, got.Version)
		}
		stale.DisplayName = "lost update"
		if err := d.UpdateUser(ctx, "test", &stale); !errors.Is(err, users.ErrConflict) {
			t.Fatalf("UpdateUser(stale) = %v, want ErrConflict", err)
		}
		// Delete.
		if err := d.DeleteUser(ctx, "test", "acme", u.ID, 1); !errors.Is(err, users.ErrConflict) {
			t.Fatalf("DeleteUser(stale version) = %v, want ErrConflict", err)
		}
		if err := d.DeleteUser(ctx, "test", "acme", u.ID, 0); err != nil {
			t.Fatalf("DeleteUser = %v", err)
		}
		if _, err := d.UserByUserName(ctx, "acme", "alice@acme.test"); !errors.Is(err, users.ErrNotFound) {
			t.Fatalf("UserByUserName after delete = %v, want ErrNotFound", err)
		}
	})
}

func TestDirectory_SignInLinksAndStamps(t *testing.T) {
	eachStore(t, func(t *testing.T, d *users.Directory) {
		ctx := t.Context()
		pre := mustCreate(t, d, &users.User{Tenant: "acme", ExternalID: "oid-7", UserName: "bob"})
		at := time.Unix(1_800_000_000, 0)
		// Not linked yet: found by the match key only.
		if _, err := d.SignIn(ctx, "acme", "entra", "sub-7", nil, at, "192.0.2.1"); !errors.Is(err, users.ErrNotFound) {
			t.Fatalf("SignIn without match keys = %v, want ErrNotFound", err)
		}
		u, err := d.SignIn(ctx, "acme", "entra", "sub-7", []users.MatchKey{{By: "externalId", Value: "oid-7"}}, at, "192.0.2.1")
		if err != nil || u.ID != pre.ID || !u.LastSignIn.Equal(at) || u.LastIP != "192.0.2.1" {
			t.Fatalf("SignIn(match externalId) = %+v, %v; want %s stamped", u, err, pre.ID)
		}
		if u.Version != pre.Version {
			t.Fatalf("SignIn changed the version %d -> %d; a stamp must not", pre.Version, u.Version)
		}
		if _, err := d.LinkSignIn(ctx, "acme", u.ID, "entra", "sub-7", "SUB", at); err != nil {
			t.Fatalf("LinkSignIn = %v", err)
		}
		later := at.Add(time.Hour)
		u, err = d.SignIn(ctx, "acme", "entra", "sub-7", nil, later, "not-an-ip")
		if err != nil || u.ID != pre.ID || u.Subject != "SUB" || !u.FirstSignIn.Equal(at) || !u.LastSignIn.Equal(later) || u.LastIP != "" {
			t.Fatalf("SignIn(by link) = %+v, %v", u, err)
		}
		if got, err := d.UserByLink(ctx, "acme", "entra", "sub-7"); err != nil || got.ID != pre.ID {
			t.Fatalf("UserByLink = %v, %v", got, err)
		}
		// A link is unique in the tenant.
		if err := d.CreateUser(ctx, &users.User{Tenant: "acme", Links: []users.Link{{IdP: "entra", Subject: "sub-7"}}}); !errors.Is(err, users.ErrTaken) {
			t.Fatalf("CreateUser(taken link) = %v, want ErrTaken", err)
		}
	})
}

type revocation struct {
	id, actor, reason string
	gen               int64
}

type recorder struct {
	mu   sync.Mutex
	list []revocation
}

func (r *recorder) RevokeUser(_ context.Context, u *users.User, actor, reason string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, revocation{u.ID, actor, reason, u.Generation})
	return nil
}

func TestDirectory_DeprovisioningCallsRevoker(t *testing.T) {
	eachStore(t, func(t *testing.T, d *users.Directory) {
		ctx := t.Context()
		rec := &recorder{}
		d.SetRevoker(rec)
		u := mustCreate(t, d, &users.User{Tenant: "acme", UserName: "carol"})
		s, err := d.SetStatus(ctx, "admin:root", "acme", u.ID, users.StatusSuspended)
		if err != nil || s.Status != users.StatusSuspended || s.Generation != 1 {
			t.Fatalf("SetStatus(suspended) = %+v, %v; want suspended, generation 1", s, err)
		}
		// Suspending again revokes nothing new.
		if _, err := d.SetStatus(ctx, "admin:root", "acme", u.ID, users.StatusDeprovisioned); err != nil {
			t.Fatal(err)
		}
		if _, err := d.SetStatus(ctx, "admin:root", "acme", u.ID, users.StatusActive); err != nil {
			t.Fatal(err)
		}
		r, err := d.Revoke(ctx, "scim:tok", "acme", u.ID)
		if err != nil || r.Generation != 2 || !r.Active() {
			t.Fatalf("Revoke = %+v, %v; want generation 2, still active", r, err)
		}
		// Through UpdateUser (as SCIM PUT active:false would).
		r.Status = users.StatusSuspended
		if err := d.UpdateUser(ctx, "scim:tok", r); err != nil || r.Generation != 3 {
			t.Fatalf("UpdateUser(suspend) = %v, generation %d; want nil, 3", err, r.Generation)
		}
		if err := d.DeleteUser(ctx, "admin:root", "acme", u.ID, 0); err != nil {
			t.Fatal(err)
		}
		want := []revocation{{u.ID, "admin:root", "suspended", 0}, {u.ID, "scim:tok", "revoked", 1}, {u.ID, "scim:tok", "suspended", 2}, {u.ID, "admin:root", "deleted", 3}}
		if !slices.Equal(rec.list, want) {
			t.Fatalf("revocations = %+v, want %+v", rec.list, want)
		}
	})
}

func TestDirectory_ListUsers(t *testing.T) {
	eachStore(t, func(t *testing.T, d *users.Directory) {
		ctx := t.Context()
		var ids []string
		for i := range 12 {
			u := mustCreate(t, d, &users.User{Tenant: "acme", ID: fmt.Sprintf("u%02d", i), UserName: fmt.Sprintf("user%d", i),
				Email: fmt.Sprintf("u%d@%s", i, []string{"a.test", "b.test"}[i%2])})
			ids = append(ids, u.ID)
		}
		if _, err := d.SetStatus(ctx, "t", "acme", "u03", users.StatusSuspended); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name      string
			q         users.Query
			want      []string
			wantTotal int
			wantNext  bool
		}{
			{"first page", users.Query{Count: 5}, ids[:5], 12, true},
			{"start index", users.Query{StartIndex: 11, Count: 5}, ids[10:], 12, false},
			{"cursor", users.Query{After: "u04", Count: 3}, ids[5:8], 12, true},
			{"status", users.Query{Status: users.StatusSuspended}, []string{"u03"}, 1, false},
			{"match", users.Query{Match: func(u *users.User) bool { return u.Email[len(u.Email)-6:] == "b.test" }, Count: 2, StartIndex: 2},
				[]string{"u03", "u05"}, 6, true},
			{"userName", users.Query{UserName: "USER7"}, []string{"u07"}, 1, false},
			{"email", users.Query{Email: "u8@a.test"}, []string{"u08"}, 1, false},
			{"email and status", users.Query{Email: "u8@a.test", Status: users.StatusSuspended}, nil, 0, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p, err := d.ListUsers(ctx, "acme", tc.q)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, u := range p.Items {
					got = append(got, u.ID)
				}
				if !slices.Equal(got, tc.want) || p.Total != tc.wantTotal || (p.Next != "") != tc.wantNext {
					t.Fatalf("ListUsers(%+v) = %v total %d next %q; want %v total %d next %v", tc.q, got, p.Total, p.Next, tc.want, tc.wantTotal, tc.wantNext)
				}
			})
		}
	})
}

func TestDirectory_Groups(t *testing.T) {
	eachStore(t, func(t *testing.T, d *users.Directory) {
		ctx := t.Context()
		a := mustCreate(t, d, &users.User{Tenant: "acme", UserName: "a"})
		b := mustCreate(t, d, &users.User{Tenant: "acme", UserName: "b"})
		g := &users.Group{Tenant: "acme", DisplayName: "Engineers", ExternalID: "grp-1"}
		if err := d.CreateGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
		if _, err := d.AddMembers(ctx, "t", "acme", g.ID, a.ID, b.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := d.AddMembers(ctx, "t", "acme", g.ID, "nobody"); !errors.Is(err, users.ErrNotFound) {
			t.Fatalf("AddMembers(unknown user) = %v, want ErrNotFound", err)
		}
		got, err := d.GetGroup(ctx, "acme", g.ID)
		if err != nil || len(got.Members) != 2 || got.Version < 2 {
			t.Fatalf("GetGroup = %+v, %v; want 2 members, version bumped", got, err)
		}
		ua, _ := d.GetUser(ctx, "acme", a.ID)
		if !slices.Equal(ua.GroupNames(), []string{"Engineers"}) {
			t.Fatalf("user groups = %v, want [Engineers]", ua.GroupNames())
		}
		got.DisplayName = "Staff Engineers"
		if err := d.UpdateGroup(ctx, "t", got); err != nil {
			t.Fatal(err)
		}
		ua, _ = d.GetUser(ctx, "acme", a.ID)
		if !slices.Equal(ua.GroupNames(), []string{"Staff Engineers"}) {
			t.Fatalf("user groups after rename = %v", ua.GroupNames())
		}
		if rv := ua.RuleView(); !slices.Equal(rv["groups"].([]any), []any{"Staff Engineers"}) {
			t.Fatalf("RuleView groups = %v", rv["groups"])
		}
		if _, err := d.SetMembers(ctx, "t", "acme", g.ID, []string{b.ID}); err != nil {
			t.Fatal(err)
		}
		if got, _ := d.GetGroup(ctx, "acme", g.ID); !slices.Equal(got.Members, []string{b.ID}) {
			t.Fatalf("members after SetMembers = %v, want [%s]", got.Members, b.ID)
		}
		p, err := d.ListGroups(ctx, "acme", users.GroupQuery{DisplayName: "staff engineers"})
		if err != nil || len(p.Items) != 1 {
			t.Fatalf("ListGroups(displayName) = %+v, %v", p, err)
		}
		if err := d.DeleteGroup(ctx, "t", "acme", g.ID, 0); err != nil {
			t.Fatal(err)
		}
		if ub, _ := d.GetUser(ctx, "acme", b.ID); len(ub.Groups) != 0 {
			t.Fatalf("user groups after group delete = %v, want none", ub.Groups)
		}
	})
}

func TestDirectory_BadInput(t *testing.T) {
	eachStore(t, func(t *testing.T, d *users.Directory) {
		for _, tc := range []struct {
			name string
			u    users.User
		}{
			{"no tenant", users.User{}},
			{"brace tenant", users.User{Tenant: "a{b"}},
			{"control char userName", users.User{Tenant: "acme", UserName: "a\nb"}},
			{"huge userName", users.User{Tenant: "acme", UserName: string(make([]byte, 300))}},
			{"bad status", users.User{Tenant: "acme", Status: "gone"}},
			{"two @", users.User{Tenant: "acme", Email: "a@b@c"}},
			{"bad id", users.User{Tenant: "acme", ID: "a b"}},
			{"huge attributes", users.User{Tenant: "acme", Attributes: map[string]any{"x": string(make([]byte, 20000))}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				u := tc.u
				if err := d.CreateUser(t.Context(), &u); !errors.Is(err, users.ErrInvalid) {
					t.Fatalf("CreateUser(%s) = %v, want ErrInvalid", tc.name, err)
				}
			})
		}
		if _, err := d.GetUser(t.Context(), "acme", "no such\n"); !errors.Is(err, users.ErrNotFound) {
			t.Fatalf("GetUser(bad id) = %v, want ErrNotFound", err)
		}
	})
}

func TestETag(t *testing.T) {
	for _, tc := range []struct {
		tag  string
		want int64
		ok   bool
	}{{users.ETag(7), 7, true}, {`"3"`, 3, true}, {`W/"x"`, 0, false}, {"", 0, false}, {`W/"0"`, 0, false}} {
		if v, ok := users.ParseETag(tc.tag); v != tc.want || ok != tc.ok {
			t.Errorf("ParseETag(%q) = %d, %v; want %d, %v", tc.tag, v, ok, tc.want, tc.ok)
		}
	}
}
