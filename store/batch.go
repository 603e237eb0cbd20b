package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// OpKind says what one Op of a batch does.
type OpKind uint8

// The operations a batch can hold, each as the Store method of the same
// name does it.
const (
	// OpPut is Put(Key, Value, TTL).
	OpPut OpKind = iota + 1
	// OpDelete is Delete(Key).
	OpDelete
	// OpTake is Take(Key). A missing key refuses: the batch stops there.
	OpTake
	// OpWindow is SlidingWindow(Key, Window, WindowOp, Now). An event the
	// window does not admit (Result.Wait > 0) refuses: the batch stops there.
	OpWindow
	// OpIndex is IndexStore.AddToIndex(Key, Value (the member), Max, TTL).
	OpIndex
)

// Op is one operation of a batch (Batcher).
type Op struct {
	Kind  OpKind
	Key   string
	Value []byte        // OpPut: the value; OpIndex: the member
	TTL   time.Duration // OpPut, OpIndex
	Max   int           // OpIndex: members kept

	// OpWindow: the window, what to count and the caller's clock.
	Window   Window
	WindowOp WindowOp
	Now      time.Time
}

// Result is the outcome of one Op of a batch that ran.
type Result struct {
	// Value is what OpTake took.
	Value []byte
	// Wait is OpWindow's verdict: 0 admitted, else how long until an
	// event would be.
	Wait time.Duration
}

// Batcher is implemented by a Store that runs several operations as one
// request: the broker's sign-in steps (the start counters and the pending
// request at /authorize; the session, its upstream-logout index and the
// code at the callback) each become one store round trip. memstore and
// redisstore implement it; the broker finds it by type assertion and,
// without it, runs the operations one by one (BatchOneByOne).
type Batcher interface {
	// Batch runs ops in order and returns the Result of each op that ran.
	// An op that refuses (an OpTake of a missing key, an OpWindow whose
	// event is not admitted) stops the batch: it is the last one run and
	// the ops after it are not run, so len(results) < len(ops) says which
	// one refused (results[len(results)-1]). A refused OpTake has an empty
	// Result; a refused OpWindow its Wait.
	//
	// Where the store can, the whole batch is one atomic step (memstore:
	// under its lock; redisstore on one server or Sentinel: one script,
	// one round trip); on a Redis Cluster, whose keys may live on several
	// nodes, the ops run one by one in order, each atomic by itself, with
	// the same stops. A batch holding an OpTake or OpDelete is a single-use
	// consumption: it waits for replicas as Take does, and when they do not
	// acknowledge it the error wraps ErrUnavailable (the batch may have
	// been applied; the caller must not report success).
	Batch(ctx context.Context, ops []Op) ([]Result, error)
}

// CheckBatch checks ops as every Batcher does: known kinds, keys, positive
// time to live where one is needed, valid windows.
func CheckBatch(ops []Op) error {
	for i, op := range ops {
		if op.Key == "" {
			return fmt.Errorf("store: batch op %d: empty key", i)
		}
		switch op.Kind {
		case OpPut, OpIndex:
			if op.TTL <= 0 {
				return fmt.Errorf("store: batch op %d: ttl %s must be positive", i, op.TTL)
			}
		case OpDelete, OpTake:
		case OpWindow:
			if err := op.Window.Check(); err != nil {
				return fmt.Errorf("store: batch op %d: %w", i, err)
			}
			if op.WindowOp < WindowPeek || op.WindowOp > WindowAdd {
				return fmt.Errorf("store: batch op %d: unknown window op %v", i, op.WindowOp)
			}
		default:
			return fmt.Errorf("store: batch op %d: unknown kind %d", i, op.Kind)
		}
	}
	return nil
}

