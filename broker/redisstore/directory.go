package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/realmgate/realmgate/store"
)

var _ store.DirectoryStore = (*Store)(nil)

// The directory layout (store.DirectoryStore). Every key of a space S
// starts with <prefix>d:{S}: so a space is one Cluster slot and every
// method is one script over keys of that slot:
//
//	d:{S}:r:<id>      hash: d (the record), v (version), s (stamp),
//	                  x (its index entries, "u|m<index>\t<value>" per line)
//	d:{S}:u:<index>   hash: unique value -> id
//	d:{S}:m:<index>   sorted set, all scores 0: "<value>\t<id>" (lex ranges)
//	d:{S}:a           sorted set, all scores 0: every id (listing, count)
//
// Scripts derive the index keys from the base d:{S}: they are given; those
// keys hash to the slot of the declared keys, which Redis Cluster accepts.
// Values and ids carry no control characters (store.CheckDirRecord), so
// tab and newline separate them safely.

func (s *Store) dirBase(space string) string { return s.prefix + "d:{" + space + "}:" }

// dirPutScript: KEYS[1] record, KEYS[2] all ids; ARGV base, id, expect,
// data, stamp, x, then the unique entries as index/value pairs after their
// count, then the shared ones likewise. Replies {1, version}, or {0} not
// found, {-1} exists, {-2} version, {-3} taken.
var dirPutScript = redis.NewScript(`
local base, id, expect = ARGV[1], ARGV[2], tonumber(ARGV[3])
local cur = redis.call('HGET', KEYS[1], 'v')
if expect == 0 then
  if cur then return {-1} end
elseif not cur then return {0}
elseif tonumber(cur) ~= expect then return {-2} end
local nu = tonumber(ARGV[7])
for i = 0, nu - 1 do
  local owner = redis.call('HGET', base .. 'u:' .. ARGV[8 + 2*i], ARGV[9 + 2*i])
  if owner and owner ~= id then return {-3} end
end
local old = redis.call('HGET', KEYS[1], 'x')
if old then
  for kind, name, value in string.gmatch(old, '([um])([^\t\n]+)\t([^\n]*)') do
    if kind == 'u' then
      local k = base .. 'u:' .. name
      if redis.call('HGET', k, value) == id then redis.call('HDEL', k, value) end
    else
      redis.call('ZREM', base .. 'm:' .. name, value .. '\t' .. id)
    end
  end
end
for i = 0, nu - 1 do
  redis.call('HSET', base .. 'u:' .. ARGV[8 + 2*i], ARGV[9 + 2*i], id)
end
local at = 8 + 2*nu
local nm = tonumber(ARGV[at])
for i = 0, nm - 1 do
  redis.call('ZADD', base .. 'm:' .. ARGV[at + 1 + 2*i], 0, ARGV[at + 2 + 2*i] .. '\t' .. id)
end
local v = 1
if cur then v = tonumber(cur) + 1 end
if ARGV[6] == '' then redis.call('HDEL', KEYS[1], 'x') end
if cur then
  if ARGV[6] == '' then
    redis.call('HSET', KEYS[1], 'd', ARGV[4], 'v', v)
  else
    redis.call('HSET', KEYS[1], 'd', ARGV[4], 'v', v, 'x', ARGV[6])
  end
else
  redis.call('HSET', KEYS[1], 'd', ARGV[4], 'v', v)
  if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'x', ARGV[6]) end
  if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 's', ARGV[5]) end
  redis.call('ZADD', KEYS[2], 0, id)
end
return {1, v}
`)

// encodeEntries is the x field: one line per entry.
func encodeEntries(rec store.DirRecord) string {
	var b strings.Builder
	for _, e := range rec.Unique {
		b.WriteString("u" + e.Index + "\t" + e.Value + "\n")
	}
	for _, e := range rec.Multi {
		b.WriteString("m" + e.Index + "\t" + e.Value + "\n")
	}
	return b.String()
}

