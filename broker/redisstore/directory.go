package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/realmgate/realmgate/store"
)

var _ store.DirectoryStore = (*Store)(nil)

// The directory layout (store.DirectoryStore), built to stay small: every
// structure holding per-record entries is a small hash that Redis keeps in
// its compact listpack encoding (at most hash-max-listpack-entries, 128 by
// default, fields of at most hash-max-listpack-value, 64, bytes), about 30
// to 60 bytes an entry where a large hash or sorted set costs 100 to 160
// (docs/performance.md). Every key of a space S starts with
// <prefix>dir:{S}: so a space is one Cluster slot and every method is one
// script (or one command) over keys of that slot:
//
//	r:<id>            string: "<version> <stamp length> <stamp><data>"
//	n                 string: the number of records
//	a:<b>             hash: id -> "" for the ids of id bucket b (listing)
//	ad                sorted set: the non-empty id buckets, score b
//	u:<ix>:<h>        hash: value -> id (unique index ix, value bucket h)
//	m:<ix>:<h>        hash: "<value>\t<id>" -> "" (shared index ix)
//	w:<ix>:<value>:<b> hash: id -> "" (wide index ix: one value's records
//	                  of id bucket b)
//	wd:<ix>:<value>   sorted set: the value's non-empty id buckets
//
// Value buckets h are an FNV-1a hash of the value modulo dirValueBuckets;
// id buckets b order ids (dirIDBucket): listing reads the buckets in
// order and sorts each one's few ids. A value longer than dirMaxRawValue
// bytes is kept as "\x01" and a 120-bit SHA-256 prefix of it (no stored
// value holds a control character, so it is never taken for another).
// The keys are computed here and passed to the scripts as arguments; they
// hash to the slot of the declared key, which Redis Cluster accepts. No
// copy of a record's index entries is kept: an update or delete names the
// entries of the version it replaces (store.DirRecord.Replaces), which the
// version check proves current.
const (
	// dirValueBuckets spreads a unique or shared index over this many
	// hashes: 1M values stay at about 61 per hash (listpack).
	dirValueBuckets = 1 << 14
	// dirMaxRawValue is the longest value kept as is (a field of value +
	// tab + id stays within 64 bytes for the directory's 22-byte ids).
	dirMaxRawValue = 40
)

func (s *Store) dirBase(space string) string { return s.prefix + "dir:{" + space + "}:" }

// dirValue is how a value is kept: itself, or a digest when long.
func dirValue(v string) string {
	if len(v) <= dirMaxRawValue {
		return v
	}
	sum := sha256.Sum256([]byte(v))
	return "\x01" + base64.RawURLEncoding.EncodeToString(sum[:15])
}

func valueBucket(v string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(v))
	return strconv.FormatUint(uint64(h.Sum32()%dirValueBuckets), 10)
}

// dirIDBucket orders ids into buckets: x < y implies
// dirIDBucket(x) <= dirIDBucket(y). The first two bytes count in full, the
// third by quarter of the base64url alphabet (random 22-character ids:
// 16,640 buckets, 60 ids each at 1M records); a missing byte counts lowest.
func dirIDBucket(id string) int {
	b := func(i int) int {
		if i < len(id) {
			return int(id[i])
		}
		return 0
	}
	q := 0
	if len(id) > 2 {
		switch c := id[2]; {
		case c < 'F':
			q = 1
		case c < 'V':
			q = 2
		case c < 'k':
			q = 3
		default:
			q = 4
		}
	}
	return (b(0)*256+b(1))*5 + q
}

// dirOps are the script arguments that add or remove a record's entries:
// for each unique entry its hash and field, for each shared one its hash
// and field, for each wide one its hash, its bucket set and its bucket.
func (s *Store) dirOps(base, id string, rec *store.DirRecord) []any {
	if rec == nil {
		return []any{0, 0, 0}
	}
	out := []any{len(rec.Unique)}
	for _, e := range rec.Unique {
		v := dirValue(e.Value)
		out = append(out, base+"u:"+e.Index+":"+valueBucket(v), v)
	}
	out = append(out, len(rec.Multi))
	for _, e := range rec.Multi {
		v := dirValue(e.Value)
		out = append(out, base+"m:"+e.Index+":"+valueBucket(v), v+"\t"+id)
	}
	out = append(out, len(rec.Wide))
	b := strconv.Itoa(dirIDBucket(id))
	for _, e := range rec.Wide {
		v := dirValue(e.Value)
		out = append(out, base+"w:"+e.Index+":"+v+":"+b, base+"wd:"+e.Index+":"+v, b)
	}
	return out
}

