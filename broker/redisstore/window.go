package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/realmgate/realmgate/store"
)

// A sliding window (store/window.go) is one hash at <prefix><key>: a field
// per bucket (its index, decimal) holding the bucket's count, at most
// store.WindowBuckets+1 of them once old ones are dropped. One key, so one
// Cluster slot; one script, so one round trip and atomic on every
// instance's behalf.
//
// go-redis/redis_rate (GCRA) was considered and not used: its script reads
// the Redis server's clock (TIME), so a test cannot drive a window edge
// without sleeping, it keys outside the Store's prefix, and GCRA with a
// burst of N admits up to 2N in a window's length, the very weakness this
// replaces; the memory store must also give the same answers.

// windowScript: KEYS[1] the window's hash; ARGV the caller's bucket index,
// store.WindowBuckets, op (0 peek, 1 take, 2 add), limit, keep (ms). It
// returns the counts of the WindowBuckets+1 buckets ending at the current
// one, oldest first, before this event; it counts the event when op is add,
// or take and fewer than limit events are counted. A bucket ahead of the
// caller's clock counts as the current one.
var windowScript = redis.NewScript(`
local idx = tonumber(ARGV[1])
local k = tonumber(ARGV[2])
local op = tonumber(ARGV[3])
local oldest = idx - k
local counts, stale, sum = {}, {}, 0
for i = 1, k + 1 do counts[i] = 0 end
local h = redis.call('HGETALL', KEYS[1])
for i = 1, #h, 2 do
  local b, n = tonumber(h[i]), tonumber(h[i + 1])
  if b == nil or n == nil or b < oldest then
    stale[#stale + 1] = h[i]
  else
    local j = math.min(b, idx) - oldest + 1
    counts[j] = counts[j] + n
    sum = sum + n
  end
end
if op == 2 or (op == 1 and sum < tonumber(ARGV[4])) then
  redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
  if #stale > 0 then redis.call('HDEL', KEYS[1], unpack(stale)) end
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
end
return counts
`)

// windowOps are the script's op numbers.
var windowOps = map[store.WindowOp]int{store.WindowPeek: 0, store.WindowTake: 1, store.WindowAdd: 2}

// SlidingWindow implements store.Store with one script call.
func (s *Store) SlidingWindow(ctx context.Context, key string, w store.Window, op store.WindowOp, now time.Time) (time.Duration, error) {
	if err := w.Check(); err != nil {
		return 0, fmt.Errorf("redisstore: %w", err)
	}
	opn, ok := windowOps[op]
	if !ok {
		return 0, fmt.Errorf("redisstore: sliding window: unknown op %v", op)
	}
	idx, _ := w.Bucket(now)
	keep, _ := ttlArg(w.KeepFor())
	res, err := windowScript.Run(ctx, s.c, []string{s.key(key)},
		strconv.FormatInt(idx, 10), store.WindowBuckets, opn, w.Limit, keep.Milliseconds()).Int64Slice()
	if err != nil {
		return 0, wrap("sliding window", err)
	}
	if len(res) != store.WindowBuckets+1 {
		return 0, fmt.Errorf("redisstore: sliding window: %d counts, want %d", len(res), store.WindowBuckets+1)
	}
	return store.WindowWait(w, res, now), nil
}
