package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/realmgate/realmgate/broker/redisstore"
	"github.com/realmgate/realmgate/broker/storetest"
	"github.com/realmgate/realmgate/internal/redistest"
	"github.com/realmgate/realmgate/store"
)

func newAckStore(t testing.TB, mode string, addrs ...string) *redisstore.Store {
	t.Helper()
	return newAckStoreOpts(t, redisstore.Options{Addrs: addrs, Prefix: randomPrefix(), ReplicaAck: mode})
}

// patientRead is the read timeout of the stores of these tests: a refusal
// must come from the missing acknowledgement, not from a reply that a
// loaded machine delivered after the default read timeout.
const patientRead = 5 * time.Second

// patientAck is the acknowledgement timeout of checks that a healthy
// replica acknowledges: generous, so that a loaded machine cannot fail
// them (the default 200 ms once did, just after a paused replica resumed).
const patientAck = 10 * time.Second

// newPatientAckStore is newAckStore waiting up to patientAck for an
// acknowledgement, on the same keys as prefix's store.
func newPatientAckStore(t testing.TB, mode, prefix string, addrs ...string) *redisstore.Store {
	t.Helper()
	return newAckStoreOpts(t, redisstore.Options{Addrs: addrs, Prefix: prefix, ReplicaAck: mode,
		ReplicaAckTimeout: patientAck, ReadTimeout: patientAck + time.Second})
}

