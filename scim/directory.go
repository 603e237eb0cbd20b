package scim

import "context"

// Directory is the tenant user directory SCIM provisions into: every call
// names the tenant, and a resource of another tenant is never found; every
// change names the actor ("scim:<token name>") for the directory's audit.
// A directory that ends a user's access itself when the user leaves active
// or is deleted (users.Directory) needs no Deprovisioner. A
// directory sets ID and Meta (with a Version that changes on every change)
// and fills each user's Groups. Errors: ErrNotFound, ErrConflict (a unique
// attribute taken), ErrVersion (the version named is not the current one),
// ErrUnavailable; anything else is answered as an internal error.
type Directory interface {
	// CreateUser adds a user; userName and externalId are unique in the tenant.
	CreateUser(ctx context.Context, tenant, actor string, u *User) (*User, error)
	// GetUser returns the user id.
	GetUser(ctx context.Context, tenant, id string) (*User, error)
	// ReplaceUser stores u (u.ID names it) if its current version is
	// version, or whatever it is when version is empty.
	ReplaceUser(ctx context.Context, tenant, actor string, u *User, version string) (*User, error)
	// DeleteUser removes the user and its group memberships.
	DeleteUser(ctx context.Context, tenant, actor, id string) error
	// FindUsers returns the users whose attr equals value: attr is one of
	// "userName" (compared without regard to case), "externalId" or
	// "emails.value" (without regard to case).
	FindUsers(ctx context.Context, tenant, attr, value string) ([]*User, error)
	// ListUsers returns at most limit users from offset (0-based), in an
	// order that does not change between calls, and how many there are.
	ListUsers(ctx context.Context, tenant string, offset, limit int) ([]*User, int, error)

	// CreateGroup adds a group; displayName is unique in the tenant and
	// every member is a user of the tenant (else ErrNotFound).
	CreateGroup(ctx context.Context, tenant, actor string, g *Group) (*Group, error)
	// GetGroup returns the group id.
	GetGroup(ctx context.Context, tenant, id string) (*Group, error)
	// ReplaceGroup stores g like ReplaceUser.
	ReplaceGroup(ctx context.Context, tenant, actor string, g *Group, version string) (*Group, error)
	// DeleteGroup removes the group.
	DeleteGroup(ctx context.Context, tenant, actor, id string) error
	// FindGroups returns the groups whose attr equals value: attr is
	// "displayName" (without regard to case), "externalId" or "members.value".
	FindGroups(ctx context.Context, tenant, attr, value string) ([]*Group, error)
	// ListGroups is ListUsers for groups.
	ListGroups(ctx context.Context, tenant string, offset, limit int) ([]*Group, int, error)
}

// Deprovisioner ends a user's access: every session, SSO session and
// refresh-token family of the user, on every instance. The handler calls
// it when a client sets active to false or deletes a user, after the
// directory has stored the change.
// CredentialObserver hears that a provisioning client set a user's
// password. realmgate keeps no password (users sign in at their identity
// provider, schema.go), but the change itself is news to the tenant's
// applications: the broker tells them (CAEP credential-change).
type CredentialObserver interface {
	CredentialChanged(ctx context.Context, tenant, userID, actor string)
}

type Deprovisioner interface {
	Deprovision(ctx context.Context, tenant, userID, actor, reason string) error
}
