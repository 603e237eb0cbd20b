package scim

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// memDir is a Directory in memory for the package's tests; the real one
// is the users package's (see the adapter in cmd/realmgate).
type memDir struct {
	mu     sync.Mutex
	n      int
	users  map[string]map[string]*User  // tenant -> id -> user
	groups map[string]map[string]*Group // tenant -> id -> group
	deprov []string                     // "tenant/id/reason"
}

func newMemDir() *memDir {
	return &memDir{users: map[string]map[string]*User{}, groups: map[string]map[string]*Group{}}
}

func (d *memDir) Deprovision(_ context.Context, tenant, id, actor, reason string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.deprov = append(d.deprov, tenant+"/"+id+"/"+reason)
	return nil
}

func (d *memDir) nextID() string { d.n++; return fmt.Sprintf("id%04d", d.n) }

func cloneUser(u *User) *User { var c User; _ = remarshal(u, &c); c.Meta = u.Meta; return &c }
func cloneGroup(g *Group) *Group {
	var c Group
	_ = remarshal(g, &c)
	c.Meta = g.Meta
	return &c
}

func (d *memDir) tenantUsers(t string) map[string]*User {
	if d.users[t] == nil {
		d.users[t] = map[string]*User{}
	}
	return d.users[t]
}

func (d *memDir) tenantGroups(t string) map[string]*Group {
	if d.groups[t] == nil {
		d.groups[t] = map[string]*Group{}
	}
	return d.groups[t]
}

func (d *memDir) userConflict(t string, u *User) bool {
	for _, o := range d.tenantUsers(t) {
		if o.ID != u.ID && (strings.EqualFold(o.UserName, u.UserName) || (u.ExternalID != "" && o.ExternalID == u.ExternalID)) {
			return true
		}
	}
	return false
}

func (d *memDir) withGroups(t string, u *User) *User {
	c := cloneUser(u)
	c.Groups = nil
	ids := make([]string, 0)
	for id := range d.tenantGroups(t) {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		g := d.groups[t][id]
		for _, m := range g.Members {
			if m.Value == u.ID {
				c.Groups = append(c.Groups, Ref{Value: g.ID, Display: g.DisplayName})
			}
		}
	}
	return c
}

func (d *memDir) stamp(m *Meta, created bool) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if created {
		m.Created = now
	}
	m.LastModified = now
	v, _ := strconv.Atoi(m.Version)
	m.Version = strconv.Itoa(v + 1)
}

func (d *memDir) CreateUser(_ context.Context, t, _ string, u *User) (*User, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.userConflict(t, u) {
		return nil, ErrConflict
	}
	c := cloneUser(u)
	c.ID, c.Groups = d.nextID(), nil
	d.stamp(&c.Meta, true)
	d.tenantUsers(t)[c.ID] = c
	return d.withGroups(t, c), nil
}

func (d *memDir) GetUser(_ context.Context, t, id string) (*User, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	u, ok := d.tenantUsers(t)[id]
	if !ok {
		return nil, ErrNotFound
	}
	return d.withGroups(t, u), nil
}

func (d *memDir) ReplaceUser(_ context.Context, t, _ string, u *User, version string) (*User, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cur, ok := d.tenantUsers(t)[u.ID]
	if !ok {
		return nil, ErrNotFound
	}
	if version != "" && cur.Meta.Version != version {
		return nil, ErrVersion
	}
	if d.userConflict(t, u) {
		return nil, ErrConflict
	}
	c := cloneUser(u)
	c.Groups = nil
	c.Meta = cur.Meta
	d.stamp(&c.Meta, false)
	d.users[t][c.ID] = c
	return d.withGroups(t, c), nil
}

func (d *memDir) DeleteUser(_ context.Context, t, _, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.tenantUsers(t)[id]; !ok {
		return ErrNotFound
	}
	delete(d.users[t], id)
	for _, g := range d.tenantGroups(t) {
		out := g.Members[:0]
		for _, m := range g.Members {
			if m.Value != id {
				out = append(out, m)
			}
		}
		g.Members = out
	}
	return nil
}

