// Package redisstore is the production store.Store on Redis (go-redis v9):
// one server, Sentinel or Cluster. It needs Redis 6.2 or later (GETDEL).
//
// Every method is one Redis command or one Lua script, so it is atomic on a
// single server and, since each touches one key, on a Cluster too. A
// refresh-token family is one hash at <prefix>fam:{<family>} (the hash tag
// keeps it in one slot) with the fields grant, cur, and r:<token> for every
// token rotated away.
//
// Unreachable Redis (refused, timed out, closed, cluster down, loading)
// gives errors wrapping store.ErrUnavailable; commands are never retried,
// because retrying a write whose reply was lost would, for Rotate, look like
// a replay and revoke the family.
package redisstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/realmgate/realmgate/store"
)

var _ store.Store = (*Store)(nil)

// DefaultPrefix starts every key the Store writes unless Options.Prefix says otherwise.
const DefaultPrefix = "rg:"

// Defaults chosen so an outage fails requests fast (SECURITY S62).
const (
	DefaultDialTimeout  = time.Second
	DefaultReadTimeout  = 500 * time.Millisecond
	DefaultWriteTimeout = 500 * time.Millisecond
	DefaultPoolTimeout  = DefaultReadTimeout + time.Second
)

// ErrBadTTL is returned for a time to live that is not positive.
var ErrBadTTL = errors.New("redisstore: ttl must be positive")

// Options configures New.
type Options struct {
	// Addrs lists host:port addresses: one for a standalone server, several
	// for a Cluster, or the Sentinels when MasterName is set.
	Addrs []string
	// MasterName selects Sentinel mode: the name of the monitored master.
	MasterName string
	// Username and Password authenticate (ACL user or requirepass).
	Username string
	Password string
	// SentinelUsername and SentinelPassword authenticate to the Sentinels
	// (Sentinel mode) when they require it.
	SentinelUsername string
	SentinelPassword string
	// DB selects the database (standalone and Sentinel only).
	DB int
	// Prefix starts every key; default DefaultPrefix. It must not contain
	// '{' or '}', which would break the family hash tags.
	Prefix string
	// DialTimeout, ReadTimeout and WriteTimeout bound each network step;
	// defaults DefaultDialTimeout, DefaultReadTimeout, DefaultWriteTimeout.
	DialTimeout  time.Duration
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// PoolTimeout bounds the wait for a free connection when the pool is
	// exhausted; default DefaultPoolTimeout.
	PoolTimeout time.Duration
	// PoolSize is the connection pool size per node; 0 means go-redis's default.
	PoolSize int
	// TLSConfig, when not nil, connects with TLS: to every node, and to
	// the Sentinels in Sentinel mode. Without a ServerName, each address's
	// host is verified.
	TLSConfig *tls.Config
	// Tracing records every command, pipeline and dial as an OpenTelemetry
	// event on the caller's span (tracing.go): the command's name, start,
	// duration and error class, never its keys or values (session data).
	// False adds no hook.
	Tracing bool
	// ReplicaAck says when a single-use write (Take, Create, Delete,
	// Rotate, RotateUnlessRevoked, RevokeFamily) waits for replicas to
	// acknowledge it before it is reported done (replicaack.go):
	// ReplicaAckAuto (the default when empty), ReplicaAckAlways or
	// ReplicaAckOff.
	ReplicaAck string
	// ReplicaAckCount is how many replicas must acknowledge; default 1.
	ReplicaAckCount int
	// ReplicaAckTimeout bounds the wait; default DefaultReplicaAckTimeout.
	// It must be at least 1ms and at most ReadTimeout less 50ms.
	ReplicaAckTimeout time.Duration
}

// Store is a store.Store on Redis. It is safe for concurrent use.
type Store struct {
	c      redis.UniversalClient
	prefix string
	owned  bool
	ack    *acker // nil: never wait (NewFromClient)
}

