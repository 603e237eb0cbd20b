package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/realmgate/realmgate/store"
)

var (
	_ store.Batcher      = (*Store)(nil)
	_ store.CodeRedeemer = (*Store)(nil)
)

// batchScript runs a store.Batcher batch: KEYS one key per op; ARGV per
// op, its kind and arguments: 'p' value ttl-ms (SET PX) | 'd' (DEL) | 't'
// (GETDEL) | 'w' bucket buckets op limit keep-ms (windowScript's
// arguments) | 'i' member score max ttl-ms (addToIndexScript's). It
// returns one reply per op run: 1, a taken value, 0 for a take that found
// nothing (the batch stops), or a window's counts (the batch stops when
// the window did not admit the event: as many or more events counted than
// its limit, exactly when store.WindowWait is not 0).
var batchScript = redis.NewScript(`
local function window(key, idx, k, op, limit, keep)
  local oldest = idx - k
  local counts, stale, sum = {}, {}, 0
  for i = 1, k + 1 do counts[i] = 0 end
  local h = redis.call('HGETALL', key)
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
  if op == 2 or (op == 1 and sum < limit) then
    redis.call('HINCRBY', key, tostring(idx), 1)
    if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
    redis.call('PEXPIRE', key, keep)
  end
  return counts, sum >= limit
end
local res = {}
local a = 1
for i = 1, #KEYS do
  local key, kind = KEYS[i], ARGV[a]
  if kind == 'p' then
    redis.call('SET', key, ARGV[a + 1], 'PX', ARGV[a + 2])
    a = a + 3
    res[i] = 1
  elseif kind == 'd' then
    redis.call('DEL', key)
    a = a + 1
    res[i] = 1
  elseif kind == 't' then
    a = a + 1
    local v = redis.call('GETDEL', key)
    if not v then
      res[i] = 0
      return res
    end
    res[i] = v
  elseif kind == 'w' then
    local counts, refused = window(key, tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]),
      tonumber(ARGV[a + 4]), ARGV[a + 5])
    a = a + 6
    res[i] = counts
    if refused then return res end
  elseif kind == 'i' then
    redis.call('ZADD', key, ARGV[a + 2], ARGV[a + 1])
    local max = tonumber(ARGV[a + 3])
    local n = redis.call('ZCARD', key)
    if max > 0 and n > max then
      redis.call('ZREMRANGEBYRANK', key, 0, n - max - 1)
    end
    if redis.call('PTTL', key) < tonumber(ARGV[a + 4]) then
      redis.call('PEXPIRE', key, ARGV[a + 4])
    end
    a = a + 5
    res[i] = 1
  else
    return redis.error_reply('unknown batch op ' .. tostring(kind))
  end
end
return res
`)

// Batch implements store.Batcher: one script (one round trip, atomic) on
// one server or Sentinel; on a Cluster, whose keys may live on several
// nodes, store.BatchOneByOne. A batch that takes or deletes is sent with
// WAIT as Take is (replicaack.go).
func (s *Store) Batch(ctx context.Context, ops []store.Op) ([]store.Result, error) {
	if err := store.CheckBatch(ops); err != nil {
		return nil, err
	}
	if len(ops) == 0 {
		return nil, nil
	}
	if _, cluster := s.c.(*redis.ClusterClient); cluster {
		return store.BatchOneByOne(ctx, s, ops)
	}
	keys := make([]string, len(ops))
	args := make([]any, 0, 4*len(ops))
	consumes := false
	for i, op := range ops {
		keys[i] = s.key(op.Key)
		switch op.Kind {
		case store.OpPut:
			ttl, _ := ttlArg(op.TTL)
			args = append(args, "p", op.Value, ttl.Milliseconds())
		case store.OpDelete:
			args = append(args, "d")
			consumes = true
		case store.OpTake:
			args = append(args, "t")
			consumes = true
		case store.OpWindow:
			idx, _ := op.Window.Bucket(op.Now)
			keep, _ := ttlArg(op.Window.KeepFor())
			args = append(args, "w", strconv.FormatInt(idx, 10), store.WindowBuckets, windowOps[op.WindowOp], op.Window.Limit, keep.Milliseconds())
		case store.OpIndex:
			ttl, _ := ttlArg(op.TTL)
			args = append(args, "i", op.Value, time.Now().UnixMilli(), op.Max, ttl.Milliseconds())
		}
	}
	var cmd *redis.Cmd
	var unacked error
	if consumes {
		var err error
		unacked, err = s.write(ctx, keys[0], func(c redis.Cmdable) redis.Cmder {
			cmd = evalScript(ctx, c, batchScript, keys, args...)
			return cmd
		})
		if err != nil {
			return nil, wrap("batch", err)
		}
	} else {
		cmd = batchScript.Run(ctx, s.c, keys, args...)
	}
	replies, err := cmd.Slice()
	if err != nil {
		return nil, wrap("batch", err)
	}
	if len(replies) == 0 || len(replies) > len(ops) {
		return nil, fmt.Errorf("redisstore: batch: %d replies to %d ops", len(replies), len(ops))
	}
	res := make([]store.Result, len(replies))
	consumed := false
	for i, rep := range replies {
		op := ops[i]
		switch op.Kind {
		case store.OpTake:
			if v, ok := rep.(string); ok {
				res[i].Value = []byte(v)
				consumed = true
			}
		case store.OpDelete:
			consumed = true
		case store.OpWindow:
			counts, ok := rep.([]any)
			if !ok || len(counts) != store.WindowBuckets+1 {
				return nil, fmt.Errorf("redisstore: batch: window reply %T", rep)
			}
			n := make([]int64, len(counts))
			for j, c := range counts {
				n[j], _ = c.(int64)
			}
			res[i].Wait = store.WindowWait(op.Window, n, op.Now)
		}
	}
	if consumed && unacked != nil {
		return nil, wrap("batch", unacked)
	}
	return res, nil
}