func (d *memDir) FindUsers(_ context.Context, t, attr, value string) ([]*User, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*User
	for _, id := range d.sortedUsers(t) {
		u := d.users[t][id]
		match := false
		switch attr {
		case "userName":
			match = strings.EqualFold(u.UserName, value)
		case "externalId":
			match = u.ExternalID == value
		case "emails.value":
			for _, e := range u.Emails {
				match = match || strings.EqualFold(e.Value, value)
			}
		default:
			return nil, fmt.Errorf("memdir: no index on %s", attr)
		}
		if match {
			out = append(out, d.withGroups(t, u))
		}
	}
	return out, nil
}

func (d *memDir) sortedUsers(t string) []string {
	ids := make([]string, 0, len(d.tenantUsers(t)))
	for id := range d.users[t] {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func (d *memDir) ListUsers(_ context.Context, t string, offset, limit int) ([]*User, int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ids := d.sortedUsers(t)
	var out []*User
	for i := offset; i < len(ids) && len(out) < limit; i++ {
		out = append(out, d.withGroups(t, d.users[t][ids[i]]))
	}
	return out, len(ids), nil
}

func (d *memDir) checkGroup(t string, g *Group) error {
	for _, o := range d.tenantGroups(t) {
		if o.ID != g.ID && strings.EqualFold(o.DisplayName, g.DisplayName) {
			return ErrConflict
		}
	}
	for _, m := range g.Members {
		if _, ok := d.tenantUsers(t)[m.Value]; !ok {
			return &Error{Status: 400, ScimType: ScimTypeInvalidValue, Detail: "member " + m.Value + " is not a user of the tenant"}
		}
	}
	return nil
}

func (d *memDir) CreateGroup(_ context.Context, t, _ string, g *Group) (*Group, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.checkGroup(t, g); err != nil {
		return nil, err
	}
	c := cloneGroup(g)
	c.ID = d.nextID()
	d.stamp(&c.Meta, true)
	d.tenantGroups(t)[c.ID] = c
	return cloneGroup(c), nil
}

func (d *memDir) GetGroup(_ context.Context, t, id string) (*Group, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	g, ok := d.tenantGroups(t)[id]
	if !ok {
		return nil, ErrNotFound
	}
	return cloneGroup(g), nil
}

func (d *memDir) ReplaceGroup(_ context.Context, t, _ string, g *Group, version string) (*Group, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cur, ok := d.tenantGroups(t)[g.ID]
	if !ok {
		return nil, ErrNotFound
	}
	if version != "" && cur.Meta.Version != version {
		return nil, ErrVersion
	}
	if err := d.checkGroup(t, g); err != nil {
		return nil, err
	}
	c := cloneGroup(g)
	c.Meta = cur.Meta
	d.stamp(&c.Meta, false)
	d.groups[t][c.ID] = c
	return cloneGroup(c), nil
}

func (d *memDir) DeleteGroup(_ context.Context, t, _, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.tenantGroups(t)[id]; !ok {
		return ErrNotFound
	}
	delete(d.groups[t], id)
	return nil
}

func (d *memDir) FindGroups(_ context.Context, t, attr, value string) ([]*Group, error) {
	all, _, _ := d.ListGroups(context.Background(), t, 0, 1<<30)
	var out []*Group
	for _, g := range all {
		match := false
		switch attr {
		case "displayName":
			match = strings.EqualFold(g.DisplayName, value)
		case "externalId":
			match = g.ExternalID == value
		case "members.value":
			for _, m := range g.Members {
				match = match || m.Value == value
			}
		}
		if match {
			out = append(out, g)
		}
	}
	return out, nil
}

func (d *memDir) ListGroups(_ context.Context, t string, offset, limit int) ([]*Group, int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ids := make([]string, 0)
	for id := range d.tenantGroups(t) {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []*Group
	for i := offset; i < len(ids) && len(out) < limit; i++ {
		out = append(out, cloneGroup(d.groups[t][ids[i]]))
	}
	return out, len(ids), nil
}
