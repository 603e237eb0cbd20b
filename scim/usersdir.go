package scim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/realmgate/realmgate/users"
)

// UsersDirectory is the SCIM Directory over realmgate's tenant user
// directory (package users). A user's SCIM attributes that the directory
// does not interpret (nickName, title, locale, phoneNumbers, every email,
// the enterprise extension, ...) are kept in the record's Extra, by name;
// userName, externalId, displayName, name and the primary email are its
// own fields, and active is its status. The directory itself ends a
// user's access when the user leaves active or is deleted (its Revoker),
// so SCIM needs no Deprovisioner with it.
type UsersDirectory struct {
	d *users.Directory
}

var _ Directory = (*UsersDirectory)(nil)

// NewUsersDirectory returns the SCIM view of d.
func NewUsersDirectory(d *users.Directory) *UsersDirectory { return &UsersDirectory{d: d} }

// extraKeys are the SCIM attributes kept in Extra.
var extraKeys = []string{"name", "nickName", "profileUrl", "title", "userType", "preferredLanguage", "locale", "timezone",
	"emails", "phoneNumbers", EnterpriseUserSchema}

// mapErr turns the directory's errors into SCIM's.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, users.ErrNotFound):
		return ErrNotFound
	case errors.Is(err, users.ErrTaken):
		return ErrConflict
	case errors.Is(err, users.ErrConflict):
		return ErrVersion
	case errors.Is(err, users.ErrInvalid):
		return &Error{Status: http.StatusBadRequest, ScimType: ScimTypeInvalidValue, Detail: strings.TrimPrefix(err.Error(), "users: invalid: ")}
	case errors.Is(err, users.ErrUnavailable):
		return errors.Join(ErrUnavailable, err)
	}
	return err
}

func toSCIMUser(u *users.User) *User {
	out := &User{ID: u.ID, ExternalID: u.ExternalID, UserName: u.UserName, DisplayName: u.DisplayName, Active: u.Active(),
		Meta: Meta{Created: u.Created, LastModified: u.Updated, Version: strconv.FormatInt(u.Version, 10)}}
	m := map[string]any{}
	for _, k := range extraKeys {
		if raw, ok := u.Extra[k]; ok {
			var v any
			if json.Unmarshal(raw, &v) == nil {
				m[k] = v
			}
		}
	}
	_ = remarshal(m, out)
	if out.Name == nil && u.Name != (users.Name{}) {
		out.Name = &Name{Formatted: u.Name.Formatted, GivenName: u.Name.GivenName, FamilyName: u.Name.FamilyName}
	}
	if len(out.Emails) == 0 && u.Email != "" {
		out.Emails = []Value{{Value: u.Email, Primary: true}}
	}
	for _, g := range u.Groups {
		out.Groups = append(out.Groups, Ref{Value: g.ID, Display: g.Display})
	}
	return out
}

// fill sets the directory fields of dst from a SCIM user.
func fill(dst *users.User, u *User) error {
	dst.ExternalID, dst.UserName, dst.DisplayName = u.ExternalID, u.UserName, u.DisplayName
	dst.Provisioned = true // the provisioner owns the profile from now on (users.User.ApplyProfile)
	dst.Name = users.Name{}
	if u.Name != nil {
		dst.Name = users.Name{Formatted: u.Name.Formatted, GivenName: u.Name.GivenName, FamilyName: u.Name.FamilyName}
	}
	dst.Email = ""
	for _, e := range u.Emails {
		if e.Primary || dst.Email == "" {
			dst.Email = e.Value
		}
	}
	switch {
	case u.Active:
		dst.Status = users.StatusActive
	case dst.Status != users.StatusSuspended:
		dst.Status = users.StatusDeprovisioned // SCIM active:false ends the user's access
	}
	m := asMap(u)
	dst.Extra = map[string]json.RawMessage{}
	for _, k := range extraKeys {
		if v, ok := m[k]; ok {
			b, err := json.Marshal(v)
			if err != nil {
				return err
			}
			dst.Extra[k] = b
		}
	}
	if len(dst.Extra) == 0 {
		dst.Extra = nil
	}
	return nil
}

func parseVersion(v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, ErrVersion
	}
	return n, nil
}

// CreateUser implements Directory.
func (s *UsersDirectory) CreateUser(ctx context.Context, tenant, actor string, u *User) (*User, error) {
	rec := &users.User{Tenant: tenant}
	if err := fill(rec, u); err != nil {
		return nil, err
	}
	if err := s.d.CreateUser(ctx, rec); err != nil {
		return nil, mapErr(err)
	}
	return toSCIMUser(rec), nil
}

