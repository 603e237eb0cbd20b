package store

import (
	"context"
	"time"
)

// IndexAdd is one AddToIndex of a batch.
type IndexAdd struct {
	// Key, Member, Max and TTL are AddToIndex's arguments.
	Key, Member string
	Max         int
	TTL         time.Duration
}

// IndexBatcher is implemented by an IndexStore that adds to several
// indexes in one round trip (a sign-in indexes its session under the
// upstream user, the IdP and the client at once). memstore and redisstore
// implement it; the broker finds it by type assertion and otherwise calls
// AddToIndex once per index.
type IndexBatcher interface {
	// AddToIndexes is AddToIndex for each of adds; the first error is
	// returned after every add was tried.
	AddToIndexes(ctx context.Context, adds []IndexAdd) error
}
