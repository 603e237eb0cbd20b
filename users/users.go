// Package users is the tenant user directory: one record per person a
// tenant knows, created just in time at a first sign-in (keyed by tenant +
// IdP + upstream subject) or ahead of time by provisioning (SCIM, the admin
// API) and matched at the first sign-in; and the tenant's groups.
//
// This package's API (User, Group, Directory, Query, the sentinels) is what
// the SCIM 2.0 service provider builds on: it maps SCIM resources onto
// User and Group, SCIM filters onto Query (the indexed fast paths plus a
// Match predicate), meta.version onto Version (optimistic concurrency:
// ErrConflict is a stale version, HTTP 412; ErrTaken a uniqueness clash,
// HTTP 409), and active:false or DELETE onto SetStatus / DeleteUser, which
// end the user's access everywhere through the Revoker the broker installs.
//
// Records live in a store.DirectoryStore (memstore, redisstore): no expiry,
// one versioned record per user with its index entries (upstream links,
// userName, externalId, email, groups), so a sign-in finds and stamps its
// user in one round trip (Directory.SignIn) and a refresh reads it in one
// (Directory.GetUser).
package users

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"
)

// Errors of the directory; callers check them with errors.Is.
var (
	// ErrNotFound: no such user or group.
	ErrNotFound = errors.New("users: not found")
	// ErrConflict: the record changed since it was read (its Version is
	// stale); read it again and retry. SCIM: 412 Precondition Failed.
	ErrConflict = errors.New("users: the record changed since it was read")
	// ErrTaken: another record of the tenant holds the same userName,
	// externalId or upstream link. SCIM: 409, scimType uniqueness.
	ErrTaken = errors.New("users: value already taken by another record")
	// ErrInvalid: a field is malformed or too large; the message says which.
	ErrInvalid = errors.New("users: invalid")
	// ErrUnavailable: the store could not be reached (wraps store.ErrUnavailable).
	ErrUnavailable = errors.New("users: directory unavailable")
)

// Status is a user's standing.
type Status string

// The statuses. Only an active user signs in or refreshes; leaving active
// ends the user's sessions and refresh-token families.
const (
	StatusActive        Status = "active"
	StatusSuspended     Status = "suspended"
	StatusDeprovisioned Status = "deprovisioned"
)

// Valid reports whether s is one of the statuses.
func (s Status) Valid() bool {
	return s == StatusActive || s == StatusSuspended || s == StatusDeprovisioned
}

// Link is an upstream identity of a user: the IdP that authenticated them
// and the subject it asserted.
type Link struct {
	IdP     string `json:"idp"`
	Subject string `json:"subject"`
}

// GroupRef is a group a user belongs to, as the user record keeps it.
type GroupRef struct {
	// ID is the group's id.
	ID string `json:"value"`
	// Display is the group's displayName (what rules see in user.groups).
	Display string `json:"display,omitempty"`
}

// Name is a user's name parts (RFC 7643 §4.1.1 name).
type Name struct {
	Formatted  string `json:"formatted,omitempty"`
	GivenName  string `json:"givenName,omitempty"`
	FamilyName string `json:"familyName,omitempty"`
}

// User is one directory record.
type User struct {
	// ID is the directory id (SCIM id), assigned at creation.
	ID string `json:"id"`
	// Tenant owns the record.
	Tenant string `json:"tenant"`
	// Subject is the realmgate `sub` of the user's tokens: set at the first
	// sign-in (the sub of its link), empty until then.
	Subject string `json:"sub,omitempty"`
	// ExternalID is the provisioning client's id (unique in the tenant).
	ExternalID string `json:"externalId,omitempty"`
	// UserName is unique in the tenant, compared case-insensitively.
	UserName string `json:"userName,omitempty"`
	// Email and whether the IdP or the provisioner verified it.
	Email         string `json:"email,omitempty"`
	EmailVerified bool   `json:"emailVerified,omitempty"`
	// Name and DisplayName are the user's names.
	Name        Name   `json:"name,omitzero"`
	DisplayName string `json:"displayName,omitempty"`
	// Status is active, suspended or deprovisioned; empty means active.
	Status Status `json:"status"`
	// Links are the upstream identities that sign in as this user (each
	// unique in the tenant).
	Links []Link `json:"links,omitempty"`
	// Groups are the groups the user belongs to.
	Groups []GroupRef `json:"groups,omitempty"`
	// Attributes are app-managed attributes (rules see user.attributes).
	Attributes map[string]any `json:"attributes,omitempty"`
	// Extra keeps provisioning attributes the directory does not interpret
	// (SCIM attributes beyond the ones above), by name.
	Extra map[string]json.RawMessage `json:"extra,omitempty"`
	// FirstSignIn, LastSignIn and LastIP record sign-ins (zero: never).
	FirstSignIn time.Time `json:"firstSignIn,omitzero"`
	LastSignIn  time.Time `json:"lastSignIn,omitzero"`
	LastIP      string    `json:"lastIP,omitempty"`
	// Created and Updated are set by the directory.
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	// Version is the record's version, assigned by the store; pass it back
	// unchanged to update (a SCIM ETag: W/"<Version>").
	Version int64 `json:"version"`
	// Generation counts the times the user's access was revoked; grants
	// remember it, and one issued under an older generation is refused.
	Generation int64 `json:"generation,omitempty"`
	// Risk is the user's conditional-access risk state (risk.go); nil:
	// none.
	Risk *Risk `json:"risk,omitempty"`
	// Provisioned marks a record a provisioner (SCIM, the admin API) owns:
	// its email, names and status are the provisioner's, and a sign-in
	// never overwrites them. A record created at a first sign-in (just in
	// time) has it unset, and each sign-in refreshes those fields from the
	// upstream identity (ApplyProfile) until a provisioner writes it.
	Provisioned bool `json:"provisioned,omitempty"`
	// UpstreamGroups are the groups the upstream IdP sent at the last
	// sign-in (its groups claim), refreshed at every sign-in whoever owns
	// the record; rules see them as user.upstream_groups. Directory groups
	// (Groups) are the provisioner's and never come from a sign-in.
	UpstreamGroups []string `json:"upstreamGroups,omitempty"`
}