// GetUser implements Directory.
func (s *UsersDirectory) GetUser(ctx context.Context, tenant, id string) (*User, error) {
	u, err := s.d.GetUser(ctx, tenant, id)
	if err != nil {
		return nil, mapErr(err)
	}
	return toSCIMUser(u), nil
}

// ReplaceUser implements Directory: the record's links, groups, app
// attributes and sign-in history are kept. Leaving active ends the user's
// access (the directory's Revoker), audited with actor.
func (s *UsersDirectory) ReplaceUser(ctx context.Context, tenant, actor string, u *User, version string) (*User, error) {
	want, err := parseVersion(version)
	if err != nil {
		return nil, err
	}
	stored, err := s.d.ModifyUser(ctx, actor, tenant, u.ID, func(cur *users.User) error {
		if want != 0 && cur.Version != want {
			return users.ErrConflict
		}
		return fill(cur, u)
	})
	if err != nil {
		if stored != nil && !errors.Is(err, users.ErrConflict) {
			// Stored, but ending the sessions failed: say so (503), the
			// client retries and the record already refuses refresh.
			return nil, errors.Join(ErrUnavailable, err)
		}
		return nil, mapErr(err)
	}
	return toSCIMUser(stored), nil
}

// DeleteUser implements Directory; the directory ends the user's access.
func (s *UsersDirectory) DeleteUser(ctx context.Context, tenant, actor, id string) error {
	return mapErr(s.d.DeleteUser(ctx, actor, tenant, id, 0))
}

// FindUsers implements Directory.
func (s *UsersDirectory) FindUsers(ctx context.Context, tenant, attr, value string) ([]*User, error) {
	var found []*users.User
	switch attr {
	case "userName", "externalId":
		var u *users.User
		var err error
		if attr == "userName" {
			u, err = s.d.UserByUserName(ctx, tenant, value)
		} else {
			u, err = s.d.UserByExternalID(ctx, tenant, value)
		}
		if errors.Is(err, users.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, mapErr(err)
		}
		found = []*users.User{u}
	case "emails.value":
		us, err := s.d.UsersByEmail(ctx, tenant, value, MaxCount)
		if err != nil {
			return nil, mapErr(err)
		}
		found = us
	default:
		return nil, errors.New("scim: no index on " + attr)
	}
	out := make([]*User, len(found))
	for i, u := range found {
		out[i] = toSCIMUser(u)
	}
	return out, nil
}

// ListUsers implements Directory.
func (s *UsersDirectory) ListUsers(ctx context.Context, tenant string, offset, limit int) ([]*User, int, error) {
	if limit <= 0 {
		limit = -1 // users.Query: a negative count is an empty page with its total
	}
	p, err := s.d.ListUsers(ctx, tenant, users.Query{StartIndex: offset + 1, Count: limit})
	if err != nil {
		return nil, 0, mapErr(err)
	}
	out := make([]*User, len(p.Items))
	for i, u := range p.Items {
		out[i] = toSCIMUser(u)
	}
	return out, p.Total, nil
}

func toSCIMGroup(g *users.Group) *Group {
	out := &Group{ID: g.ID, ExternalID: g.ExternalID, DisplayName: g.DisplayName,
		Meta: Meta{Created: g.Created, LastModified: g.Updated, Version: strconv.FormatInt(g.Version, 10)}}
	for _, m := range g.Members {
		out.Members = append(out.Members, Ref{Value: m, Type: "User"})
	}
	return out
}

func memberIDs(g *Group) []string {
	ids := make([]string, len(g.Members))
	for i, m := range g.Members {
		ids[i] = m.Value
	}
	return ids
}

// uniqueName refuses a displayName another group of the tenant has (Entra
// matches groups by it).
func (s *UsersDirectory) uniqueName(ctx context.Context, tenant, id, name string) error {
	p, err := s.d.ListGroups(ctx, tenant, users.GroupQuery{DisplayName: name, Count: 10})
	if err != nil {
		return mapErr(err)
	}
	for _, g := range p.Items {
		if g.ID != id && strings.EqualFold(g.DisplayName, name) {
			return ErrConflict
		}
	}
	return nil
}

// setMembers makes the group's members exactly g's; an unknown user is a
// client error.
func (s *UsersDirectory) setMembers(ctx context.Context, tenant, actor, id string, ids []string) (*users.Group, error) {
	stored, err := s.d.SetMembers(ctx, actor, tenant, id, ids)
	if errors.Is(err, users.ErrNotFound) {
		return nil, &Error{Status: http.StatusBadRequest, ScimType: ScimTypeInvalidValue, Detail: "members: " + strings.TrimPrefix(err.Error(), "users: ")}
	}
	return stored, mapErr(err)
}

