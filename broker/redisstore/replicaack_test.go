package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/realmgate/realmgate/broker/redisstore"
	"github.com/realmgate/realmgate/broker/storetest"
	"github.com/realmgate/realmgate/internal/redistest"
	"github.com/realmgate/realmgate/store"
)

func newAckStore(t testing.TB, mode string, addrs ...string) *redisstore.Store {
	t.Helper()
	s, err := redisstore.New(redisstore.Options{Addrs: addrs, Prefix: randomPrefix(), ReplicaAck: mode})
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
			s := newAckStore(t, mode, primary.Addr())
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

func TestLoneMasters(t *testing.T) {
	nodes := `07c3 127.0.0.1:30004@31004 slave e7d1 0 1426238317239 4 connected
67ed 127.0.0.1:30002@31002,host2 master - 0 1426238316232 2 connected 5461-10922
292f 127.0.0.1:30003@31003 myself,master - 0 0 3 connected 10923-16383
e7d1 127.0.0.1:30001@31001 master - 0 1426238318243 1 connected 0-5460
6ec2 127.0.0.1:30005@31005 slave,fail 67ed 1426238316232 0 2 disconnected
`
	// 30003 has no replica, as a master has just after a failover: it
	// waits like the others, since its writes are lost if its shard fails
	// over again before a replica has them.
	if got := redisstore.LoneMasters(nodes); len(got) != 0 {
		t.Errorf("LoneMasters(cluster with replicas) = %v, want none: every master waits", got)
	}
	dev := `67ed 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
292f 127.0.0.1:30003@31003 myself,master - 0 0 3 connected 10923-16383
e7d1 127.0.0.1:30001@31001 master - 0 1426238318243 1 connected 0-5460
`
	got := redisstore.LoneMasters(dev)
	if len(got) != 3 || !got["127.0.0.1:30001"] || !got["127.0.0.1:30002"] || !got["127.0.0.1:30003"] {
		t.Errorf("LoneMasters(cluster without replicas) = %v, want all three masters", got)
	}
}
