package broker

import "github.com/realmgate/realmgate/store"

// The store contract lives in package store, so that store implementations
// depend on it alone; these aliases keep the broker's names for its callers.

// Errors every Store returns (possibly wrapped) and the broker checks with
// errors.Is; see package store.
var (
	// ErrNotFound is store.ErrNotFound.
	ErrNotFound = store.ErrNotFound
	// ErrExists is store.ErrExists.
	ErrExists = store.ErrExists
	// ErrReused is store.ErrReused (SECURITY S09).
	ErrReused = store.ErrReused
	// ErrRevoked is store.ErrRevoked.
	ErrRevoked = store.ErrRevoked
	// ErrUnavailable is store.ErrUnavailable; the broker answers 503.
	ErrUnavailable = store.ErrUnavailable
)

// RotatedKept is store.RotatedKept.
const RotatedKept = store.RotatedKept

// FamilySeparator is store.FamilySeparator.
const FamilySeparator = store.FamilySeparator

// Store is store.Store: every record with a lifetime.
type Store = store.Store

// IndexStore is store.IndexStore, an optional capability of a Store.
type IndexStore = store.IndexStore

// SessionRotator is store.SessionRotator, an optional capability of a Store.
type SessionRotator = store.SessionRotator

// AuditStore is store.AuditStore, an optional capability of a Store.
type AuditStore = store.AuditStore

// AuditBatcher is store.AuditBatcher, an optional capability of an AuditStore.
type AuditBatcher = store.AuditBatcher

// AuditRecord is store.AuditRecord, one stored event of a tenant's audit stream.
type AuditRecord = store.AuditRecord

// SessionOfFamily returns the session id a family id carries, or ""; see
// store.SessionOfFamily.
func SessionOfFamily(family string) string { return store.SessionOfFamily(family) }