// New returns a Store with its own client. It does not connect: the first
// command (or Ping) does, so a process can start while Redis is down.
func New(opts Options) (*Store, error) {
	if len(opts.Addrs) == 0 {
		return nil, errors.New("redisstore: no address")
	}
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if strings.ContainsAny(prefix, "{}") {
		return nil, fmt.Errorf("redisstore: prefix %q contains a brace", prefix)
	}
	ack, err := newAcker(opts)
	if err != nil {
		return nil, err
	}
	c := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:        opts.Addrs,
		MasterName:   opts.MasterName,
		Username:     opts.Username,
		Password:     opts.Password,
		DB:           opts.DB,
		DialTimeout:  orDefault(opts.DialTimeout, DefaultDialTimeout),
		ReadTimeout:  orDefault(opts.ReadTimeout, DefaultReadTimeout),
		WriteTimeout: orDefault(opts.WriteTimeout, DefaultWriteTimeout),
		PoolTimeout:  orDefault(opts.PoolTimeout, DefaultPoolTimeout),
		PoolSize:     opts.PoolSize,
		TLSConfig:    opts.TLSConfig,

		SentinelUsername: opts.SentinelUsername, // Sentinel mode: the sentinels' own credentials
		SentinelPassword: opts.SentinelPassword,

		// No command retries (see the package comment) and one dial attempt
		// per command, so an outage surfaces at once.
		MaxRetries:    -1,
		DialerRetries: 1,
		// Honour the caller's context deadline as well as the timeouts.
		ContextTimeoutEnabled: true,
		Protocol:              2,
		DisableIdentity:       true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	})
	if opts.Tracing {
		instrument(c)
	}
	s := NewFromClient(c, prefix)
	s.owned = true
	s.ack = ack
	return s, nil
}

// NewFromClient returns a Store over an existing client, which the caller
// keeps owning (Close does not close it). An empty prefix means
// DefaultPrefix. Configure the client without command retries (MaxRetries
// -1): a retried Rotate whose first reply was lost is taken for a replay.
// Its writes never wait for replicas (ReplicaAckOff).
func NewFromClient(c redis.UniversalClient, prefix string) *Store {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Store{c: c, prefix: prefix}
}

// Close closes the client if New created it.
func (s *Store) Close() error {
	if !s.owned {
		return nil
	}
	if err := s.c.Close(); err != nil {
		return fmt.Errorf("redisstore: close: %w", err)
	}
	return nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func (s *Store) key(k string) string { return s.prefix + k }

// FamilyKey returns the Redis key that holds a refresh-token family. The
// hash tag puts everything about the family in one Cluster slot: the
// family's own id, or, for a family of a session ("<sid>~<random>",
// store.SessionOfFamily), the session id, so that the session's
// revocation marker "sx:{<sid>}" shares the slot (RotateUnlessRevoked).
func (s *Store) FamilyKey(family string) string {
	if sid, rest, ok := strings.Cut(family, store.FamilySeparator); ok && sid != "" {
		return s.prefix + "fam:{" + sid + "}" + rest
	}
	return s.prefix + "fam:{" + family + "}"
}

// ttlArg validates ttl and rounds it up to whole milliseconds (Redis PX).
func ttlArg(ttl time.Duration) (time.Duration, error) {
	if ttl <= 0 {
		return 0, fmt.Errorf("%w: %s", ErrBadTTL, ttl)
	}
	if r := ttl % time.Millisecond; r != 0 {
		ttl += time.Millisecond - r
	}
	return ttl, nil
}

// unavailablePrefixes are Redis error replies meaning the data is there but
// cannot be served right now.
var unavailablePrefixes = []string{
	"CLUSTERDOWN", "LOADING", "MASTERDOWN", "TRYAGAIN", "READONLY",
	"NOREPLICAS", "BUSY", "MOVED", "ASK", "max number of clients",
}

// wrap maps a go-redis error: redis.Nil is store.ErrNotFound; a caller's
// cancellation stays itself; connection failures, timeouts and the replies
// above wrap store.ErrUnavailable; any other Redis error reply (a bug)
// is returned wrapped as it is.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, redis.Nil) {
		return store.ErrNotFound
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("redisstore: %s: %w", op, err)
	}
	if errors.Is(err, ErrNotReplicated) {
		return fmt.Errorf("redisstore: %s: %w: %w", op, store.ErrUnavailable, err)
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		for _, p := range unavailablePrefixes {
			if redis.HasErrorPrefix(err, p) {
				return fmt.Errorf("redisstore: %s: %w: %w", op, store.ErrUnavailable, err)
			}
		}
		return fmt.Errorf("redisstore: %s: %w", op, err)
	}
	return fmt.Errorf("redisstore: %s: %w: %w", op, store.ErrUnavailable, err)
}

// Put writes value under key with the given time to live, replacing any value.
func (s *Store) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	ttl, err := ttlArg(ttl)
	if err != nil {
		return err
	}
	return wrap("put", s.c.Set(ctx, s.key(key), value, ttl).Err())
}