// redeemScript: KEYS code, code-use marker, session marker, family hash;
// ARGV family id, marker ttl ms, first token, family ttl ms. Replies {1,
// record} redeemed; {0[, used]} no code (with the marker's value); {2}
// taken but the session was logged out; {3} the family exists (nothing
// taken); {4} taken but not a code record.
var redeemScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[4]) == 1 then return {3} end
local v = redis.call('GETDEL', KEYS[1])
if not v then
  local u = redis.call('GET', KEYS[2])
  if u then return {0, u} end
  return {0}
end
if redis.call('EXISTS', KEYS[3]) == 1 then return {2} end
local c = string.find(v, ':', 1, true)
if not c or c > 12 then return {4} end
local len = string.sub(v, 1, c - 1)
if not string.match(len, '^%d+$') then return {4} end
local n = tonumber(len)
if c + n > #v then return {4} end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[4], 'grant', string.sub(v, c + 1, c + n), 'cur', ARGV[3])
redis.call('PEXPIRE', KEYS[4], ARGV[4])
return {1, v}
`)

// RedeemCode implements store.CodeRedeemer in one script, sent with WAIT
// as Take is. On a Cluster every key must hash to the family's slot: the
// broker tags them all "{<sid>}" (FamilyKey).
func (s *Store) RedeemCode(ctx context.Context, r store.Redemption) ([]byte, error) {
	usedTTL, err := ttlArg(r.UsedTTL)
	if err != nil {
		return nil, err
	}
	famTTL, err := ttlArg(r.FamilyTTL)
	if err != nil {
		return nil, err
	}
	keys := []string{s.key(r.Code), s.key(r.Used), s.key(r.Marker), s.FamilyKey(r.Family)}
	var cmd *redis.Cmd
	unacked, err := s.write(ctx, keys[3], func(c redis.Cmdable) redis.Cmder {
		cmd = evalScript(ctx, c, redeemScript, keys, r.Family, usedTTL.Milliseconds(), r.Token, famTTL.Milliseconds())
		return cmd
	})
	if err != nil {
		return nil, wrap("redeem code", err)
	}
	res, err := cmd.Slice()
	if err != nil {
		return nil, wrap("redeem code", err)
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("redisstore: redeem code: empty script reply")
	}
	code, _ := res[0].(int64)
	switch code {
	case 0:
		if len(res) == 2 {
			if u, ok := res[1].(string); ok {
				return []byte(u), store.ErrNotFound
			}
		}
		return nil, store.ErrNotFound
	case 1:
		rec, ok := res[1].(string)
		if len(res) != 2 || !ok {
			return nil, fmt.Errorf("redisstore: redeem code: unexpected reply %v", res)
		}
		if unacked != nil {
			return nil, wrap("redeem code", unacked)
		}
		return []byte(rec), nil
	case 2:
		return nil, store.ErrRevoked
	case 3:
		return nil, store.ErrExists
	case 4:
		return nil, store.ErrNotFound
	}
	return nil, fmt.Errorf("redisstore: redeem code: unexpected script reply %v", res)
}
