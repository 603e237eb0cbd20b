// Package store holds the contracts between the broker and the stores that
// keep its records: Store, the optional capabilities a store may add
// (IndexStore, SessionRotator, AuditStore, AuditBatcher), the sentinel
// errors every store returns and the constants their layout shares.
//
// It imports nothing of realmgate and nothing outside the standard library,
// so a store implementation (broker/memstore, broker/redisstore) depends on
// this package only, never on the broker and its HTTP, rules and metrics
// dependencies. Every implementation passes the conformance suite in
// broker/storetest. The broker re-exports these names (broker.Store,
// broker.ErrNotFound, ...) for its callers.
package store

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Errors every Store returns (possibly wrapped); callers check them with
// errors.Is.
var (
	// ErrNotFound means the key does not exist or has expired.
	ErrNotFound = errors.New("store: not found")
	// ErrExists means Create found the key already present.
	ErrExists = errors.New("store: already exists")
	// ErrReused means a refresh token that was already rotated was presented
	// again; the store has revoked the whole family (SECURITY S09).
	ErrReused = errors.New("store: refresh token reused")
	// ErrRevoked means RotateUnlessRevoked found the family's revocation
	// marker (its session was logged out): the store has deleted the family.
	ErrRevoked = errors.New("store: refresh-token family revoked")
	// ErrUnavailable means the store could not be reached; the broker
	// answers 503 (SECURITY S62).
	ErrUnavailable = errors.New("store: unavailable")
)

// RotatedKept is how many rotated-away refresh tokens a family remembers
// for reuse detection (S09). Bounding it bounds a family's memory however
// often a client refreshes (a token replayed after 64 rotations is simply
// unknown: refused, without revoking the family).
const RotatedKept = 64

// Store holds every record with a lifetime: auth requests, upstream login
// state, codes, sessions, refresh-token families, signing keys and counters.
// Keys passed in are already HMACs of any secret they derive from (S17); a
// store never sees a raw token. Every method must be safe for concurrent use
// and atomic: no caller ever observes a half-written record.
type Store interface {
	// Put writes value under key with the given time to live, replacing any value.
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Create writes value under key only if key is absent; otherwise ErrExists.
	Create(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Get returns the value under key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Take returns the value under key and deletes it in one atomic step
	// (GETDEL): of any number of concurrent callers exactly one gets the value,
	// the others ErrNotFound.
	Take(ctx context.Context, key string) ([]byte, error)
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Touch sets a new time to live on an existing key (sliding sessions), or ErrNotFound.
	Touch(ctx context.Context, key string, ttl time.Duration) error
	// Incr adds one to the counter under key and returns the new value; the
	// first increment starts the ttl window.
	Incr(ctx context.Context, key string, ttl time.Duration) (int64, error)
	// SlidingWindow asks about one event under key in the sliding window w
	// at now (window.go), counting it as op says, in one atomic step and
	// one round trip: 0 when the event is admitted, else how long until one
	// would be. Rate limits (S60) use it, never fixed windows, so a limit
	// holds at window edges and across instances.
	SlidingWindow(ctx context.Context, key string, w Window, op WindowOp, now time.Time) (time.Duration, error)

	// CreateFamily starts a refresh-token family: grant is the data every
	// token of the family redeems, token the key of its first token. The family
	// expires after ttl (absolute, not sliding).
	CreateFamily(ctx context.Context, family, token string, grant []byte, ttl time.Duration) error
	// Rotate atomically replaces the family's current token old with next and
	// returns the grant. If old is one of the family's last RotatedKept
	// tokens rotated away, the whole family is revoked and ErrReused
	// returned; if the family or token is unknown (or older than that),
	// ErrNotFound.
	Rotate(ctx context.Context, family, old, next string) ([]byte, error)
	// RevokeFamily deletes the family; its tokens stop working at once.
	RevokeFamily(ctx context.Context, family string) error
	// FamilyGrant returns the grant of a family that exists and is not
	// revoked, or ErrNotFound: one read answers userinfo, introspection and
	// revocation, so no copy of the grant is kept beside the family.
	FamilyGrant(ctx context.Context, family string) ([]byte, error)

	// Ping reports whether the store is reachable (readiness).
	Ping(ctx context.Context) error
}

// IndexStore is implemented by a Store that keeps small indexes: bounded
// sets of members (store keys) under one key, such as every session one
// upstream user has open, so that an upstream logout of the user ends all of
// them (OIDC Back-Channel Logout 1.0 §2.4: a logout token without sid means
// every session of the sub). memstore and redisstore implement it; the
// broker finds it by type assertion and, without it, indexes only the
// newest session.
type IndexStore interface {
	// AddToIndex adds member to the index under key, keeping the newest max
	// members, and makes the index live at least ttl from now.
	AddToIndex(ctx context.Context, key, member string, max int, ttl time.Duration) error
	// IndexMembers returns the members of the index under key, newest
	// first; none and no error when there is no such index.
	IndexMembers(ctx context.Context, key string) ([]string, error)
}

// SessionRotator is implemented by a Store that can check a family's
// revocation marker in the same atomic step as the rotation (memstore, and
// redisstore, where the marker and the family share one Cluster slot: see
// FamilySeparator). The broker finds it by type assertion; without it a
// refresh reads the marker in a second round trip.
type SessionRotator interface {
	// RotateUnlessRevoked is Rotate, except that when marker exists the
	// family is deleted and ErrRevoked returned.
	RotateUnlessRevoked(ctx context.Context, family, old, next, marker string) ([]byte, error)
}

// FamilySeparator joins a session id and a random part in the id of a
// family that belongs to a session ("<sid>~<random>"): stores put every key
// of that session (the family, its revocation marker) in one place, Redis
// Cluster hash slot "{<sid>}".
const FamilySeparator = "~"

// SessionOfFamily returns the session id a family id carries, or "" for a
// family made without one (before session-tagged ids, or for a grant
// without a session).
func SessionOfFamily(family string) string {
	sid, _, ok := strings.Cut(family, FamilySeparator)
	if !ok {
		return ""
	}
	return sid
}