// BatchOneByOne runs ops on s as Batcher.Batch does, one Store call per
// op: the broker's way with a store that is not a Batcher, and
// redisstore's on a Cluster. OpIndex needs an IndexStore.
func BatchOneByOne(ctx context.Context, s Store, ops []Op) ([]Result, error) {
	if err := CheckBatch(ops); err != nil {
		return nil, err
	}
	res := make([]Result, 0, len(ops))
	for _, op := range ops {
		var r Result
		var err error
		switch op.Kind {
		case OpPut:
			err = s.Put(ctx, op.Key, op.Value, op.TTL)
		case OpDelete:
			err = s.Delete(ctx, op.Key)
		case OpTake:
			r.Value, err = s.Take(ctx, op.Key)
			if errors.Is(err, ErrNotFound) {
				return append(res, Result{}), nil
			}
		case OpWindow:
			r.Wait, err = s.SlidingWindow(ctx, op.Key, op.Window, op.WindowOp, op.Now)
		case OpIndex:
			ix, ok := s.(IndexStore)
			if !ok {
				return res, errors.New("store: batch: the store keeps no indexes")
			}
			err = ix.AddToIndex(ctx, op.Key, string(op.Value), op.Max, op.TTL)
		}
		if err != nil {
			return res, err
		}
		res = append(res, r)
		if r.Wait > 0 {
			return res, nil
		}
	}
	return res, nil
}

// A code record (CodeRedeemer) holds two parts: the grant its refresh-token
// family will carry, and what only the code exchange reads (its binding to
// a redirect URI, challenge, nonce and time). It is stored as
// "<length of the grant>:<grant><rest>", so a store starts the family
// with the grant without decoding anything.

// JoinCodeRecord returns the stored form of a code record.
func JoinCodeRecord(grant, rest []byte) []byte {
	out := make([]byte, 0, len(grant)+len(rest)+8)
	out = strconv.AppendInt(out, int64(len(grant)), 10)
	out = append(out, ':')
	out = append(out, grant...)
	return append(out, rest...)
}

// SplitCodeRecord returns the two parts of a stored code record; ok is
// false when rec is not one.
func SplitCodeRecord(rec []byte) (grant, rest []byte, ok bool) {
	for i := 0; i < len(rec) && i < 12; i++ {
		if rec[i] != ':' {
			continue
		}
		n, err := strconv.Atoi(string(rec[:i]))
		if err != nil || n < 0 || i+1+n > len(rec) {
			return nil, nil, false
		}
		return rec[i+1 : i+1+n], rec[i+1+n:], true
	}
	return nil, nil, false
}

// Redemption names the records of one code exchange (CodeRedeemer): every
// key of it belongs to one session, so redisstore keeps them in that
// session's Cluster slot (hash tag "{<sid>}").
type Redemption struct {
	// Code is the key of the code record (JoinCodeRecord).
	Code string
	// Used is the key of the code-use marker: written with the value
	// Family, it lets a second redemption find and revoke what the first
	// one issued (SECURITY S07).
	Used    string
	UsedTTL time.Duration
	// Marker is the session's revocation marker (SessionRotator): a code
	// of a session logged out is taken and refused.
	Marker string
	// Family and Token start the refresh-token family (CreateFamily) with
	// the grant part of the code record; FamilyTTL is its lifetime.
	Family    string
	Token     string
	FamilyTTL time.Duration
}

// CodeRedeemer is implemented by a Store that redeems an authorization code
// in one step: the code is taken, its use marked and its refresh-token
// family started at once, so a code exchange is one round trip (memstore,
// and redisstore, where every key of a Redemption shares one Cluster
// slot). The broker finds it by type assertion; without it, the exchange
// takes, marks and creates in three calls.
type CodeRedeemer interface {
	// RedeemCode takes the record under r.Code (as Take: of concurrent
	// callers one gets it). When it was there and r.Marker is absent, it
	// writes r.Used (value r.Family) and starts the family with the
	// record's grant part, and returns the record. When r.Marker exists,
	// the record is taken, nothing else written, and ErrRevoked returned.
	// When the code is absent, it returns ErrNotFound and the value of
	// r.Used, if any (the family an earlier redemption started). A family
	// that exists already gives ErrExists with nothing taken; a record
	// that is not a code record (SplitCodeRecord) is taken and refused
	// with ErrNotFound. It waits for replicas as Take does.
	RedeemCode(ctx context.Context, r Redemption) ([]byte, error)
}
