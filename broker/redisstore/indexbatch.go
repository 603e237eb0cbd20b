package redisstore

import (
	"context"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/realmgate/realmgate/store"
)

var _ store.IndexBatcher = (*Store)(nil)

// AddToIndexes adds to several indexes in one pipeline: one round trip on
// a standalone Redis, one per Cluster node holding an index otherwise
// (store.IndexBatcher). The script is the one of AddToIndex, by its hash;
// a server that does not know it yet gets it loaded and the batch again.
func (s *Store) AddToIndexes(ctx context.Context, adds []store.IndexAdd) error {
	if len(adds) == 0 {
		return nil
	}
	run := func() ([]redis.Cmder, error) {
		now := time.Now().UnixMilli()
		return s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, a := range adds {
				ttl, err := ttlArg(a.TTL)
				if err != nil {
					return err
				}
				addToIndexScript.EvalSha(ctx, p, []string{s.key(a.Key)}, a.Member, now, a.Max, ttl.Milliseconds())
			}
			return nil
		})
	}
	_, err := run()
	if err != nil && strings.Contains(err.Error(), "NOSCRIPT") {
		if lerr := addToIndexScript.Load(ctx, s.c).Err(); lerr != nil {
			return wrap("add to indexes", lerr)
		}
		_, err = run()
	}
	return wrap("add to indexes", err)
}
