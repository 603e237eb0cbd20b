package users

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/realmgate/realmgate/store"
)

// MaxGroupMembers bounds the members a group lists when read, and the
// members a single SetMembers may name.
const MaxGroupMembers = 100_000

func (g *Group) validate() error {
	if err := checkTenant(g.Tenant); err != nil {
		return err
	}
	if strings.TrimSpace(g.DisplayName) == "" {
		return invalid("displayName is required")
	}
	if err := checkText("displayName", g.DisplayName, MaxNameField); err != nil {
		return err
	}
	return checkText("externalId", g.ExternalID, MaxExternalID)
}

// CreateGroup stores a new group (without members: add them with
// AddMembers). An empty ID gets a fresh one.
func (d *Directory) CreateGroup(ctx context.Context, g *Group) error {
	if g.ID == "" {
		g.ID = NewID()
	} else if store.CheckDirID(g.ID) != nil {
		return invalid("id %q", g.ID)
	}
	if err := g.validate(); err != nil {
		return err
	}
	now := d.now().UTC().Truncate(time.Second)
	g.Created, g.Updated = now, now
	rec, err := encodeGroup(g)
	if err != nil {
		return err
	}
	v, err := d.st.DirPut(ctx, groupSpace(g.Tenant), rec, 0)
	if errors.Is(err, store.ErrExists) {
		return fmt.Errorf("%w: id %q", ErrTaken, g.ID)
	}
	if err != nil {
		return mapErr("create group", err)
	}
	g.Version = v
	return nil
}

