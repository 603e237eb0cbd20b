package store

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
)

// AuditRecord is one stored event of a tenant's audit stream.
type AuditRecord struct {
	// ID orders the stream: "<unix ms>-<sequence>", as Redis stream ids
	// (see ParseAuditID). IDs of one stream strictly increase in the order
	// the events were appended; ReadAudit with after set to an ID returns
	// the events that follow it.
	ID string `json:"id"`
	// Event is the event as appended (JSON).
	Event json.RawMessage `json:"event"`
}

// AuditStore is implemented by a Store that keeps a bounded audit stream per
// tenant (memstore and redisstore do; SECURITY S61). The broker finds it by
// type assertion; a store without it gets audit events in the log stream
// only. Both methods are safe for concurrent use; concurrent appends to one
// stream are all kept, each under its own ID.
type AuditStore interface {
	// AppendAudit adds event to tenant's stream, trimming the stream to
	// about maxLen events: the newest maxLen are always kept, the oldest go
	// first, and a store may keep up to one storage block more (Redis trims
	// whole stream nodes). A maxLen below 1 is an error. The store keeps its
	// own copy of event.
	AppendAudit(ctx context.Context, tenant string, event []byte, maxLen int64) error
	// ReadAudit returns up to limit events of tenant's stream that come
	// after the event with id after ("" for the oldest kept), oldest first;
	// none (and no error) for an unknown tenant or a limit below 1. The
	// caller checks after with ParseAuditID; it need not be the ID of a
	// kept event.
	ReadAudit(ctx context.Context, tenant, after string, limit int) ([]AuditRecord, error)
}

// AuditBatcher is implemented by an AuditStore that appends several events
// of one tenant's stream in one round trip, in order (redisstore pipelines
// its XADDs). The broker's audit writer finds it by type assertion.
type AuditBatcher interface {
	// AppendAuditBatch appends events, in order, as AppendAudit would.
	AppendAuditBatch(ctx context.Context, tenant string, events [][]byte, maxLen int64) error
}

// ParseAuditID reads an audit record ID "<unix ms>-<sequence>" (two
// decimal numbers of at most 19 digits each) into its parts; ok is false
// for anything else. IDs order by ms, then sequence.
func ParseAuditID(id string) (ms, seq uint64, ok bool) {
	a, b, found := strings.Cut(id, "-")
	if !found || !decimal(a) || !decimal(b) {
		return 0, 0, false
	}
	ms, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(b, 10, 64)
	return ms, seq, err1 == nil && err2 == nil
}

// decimal reports whether s is 1 to 19 ASCII digits.
func decimal(s string) bool {
	if len(s) == 0 || len(s) > 19 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
