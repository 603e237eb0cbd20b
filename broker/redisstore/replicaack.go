package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Replica acknowledgement of single-use writes (issue 22).
//
// Redis replicates asynchronously: a primary answers a write before any
// replica has it, and a failover promotes a replica that may lack it. For
// most records that costs a user a retry; for a single-use consumption it
// undoes the consumption: a code redeemed on the old primary exists again on
// the new one, a rotated refresh token is current again, an assertion id or
// logout jti is forgotten. So the writes that consume or revoke something
// (Take, Create, Delete, Rotate, RotateUnlessRevoked, RevokeFamily) are sent
// in one pipeline with WAIT <count> <timeout> on the same connection, and a
// write that consumed or revoked something is reported as done only when
// WAIT says enough replicas have it; otherwise the caller gets
// store.ErrUnavailable (wrapping ErrNotReplicated) and answers 503, never
// success. A refusal (not found, exists, reused) needs no acknowledgement:
// refusing is safe whatever a failover keeps.
//
// This is also the fence against a deposed primary: a replica promoted by
// Sentinel (or a Cluster replica that took over) stops replicating from the
// old primary at once, so from that moment the old primary cannot collect
// an acknowledgement, and every consumption sent to it is refused within
// the timeout, long before +switch-master moves the clients (measured:
// docs/resilience.md).

// Modes of Options.ReplicaAck.
const (
	// ReplicaAckAuto (the default) waits wherever a failover could
	// promote a replica: always in Sentinel mode; on a Cluster, on every
	// master once any master has reported a connected replica (a master
	// whose replica is away, as just after a failover, refuses
	// consumptions until one is back); on a standalone server, once it has
	// reported a connected replica; in both cases for the life of the
	// Store. A replica-less development server or cluster never waits.
	ReplicaAckAuto = "auto"
	// ReplicaAckAlways waits on every consumption whatever the topology
	// (a standalone endpoint that a platform fails over, such as a managed
	// Redis primary endpoint); with no replica connected every
	// consumption is refused.
	ReplicaAckAlways = "always"
	// ReplicaAckOff never waits: the fastest, and a failover may undo the
	// last consumptions the old primary acknowledged.
	ReplicaAckOff = "off"
)

// DefaultReplicaAckTimeout is how long a consumption waits for its replica
// acknowledgement unless Options.ReplicaAckTimeout says otherwise. A healthy
// replica acknowledges within a round trip (the primary asks it at once with
// REPLCONF GETACK).
const DefaultReplicaAckTimeout = 200 * time.Millisecond

// ErrNotReplicated means no (or too few) replicas acknowledged a single-use
// write within the timeout. It comes wrapped with store.ErrUnavailable: the
// write may or may not survive a failover, so it must not be reported done.
var ErrNotReplicated = errors.New("redisstore: too few replicas acknowledged the write")

// topologyRefresh is how often auto mode looks at the topology again
// until it has seen a replica (standalone: INFO replication; Cluster:
// CLUSTER NODES and every master's INFO replication).
const topologyRefresh = 10 * time.Second

// acker decides, per write, whether to wait and for how many replicas.
type acker struct {
	mode     string
	count    int
	timeout  time.Duration
	sentinel bool

	// Auto mode's view of the topology: loaded once asked successfully,
	// nextCheck when to ask again (unix ns), mu held by the first ask.
	mu        sync.Mutex
	loaded    atomic.Bool
	nextCheck atomic.Int64
	// seen is set once the server (standalone) or a master of the
	// cluster reported a replica.
	seen atomic.Bool
}

