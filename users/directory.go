package users

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/realmgate/realmgate/store"
)

// Bounds of a user record; beyond them writes fail with ErrInvalid.
const (
	MaxUserName      = 256
	MaxEmail         = 320
	MaxExternalID    = 256
	MaxNameField     = 256
	MaxLinks         = 16
	MaxGroupsPerUser = 200
	MaxAttributes    = 16 << 10 // bytes of JSON
	MaxExtra         = 16 << 10 // bytes of JSON
	// DefaultPageSize and MaxPageSize bound a listing.
	DefaultPageSize = 100
	MaxPageSize     = store.MaxDirList
	// modifyAttempts bounds the retries of ModifyUser on a version race.
	modifyAttempts = 8
)

// Revoker ends a user's access: every SSO session and refresh-token family
// on every instance, with back-channel logout tokens to the applications,
// audited with the actor. The broker implements it and installs itself
// (Directory.SetRevoker).
type Revoker interface {
	// RevokeUser ends the access u had before this call; reason says why
	// ("suspended", "deprovisioned", "deleted", "revoked").
	RevokeUser(ctx context.Context, u *User, actor, reason string) error
}

// Directory is the tenant user directory over a store.DirectoryStore. It
// is safe for concurrent use.
type Directory struct {
	st      store.DirectoryStore
	now     func() time.Time
	revoker atomic.Pointer[Revoker]
	// jsonRecords writes user records in the JSON form (SetJSONRecords).
	jsonRecords atomic.Bool
}

// SetJSONRecords makes d write user records in the JSON form releases
// before the binary one read (both forms are always read): for a store
// shared with such a release (config store.record_format: json).
func (d *Directory) SetJSONRecords(on bool) { d.jsonRecords.Store(on) }

// New returns a Directory over st; now is the clock (nil: time.Now).
func New(st store.DirectoryStore, now func() time.Time) *Directory {
	if now == nil {
		now = time.Now
	}
	return &Directory{st: st, now: now}
}

// Open returns a Directory over s when the store keeps directory records
// (store.DirectoryStore), else nil and false.
func Open(s store.Store, now func() time.Time) (*Directory, bool) {
	ds, ok := s.(store.DirectoryStore)
	if !ok {
		return nil, false
	}
	return New(ds, now), true
}

// SetRevoker installs what ends a user's access when the directory
// suspends, deprovisions, deletes or revokes them.
func (d *Directory) SetRevoker(r Revoker) { d.revoker.Store(&r) }

func (d *Directory) revoke(ctx context.Context, u *User, actor, reason string) error {
	r := d.revoker.Load()
	if r == nil || *r == nil {
		return nil
	}
	return (*r).RevokeUser(ctx, u, actor, reason)
}

// mapErr translates store errors into the package's sentinels.
func mapErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return ErrNotFound
	case errors.Is(err, store.ErrVersion):
		return ErrConflict
	case errors.Is(err, store.ErrTaken):
		return ErrTaken
	case errors.Is(err, store.ErrBadRecord):
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("users: %s: %w", op, err)
	}
	return fmt.Errorf("users: %s: %w: %w", op, ErrUnavailable, err)
}

// NewID returns a fresh random record id (128 bits, base64url).
func NewID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

func checkText(field, v string, max int) error {
	if len(v) > max {
		return invalid("%s is %d bytes, over %d", field, len(v), max)
	}
	if !utf8.ValidString(v) {
		return invalid("%s is not UTF-8", field)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return invalid("%s holds a control character", field)
		}
	}
	return nil
}