func newAckStoreOpts(t testing.TB, opts redisstore.Options) *redisstore.Store {
	t.Helper()
	if opts.ReadTimeout == 0 {
		opts.ReadTimeout = patientRead
	}
	addrs, mode := opts.Addrs, opts.ReplicaAck
	s, err := redisstore.New(opts)
	if err != nil {
		t.Fatalf("New(%v, %q) = %v", addrs, mode, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// consumptions are the single-use writes a replica must acknowledge, each
// on records prepared by setup so that it would succeed.
var consumptions = []struct {
	name  string
	setup func(ctx context.Context, s *redisstore.Store) error
	op    func(ctx context.Context, s *redisstore.Store) error
}{
	{"Take", func(ctx context.Context, s *redisstore.Store) error {
		return s.Put(ctx, "code", []byte("g"), time.Minute)
	},
		func(ctx context.Context, s *redisstore.Store) error { _, err := s.Take(ctx, "code"); return err }},
	{"Create", nil,
		func(ctx context.Context, s *redisstore.Store) error {
			return s.Create(ctx, "jti", []byte("1"), time.Minute)
		}},
	{"Delete", func(ctx context.Context, s *redisstore.Store) error {
		return s.Put(ctx, "sess", []byte("g"), time.Minute)
	},
		func(ctx context.Context, s *redisstore.Store) error { return s.Delete(ctx, "sess") }},
	{"Rotate", func(ctx context.Context, s *redisstore.Store) error {
		return s.CreateFamily(ctx, "fam", "t0", []byte("g"), time.Minute)
	}, func(ctx context.Context, s *redisstore.Store) error {
		_, err := s.Rotate(ctx, "fam", "t0", "t1")
		return err
	}},
	{"RotateUnlessRevoked", func(ctx context.Context, s *redisstore.Store) error {
		return s.CreateFamily(ctx, "sid~a", "t0", []byte("g"), time.Minute)
	}, func(ctx context.Context, s *redisstore.Store) error {
		_, err := s.RotateUnlessRevoked(ctx, "sid~a", "t0", "t1", "sx:{sid}")
		return err
	}},
	{"RevokeFamily", func(ctx context.Context, s *redisstore.Store) error {
		return s.CreateFamily(ctx, "fam2", "t0", []byte("g"), time.Minute)
	}, func(ctx context.Context, s *redisstore.Store) error { return s.RevokeFamily(ctx, "fam2") }},
	{"BatchTake", func(ctx context.Context, s *redisstore.Store) error {
		return s.Put(ctx, "ar", []byte("g"), time.Minute)
	}, func(ctx context.Context, s *redisstore.Store) error {
		_, err := s.Batch(ctx, []store.Op{{Kind: store.OpTake, Key: "ar"}, {Kind: store.OpPut, Key: "ss", Value: []byte("s"), TTL: time.Minute}})
		return err
	}},
	{"RedeemCode", func(ctx context.Context, s *redisstore.Store) error {
		return s.Put(ctx, "cd:{sid2}", store.JoinCodeRecord([]byte("g"), nil), time.Minute)
	}, func(ctx context.Context, s *redisstore.Store) error {
		_, err := s.RedeemCode(ctx, store.Redemption{Code: "cd:{sid2}", Used: "cu:{sid2}", UsedTTL: time.Minute,
			Marker: "sx:{sid2}", Family: "sid2~a", Token: "t0", FamilyTTL: time.Minute})
		return err
	}},
}

// TestReplicaAck_RefusedWithoutReplica: on a primary whose replica stopped
// answering (SIGSTOP: as after its promotion, the primary can no longer
// collect an acknowledgement), every single-use write is refused with
// store.ErrUnavailable wrapping ErrNotReplicated in auto (the server was
// seen with a replica) and always mode, and succeeds in off mode; with the
// replica back, it succeeds in every mode. A refusal (Take of a missing
// key, Create of an existing one) needs no acknowledgement.
func TestReplicaAck_RefusedWithoutReplica(t *testing.T) {
	primary, err := redistest.StartProcessArgs()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = primary.Stop() })
	replica := redistest.StartReplica(t, primary)
	ctx := t.Context()

	for _, mode := range []string{redisstore.ReplicaAckAuto, redisstore.ReplicaAckAlways, redisstore.ReplicaAckOff} {
		t.Run(mode, func(t *testing.T) {
			prefix := randomPrefix()
			s := newAckStoreOpts(t, redisstore.Options{Addrs: []string{primary.Addr()}, Prefix: prefix, ReplicaAck: mode})
			for _, c := range consumptions {
				if c.setup != nil {
					if err := c.setup(ctx, s); err != nil {
						t.Fatalf("%s setup = %v", c.name, err)
					}
				}
			}
			// auto learns of the replica on its first single-use write.
			if _, err := s.Take(ctx, "nothing"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("Take(missing) = %v, want ErrNotFound", err)
			}
			if err := replica.Pause(); err != nil {
				t.Fatal(err)
			}
			for _, c := range consumptions {
				err := c.op(ctx, s)
				if mode == redisstore.ReplicaAckOff {
					if err != nil {
						t.Errorf("%s without a replica, mode off = %v, want nil", c.name, err)
					}
					continue
				}
				if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, redisstore.ErrNotReplicated) {
					t.Errorf("%s without a replica, mode %s = %v, want ErrUnavailable and ErrNotReplicated", c.name, mode, err)
				}
			}
			if _, err := s.Take(ctx, "nothing"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Take(missing) without a replica = %v, want ErrNotFound", err)
			}
			if err := s.Create(ctx, "jti", []byte("1"), time.Minute); !errors.Is(err, store.ErrExists) {
				t.Errorf("Create(existing) without a replica = %v, want ErrExists", err)
			}
			if err := replica.Resume(); err != nil {
				t.Fatal(err)
			}
			// The replica back: acknowledged, however slowly the loaded
			// machine lets it catch up.
			s = newPatientAckStore(t, mode, prefix, primary.Addr())
			if err := s.Put(ctx, "code2", []byte("g"), time.Minute); err != nil {
				t.Fatal(err)
			}
			if v, err := s.Take(ctx, "code2"); err != nil || string(v) != "g" {
				t.Errorf("Take with the replica back = %q, %v; want g", v, err)
			}
			if err := s.Create(ctx, "jti2", []byte("1"), time.Minute); err != nil {
				t.Errorf("Create with the replica back = %v", err)
			}
		})
	}
}