func newAcker(opts Options) (*acker, error) {
	a := &acker{mode: opts.ReplicaAck, count: opts.ReplicaAckCount, timeout: opts.ReplicaAckTimeout,
		sentinel: opts.MasterName != ""}
	if a.mode == "" {
		a.mode = ReplicaAckAuto
	}
	switch a.mode {
	case ReplicaAckAuto, ReplicaAckAlways, ReplicaAckOff:
	default:
		return nil, fmt.Errorf("redisstore: replica ack %q: want auto, always or off", a.mode)
	}
	if a.count == 0 {
		a.count = 1
	}
	if a.count < 0 {
		return nil, fmt.Errorf("redisstore: replica ack count %d must be positive", a.count)
	}
	if a.timeout == 0 {
		a.timeout = DefaultReplicaAckTimeout
	}
	read := orDefault(opts.ReadTimeout, DefaultReadTimeout)
	if a.timeout < time.Millisecond || a.timeout > read-50*time.Millisecond {
		// The pipeline's reply is read under the read timeout.
		return nil, fmt.Errorf("redisstore: replica ack timeout %s: want 1ms to %s (the read timeout less 50ms)", a.timeout, read-50*time.Millisecond)
	}
	return a, nil
}

// node is what a consumption is pipelined on: one connection of one server.
type node interface {
	Pipeline() redis.Pipeliner
	redis.Scripter
}

