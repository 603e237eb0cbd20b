package redisstore

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/realmgate/realmgate/store"
)

var _ store.IndexStore = (*Store)(nil)

// addToIndexScript: KEYS[1] a sorted set; ARGV member, score (ms), max
// members, ttl ms. Adds the member, drops the oldest beyond max, and extends
// the key's life to at least ttl. One script, so no reader sees the set over
// its bound or without an expiry.
var addToIndexScript = redis.NewScript(`
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local max = tonumber(ARGV[3])
local n = redis.call('ZCARD', KEYS[1])
if max > 0 and n > max then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - max - 1)
end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
return n
`)

// AddToIndex adds member to the index (a sorted set scored by the time it
// was added) under key, keeping the newest max members, and makes the index
// live at least ttl from now.
func (s *Store) AddToIndex(ctx context.Context, key, member string, max int, ttl time.Duration) error {
	ttl, err := ttlArg(ttl)
	if err != nil {
		return err
	}
	err = addToIndexScript.Run(ctx, s.c, []string{s.key(key)}, member, time.Now().UnixMilli(), max, ttl.Milliseconds()).Err()
	return wrap("add to index", err)
}

// IndexMembers returns the members of the index under key, newest first.
func (s *Store) IndexMembers(ctx context.Context, key string) ([]string, error) {
	m, err := s.c.ZRevRange(ctx, s.key(key), 0, -1).Result()
	if err != nil {
		return nil, wrap("index members", err)
	}
	return m, nil
}