// GetGroup returns the group with its members (user ids).
func (d *Directory) GetGroup(ctx context.Context, tenant, id string) (*Group, error) {
	g, err := d.getGroup(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	members, err := d.GroupMembers(ctx, tenant, id, MaxGroupMembers)
	if err != nil {
		return nil, err
	}
	for _, u := range members {
		g.Members = append(g.Members, u.ID)
	}
	return g, nil
}

func (d *Directory) getGroup(ctx context.Context, tenant, id string) (*Group, error) {
	if err := checkTenant(tenant); err != nil {
		return nil, err
	}
	if store.CheckDirID(id) != nil {
		return nil, ErrNotFound
	}
	rec, err := d.st.DirGet(ctx, groupSpace(tenant), id)
	if err != nil {
		return nil, mapErr("get group", err)
	}
	return decodeGroup(tenant, rec)
}

// GroupMembers returns up to limit members of the group, in id order:
// one round trip for a group of up to MaxPageSize members, a read of the
// tenant's users for a larger one.
func (d *Directory) GroupMembers(ctx context.Context, tenant, id string, limit int) ([]*User, error) {
	if err := checkTenant(tenant); err != nil {
		return nil, err
	}
	recs, err := d.st.DirFindAll(ctx, userSpace(tenant), store.IndexEntry{Index: ixGroup, Value: id}, store.MaxDirList)
	if err != nil {
		return nil, mapErr("group members", err)
	}
	if len(recs) == store.MaxDirList && limit > store.MaxDirList {
		return d.groupMembersByScan(ctx, tenant, id, limit)
	}
	us, err := decodeUsers(tenant, recs)
	if err != nil {
		return nil, err
	}
	return us[:min(len(us), limit)], nil
}

func (d *Directory) groupMembersByScan(ctx context.Context, tenant, id string, limit int) ([]*User, error) {
	var out []*User
	after := ""
	for len(out) < limit {
		recs, err := d.st.DirList(ctx, userSpace(tenant), after, 0, store.MaxDirList)
		if err != nil {
			return nil, mapErr("group members", err)
		}
		for _, r := range recs {
			u, err := decodeUser(tenant, r)
			if err == nil && slices.ContainsFunc(u.Groups, func(g GroupRef) bool { return g.ID == id }) && len(out) < limit {
				out = append(out, u)
			}
		}
		if len(recs) < store.MaxDirList {
			break
		}
		after = recs[len(recs)-1].ID
	}
	return out, nil
}

// UpdateGroup writes g's displayName, externalId and extra attributes over
// version g.Version (ErrConflict if it changed since); a new displayName
// is copied to the members' records. Members are not changed here.
func (d *Directory) UpdateGroup(ctx context.Context, actor string, g *Group) error {
	cur, err := d.getGroup(ctx, g.Tenant, g.ID)
	if err != nil {
		return err
	}
	if cur.Version != g.Version {
		return ErrConflict
	}
	if err := g.validate(); err != nil {
		return err
	}
	g.Created, g.Updated = cur.Created, d.now().UTC().Truncate(time.Second)
	rec, err := encodeGroup(g)
	if err != nil {
		return err
	}
	rec.Replaces = groupEntriesOf(cur)
	v, err := d.st.DirPut(ctx, groupSpace(g.Tenant), rec, g.Version)
	if err != nil {
		return mapErr("update group", err)
	}
	g.Version = v
	if cur.DisplayName != g.DisplayName {
		members, err := d.GroupMembers(ctx, g.Tenant, g.ID, MaxGroupMembers)
		if err != nil {
			return err
		}
		for _, m := range members {
			if _, err := d.ModifyUser(ctx, actor, g.Tenant, m.ID, func(u *User) error {
				for i := range u.Groups {
					if u.Groups[i].ID == g.ID {
						u.Groups[i].Display = g.DisplayName
					}
				}
				return nil
			}); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
		}
	}
	return nil
}

// touchGroup bumps the group's version (membership changed).
func (d *Directory) touchGroup(ctx context.Context, g *Group) error {
	g.Updated = d.now().UTC().Truncate(time.Second)
	rec, err := encodeGroup(g)
	if err != nil {
		return err
	}
	for range modifyAttempts {
		rec.Replaces = groupEntriesOf(g) // the same entries: only Updated changes
		v, err := d.st.DirPut(ctx, groupSpace(g.Tenant), rec, g.Version)
		if err == nil {
			g.Version = v
			return nil
		}
		if !errors.Is(err, store.ErrVersion) {
			return mapErr("update group", err)
		}
		cur, err := d.getGroup(ctx, g.Tenant, g.ID)
		if err != nil {
			return err
		}
		g.Version = cur.Version
		cur.Updated = g.Updated
		if rec, err = encodeGroup(cur); err != nil {
			return err
		}
		*g = *cur
	}
	return ErrConflict
}

// GroupsObserver is an optional capability of the installed Revoker (found
// by type assertion): told after a user's group memberships changed, so
// the broker can tell applications (CAEP token-claims-change) that the
// roles rules derive from groups change at the next refresh.
type GroupsObserver interface {
	UserGroupsChanged(ctx context.Context, u *User)
}

// groupsChanged tells the Revoker, when it observes groups, of u's new groups.
func (d *Directory) groupsChanged(ctx context.Context, u *User) {
	r := d.revoker.Load()
	if r == nil || *r == nil {
		return
	}
	if o, ok := (*r).(GroupsObserver); ok {
		o.UserGroupsChanged(ctx, u)
	}
}

// AddMembers adds users to the group (ErrNotFound, naming it, for an
// unknown user; the ones before it are added). The members' roles change
// at their next refresh.
func (d *Directory) AddMembers(ctx context.Context, actor, tenant, id string, userIDs ...string) (*Group, error) {
	g, err := d.getGroup(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	for _, uid := range userIDs {
		changed := false
		u, err := d.ModifyUser(ctx, actor, tenant, uid, func(u *User) error {
			if changed = !slices.ContainsFunc(u.Groups, func(r GroupRef) bool { return r.ID == id }); changed {
				u.Groups = append(u.Groups, GroupRef{ID: id, Display: g.DisplayName})
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("add member %q: %w", uid, err)
		}
		if changed {
			d.groupsChanged(ctx, u)
		}
	}
	return g, d.touchGroup(ctx, g)
}

// RemoveMembers removes users from the group; unknown users are ignored.
func (d *Directory) RemoveMembers(ctx context.Context, actor, tenant, id string, userIDs ...string) (*Group, error) {
	g, err := d.getGroup(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	for _, uid := range userIDs {
		changed := false
		u, err := d.ModifyUser(ctx, actor, tenant, uid, func(u *User) error {
			n := len(u.Groups)
			u.Groups = slices.DeleteFunc(u.Groups, func(r GroupRef) bool { return r.ID == id })
			changed = len(u.Groups) != n
			return nil
		})
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("remove member %q: %w", uid, err)
		}
		if err == nil && changed {
			d.groupsChanged(ctx, u)
		}
	}
	return g, d.touchGroup(ctx, g)
}

// SetMembers makes userIDs the group's members exactly.
func (d *Directory) SetMembers(ctx context.Context, actor, tenant, id string, userIDs []string) (*Group, error) {
	if len(userIDs) > MaxGroupMembers {
		return nil, invalid("%d members, over %d", len(userIDs), MaxGroupMembers)
	}
	cur, err := d.GroupMembers(ctx, tenant, id, MaxGroupMembers)
	if err != nil {
		return nil, err
	}
	var gone []string
	for _, u := range cur {
		if !slices.Contains(userIDs, u.ID) {
			gone = append(gone, u.ID)
		}
	}
	if len(gone) > 0 {
		if _, err := d.RemoveMembers(ctx, actor, tenant, id, gone...); err != nil {
			return nil, err
		}
	}
	return d.AddMembers(ctx, actor, tenant, id, userIDs...)
}

// DeleteGroup removes the group and its memberships.
func (d *Directory) DeleteGroup(ctx context.Context, actor, tenant, id string, version int64) error {
	g, err := d.getGroup(ctx, tenant, id)
	if err != nil {
		return err
	}
	if version != 0 && version != g.Version {
		return ErrConflict
	}
	members, err := d.GroupMembers(ctx, tenant, id, MaxGroupMembers)
	if err != nil {
		return err
	}
	for _, m := range members {
		u, err := d.ModifyUser(ctx, actor, tenant, m.ID, func(u *User) error {
			u.Groups = slices.DeleteFunc(u.Groups, func(r GroupRef) bool { return r.ID == id })
			return nil
		})
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err == nil {
			d.groupsChanged(ctx, u)
		}
	}
	return mapErr("delete group", d.st.DirDelete(ctx, groupSpace(tenant), *groupEntriesOf(g)))
}

// GroupQuery selects and pages groups: DisplayName (case-insensitive) and
// ExternalID by index, Match on each candidate.
type GroupQuery struct {
	DisplayName, ExternalID string
	Match                   func(*Group) bool
	StartIndex              int
	Count                   int
}

// ListGroups returns one page of the tenant's groups (without members).
func (d *Directory) ListGroups(ctx context.Context, tenant string, q GroupQuery) (Page[*Group], error) {
	if err := checkTenant(tenant); err != nil {
		return Page[*Group]{}, err
	}
	space := groupSpace(tenant)
	var recs []store.DirRecord
	var err error
	switch {
	case q.ExternalID != "":
		var r store.DirRecord
		r, err = d.st.DirFind(ctx, space, []store.IndexEntry{{Index: ixExternal, Value: q.ExternalID}}, nil)
		if err == nil {
			recs = []store.DirRecord{r}
		} else if errors.Is(err, store.ErrNotFound) {
			err = nil
		}
	case q.DisplayName != "":
		recs, err = d.st.DirFindAll(ctx, space, store.IndexEntry{Index: ixGroupDN, Value: strings.ToLower(q.DisplayName)}, MaxPageSize)
	default:
		after := ""
		for {
			batch, berr := d.st.DirList(ctx, space, after, 0, scanBatch)
			if berr != nil {
				err = berr
				break
			}
			recs = append(recs, batch...)
			if len(batch) < scanBatch {
				break
			}
			after = batch[len(batch)-1].ID
		}
	}
	if err != nil {
		return Page[*Group]{}, mapErr("list groups", err)
	}
	var all []*Group
	for _, r := range recs {
		g, err := decodeGroup(tenant, r)
		if err != nil {
			continue
		}
		if q.DisplayName != "" && !strings.EqualFold(g.DisplayName, q.DisplayName) {
			continue
		}
		if q.Match == nil || q.Match(g) {
			all = append(all, g)
		}
	}
	return pageOf(all, max(q.StartIndex, 1), pageSize(q.Count)), nil
}