// Profile is what an upstream IdP says of a user at a sign-in.
type Profile struct {
	Email         string
	EmailVerified bool
	DisplayName   string
	GivenName     string
	FamilyName    string
	// Groups is the IdP's groups claim (nil: it sent none).
	Groups []string
}

// ApplyProfile refreshes u from the upstream profile p and reports whether
// anything changed. Who wins: on a record just in time (not Provisioned)
// the IdP owns email, email_verified, displayName and the name parts, so
// a change upstream shows here at the next sign-in (a value the directory
// cannot hold, such as an ambiguous email, is left as it was; an empty one
// does not erase); on a provisioned record the provisioner owns them and
// they are left alone. UpstreamGroups follow the IdP on every record.
// userName, externalId, status, directory groups and attributes never
// change at a sign-in.
func (u *User) ApplyProfile(p Profile) bool {
	changed := false
	set := func(dst *string, v string, max int) {
		if v != "" && *dst != v && checkText("profile", v, max) == nil {
			*dst, changed = v, true
		}
	}
	if !u.Provisioned {
		if p.Email != "" && strings.Count(p.Email, "@") == 1 && (u.Email != p.Email || u.EmailVerified != p.EmailVerified) &&
			checkText("email", p.Email, MaxEmail) == nil {
			u.Email, u.EmailVerified, changed = p.Email, p.EmailVerified, true
		}
		set(&u.DisplayName, p.DisplayName, MaxNameField)
		set(&u.Name.GivenName, p.GivenName, MaxNameField)
		set(&u.Name.FamilyName, p.FamilyName, MaxNameField)
	}
	groups := p.Groups
	if len(groups) > MaxGroupsPerUser {
		groups = groups[:MaxGroupsPerUser]
	}
	if !slices.Equal(u.UpstreamGroups, groups) && (len(groups) > 0 || len(u.UpstreamGroups) > 0) {
		u.UpstreamGroups, changed = slices.Clone(groups), true
	}
	return changed
}

// Active reports whether the user may sign in.
func (u *User) Active() bool { return u.Status == "" || u.Status == StatusActive }

// HasLink reports whether u holds the upstream identity (idp, subject).
func (u *User) HasLink(idp, subject string) bool {
	return slices.Contains(u.Links, Link{IdP: idp, Subject: subject})
}

// GroupNames returns the display names of u's groups (ids where a group
// has none), as rules see them in user.groups.
func (u *User) GroupNames() []string {
	out := make([]string, 0, len(u.Groups))
	for _, g := range u.Groups {
		if g.Display != "" {
			out = append(out, g.Display)
		} else {
			out = append(out, g.ID)
		}
	}
	return out
}

// RuleView is the user as rules see it (`user` in the CEL environment):
// id, sub, userName, externalId, email, email_verified, displayName,
// status, groups (names), group_ids, attributes, upstream_groups.
func (u *User) RuleView() map[string]any {
	groups := make([]any, 0, len(u.Groups))
	ids := make([]any, 0, len(u.Groups))
	for _, g := range u.GroupNames() {
		groups = append(groups, g)
	}
	for _, g := range u.Groups {
		ids = append(ids, g.ID)
	}
	attrs := map[string]any{}
	maps.Copy(attrs, u.Attributes)
	st := u.Status
	if st == "" {
		st = StatusActive
	}
	upstream := make([]any, 0, len(u.UpstreamGroups))
	for _, g := range u.UpstreamGroups {
		upstream = append(upstream, g)
	}
	return map[string]any{"id": u.ID, "sub": u.Subject, "userName": u.UserName, "externalId": u.ExternalID,
		"email": u.Email, "email_verified": u.EmailVerified, "displayName": u.DisplayName,
		"status": string(st), "groups": groups, "group_ids": ids, "attributes": attrs, "upstream_groups": upstream,
		"risk": u.RiskState()}
}

// Clone returns a deep copy of u.
func (u *User) Clone() *User {
	c := *u
	c.Links = slices.Clone(u.Links)
	c.Groups = slices.Clone(u.Groups)
	c.UpstreamGroups = slices.Clone(u.UpstreamGroups)
	if u.Attributes != nil {
		b, _ := json.Marshal(u.Attributes)
		c.Attributes = nil
		_ = json.Unmarshal(b, &c.Attributes)
	}
	c.Extra = maps.Clone(u.Extra)
	if u.Risk != nil {
		r := *u.Risk
		c.Risk = &r
	}
	return &c
}

// Group is a tenant's group. Membership is kept on the members' records
// (User.Groups), so a sign-in reads it with the user; Members is filled in
// when a group is read.
type Group struct {
	ID          string `json:"id"`
	Tenant      string `json:"tenant"`
	DisplayName string `json:"displayName"`
	ExternalID  string `json:"externalId,omitempty"`
	// Members are user ids (read only: change them with SetMembers,
	// AddMembers, RemoveMembers).
	Members []string `json:"members,omitempty"`
	// Extra keeps provisioning attributes the directory does not interpret.
	Extra   map[string]json.RawMessage `json:"extra,omitempty"`
	Created time.Time                  `json:"created"`
	Updated time.Time                  `json:"updated"`
	// Version is the group record's version; membership changes bump it.
	Version int64 `json:"version"`
}