// Create writes value under key only if key is absent (SET NX), otherwise
// store.ErrExists.
func (s *Store) Create(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	ttl, err := ttlArg(ttl)
	if err != nil {
		return err
	}
	k := s.key(key)
	var cmd *redis.BoolCmd
	unacked, err := s.write(ctx, k, func(c redis.Cmdable) redis.Cmder { cmd = c.SetNX(ctx, k, value, ttl); return cmd })
	if err != nil {
		return wrap("create", err)
	}
	ok, err := cmd.Result()
	if err != nil {
		return wrap("create", err)
	}
	if !ok {
		return store.ErrExists
	}
	return wrap("create", unacked)
}

// Get returns the value under key, or store.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := s.c.Get(ctx, s.key(key)).Bytes()
	if err != nil {
		return nil, wrap("get", err)
	}
	return v, nil
}

// Take returns the value under key and deletes it atomically (GETDEL).
func (s *Store) Take(ctx context.Context, key string) ([]byte, error) {
	k := s.key(key)
	var cmd *redis.StringCmd
	unacked, err := s.write(ctx, k, func(c redis.Cmdable) redis.Cmder { cmd = c.GetDel(ctx, k); return cmd })
	if err != nil {
		return nil, wrap("take", err)
	}
	v, err := cmd.Bytes()
	if err != nil {
		return nil, wrap("take", err)
	}
	if unacked != nil {
		return nil, wrap("take", unacked)
	}
	return v, nil
}

// Delete removes key; deleting a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	return s.del(ctx, "delete", s.key(key))
}

// del deletes k, acknowledged by replicas as write says.
func (s *Store) del(ctx context.Context, op, k string) error {
	var cmd *redis.IntCmd
	unacked, err := s.write(ctx, k, func(c redis.Cmdable) redis.Cmder { cmd = c.Del(ctx, k); return cmd })
	if err != nil {
		return wrap(op, err)
	}
	if err := cmd.Err(); err != nil {
		return wrap(op, err)
	}
	return wrap(op, unacked)
}

// Touch sets a new time to live on an existing key (PEXPIRE), or returns
// store.ErrNotFound.
func (s *Store) Touch(ctx context.Context, key string, ttl time.Duration) error {
	ttl, err := ttlArg(ttl)
	if err != nil {
		return err
	}
	ok, err := s.c.PExpire(ctx, s.key(key), ttl).Result()
	if err != nil {
		return wrap("touch", err)
	}
	if !ok {
		return store.ErrNotFound
	}
	return nil
}

// incrScript increments KEYS[1] and starts its window (ARGV[1] ms) on the
// first increment; a counter somehow left without expiry gets one too.
var incrScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n
`)

// Incr adds one to the counter under key and returns the new value; the
// first increment starts the ttl window.
func (s *Store) Incr(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	ttl, err := ttlArg(ttl)
	if err != nil {
		return 0, err
	}
	n, err := incrScript.Run(ctx, s.c, []string{s.key(key)}, ttl.Milliseconds()).Int64()
	if err != nil {
		return 0, wrap("incr", err)
	}
	return n, nil
}

// createFamilyScript: KEYS[1] family hash; ARGV grant, first token, ttl ms.
// Returns 0 if the family exists.
var createFamilyScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'grant', ARGV[1], 'cur', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

// CreateFamily starts a refresh-token family with token as its current
// token; it expires after ttl however often it rotates. An existing family
// gives store.ErrExists.
func (s *Store) CreateFamily(ctx context.Context, family, token string, grant []byte, ttl time.Duration) error {
	ttl, err := ttlArg(ttl)
	if err != nil {
		return err
	}
	n, err := createFamilyScript.Run(ctx, s.c, []string{s.FamilyKey(family)}, grant, token, ttl.Milliseconds()).Int64()
	if err != nil {
		return wrap("create family", err)
	}
	if n == 0 {
		return store.ErrExists
	}
	return nil
}

// Results of rotateScript.
const (
	rotateNotFound = 0
	rotateOK       = 1
	rotateReused   = 2
	rotateRevoked  = 3 // the revocation marker (KEYS[2]) exists
)

// rotateScript: KEYS[1] family hash; ARGV old token, next token, ring size.
// Returns {1, grant} after rotating; {2} after revoking the family because
// old was already rotated away (SECURITY S09); {0} if family or token is
// unknown. HSET keeps the key's absolute expiry. Hash fields: 'cur' the
// current token, 'r:<token>' a token rotated away, 'q:<i>' ring slot i.
var rotateScript = redis.NewScript(`
if KEYS[2] and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('DEL', KEYS[1])
  return {3}
