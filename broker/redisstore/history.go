package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/realmgate/realmgate/store"
)

var _ store.HistoryStore = (*Store)(nil)

// rememberScript: KEYS[1] a hash whose field "=" is the value and whose
// fields "m<member>" are the set; ARGV value, max members, ttl ms, then
// the members. One key, so it runs on one Cluster node in one round trip.
var rememberScript = redis.NewScript(`
local prev = redis.call('HGET', KEYS[1], '=')
redis.call('HSET', KEYS[1], '=', ARGV[1])
local n = redis.call('HLEN', KEYS[1]) - 1
local max = tonumber(ARGV[2])
local seen = {}
for i = 4, #ARGV do
  local f = 'm' .. ARGV[i]
  if redis.call('HEXISTS', KEYS[1], f) == 1 then
    seen[#seen + 1] = 1
  else
    seen[#seen + 1] = 0
    if n < max then
      redis.call('HSET', KEYS[1], f, '1')
      n = n + 1
    end
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {prev or '', seen}
`)

// Remember replaces the value under key, adds members to its bounded set
// and reports the previous value and which members the set held, in one
// script.
func (s *Store) Remember(ctx context.Context, key string, value []byte, members []string, max int, ttl time.Duration) ([]byte, []bool, error) {
	ttl, err := ttlArg(ttl)
	if err != nil {
		return nil, nil, err
	}
	args := make([]any, 0, 3+len(members))
	args = append(args, value, max, ttl.Milliseconds())
	for _, m := range members {
		args = append(args, m)
	}
	res, err := rememberScript.Run(ctx, s.c, []string{s.key(key)}, args...).Slice()
	if err != nil {
		return nil, nil, wrap("remember", err)
	}
	if len(res) != 2 {
		return nil, nil, wrap("remember", errors.New("unexpected reply"))
	}
	prevS, _ := res[0].(string)
	flags, _ := res[1].([]any)
	if len(flags) != len(members) {
		return nil, nil, wrap("remember", fmt.Errorf("%d flags for %d members", len(flags), len(members)))
	}
	seen := make([]bool, len(members))
	for i, f := range flags {
		n, _ := f.(int64)
		seen[i] = n == 1
	}
	var prev []byte
	if prevS != "" {
		prev = []byte(prevS)
	}
	return prev, seen, nil
}
