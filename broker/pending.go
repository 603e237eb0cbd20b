package broker

// This file holds the writes a sign-in step gathers and sends to the store
// as one batch (store.Batcher: one round trip on one Redis server or
// Sentinel, atomic; one by one in order on a Cluster):
//
//   - /authorize: the sign-in start counters (S60, S72), the pending auth
//     request and the upstream login state, sent once the redirect to the
//     IdP is ready (4 round trips before);
//   - the upstream callback: the auth request's consumption, the session,
//     its upstream-logout index entries and the code, sent with the code
//     (4 round trips before).
//
// Every check stays: a start counter that refuses stops the batch before
// anything after it is written and the request gets its 429, as when each
// counter was asked by itself before the writes; a consumed (or expired)
// auth request stops the callback's batch before the session and the code
// are written. Nothing a batch writes is handed to the browser before the
// batch has run: the explicit flushes come before the redirect or page
// that refers to the records, and any other response (an error page)
// flushes first (echo's Response.Before), so no request ever refers to a
// record not yet written.

import (
	"context"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/store"
)

// pending is the batch of one request.
type pending struct {
	// starts: the start counters, the auth request and the upstream state
	// are gathered too (/authorize); otherwise they are written at once.
	starts bool
	ops    []store.Op
	limits []opLimit // the limit each OpWindow asks, by the op's index
	done   bool
	// The first ops' room, allocated with p: a sign-in's steps stage up
	// to about six ops, which append grew from nil in four steps; two
	// start counters (a limit is 112 bytes: one per op was two thirds of
	// the 1.5 KB p took, twice per sign-in).
	opsRoom    [6]store.Op
	limitsRoom [2]opLimit
}

// opLimit is the limit of the staged op at index op.
type opLimit struct {
	op int
	stagedLimit
}

// stagedLimit is what a refused start counter answers with.
type stagedLimit struct {
	name string
	at   attrs
}

type pendingKey struct{}

// beginPending starts gathering the writes of this request (starts: the
// /authorize step's too) and makes sure they are sent before any response.
//
// A store that is not a Batcher gets every write at once, as before (and a
// start counter that fails lets the start through, S60). With a Batcher,
// a batch that fails is a store outage and answers 503 like the records
// it carries would: on a Redis Cluster, where the batch runs op by op, that
// includes a counter whose node alone is down.
func (s *Server) beginPending(c echo.Context, starts bool) {
	if _, ok := s.store.(store.Batcher); !ok {
		return
	}
	p := &pending{starts: starts}
	p.ops, p.limits = p.opsRoom[:0], p.limitsRoom[:0]
	req := c.Request()
	c.SetRequest(req.WithContext(context.WithValue(req.Context(), pendingKey{}, p)))
	c.Response().Before(func() {
		if p.done || len(p.ops) == 0 {
			return
		}
		// A response nobody flushed for (an error page): the records are
		// written first. A refusal here cannot change the answer any more.
		if _, _, err := s.runPending(c.Request().Context(), p); err != nil {
			s.log.Warn("pending store writes", "request_id", requestID(c), "err", err)
		}
	})
}

func pendingOf(ctx context.Context) *pending {
	p, _ := ctx.Value(pendingKey{}).(*pending)
	if p == nil || p.done {
		return nil
	}
	return p
}

// stage adds op to the request's batch and reports whether it did; false
// means the caller writes at once.
func stage(ctx context.Context, starts bool, op store.Op, lim stagedLimit) bool {
	p := pendingOf(ctx)
	if p == nil || (starts && !p.starts) {
		return false
	}
	if lim != (stagedLimit{}) {
		p.limits = append(p.limits, opLimit{len(p.ops), lim})
	}
	p.ops = append(p.ops, op)
	return true
}

// putRecord writes b under key, or adds the write to the request's batch
// (a start-step record when starts).
func (s *Server) putRecord(ctx context.Context, starts bool, key string, b []byte, ttl time.Duration) error {
	if stage(ctx, starts, store.Op{Kind: store.OpPut, Key: key, Value: b, TTL: ttl}, stagedLimit{}) {
		return nil
	}
	return storeErr("store put", s.store.Put(ctx, key, b, ttl))
}