// Validate checks u's fields against the bounds above.
func (u *User) Validate() error {
	if err := checkTenant(u.Tenant); err != nil {
		return err
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{
		{"userName", u.UserName, MaxUserName}, {"email", u.Email, MaxEmail}, {"externalId", u.ExternalID, MaxExternalID},
		{"displayName", u.DisplayName, MaxNameField}, {"name.formatted", u.Name.Formatted, MaxNameField},
		{"name.givenName", u.Name.GivenName, MaxNameField}, {"name.familyName", u.Name.FamilyName, MaxNameField},
		{"sub", u.Subject, 128},
	} {
		if err := checkText(f.name, f.v, f.max); err != nil {
			return err
		}
	}
	if u.Email != "" && strings.Count(u.Email, "@") != 1 {
		return invalid("email %q is not an address", u.Email)
	}
	if u.Status != "" && !u.Status.Valid() {
		return invalid("status %q: want active, suspended or deprovisioned", u.Status)
	}
	if len(u.Links) > MaxLinks {
		return invalid("%d upstream links, over %d", len(u.Links), MaxLinks)
	}
	for _, l := range u.Links {
		if l.IdP == "" || l.Subject == "" || strings.Contains(l.IdP, " ") {
			return invalid("upstream link %q/%q", l.IdP, l.Subject)
		}
		if err := checkText("link subject", l.Subject, 400); err != nil {
			return err
		}
	}
	if len(u.UpstreamGroups) > MaxGroupsPerUser {
		return invalid("%d upstream groups, over %d", len(u.UpstreamGroups), MaxGroupsPerUser)
	}
	for _, g := range u.UpstreamGroups {
		if err := checkText("upstream group", g, MaxNameField); err != nil {
			return err
		}
	}
	if len(u.Groups) > MaxGroupsPerUser {
		return invalid("%d groups, over %d", len(u.Groups), MaxGroupsPerUser)
	}
	for _, g := range u.Groups {
		if store.CheckDirID(g.ID) != nil {
			return invalid("group id %q", g.ID)
		}
	}
	if u.Attributes != nil {
		b, err := json.Marshal(u.Attributes)
		if err != nil || len(b) > MaxAttributes {
			return invalid("attributes: not JSON or over %d bytes", MaxAttributes)
		}
	}
	if u.Extra != nil {
		b, err := json.Marshal(u.Extra)
		if err != nil || len(b) > MaxExtra {
			return invalid("extra attributes: not JSON or over %d bytes", MaxExtra)
		}
	}
	return nil
}

// CreateUser stores a new user. An empty ID gets a fresh one; Status
// defaults to active; Created, Updated and Version are set on u.
// ErrTaken when its userName, externalId or a link belongs to another user.
func (d *Directory) CreateUser(ctx context.Context, u *User) error {
	if u.ID == "" {
		u.ID = NewID()
	} else if store.CheckDirID(u.ID) != nil {
		return invalid("id %q", u.ID)
	}
	if u.Status == "" {
		u.Status = StatusActive
	}
	if err := u.Validate(); err != nil {
		return err
	}
	now := d.now().UTC().Truncate(time.Second)
	u.Created, u.Updated = now, now
	rec, err := d.encodeUser(u)
	if err != nil {
		return err
	}
	if !u.LastSignIn.IsZero() {
		rec.Stamp = stamp(u.LastSignIn, u.LastIP)
	}
	v, err := d.st.DirPut(ctx, userSpace(u.Tenant), rec, 0)
	if errors.Is(err, store.ErrExists) {
		return fmt.Errorf("%w: id %q", ErrTaken, u.ID)
	}
	if err != nil {
		return mapErr("create user", err)
	}
	u.Version = v
	return nil
}

// GetUser returns the user id of tenant (one store round trip).
func (d *Directory) GetUser(ctx context.Context, tenant, id string) (*User, error) {
	if err := checkTenant(tenant); err != nil {
		return nil, err
	}
	if store.CheckDirID(id) != nil {
		return nil, ErrNotFound
	}
	rec, err := d.st.DirGet(ctx, userSpace(tenant), id)
	if err != nil {
		return nil, mapErr("get user", err)
	}
	return decodeUser(tenant, rec)
}

// UpdateUser writes u over the stored record of version u.Version
// (ErrConflict if it changed since). A change of status away from active
// ends the user's access (the Revoker) and bumps Generation; actor is
// audited. u's Version and Updated are set.
func (d *Directory) UpdateUser(ctx context.Context, actor string, u *User) error {
	stored, err := d.ModifyUser(ctx, actor, u.Tenant, u.ID, func(cur *User) error {
		if cur.Version != u.Version {
			return ErrConflict
		}
		next := u.Clone()
		next.Created, next.Generation, next.FirstSignIn = cur.Created, cur.Generation, cur.FirstSignIn
		next.LastSignIn, next.LastIP = cur.LastSignIn, cur.LastIP
		*cur = *next
		return nil
	})
	if err == nil {
		*u = *stored
	}
	return err
}

// ModifyUser reads the user, applies fn and writes the result, retrying
// (with a fresh read) when another writer got in between. fn may return
// an error to abort. Leaving active ends the user's access (see
// UpdateUser). It returns the stored user.
func (d *Directory) ModifyUser(ctx context.Context, actor, tenant, id string, fn func(*User) error) (*User, error) {
	for range modifyAttempts {
		cur, err := d.GetUser(ctx, tenant, id)
		if err != nil {
			return nil, err
		}
		next := cur.Clone()
		if err := fn(next); err != nil {
			return nil, err
		}
		next.ID, next.Tenant, next.Version = cur.ID, cur.Tenant, cur.Version
		if next.Status == "" {
			next.Status = StatusActive
		}
		revoking := cur.Active() && !next.Active()
		if revoking {
			next.Generation = cur.Generation + 1
		}
		err = d.put(ctx, next, cur)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if revoking {
			if err := d.revoke(ctx, cur, actor, string(next.Status)); err != nil {
				return next, fmt.Errorf("users: %s: %w", next.Status, err)
			}
		}
		return next, nil
	}
	return nil, ErrConflict
}

// put writes u over version u.Version, which is cur as read.
func (d *Directory) put(ctx context.Context, u, cur *User) error {
	if err := u.Validate(); err != nil {
		return err
	}
	u.Updated = d.now().UTC().Truncate(time.Second)
	rec, err := d.encodeUser(u)
	if err != nil {
		return err
	}
	rec.Replaces = entriesOf(cur)
	v, err := d.st.DirPut(ctx, userSpace(u.Tenant), rec, u.Version)
	if err != nil {
		return mapErr("update user", err)
	}
	u.Version = v
	return nil
}

// SetStatus changes the user's status; leaving active ends their access
// everywhere (sessions, refresh-token families, back-channel logout) and
// audits actor. This is the deprovisioning call for SCIM active:false.
func (d *Directory) SetStatus(ctx context.Context, actor, tenant, id string, st Status) (*User, error) {
	if !st.Valid() {
		return nil, invalid("status %q", st)
	}
	return d.ModifyUser(ctx, actor, tenant, id, func(u *User) error { u.Status = st; return nil })
}

// Revoke ends the user's current access everywhere without changing
// their status: sessions and refresh-token families issued before end,
// and the user may sign in again.
func (d *Directory) Revoke(ctx context.Context, actor, tenant, id string) (*User, error) {
	var before *User
	u, err := d.ModifyUser(ctx, actor, tenant, id, func(u *User) error {
		before = u.Clone()
		u.Generation++
		return nil
	})
	if err != nil {
		return nil, err
	}
	if u.Active() {
		before.Version = u.Version
		if err := d.revoke(ctx, before, actor, "revoked"); err != nil {
			return u, fmt.Errorf("users: revoke: %w", err)
		}
	}
	return u, nil
}

// DeleteUser removes the user (version 0: whatever is stored) and ends
// their access everywhere. A JIT tenant creates a fresh record at their
// next sign-in; to keep someone out, suspend or deprovision them.
func (d *Directory) DeleteUser(ctx context.Context, actor, tenant, id string, version int64) error {
	u, err := d.GetUser(ctx, tenant, id)
	if err != nil {
		return err
	}
	if version != 0 && u.Version != version {
		return ErrConflict
	}
	if err := d.st.DirDelete(ctx, userSpace(tenant), *entriesOf(u)); err != nil {
		return mapErr("delete user", err)
	}
	if err := d.revoke(ctx, u, actor, "deleted"); err != nil {
		return fmt.Errorf("users: delete: %w", err)
	}
	return nil
}

// UserByLink returns the user holding the upstream identity (idp, subject).
func (d *Directory) UserByLink(ctx context.Context, tenant, idp, subject string) (*User, error) {
	return d.find(ctx, tenant, []store.IndexEntry{{Index: ixLink, Value: linkValue(idp, subject)}}, nil)
}

// UserByExternalID returns the user with that externalId (exact match).
func (d *Directory) UserByExternalID(ctx context.Context, tenant, externalID string) (*User, error) {
	return d.find(ctx, tenant, []store.IndexEntry{{Index: ixExternal, Value: externalID}}, nil)
}

// UserByUserName returns the user with that userName (case-insensitive).
func (d *Directory) UserByUserName(ctx context.Context, tenant, userName string) (*User, error) {
	return d.find(ctx, tenant, []store.IndexEntry{{Index: ixUserName, Value: strings.ToLower(userName)}}, nil)
}

// UsersByEmail returns up to limit users with that email (case-insensitive).
func (d *Directory) UsersByEmail(ctx context.Context, tenant, email string, limit int) ([]*User, error) {
	if err := checkTenant(tenant); err != nil {
		return nil, err
	}
	recs, err := d.st.DirFindAll(ctx, userSpace(tenant), store.IndexEntry{Index: ixEmail, Value: strings.ToLower(email)}, pageSize(limit))
	if err != nil {
		return nil, mapErr("users by email", err)
	}
	return decodeUsers(tenant, recs)
}

func (d *Directory) find(ctx context.Context, tenant string, keys []store.IndexEntry, st []byte) (*User, error) {
	if err := checkTenant(tenant); err != nil {
		return nil, err
	}
	rec, err := d.st.DirFind(ctx, userSpace(tenant), keys, st)
	if err != nil {
		return nil, mapErr("find user", err)
	}
	u, err := decodeUser(tenant, rec)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if u.holds(k) {
			return u, nil
		}
	}
	return nil, ErrNotFound // a stale entry or a digest collision: not this user

}

