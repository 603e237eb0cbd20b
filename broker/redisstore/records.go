package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/realmgate/realmgate/store"
)

var _ store.RecordStore = (*Store)(nil)

// recordKeys are the keys of a record set: its head counter, the hash of
// its records (each value "<version>:<content>") and the stream of its
// change log (entry id "<version>-1", field n: the names written, space
// separated). The hash tag keeps the three in one Cluster slot, so each
// script below is atomic there too.
func (s *Store) recordKeys(set string) []string {
	p := s.prefix + "rs:{" + set + "}:"
	return []string{p + "h", p + "r", p + "l"}
}

// commitRecords checks the head and each record's version, then writes:
// the log entry first, so that a refused XADD (a stream ahead of the head
// counter, which only a hand edit makes) leaves everything as it was.
var commitRecords = redis.NewScript(`
local head = tonumber(redis.call('GET', KEYS[1]) or '0')
local base = tonumber(ARGV[1])
if base >= 0 and head ~= base then return {0, head} end
local n = (#ARGV - 2) / 4
for i = 0, n - 1 do
  local j = 3 + i * 4
  local expect = tonumber(ARGV[j + 1])
  if expect >= 0 then
    local cur = redis.call('HGET', KEYS[2], ARGV[j])
    local v = 0
    if cur then v = tonumber(string.match(cur, '^(%d+):')) end
    if v ~= expect then return {0, head, ARGV[j], v} end
  end
end
local v = head + 1
local names = {}
for i = 0, n - 1 do names[#names + 1] = ARGV[3 + i * 4] end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], v .. '-1', 'n', table.concat(names, ' '))
for i = 0, n - 1 do
  local j = 3 + i * 4
  if ARGV[j + 2] == 'p' then
    redis.call('HSET', KEYS[2], ARGV[j], v .. ':' .. ARGV[j + 3])
  else
    redis.call('HDEL', KEYS[2], ARGV[j])
  end
end
redis.call('SET', KEYS[1], v)
return {v}
`)

// recordsSince reads the log after ARGV[1] and the records it names, in
// one atomic step (HMGET in chunks: Lua's unpack has a stack limit).
var recordsSince = redis.NewScript(`
local head = tonumber(redis.call('GET', KEYS[1]) or '0')
local after = tonumber(ARGV[1])
if after >= head then return {head} end
if head - after > tonumber(ARGV[2]) then return {head, 'trimmed'} end
local first = after + 1
local entries = redis.call('XRANGE', KEYS[3], first .. '-0', '+')
if #entries == 0 or entries[1][1] ~= first .. '-1' then return {head, 'trimmed'} end
local seen, names = {}, {}
for _, e in ipairs(entries) do
  for name in string.gmatch(e[2][2], '%S+') do
    if not seen[name] then
      seen[name] = true
      names[#names + 1] = name
    end
  end
end
local vals = {}
for i = 1, #names, 1000 do
  local part = redis.call('HMGET', KEYS[2], unpack(names, i, math.min(i + 999, #names)))
  for k = 1, #part do vals[#vals + 1] = part[k] end
end
return {head, 'ok', names, vals}
`)

// CommitRecords implements store.RecordStore in one script.
func (s *Store) CommitRecords(ctx context.Context, set string, base int64, writes []store.RecordWrite, logLen int) (int64, error) {
	if err := store.CheckRecordWrites(set, writes); err != nil {
		return 0, err
	}
	if logLen < 1 {
		return 0, fmt.Errorf("redisstore: log length must be positive, got %d", logLen)
	}
	args := make([]any, 0, 2+4*len(writes))
	args = append(args, base, logLen)
	for _, w := range writes {
		op, v := "p", w.Value
		if v == nil {
			op, v = "d", []byte{}
		}
		args = append(args, w.Name, w.Expect, op, v)
	}
	res, err := commitRecords.Run(ctx, s.c, s.recordKeys(set), args...).Slice()
	if err != nil {
		return 0, wrap("commit records", err)
	}
	v, _ := res[0].(int64)
	if v == 0 {
		head, _ := res[1].(int64)
		if len(res) == 4 {
			return 0, fmt.Errorf("%w: record %q is at version %v", store.ErrConflict, res[2], res[3])
		}
		return 0, fmt.Errorf("%w: head is %d, not %d", store.ErrConflict, head, base)
	}
	return v, nil
}