// DirPut writes rec and its index entries in one script (store.DirectoryStore).
func (s *Store) DirPut(ctx context.Context, space string, rec store.DirRecord, expect int64) (int64, error) {
	if err := store.CheckDirSpace(space); err != nil {
		return 0, err
	}
	if err := store.CheckDirRecord(rec); err != nil {
		return 0, err
	}
	base := s.dirBase(space)
	args := make([]any, 0, 8+2*len(rec.Unique)+2*len(rec.Multi))
	args = append(args, base, rec.ID, expect, rec.Data, rec.Stamp, encodeEntries(rec), len(rec.Unique))
	for _, e := range rec.Unique {
		args = append(args, e.Index, e.Value)
	}
	args = append(args, len(rec.Multi))
	for _, e := range rec.Multi {
		args = append(args, e.Index, e.Value)
	}
	res, err := dirPutScript.Run(ctx, s.c, []string{base + "r:" + rec.ID, base + "a"}, args...).Int64Slice()
	if err != nil {
		return 0, wrap("dir put", err)
	}
	switch {
	case len(res) == 2 && res[0] == 1:
		return res[1], nil
	case len(res) == 1 && res[0] == 0:
		return 0, store.ErrNotFound
	case len(res) == 1 && res[0] == -1:
		return 0, store.ErrExists
	case len(res) == 1 && res[0] == -2:
		return 0, store.ErrVersion
	case len(res) == 1 && res[0] == -3:
		return 0, store.ErrTaken
	}
	return 0, fmt.Errorf("redisstore: dir put: unexpected script reply %v", res)
}

// recordFrom decodes the reply of HMGET d v s as a record of id.
func recordFrom(id string, vals []any) (store.DirRecord, bool) {
	if len(vals) != 3 {
		return store.DirRecord{}, false
	}
	d, ok := vals[0].(string)
	if !ok {
		return store.DirRecord{}, false
	}
	vs, _ := vals[1].(string)
	v, err := strconv.ParseInt(vs, 10, 64)
	if err != nil {
		return store.DirRecord{}, false
	}
	rec := store.DirRecord{ID: id, Version: v, Data: []byte(d)}
	if st, ok := vals[2].(string); ok && st != "" {
		rec.Stamp = []byte(st)
	}
	return rec, true
}

// DirGet returns the record id (one HMGET; store.DirectoryStore).
func (s *Store) DirGet(ctx context.Context, space, id string) (store.DirRecord, error) {
	if err := store.CheckDirSpace(space); err != nil {
		return store.DirRecord{}, err
	}
	if err := store.CheckDirID(id); err != nil {
		return store.DirRecord{}, store.ErrNotFound
	}
	vals, err := s.c.HMGet(ctx, s.dirBase(space)+"r:"+id, "d", "v", "s").Result()
	if err != nil {
		return store.DirRecord{}, wrap("dir get", err)
	}
	rec, ok := recordFrom(id, vals)
	if !ok {
		return store.DirRecord{}, store.ErrNotFound
	}
	return rec, nil
}

// dirFindScript: KEYS[1] all ids (routing only); ARGV base, stamp, then
// index/value pairs. Replies {id, d, v, s} for the first pair that names a
// record, or {}.
var dirFindScript = redis.NewScript(`
local base = ARGV[1]
for i = 3, #ARGV, 2 do
  local id = redis.call('HGET', base .. 'u:' .. ARGV[i], ARGV[i+1])
  if id then
    local rk = base .. 'r:' .. id
    if ARGV[2] ~= '' then redis.call('HSET', rk, 's', ARGV[2]) end
    local r = redis.call('HMGET', rk, 'd', 'v', 's')
    if r[1] then return {id, r[1], r[2], r[3] or ''} end
  end
end
return {}
`)

// DirFind returns the record the first of keys finds, stamping it when
// stamp is not empty: one script (store.DirectoryStore).
func (s *Store) DirFind(ctx context.Context, space string, keys []store.IndexEntry, stamp []byte) (store.DirRecord, error) {
	if err := store.CheckDirSpace(space); err != nil {
		return store.DirRecord{}, err
	}
	if len(stamp) > store.MaxDirStamp {
		return store.DirRecord{}, store.ErrBadRecord
	}
	base := s.dirBase(space)
	args := []any{base, stamp}
	for _, k := range keys {
		if store.CheckIndexEntry(k) != nil {
			continue // no such value can be stored
		}
		args = append(args, k.Index, k.Value)
	}
	if len(args) == 2 {
		return store.DirRecord{}, store.ErrNotFound
	}
	res, err := dirFindScript.Run(ctx, s.c, []string{base + "a"}, args...).Slice()
	if err != nil {
		return store.DirRecord{}, wrap("dir find", err)
	}
	if len(res) != 4 {
		return store.DirRecord{}, store.ErrNotFound
	}
	id, _ := res[0].(string)
	rec, ok := recordFrom(id, res[1:])
	if !ok {
		return store.DirRecord{}, store.ErrNotFound
	}
	return rec, nil
}