// MatchKey is a way to find a provisioned user at a first sign-in.
type MatchKey struct {
	// By is "externalId" or "userName".
	By string
	// Value is compared to the user's attribute.
	Value string
}

// SignIn finds the user of the upstream identity (idp, subject), or else
// the first user a match key names, and records the sign-in (time, IP) on
// it, in one store round trip. The caller links a user found by a match
// key (LinkSignIn). ErrNotFound when none is found.
func (d *Directory) SignIn(ctx context.Context, tenant, idp, subject string, match []MatchKey, at time.Time, ip string) (*User, error) {
	keys := []store.IndexEntry{{Index: ixLink, Value: linkValue(idp, subject)}}
	for _, m := range match {
		switch m.By {
		case "externalId":
			keys = append(keys, store.IndexEntry{Index: ixExternal, Value: m.Value})
		case "userName":
			keys = append(keys, store.IndexEntry{Index: ixUserName, Value: strings.ToLower(m.Value)})
		}
	}
	return d.find(ctx, tenant, keys, stamp(at, ip))
}

// RefreshProfile applies the upstream profile p to u, the user a sign-in
// has just found (User.ApplyProfile says which fields follow the IdP), and
// writes the record when anything changed: no store round trip when
// nothing did, one when something did (over the version SignIn read; a
// record changed meanwhile is read again). It returns the user as stored.
// A profile the directory refuses (ErrInvalid, ErrTaken) leaves the
// record as it was.
func (d *Directory) RefreshProfile(ctx context.Context, u *User, p Profile) (*User, error) {
	next := u.Clone()
	if !next.ApplyProfile(p) {
		return u, nil
	}
	err := d.put(ctx, next, u)
	switch {
	case err == nil:
		next.LastSignIn, next.LastIP = u.LastSignIn, u.LastIP
		return next, nil
	case errors.Is(err, ErrConflict):
		return d.ModifyUser(ctx, "sign-in", u.Tenant, u.ID, func(cur *User) error { cur.ApplyProfile(p); return nil })
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrTaken):
		return u, nil
	}
	return nil, err
}

// LinkSignIn links the upstream identity (idp, subject) with sub to the
// user found at a first sign-in, and sets FirstSignIn when unset.
func (d *Directory) LinkSignIn(ctx context.Context, tenant, id, idp, subject, sub string, at time.Time) (*User, error) {
	return d.ModifyUser(ctx, "sign-in", tenant, id, func(u *User) error {
		if !u.HasLink(idp, subject) {
			u.Links = append(u.Links, Link{IdP: idp, Subject: subject})
		}
		if u.Subject == "" {
			u.Subject = sub
		}
		if u.FirstSignIn.IsZero() {
			u.FirstSignIn = at.UTC().Truncate(time.Second)
		}
		return nil
	})
}

func decodeUsers(tenant string, recs []store.DirRecord) ([]*User, error) {
	out := make([]*User, 0, len(recs))
	for _, r := range recs {
		u, err := decodeUser(tenant, r)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

func pageSize(n int) int {
	if n <= 0 {
		return DefaultPageSize
	}
	return min(n, MaxPageSize)
}