end
local cur = redis.call('HGET', KEYS[1], 'cur')
if not cur then
  return {0}
end
if redis.call('HEXISTS', KEYS[1], 'r:' .. ARGV[1]) == 1 then
  redis.call('DEL', KEYS[1])
  return {2}
end
if cur ~= ARGV[1] then
  return {0}
end
-- Remember the rotated-away token in a ring of ARGV[3] slots, forgetting
-- the oldest, so a family's size is bounded (store.RotatedKept).
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
local slot = 'q:' .. (n % tonumber(ARGV[3]))
local evicted = redis.call('HGET', KEYS[1], slot)
if evicted then
  redis.call('HDEL', KEYS[1], 'r:' .. evicted)
end
redis.call('HSET', KEYS[1], 'cur', ARGV[2], 'r:' .. ARGV[1], '1', slot, ARGV[1])
return {1, redis.call('HGET', KEYS[1], 'grant')}
`)

// Rotate atomically replaces the family's current token old with next and
// returns the grant. A token already rotated away revokes the family and
// gives store.ErrReused (SECURITY S09); an unknown family or token gives
// store.ErrNotFound.
func (s *Store) Rotate(ctx context.Context, family, old, next string) ([]byte, error) {
	return s.rotate(ctx, []string{s.FamilyKey(family)}, old, next)
}

var _ store.SessionRotator = (*Store)(nil)

// RotateUnlessRevoked is Rotate, except that when marker exists the family
// is deleted and store.ErrRevoked returned, in the same script. On a
// Cluster, marker must hash to the family's slot: "sx:{<sid>}" for a
// family "<sid>~<random>" (FamilyKey).
func (s *Store) RotateUnlessRevoked(ctx context.Context, family, old, next, marker string) ([]byte, error) {
	return s.rotate(ctx, []string{s.FamilyKey(family), s.key(marker)}, old, next)
}

func (s *Store) rotate(ctx context.Context, keys []string, old, next string) ([]byte, error) {
	var cmd *redis.Cmd
	unacked, err := s.write(ctx, keys[0], func(c redis.Cmdable) redis.Cmder {
		cmd = evalScript(ctx, c, rotateScript, keys, old, next, store.RotatedKept)
		return cmd
	})
	if err != nil {
		return nil, wrap("rotate", err)
	}
	res, err := cmd.Slice()
	if err != nil {
		return nil, wrap("rotate", err)
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("redisstore: rotate: empty script reply")
	}
	code, _ := res[0].(int64)
	switch code {
	case rotateOK:
		if len(res) != 2 {
			return nil, fmt.Errorf("redisstore: rotate: reply has %d elements, want 2", len(res))
		}
		grant, ok := res[1].(string)
		if !ok {
			return nil, fmt.Errorf("redisstore: rotate: grant is %T, want a string", res[1])
		}
		if unacked != nil {
			// The rotation may not survive a failover: the client must not
			// get the new token (it would be unknown on the new primary,
			// and the old one current again).
			return nil, wrap("rotate", unacked)
		}
		return []byte(grant), nil
	case rotateReused:
		return nil, store.ErrReused
	case rotateNotFound:
		return nil, store.ErrNotFound
	case rotateRevoked:
		return nil, store.ErrRevoked
	}
	return nil, fmt.Errorf("redisstore: rotate: unexpected script reply %v", res)
}

// RevokeFamily deletes the family (one DEL, atomic by itself); its tokens
// stop working at once. Revoking a missing family is not an error.
func (s *Store) RevokeFamily(ctx context.Context, family string) error {
	return s.del(ctx, "revoke family", s.FamilyKey(family))
}

// FamilyGrant returns the grant of an existing family (one HGET: expired
// and revoked families are deleted), or store.ErrNotFound.
func (s *Store) FamilyGrant(ctx context.Context, family string) ([]byte, error) {
	b, err := s.c.HGet(ctx, s.FamilyKey(family), "grant").Bytes()
	if err != nil {
		return nil, wrap("family grant", err) // redis.Nil: store.ErrNotFound
	}
	return b, nil
}

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	return wrap("ping", s.c.Ping(ctx).Err())
}