// dirLib is the Lua shared by the scripts that write: reading a record's
// version and walking entry lists in the layout of dirOps.
const dirLib = `
local function version(rec)
  if not rec then return nil end
  return tonumber(string.match(rec, '^(%d+) '))
end
local function stampOf(rec)
  local v, n = string.match(rec, '^(%d+) (%d+) ')
  local off = #v + #n + 3
  return string.sub(rec, off, off + tonumber(n) - 1)
end
-- walk(at, id, fn_u, fn_m, fn_w): calls the functions on the entry lists
-- starting at ARGV[at]; returns the position after them.
local function walk(at, fu, fm, fw)
  local n = tonumber(ARGV[at]); at = at + 1
  for i = 1, n do fu(ARGV[at], ARGV[at+1]); at = at + 2 end
  n = tonumber(ARGV[at]); at = at + 1
  for i = 1, n do fm(ARGV[at], ARGV[at+1]); at = at + 2 end
  n = tonumber(ARGV[at]); at = at + 1
  for i = 1, n do fw(ARGV[at], ARGV[at+1], ARGV[at+2]); at = at + 3 end
  return at
end
local function drop(at, id)
  return walk(at,
    function(k, v) if redis.call('HGET', k, v) == id then redis.call('HDEL', k, v) end end,
    function(k, f) redis.call('HDEL', k, f) end,
    function(k, d, b)
      redis.call('HDEL', k, id)
      if redis.call('EXISTS', k) == 0 then redis.call('ZREM', d, b) end
    end)
end
`

// dirPutScript: KEYS[1] the record; ARGV base, id, expect, data, stamp,
// id bucket, then the old entries and the new ones (dirOps). Replies
// {1, version}, or {0} not found, {-1} exists, {-2} version, {-3} taken.
var dirPutScript = redis.NewScript(dirLib + `
local base, id, expect = ARGV[1], ARGV[2], tonumber(ARGV[3])
local rec = redis.call('GET', KEYS[1])
local cur = version(rec)
if expect == 0 then
  if cur then return {-1} end
elseif not cur then return {0}
elseif cur ~= expect then return {-2} end
-- The new unique values must be free (or held by a record that is gone).
local newAt = walk(7, function() end, function() end, function() end)
local taken = false
walk(newAt, function(k, v)
  local owner = redis.call('HGET', k, v)
  if owner and owner ~= id and redis.call('EXISTS', base .. 'r:' .. owner) == 1 then taken = true end
end, function() end, function() end)
if taken then return {-3} end
if cur then drop(7, id) end
walk(newAt,
  function(k, v) redis.call('HSET', k, v, id) end,
  function(k, f) redis.call('HSET', k, f, '') end,
  function(k, d, b) redis.call('HSET', k, id, ''); redis.call('ZADD', d, tonumber(b), b) end)
local st = ARGV[5]
local v = 1
if cur then
  v = cur + 1
  st = stampOf(rec)
else
  redis.call('HSET', base .. 'a:' .. ARGV[6], id, '')
  redis.call('ZADD', base .. 'ad', tonumber(ARGV[6]), ARGV[6])
  redis.call('INCR', base .. 'n')
end
redis.call('SET', KEYS[1], v .. ' ' .. #st .. ' ' .. st .. ARGV[4])
return {1, v}
`)