// dirListScript: KEYS[1] a sorted set of ids or of "<value>\t<id>";
// ARGV base, min, max, skip, limit, strip (1: members carry a value before
// a tab). Replies id, d, v, s for each record, flattened.
var dirListScript = redis.NewScript(`
local base = ARGV[1]
local ids = redis.call('ZRANGE', KEYS[1], ARGV[2], ARGV[3], 'BYLEX', 'LIMIT', ARGV[4], ARGV[5])
local out = {}
for _, m in ipairs(ids) do
  local id = m
  if ARGV[6] == '1' then id = string.match(m, '\t(.*)$') end
  local r = redis.call('HMGET', base .. 'r:' .. id, 'd', 'v', 's')
  if r[1] then
    out[#out+1] = id
    out[#out+1] = r[1]
    out[#out+1] = r[2]
    out[#out+1] = r[3] or ''
  end
end
return out
`)

func (s *Store) dirList(ctx context.Context, op, base, key, lo, hi string, skip, limit int, strip bool) ([]store.DirRecord, error) {
	limit = min(max(limit, 0), store.MaxDirList)
	if limit == 0 {
		return nil, nil
	}
	st := "0"
	if strip {
		st = "1"
	}
	res, err := dirListScript.Run(ctx, s.c, []string{key}, base, lo, hi, max(skip, 0), limit, st).Slice()
	if err != nil {
		return nil, wrap(op, err)
	}
	out := make([]store.DirRecord, 0, len(res)/4)
	for i := 0; i+3 < len(res); i += 4 {
		id, _ := res[i].(string)
		if rec, ok := recordFrom(id, res[i+1:i+4]); ok {
			out = append(out, rec)
		}
	}
	return out, nil
}

// DirFindAll returns up to limit records holding key, in id order: one
// script (store.DirectoryStore).
func (s *Store) DirFindAll(ctx context.Context, space string, key store.IndexEntry, limit int) ([]store.DirRecord, error) {
	if err := store.CheckDirSpace(space); err != nil {
		return nil, err
	}
	if store.CheckIndexEntry(key) != nil {
		return nil, nil
	}
	base := s.dirBase(space)
	// Members of this value sort between "<value>\t" and "<value>\n".
	return s.dirList(ctx, "dir find all", base, base+"m:"+key.Index, "["+key.Value+"\t", "("+key.Value+"\n", 0, limit, true)
}

// dirDeleteScript: KEYS[1] record, KEYS[2] all ids; ARGV base, id,
// expect. Replies 1, or 0 not found, -2 version.
var dirDeleteScript = redis.NewScript(`
local base, id, expect = ARGV[1], ARGV[2], tonumber(ARGV[3])
local cur = redis.call('HGET', KEYS[1], 'v')
if not cur then return 0 end
if expect ~= 0 and tonumber(cur) ~= expect then return -2 end
local old = redis.call('HGET', KEYS[1], 'x')
if old then
  for kind, name, value in string.gmatch(old, '([um])([^\t\n]+)\t([^\n]*)') do
    if kind == 'u' then
      local k = base .. 'u:' .. name
      if redis.call('HGET', k, value) == id then redis.call('HDEL', k, value) end
    else
      redis.call('ZREM', base .. 'm:' .. name, value .. '\t' .. id)
    end
  end
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], id)
return 1
`)

// DirDelete removes the record and its index entries in one script
// (store.DirectoryStore).
func (s *Store) DirDelete(ctx context.Context, space, id string, expect int64) error {
	if err := store.CheckDirSpace(space); err != nil {
		return err
	}
	if err := store.CheckDirID(id); err != nil {
		return store.ErrNotFound
	}
	base := s.dirBase(space)
	n, err := dirDeleteScript.Run(ctx, s.c, []string{base + "r:" + id, base + "a"}, base, id, expect).Int64()
	if err != nil {
		return wrap("dir delete", err)
	}
	switch n {
	case 1:
		return nil
	case 0:
		return store.ErrNotFound
	case -2:
		return store.ErrVersion
	}
	return fmt.Errorf("redisstore: dir delete: unexpected script reply %d", n)
}

// DirList returns up to limit records in id order: one script
// (store.DirectoryStore).
func (s *Store) DirList(ctx context.Context, space, after string, skip, limit int) ([]store.DirRecord, error) {
	if err := store.CheckDirSpace(space); err != nil {
		return nil, err
	}
	base := s.dirBase(space)
	if after != "" {
		return s.dirList(ctx, "dir list", base, base+"a", "("+after, "+", 0, limit, false)
	}
	return s.dirList(ctx, "dir list", base, base+"a", "-", "+", skip, limit, false)
}

// DirCount returns how many records the space holds (ZCARD; store.DirectoryStore).
func (s *Store) DirCount(ctx context.Context, space string) (int64, error) {
	if err := store.CheckDirSpace(space); err != nil {
		return 0, err
	}
	n, err := s.c.ZCard(ctx, s.dirBase(space)+"a").Result()
	return n, wrap("dir count", err)
}
