package config

import "time"

// Defaults of the Redis client's timeouts; they equal redisstore's
// (DefaultDialTimeout, ...), chosen so an outage fails requests fast
// (SECURITY S62).
const (
	DefaultRedisDialTimeout  = Duration(time.Second)
	DefaultRedisReadTimeout  = Duration(500 * time.Millisecond)
	DefaultRedisWriteTimeout = Duration(500 * time.Millisecond)
	DefaultRedisPoolTimeout  = Duration(1500 * time.Millisecond)
)

// Bounds on the Redis client's timeouts: below the minimum a loaded Redis
// fails every command, above the maximum an outage holds requests too long.
const (
	minRedisTimeout = 10 * time.Millisecond
	maxRedisTimeout = time.Minute
)

// redisTimeouts lists the timeouts of store.redis with their paths and defaults.
func (c *Config) redisTimeouts() []struct {
	p    *Duration
	path string
	def  Duration
} {
	r := &c.Store.Redis
	return []struct {
		p    *Duration
		path string
		def  Duration
	}{
		{&r.DialTimeout, "store.redis.dial_timeout", DefaultRedisDialTimeout},
		{&r.ReadTimeout, "store.redis.read_timeout", DefaultRedisReadTimeout},
		{&r.WriteTimeout, "store.redis.write_timeout", DefaultRedisWriteTimeout},
		{&r.PoolTimeout, "store.redis.pool_timeout", DefaultRedisPoolTimeout},
	}
}

// applyRedisDefaults fills in the Redis timeouts the file left unset.
func (c *Config) applyRedisDefaults(unset func(string) bool) {
	for _, t := range c.redisTimeouts() {
		if *t.p == 0 && unset(t.path) {
			*t.p = t.def
		}
	}
}

// redis checks the Redis client's timeouts. Zero in a Config built in code
// means the store's default; an explicit zero in a file is refused.
func (k *checker) redis() {
	for _, t := range k.c.redisTimeouts() {
		if *t.p == 0 && !k.c.src.isExplicit(t.path) {
			continue
		}
		if d := t.p.Duration(); d < minRedisTimeout || d > maxRedisTimeout {
			k.add(t.path, "must be between %s and %s, got %s", Duration(minRedisTimeout), Duration(maxRedisTimeout), *t.p)
		}
	}
}