// CreateGroup implements Directory.
func (s *UsersDirectory) CreateGroup(ctx context.Context, tenant, actor string, g *Group) (*Group, error) {
	if err := s.uniqueName(ctx, tenant, "", g.DisplayName); err != nil {
		return nil, err
	}
	rec := &users.Group{Tenant: tenant, DisplayName: g.DisplayName, ExternalID: g.ExternalID}
	if err := s.d.CreateGroup(ctx, rec); err != nil {
		return nil, mapErr(err)
	}
	if len(g.Members) > 0 {
		if _, err := s.setMembers(ctx, tenant, actor, rec.ID, memberIDs(g)); err != nil {
			_ = s.d.DeleteGroup(ctx, actor, tenant, rec.ID, 0)
			return nil, err
		}
	}
	return s.GetGroup(ctx, tenant, rec.ID)
}

// GetGroup implements Directory.
func (s *UsersDirectory) GetGroup(ctx context.Context, tenant, id string) (*Group, error) {
	g, err := s.d.GetGroup(ctx, tenant, id)
	if err != nil {
		return nil, mapErr(err)
	}
	return toSCIMGroup(g), nil
}

// ReplaceGroup implements Directory: name and externalId first, then the
// members when they changed.
func (s *UsersDirectory) ReplaceGroup(ctx context.Context, tenant, actor string, g *Group, version string) (*Group, error) {
	want, err := parseVersion(version)
	if err != nil {
		return nil, err
	}
	cur, err := s.d.GetGroup(ctx, tenant, g.ID)
	if err != nil {
		return nil, mapErr(err)
	}
	if want != 0 && cur.Version != want {
		return nil, ErrVersion
	}
	if cur.DisplayName != g.DisplayName || cur.ExternalID != g.ExternalID {
		if !strings.EqualFold(cur.DisplayName, g.DisplayName) {
			if err := s.uniqueName(ctx, tenant, g.ID, g.DisplayName); err != nil {
				return nil, err
			}
		}
		next := *cur
		next.DisplayName, next.ExternalID = g.DisplayName, g.ExternalID
		if err := s.d.UpdateGroup(ctx, actor, &next); err != nil {
			return nil, mapErr(err)
		}
	}
	ids := memberIDs(g)
	if !sameSet(ids, cur.Members) {
		if _, err := s.setMembers(ctx, tenant, actor, g.ID, ids); err != nil {
			return nil, err
		}
	}
	return s.GetGroup(ctx, tenant, g.ID)
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	in := make(map[string]bool, len(a))
	for _, x := range a {
		in[x] = true
	}
	for _, x := range b {
		if !in[x] {
			return false
		}
	}
	return true
}

// DeleteGroup implements Directory.
func (s *UsersDirectory) DeleteGroup(ctx context.Context, tenant, actor, id string) error {
	return mapErr(s.d.DeleteGroup(ctx, actor, tenant, id, 0))
}

// FindGroups implements Directory.
func (s *UsersDirectory) FindGroups(ctx context.Context, tenant, attr, value string) ([]*Group, error) {
	var q users.GroupQuery
	switch attr {
	case "displayName":
		q.DisplayName = value
	case "externalId":
		q.ExternalID = value
	case "members.value":
		// The member's record lists its groups: one read, then each group.
		u, err := s.d.GetUser(ctx, tenant, value)
		if errors.Is(err, users.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, mapErr(err)
		}
		var out []*Group
		for _, r := range u.Groups {
			g, err := s.GetGroup(ctx, tenant, r.ID)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out = append(out, g)
		}
		return out, nil
	default:
		return nil, errors.New("scim: no index on " + attr)
	}
	q.Count = MaxCount
	p, err := s.d.ListGroups(ctx, tenant, q)
	if err != nil {
		return nil, mapErr(err)
	}
	return s.withMembers(ctx, tenant, p.Items)
}

// withMembers reads each group again with its members (ListGroups leaves them out).
func (s *UsersDirectory) withMembers(ctx context.Context, tenant string, gs []*users.Group) ([]*Group, error) {
	out := make([]*Group, 0, len(gs))
	for _, g := range gs {
		full, err := s.GetGroup(ctx, tenant, g.ID)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, full)
	}
	return out, nil
}

// ListGroups implements Directory.
func (s *UsersDirectory) ListGroups(ctx context.Context, tenant string, offset, limit int) ([]*Group, int, error) {
	p, err := s.d.ListGroups(ctx, tenant, users.GroupQuery{StartIndex: offset + 1, Count: max(limit, 1)})
	if err != nil {
		return nil, 0, mapErr(err)
	}
	if limit <= 0 {
		return nil, p.Total, nil
	}
	out, err := s.withMembers(ctx, tenant, p.Items)
	return out, p.Total, err
}
