package store

import (
	"context"
	"time"
)

// HistoryStore is implemented by stores that keep a small per-user sign-in
// history (conditional access, package risk) in one round trip per
// sign-in. Both of realmgate's stores implement it.
type HistoryStore interface {
	// Remember replaces the value under key with value and adds members to
	// the key's set, which keeps at most max members (a member beyond the
	// bound is reported but not kept). It returns the value replaced (nil:
	// none) and, for each member, whether the set held it before; all in
	// one atomic step. The key lives ttl from now.
	Remember(ctx context.Context, key string, value []byte, members []string, max int, ttl time.Duration) (prev []byte, seen []bool, err error)
}