// TestReplicaAck_AutoWithoutReplicas: auto mode never waits on a server or
// cluster that has no replica (development, CI): the conformance suite
// passes and a Take answers well under the acknowledgement timeout.
func TestReplicaAck_AutoWithoutReplicas(t *testing.T) {
	for _, tc := range []struct {
		name  string
		addrs []string
	}{{"Standalone", []string{standalone.Addr()}}, {"Cluster", cluster.Addrs()}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newAckStore(t, redisstore.ReplicaAckAuto, tc.addrs...)
			ctx := t.Context()
			for i := range 3 {
				if err := s.Put(ctx, "k", []byte("v"), time.Minute); err != nil {
					t.Fatal(err)
				}
				if v, err := s.Take(ctx, "k"); err != nil || string(v) != "v" {
					t.Fatalf("Take #%d = %q, %v; want v", i, v, err)
				}
			}
		})
	}
}

// TestReplicaAck_Cluster runs the conformance suite on a Cluster with a
// replica per master, every single-use write acknowledged (pipelined with
// WAIT on the node that holds its slot), and checks that pausing one
// shard's replica refuses the consumptions of that shard only.
func TestReplicaAck_Cluster(t *testing.T) {
	t.Setenv(redistest.EnvClusterAddrs, "")
	c := redistest.StartClusterWithReplicas(t)
	t.Run("Conformance", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store { return newAckStore(t, redisstore.ReplicaAckAuto, c.Addrs()...) })
	})
	shards, err := c.Shards()
	if err != nil {
		t.Fatal(err)
	}
	s := newAckStore(t, redisstore.ReplicaAckAuto, c.Addrs()...)
	ctx := t.Context()
	// Keys on every shard: "k0".."k29" spread over the three.
	for i := range 30 {
		if err := s.Put(ctx, key(i), []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := shards[0].Replica.Pause(); err != nil {
		t.Fatal(err)
	}
	refused, taken := 0, 0
	for i := range 30 {
		_, err := s.Take(ctx, key(i))
		switch {
		case err == nil:
			taken++
		case errors.Is(err, redisstore.ErrNotReplicated):
			refused++
		default:
			t.Errorf("Take(%s) with one replica paused = %v", key(i), err)
		}
	}
	if err := shards[0].Replica.Resume(); err != nil {
		t.Fatal(err)
	}
	if refused == 0 || taken == 0 {
		t.Errorf("with one shard's replica paused: %d taken, %d refused; want both (that shard refused, the others served)", taken, refused)
	}
}

// TestReplicaAck_ClusterViewWithoutReplicas: a Store started while the
// masters' gossip views list no replica (as for a second or two after
// redis-cli --cluster create, made lasting here with CLUSTER FORGET of
// every replica on every node) still waits on every master, since the
// masters themselves report their connected replicas. Before, auto mode
// took such a view for a replica-less development cluster and no
// consumption waited for 10 s: a shard failover in that window brought
// rotated refresh tokens back (TestResilience_SingleUseAcrossFailover).
func TestReplicaAck_ClusterViewWithoutReplicas(t *testing.T) {
	t.Setenv(redistest.EnvClusterAddrs, "")
	c := redistest.StartClusterWithReplicas(t)
	ctx := t.Context()
	shards, err := c.Shards()
	if err != nil {
		t.Fatal(err)
	}
	var replicaIDs []string
	for _, sh := range shards {
		rc := redis.NewClient(&redis.Options{Addr: sh.Replica.Addr()})
		id, err := rc.ClusterMyID(ctx).Result()
		_ = rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		replicaIDs = append(replicaIDs, id)
	}
	// Every node forgets every replica but itself (for 60 s: the
	// replicas keep replicating, the views list none).
	for _, n := range c.Nodes() {
		rc := redis.NewClient(&redis.Options{Addr: n.Addr()})
		self, err := rc.ClusterMyID(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range replicaIDs {
			if id != self {
				if err := rc.ClusterForget(ctx, id).Err(); err != nil {
					t.Fatalf("CLUSTER FORGET %s on %s: %v", id, n.Addr(), err)
				}
			}
		}
		_ = rc.Close()
	}
	for _, sh := range shards {
		rc := redis.NewClient(&redis.Options{Addr: sh.Master.Addr()})
		nodes, err := rc.ClusterNodes(ctx).Result()
		_ = rc.Close()
		if err != nil || redisstore.ListsReplica(nodes) {
			t.Fatalf("CLUSTER NODES of %s after forgetting the replicas = %v, %v; want no replica listed", sh.Master.Addr(), nodes, err)
		}
	}

	s := newAckStore(t, redisstore.ReplicaAckAuto, c.Addrs()...)
	for i := range 12 {
		if err := s.Put(ctx, key(i), []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	for _, sh := range shards {
		if err := sh.Replica.Pause(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, sh := range shards {
			_ = sh.Replica.Resume()
		}
	})
	for i := range 12 {
		if _, err := s.Take(ctx, key(i)); !errors.Is(err, redisstore.ErrNotReplicated) {
			t.Errorf("Take(%s) with every replica paused, none in the gossip views = %v, want ErrNotReplicated", key(i), err)
		}
	}
}

func key(i int) string { return "k" + string(rune('a'+i%26)) + string(rune('0'+i/26)) }

// TestReplicaAck_Options: bad settings are refused by New.
func TestReplicaAck_Options(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts redisstore.Options
	}{
		{"unknown mode", redisstore.Options{Addrs: []string{"127.0.0.1:1"}, ReplicaAck: "sometimes"}},
		{"negative count", redisstore.Options{Addrs: []string{"127.0.0.1:1"}, ReplicaAckCount: -1}},
		{"timeout over the read timeout", redisstore.Options{Addrs: []string{"127.0.0.1:1"}, ReplicaAckTimeout: time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := redisstore.New(tc.opts); err == nil {
				_ = s.Close()
				t.Errorf("New(%+v) = nil error, want one", tc.opts)
			}
		})
	}
}

func TestListsReplica(t *testing.T) {
	for _, tc := range []struct {
		name, nodes string
		want        bool
	}{
		{"replicas", `07c3 127.0.0.1:30004@31004 slave e7d1 0 1426238317239 4 connected
67ed 127.0.0.1:30002@31002,host2 master - 0 1426238316232 2 connected 5461-10922
292f 127.0.0.1:30003@31003 myself,master - 0 0 3 connected 10923-16383
e7d1 127.0.0.1:30001@31001 master - 0 1426238318243 1 connected 0-5460
6ec2 127.0.0.1:30005@31005 slave,fail 67ed 1426238316232 0 2 disconnected
`, true},
		// A master's view just after redis-cli --cluster create: it has
		// not heard by gossip yet that the three nodes without slots
		// became replicas (so the masters' own INFO must be asked too).
		{"replicas not yet gossiped", `e732 127.0.0.1:44239@38517 master - 0 1796607026500 3 connected 10923-16383
c3d0 127.0.0.1:46053@44779 master - 0 1796607025492 4 connected
7a76 127.0.0.1:43413@46363 master - 0 1796607024992 5 connected
eb88 127.0.0.1:35103@46271 master - 0 1796607025000 2 connected 5461-10922
3ed5 127.0.0.1:41181@42263 master - 0 1796607025000 6 connected
6b82 127.0.0.1:37441@35081 myself,master - 0 1796607026000 1 connected 0-5460
`, false},
		{"development", `67ed 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
292f 127.0.0.1:30003@31003 myself,master - 0 0 3 connected 10923-16383
e7d1 127.0.0.1:30001@31001 master - 0 1426238318243 1 connected 0-5460
`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := redisstore.ListsReplica(tc.nodes); got != tc.want {
				t.Errorf("ListsReplica(%s) = %v, want %v", tc.name, got, tc.want)
			}
		})
	}
}