// DirPut writes rec and its index entries in one script (store.DirectoryStore).
func (s *Store) DirPut(ctx context.Context, space string, rec store.DirRecord, expect int64) (int64, error) {
	if err := store.CheckDirSpace(space); err != nil {
		return 0, err
	}
	if err := store.CheckDirUpdate(rec, expect); err != nil {
		return 0, err
	}
	base := s.dirBase(space)
	var old *store.DirRecord
	if expect != 0 {
		old = rec.Replaces
	}
	args := []any{base, rec.ID, expect, rec.Data, rec.Stamp, dirIDBucket(rec.ID)}
	args = append(args, s.dirOps(base, rec.ID, old)...)
	args = append(args, s.dirOps(base, rec.ID, &rec)...)
	res, err := dirPutScript.Run(ctx, s.c, []string{base + "r:" + rec.ID}, args...).Int64Slice()
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

// parseDirRecord decodes the stored string of directory record id.
func parseDirRecord(id, s string) (store.DirRecord, bool) {
	vs, rest, ok := strings.Cut(s, " ")
	if !ok {
		return store.DirRecord{}, false
	}
	ns, rest, ok := strings.Cut(rest, " ")
	if !ok {
		return store.DirRecord{}, false
	}
	v, err1 := strconv.ParseInt(vs, 10, 64)
	n, err2 := strconv.Atoi(ns)
	if err1 != nil || err2 != nil || n < 0 || n > len(rest) {
		return store.DirRecord{}, false
	}
	rec := store.DirRecord{ID: id, Version: v, Data: []byte(rest[n:])}
	if n > 0 {
		rec.Stamp = []byte(rest[:n])
	}
	return rec, true
}

// DirGet returns the record id (one GET; store.DirectoryStore).
func (s *Store) DirGet(ctx context.Context, space, id string) (store.DirRecord, error) {
	if err := store.CheckDirSpace(space); err != nil {
		return store.DirRecord{}, err
	}
	if err := store.CheckDirID(id); err != nil {
		return store.DirRecord{}, store.ErrNotFound
	}
	v, err := s.c.Get(ctx, s.dirBase(space)+"r:"+id).Result()
	if err == redis.Nil {
		return store.DirRecord{}, store.ErrNotFound
	}
	if err != nil {
		return store.DirRecord{}, wrap("dir get", err)
	}
	rec, ok := parseDirRecord(id, v)
	if !ok {
		return store.DirRecord{}, fmt.Errorf("redisstore: dir get: malformed record %q", id)
	}
	return rec, nil
}

// dirFindScript: KEYS[1] routing only; ARGV base, stamp, then hash/field
// pairs. Replies {id, record} for the first pair that names a record, or {}.
var dirFindScript = redis.NewScript(dirLib + `
local base, st = ARGV[1], ARGV[2]
for i = 3, #ARGV, 2 do
  local id = redis.call('HGET', ARGV[i], ARGV[i+1])
  if id then
    local rk = base .. 'r:' .. id
    local rec = redis.call('GET', rk)
    if rec then
      if st ~= '' then
        local old = stampOf(rec)
        local v = version(rec)
        local head = v .. ' ' .. #old .. ' '
        rec = v .. ' ' .. #st .. ' ' .. st .. string.sub(rec, #head + #old + 1)
        redis.call('SET', rk, rec)
      end
      return {id, rec}
    end
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
		v := dirValue(k.Value)
		args = append(args, base+"u:"+k.Index+":"+valueBucket(v), v)
	}
	if len(args) == 2 {
		return store.DirRecord{}, store.ErrNotFound
	}
	res, err := dirFindScript.Run(ctx, s.c, []string{base + "n"}, args...).StringSlice()
	if err != nil {
		return store.DirRecord{}, wrap("dir find", err)
	}
	if len(res) != 2 {
		return store.DirRecord{}, store.ErrNotFound
	}
	rec, ok := parseDirRecord(res[0], res[1])
	if !ok {
		return store.DirRecord{}, store.ErrNotFound
	}
	return rec, nil
}

// dirFindAllScript: KEYS[1] routing only; ARGV base, the shared hash, the
// field prefix ("<value>\t"), the wide bucket set, the wide hash prefix,
// limit. Replies id, record pairs in id order.
var dirFindAllScript = redis.NewScript(`
local base, limit = ARGV[1], tonumber(ARGV[6])
local ids = {}
for _, f in ipairs(redis.call('HKEYS', ARGV[2])) do
  if string.sub(f, 1, #ARGV[3]) == ARGV[3] then ids[#ids+1] = string.sub(f, #ARGV[3] + 1) end
end
table.sort(ids)
local wide = {}
local from = 0
while #wide < limit do
  local bs = redis.call('ZRANGE', ARGV[4], from, '+inf', 'BYSCORE', 'LIMIT', 0, 64)
  if #bs == 0 then break end
  for _, b in ipairs(bs) do
    local part = redis.call('HKEYS', ARGV[5] .. b)
    table.sort(part)
    for _, id in ipairs(part) do wide[#wide+1] = id end
    from = tonumber(b) + 1
    if #wide >= limit then break end
  end
end
if #wide > 0 then
  for _, id in ipairs(wide) do ids[#ids+1] = id end
  table.sort(ids)
end
local out = {}
local last = nil
for _, id in ipairs(ids) do
  if #out >= 2 * limit then break end
  if id ~= last then
    local rec = redis.call('GET', base .. 'r:' .. id)
    if rec then out[#out+1] = id; out[#out+1] = rec end
    last = id
  end
end
return out
`)

func pairsToRecords(res []string) []store.DirRecord {
	out := make([]store.DirRecord, 0, len(res)/2)
	for i := 0; i+1 < len(res); i += 2 {
		if rec, ok := parseDirRecord(res[i], res[i+1]); ok {
			out = append(out, rec)
		}
	}
	return out
}

// DirFindAll returns up to limit records holding key, in id order: one
// script (store.DirectoryStore).
func (s *Store) DirFindAll(ctx context.Context, space string, key store.IndexEntry, limit int) ([]store.DirRecord, error) {
	if err := store.CheckDirSpace(space); err != nil {
		return nil, err
	}
	limit = min(max(limit, 0), store.MaxDirList)
	if store.CheckIndexEntry(key) != nil || limit == 0 {
		return nil, nil
	}
	base := s.dirBase(space)
	v := dirValue(key.Value)
	res, err := dirFindAllScript.Run(ctx, s.c, []string{base + "n"}, base, base+"m:"+key.Index+":"+valueBucket(v), v+"\t",
		base+"wd:"+key.Index+":"+v, base+"w:"+key.Index+":"+v+":", limit).StringSlice()
	if err != nil {
		return nil, wrap("dir find all", err)
	}
	return pairsToRecords(res), nil
}

// dirDeleteScript: KEYS[1] the record; ARGV base, id, expect, id bucket,
// then the record's entries (dirOps). Replies 1, or 0 not found, -2 version.
var dirDeleteScript = redis.NewScript(dirLib + `
local base, id, expect = ARGV[1], ARGV[2], tonumber(ARGV[3])
local cur = version(redis.call('GET', KEYS[1]))
if not cur then return 0 end
if cur ~= expect then return -2 end
drop(5, id)
redis.call('DEL', KEYS[1])
local a = base .. 'a:' .. ARGV[4]
redis.call('HDEL', a, id)
if redis.call('EXISTS', a) == 0 then redis.call('ZREM', base .. 'ad', ARGV[4]) end
redis.call('DECR', base .. 'n')
return 1
`)

// DirDelete removes the record and its index entries in one script
// (store.DirectoryStore).
func (s *Store) DirDelete(ctx context.Context, space string, rec store.DirRecord) error {
	if err := store.CheckDirSpace(space); err != nil {
		return err
	}
	if err := store.CheckDirID(rec.ID); err != nil {
		return store.ErrNotFound
	}
	if err := store.CheckDirRecord(rec); err != nil {
		return err
	}
	base := s.dirBase(space)
	args := append([]any{base, rec.ID, rec.Version, dirIDBucket(rec.ID)}, s.dirOps(base, rec.ID, &rec)...)
	n, err := dirDeleteScript.Run(ctx, s.c, []string{base + "r:" + rec.ID}, args...).Int64()
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

// dirListScript: KEYS[1] routing only; ARGV base, first bucket, after
// ("" for none), skip, limit. Replies id, record pairs in id order.
var dirListScript = redis.NewScript(`
local base, after = ARGV[1], ARGV[3]
local skip, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
local out = {}
local from = tonumber(ARGV[2])
while #out < 2 * limit do
  local bs = redis.call('ZRANGE', base .. 'ad', from, '+inf', 'BYSCORE', 'LIMIT', 0, 64)
  if #bs == 0 then break end
  for _, b in ipairs(bs) do
    from = tonumber(b) + 1
    local key = base .. 'a:' .. b
    local n = redis.call('HLEN', key)
    if skip >= n and after == '' then
      skip = skip - n
    else
      local ids = redis.call('HKEYS', key)
      table.sort(ids)
      for _, id in ipairs(ids) do
        if id > after then
          if skip > 0 then
            skip = skip - 1
          elseif #out < 2 * limit then
            local rec = redis.call('GET', base .. 'r:' .. id)
            if rec then out[#out+1] = id; out[#out+1] = rec end
          end
        end
      end
    end
    if #out >= 2 * limit then break end
  end
end
return out
`)

// DirList returns up to limit records in id order: one script
// (store.DirectoryStore).
func (s *Store) DirList(ctx context.Context, space, after string, skip, limit int) ([]store.DirRecord, error) {
	if err := store.CheckDirSpace(space); err != nil {
		return nil, err
	}
	limit = min(max(limit, 0), store.MaxDirList)
	if limit == 0 {
		return nil, nil
	}
	base := s.dirBase(space)
	first := 0
	if after != "" {
		first, skip = dirIDBucket(after), 0
	}
	res, err := dirListScript.Run(ctx, s.c, []string{base + "n"}, base, first, after, max(skip, 0), limit).StringSlice()
	if err != nil {
		return nil, wrap("dir list", err)
	}
	recs := pairsToRecords(res)
	sort.Slice(recs, func(i, j int) bool { return recs[i].ID < recs[j].ID })
	return recs, nil
}

// DirCount returns how many records the space holds (GET; store.DirectoryStore).
func (s *Store) DirCount(ctx context.Context, space string) (int64, error) {
	if err := store.CheckDirSpace(space); err != nil {
		return 0, err
	}
	n, err := s.c.Get(ctx, s.dirBase(space)+"n").Int64()
	if err == redis.Nil {
		return 0, nil
	}
	return n, wrap("dir count", err)
}