// runPending sends p's batch: the index of the op that refused (-1: none)
// and its result.
func (s *Server) runPending(ctx context.Context, p *pending) (int, store.Result, error) {
	p.done = true
	if len(p.ops) == 0 {
		return -1, store.Result{}, nil
	}
	res, err := s.store.(store.Batcher).Batch(ctx, p.ops)
	if err != nil {
		return -1, store.Result{}, storeErr("store batch", err)
	}
	if len(res) < len(p.ops) {
		return len(res) - 1, res[len(res)-1], nil
	}
	return -1, store.Result{}, nil
}

// flush sends the request's batch now, before the response that refers to
// its records. A start counter that refuses answers 429 (errThrottled); an
// auth request found consumed answers the expired page (nil error, as
// every other page, but handled: check with the returned bool).
func (s *Server) flush(c echo.Context) (handled bool, err error) {
	p := pendingOf(c.Request().Context())
	if p == nil {
		return false, nil
	}
	i, r, err := s.runPending(c.Request().Context(), p)
	switch {
	case err != nil:
		return true, err
	case i < 0:
		return false, nil
	case p.ops[i].Kind == store.OpWindow:
		s.refusedStarts.refused(p.ops[i].Key, p.ops[i].Now, r.Wait)
		lim := p.limitOf(i)
		return true, s.throttled(c, lim.name, r.Wait, lim.at)
	default: // the auth request's take
		return true, s.expired(c)
	}
}

// limitOf returns the limit staged with op i (zero: none).
func (p *pending) limitOf(i int) stagedLimit {
	for _, l := range p.limits {
		if l.op == i {
			return l.stagedLimit
		}
	}
	return stagedLimit{}
}

// stageIndexes adds index entries (deletion.go's store.IndexAdd) to the
// callback's batch; false means there is no batch (or no IndexStore) and
// the caller adds them itself.
func (s *Server) stageIndexes(ctx context.Context, adds []store.IndexAdd) bool {
	if _, ok := s.store.(IndexStore); !ok || pendingOf(ctx) == nil {
		return false
	}
	for _, a := range adds {
		stage(ctx, false, store.Op{Kind: store.OpIndex, Key: a.Key, Value: []byte(a.Member), Max: a.Max, TTL: a.TTL}, stagedLimit{})
	}
	return true
}

// stageStart adds a sign-in start counter (S60) to the /authorize batch;
// staged false means there is none and the caller asks the store itself.
// A counter this instance found reached answers wait at once, until its
// Retry-After, without the store: a refused start costs no upstream
// request URL (an OIDC discovery, a signed SAML request) and no record.
func (s *Server) stageStart(c echo.Context, name, subject string, l RateLimit, at attrs) (staged bool, wait time.Duration) {
	if !l.on() || subject == "" {
		return false, 0 // hit asks nothing either
	}
	key, now := windowKey(name, subject), s.now()
	if p := pendingOf(c.Request().Context()); p == nil || !p.starts {
		return false, 0
	}
	if wait := s.refusedStarts.until(key, now); wait > 0 {
		return true, wait
	}
	return stage(c.Request().Context(), true, store.Op{Kind: store.OpWindow, Key: key,
		Window: l.window(), WindowOp: store.WindowTake, Now: now}, stagedLimit{name: name, at: at}), 0
}

// refusalCache remembers the start limits found reached (a refused
// WindowTake) until the Retry-After the store gave: until then the store
// would refuse too, since events only leave a window by its clock.
type refusalCache struct {
	mu   sync.Mutex
	ends map[string]time.Time
}

// refused records key as reached until now+wait.
func (r *refusalCache) refused(key string, now time.Time, wait time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ends == nil || len(r.ends) >= underLimitCacheSize {
		r.ends = make(map[string]time.Time)
	}
	r.ends[key] = now.Add(wait)
}

// until returns how long key stays refused from now (0: ask the store).
func (r *refusalCache) until(key string, now time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.ends[key]; ok && now.Before(t) {
		return t.Sub(now)
	}
	return 0
}