// target returns the server that holds key and how many acknowledgements to
// wait for there (0: do not wait).
func (s *Store) target(ctx context.Context, key string) (node, int, error) {
	a := s.ack
	if a == nil || a.mode == ReplicaAckOff {
		return nil, 0, nil
	}
	cc, isCluster := s.c.(*redis.ClusterClient)
	if !isCluster {
		if a.mode == ReplicaAckAuto && !a.sentinel && !a.standaloneReplicated(ctx, s.c) {
			return nil, 0, nil
		}
		return s.c, a.count, nil
	}
	n, err := cc.MasterForKey(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	if a.mode == ReplicaAckAuto && !a.clusterReplicated(ctx, cc) {
		return nil, 0, nil
	}
	return n, a.count, nil
}

// standaloneReplicated reports whether the standalone server has ever been
// seen with a connected replica (INFO replication, asked at most every
// topologyRefresh until it has).
func (a *acker) standaloneReplicated(ctx context.Context, c redis.UniversalClient) bool {
	if a.seen.Load() {
		return true
	}
	a.refresh(func() error {
		info, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if n, _ := strconv.Atoi(infoField(info, "connected_slaves")); n > 0 {
			a.seen.Store(true)
		}
		return nil
	})
	return a.seen.Load()
}

// refresh runs load, the topology query of auto mode: the first time under
// a lock (concurrent first writes wait for its answer), then at most every
// topologyRefresh, by the one write that comes first.
func (a *acker) refresh(load func() error) {
	now := time.Now().UnixNano()
	if a.loaded.Load() {
		next := a.nextCheck.Load()
		if now >= next && a.nextCheck.CompareAndSwap(next, now+int64(topologyRefresh)) {
			_ = load() // on failure, the last answer stands
		}
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.loaded.Load() {
		return
	}
	if load() == nil {
		a.nextCheck.Store(now + int64(topologyRefresh))
		a.loaded.Store(true)
	}
}

// infoField returns the value of field in an INFO reply.
func infoField(info, field string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

// clusterReplicated reports whether the cluster has been seen with a
// replica, asked at most every topologyRefresh until it has, then for the
// life of the Store: every master waits from then on, also one whose
// replica is away (as just after a failover of its shard, when its writes
// would be lost if the shard failed over again before a replica had them).
//
// The masters are asked for their own replication state (INFO
// replication, connected_slaves): one node's CLUSTER NODES is its gossip
// view, which lists a replica just assigned (redis-cli --cluster create,
// CLUSTER REPLICATE) as a master without slots for a second or two; read
// alone, such a view made a cluster with replicas look like a development
// one, and no consumption waited until the next look 10 s later (refresh
// tokens resurrected by a shard failover in that window:
// TestReplicaAck_ClusterViewWithoutReplicas).
func (a *acker) clusterReplicated(ctx context.Context, cc *redis.ClusterClient) bool {
	if a.seen.Load() {
		return true
	}
	a.refresh(func() error {
		if nodes, err := cc.ClusterNodes(ctx).Result(); err == nil && listsReplica(nodes) {
			a.seen.Store(true)
			return nil
		}
		return cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			info, err := m.Info(ctx, "replication").Result()
			if err != nil {
				return err
			}
			if n, _ := strconv.Atoi(infoField(info, "connected_slaves")); n > 0 {
				a.seen.Store(true)
			}
			return nil
		})
	})
	return a.seen.Load()
}

// listsReplica reports whether a CLUSTER NODES reply lists a replica
// (failed or not). A reply that lists none proves nothing: a node learns
// of new replicas by gossip.
func listsReplica(nodes string) bool {
	for _, line := range strings.Split(nodes, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		flags := "," + f[2] + ","
		if strings.Contains(flags, ",slave,") || strings.Contains(flags, ",replica,") {
			return true
		}
	}
	return false
}

// write runs the write that queue puts on c. Without a wait (off mode, or
// auto on a server no failover can replace) it runs on the Store's client
// as any command; otherwise on one connection of the server holding key,
// pipelined with WAIT. err is not nil when the command was not sent (the
// Cluster's slot map could not be read); otherwise the command's own reply
// and error are in the command queue returned, and unacked is nil when
// enough replicas have the write (or none was needed), else the error the
// caller returns when the write consumed or revoked something.
func (s *Store) write(ctx context.Context, key string, queue func(c redis.Cmdable) redis.Cmder) (unacked, err error) {
	n, want, err := s.target(ctx, key)
	if err != nil {
		return nil, err
	}
	if want == 0 {
		queue(s.c)
		return nil, nil
	}
	for attempt := 0; ; attempt++ {
		p := n.Pipeline()
		cmd := queue(p)
		wait := p.Do(ctx, "wait", want, s.ack.timeout.Milliseconds())
		_, _ = p.Exec(ctx)
		if err := cmd.Err(); err != nil {
			if attempt == 0 && redis.HasErrorPrefix(err, "NOSCRIPT") {
				if lerr := loadScripts(ctx, n); lerr == nil {
					continue // the script did not run: sending it again is safe
				}
			}
			s.noticeMove(ctx, err)
			return nil, nil // the command's error says it all
		}
		got, err := wait.Int64()
		if err != nil {
			return fmt.Errorf("%w: wait: %w", ErrNotReplicated, err), nil
		}
		if got < int64(want) {
			s.noticeMove(ctx, nil)
			return fmt.Errorf("%w: %d of %d within %s", ErrNotReplicated, got, want, s.ack.timeout), nil
		}
		return nil, nil
	}
}

// noticeMove makes a Cluster client re-read the slot map after a reply
// that says the slot moved or the node was demoted, or after a missing
// acknowledgement (a replica may have taken over), so the next request goes
// to the new master without waiting for go-redis to find out by itself.
func (s *Store) noticeMove(ctx context.Context, err error) {
	cc, ok := s.c.(*redis.ClusterClient)
	if !ok {
		return
	}
	if err == nil || redis.HasErrorPrefix(err, "MOVED") || redis.HasErrorPrefix(err, "ASK") ||
		redis.HasErrorPrefix(err, "READONLY") || redis.HasErrorPrefix(err, "CLUSTERDOWN") {
		cc.ReloadState(ctx)
	}
}

// scripts are the Lua scripts write may send with EVALSHA.
var scripts = []*redis.Script{rotateScript, batchScript, redeemScript}

func loadScripts(ctx context.Context, n node) error {
	for _, sc := range scripts {
		if err := sc.Load(ctx, n).Err(); err != nil {
			return err
		}
	}
	return nil
}

// evalScript runs sc on c: through EVALSHA with its EVAL fallback on a
// client, as EVALSHA alone in a pipeline (write loads the script on
// NOSCRIPT and sends the pipeline again).
func evalScript(ctx context.Context, c redis.Cmdable, sc *redis.Script, keys []string, args ...any) *redis.Cmd {
	if _, ok := c.(redis.Pipeliner); ok {
		return sc.EvalSha(ctx, c, keys, args...)
	}
	return sc.Run(ctx, c.(redis.Scripter), keys, args...)
}
