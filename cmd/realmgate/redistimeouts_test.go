package main

import (
	"testing"
	"time"

	"github.com/realmgate/realmgate/broker/redisstore"
	"github.com/realmgate/realmgate/config"
)

// TestRedisTimeoutDefaults: the defaults the configuration documents
// (store.redis.*_timeout) are the store's own, so an unset key and the
// documented value mean the same.
func TestRedisTimeoutDefaults(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg, want time.Duration
	}{
		{"dial_timeout", config.DefaultRedisDialTimeout.Duration(), redisstore.DefaultDialTimeout},
		{"read_timeout", config.DefaultRedisReadTimeout.Duration(), redisstore.DefaultReadTimeout},
		{"write_timeout", config.DefaultRedisWriteTimeout.Duration(), redisstore.DefaultWriteTimeout},
		{"pool_timeout", config.DefaultRedisPoolTimeout.Duration(), redisstore.DefaultPoolTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cfg != tc.want {
				t.Errorf("config default of store.redis.%s = %s, want redisstore's %s", tc.name, tc.cfg, tc.want)
			}
		})
	}
}