// RecordsSince implements store.RecordStore in one script.
func (s *Store) RecordsSince(ctx context.Context, set string, after int64, max int) (int64, []store.Record, error) {
	if err := store.ValidRecordName(set); err != nil {
		return 0, nil, err
	}
	res, err := recordsSince.Run(ctx, s.c, s.recordKeys(set), after, max).Slice()
	if err != nil {
		return 0, nil, wrap("records since", err)
	}
	head, _ := res[0].(int64)
	if len(res) == 1 {
		return head, nil, nil
	}
	if res[1] != "ok" {
		return head, nil, fmt.Errorf("%w: changes since %d, head %d", store.ErrTrimmed, after, head)
	}
	names, _ := res[2].([]any)
	vals, _ := res[3].([]any)
	if len(names) != len(vals) {
		return 0, nil, fmt.Errorf("redisstore: records since: %d names, %d values", len(names), len(vals))
	}
	out := make([]store.Record, 0, len(names))
	for i, n := range names {
		name, _ := n.(string)
		rec := store.Record{Name: name}
		if v, ok := vals[i].(string); ok {
			if rec.Version, rec.Value, err = parseRecord(v); err != nil {
				return 0, nil, fmt.Errorf("redisstore: record %q: %w", name, err)
			}
		}
		out = append(out, rec)
	}
	return head, out, nil
}

// parseRecord splits a stored "<version>:<content>".
func parseRecord(v string) (int64, []byte, error) {
	i := strings.IndexByte(v[:min(len(v), 21)], ':')
	if i < 1 {
		return 0, nil, fmt.Errorf("malformed stored record")
	}
	ver, err := strconv.ParseInt(v[:i], 10, 64)
	if err != nil {
		return 0, nil, fmt.Errorf("malformed stored record version: %w", err)
	}
	return ver, []byte(v[i+1:]), nil
}

// RecordsHead implements store.RecordStore.
func (s *Store) RecordsHead(ctx context.Context, set string) (int64, error) {
	if err := store.ValidRecordName(set); err != nil {
		return 0, err
	}
	v, err := s.c.Get(ctx, s.recordKeys(set)[0]).Int64()
	if err == redis.Nil {
		return 0, nil
	}
	if err != nil {
		return 0, wrap("records head", err)
	}
	return v, nil
}

// ScanRecords implements store.RecordStore with HSCAN (its guarantees are
// the contract's).
func (s *Store) ScanRecords(ctx context.Context, set, cursor string, count int) ([]store.Record, string, error) {
	if err := store.ValidRecordName(set); err != nil {
		return nil, "", err
	}
	var cur uint64
	if cursor != "" {
		var err error
		if cur, err = strconv.ParseUint(cursor, 10, 64); err != nil {
			return nil, "", fmt.Errorf("redisstore: scan records: cursor %q: %w", cursor, err)
		}
	}
	kv, next, err := s.c.HScan(ctx, s.recordKeys(set)[1], cur, "", int64(max(count, 1))).Result()
	if err != nil {
		return nil, "", wrap("scan records", err)
	}
	out := make([]store.Record, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		ver, val, err := parseRecord(kv[i+1])
		if err != nil {
			return nil, "", fmt.Errorf("redisstore: record %q: %w", kv[i], err)
		}
		out = append(out, store.Record{Name: kv[i], Value: val, Version: ver})
	}
	if next == 0 {
		return out, "", nil
	}
	return out, strconv.FormatUint(next, 10), nil
}
