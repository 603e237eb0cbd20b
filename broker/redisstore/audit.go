package redisstore

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/realmgate/realmgate/store"
)

var _ store.AuditStore = (*Store)(nil)

// auditKey is the Redis stream of one tenant's audit events.
func (s *Store) auditKey(tenant string) string { return s.prefix + "audit:" + tenant }

// AppendAudit adds event to tenant's stream (XADD with MAXLEN ~ maxLen: Redis
// trims whole macro nodes, so the stream keeps at least maxLen events and
// slightly more at times).
func (s *Store) AppendAudit(ctx context.Context, tenant string, event []byte, maxLen int64) error {
	if maxLen <= 0 {
		return fmt.Errorf("redisstore: audit maxLen must be positive, got %d", maxLen)
	}
	err := s.c.XAdd(ctx, &redis.XAddArgs{Stream: s.auditKey(tenant), MaxLen: maxLen, Approx: true,
		Values: []any{"e", event}}).Err()
	return wrap("xadd audit", err)
}

var _ store.AuditBatcher = (*Store)(nil)

// AppendAuditBatch appends events to tenant's stream in one pipelined round
// trip (one key, so one node of a Cluster), in order.
func (s *Store) AppendAuditBatch(ctx context.Context, tenant string, events [][]byte, maxLen int64) error {
	if maxLen <= 0 {
		return fmt.Errorf("redisstore: audit maxLen must be positive, got %d", maxLen)
	}
	pipe := s.c.Pipeline()
	key := s.auditKey(tenant)
	for _, ev := range events {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: key, MaxLen: maxLen, Approx: true, Values: []any{"e", ev}})
	}
	_, err := pipe.Exec(ctx)
	return wrap("xadd audit batch", err)
}

// ReadAudit returns up to limit events of tenant's stream after the id after
// ("" for the oldest kept), oldest first (XRANGE with an exclusive start,
// Redis 6.2+).
func (s *Store) ReadAudit(ctx context.Context, tenant, after string, limit int) ([]store.AuditRecord, error) {
	if limit <= 0 {
		return nil, nil
	}
	start := "-"
	if after != "" {
		start = "(" + after
	}
	msgs, err := s.c.XRangeN(ctx, s.auditKey(tenant), start, "+", int64(limit)).Result()
	if err != nil {
		return nil, wrap("xrange audit", err)
	}
	out := make([]store.AuditRecord, 0, len(msgs))
	for _, m := range msgs {
		e, _ := m.Values["e"].(string)
		out = append(out, store.AuditRecord{ID: m.ID, Event: []byte(e)})
	}
	return out, nil
}
