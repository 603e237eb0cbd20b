package redisstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"

	"github.com/realmgate/realmgate/broker/redisstore"
	"github.com/realmgate/realmgate/broker/storetest"
	"github.com/realmgate/realmgate/internal/redistest"
	"github.com/realmgate/realmgate/store"
)

// Servers shared by the tests of this package, started once in TestMain.
var (
	standalone *redistest.Server
	cluster    *redistest.Cluster
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// The outage tests make go-redis log every refused dial; keep the output readable.
	redis.SetLogger(logging.NewBlacklistLogger([]string{"failed to dial"}))
	var err error
	if standalone, err = redistest.StartProcess(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer standalone.Stop()
	if cluster, err = redistest.StartClusterProcess(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cluster.Stop()
	return m.Run()
}

// randomPrefix gives each store its own key space on a shared server.
func randomPrefix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "rgtest:" + hex.EncodeToString(b) + ":"
}

func newStore(t testing.TB, addrs ...string) *redisstore.Store {
	t.Helper()
	s, err := redisstore.New(redisstore.Options{Addrs: addrs, Prefix: randomPrefix()})
	if err != nil {
		t.Fatalf("New(%v) = %v", addrs, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	t.Run("Standalone", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store { return newStore(t, standalone.Addr()) })
	})
	t.Run("Cluster", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store { return newStore(t, cluster.Addrs()...) })
	})
}

// TestOutage_S62 stops Redis under a live Store: every operation fails within
// two seconds with an error wrapping store.ErrUnavailable; after a restart
// the same Store value serves again without being rebuilt.
func TestOutage_S62(t *testing.T) {
	srv := redistest.Start(t)
	if srv.External() {
		t.Skip("cannot stop an external redis")
	}
	s := newStore(t, srv.Addr())
	ctx := t.Context()
	if err := s.Put(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatalf("Put before the outage = %v", err)
	}
	if err := s.CreateFamily(ctx, "fam", "t0", []byte("g"), time.Minute); err != nil {
		t.Fatalf("CreateFamily before the outage = %v", err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}

	ops := []struct {
		name string
		op   func(ctx context.Context) error
	}{
		{"Ping", s.Ping},
		{"Put", func(ctx context.Context) error { return s.Put(ctx, "k", []byte("v"), time.Minute) }},
		{"Create", func(ctx context.Context) error { return s.Create(ctx, "k2", []byte("v"), time.Minute) }},
		{"Get", func(ctx context.Context) error { _, err := s.Get(ctx, "k"); return err }},
		{"Take", func(ctx context.Context) error { _, err := s.Take(ctx, "k"); return err }},
		{"Delete", func(ctx context.Context) error { return s.Delete(ctx, "k") }},
		{"Touch", func(ctx context.Context) error { return s.Touch(ctx, "k", time.Minute) }},
		{"Incr", func(ctx context.Context) error { _, err := s.Incr(ctx, "n", time.Minute); return err }},
		{"CreateFamily", func(ctx context.Context) error {
			return s.CreateFamily(ctx, "fam2", "t0", []byte("g"), time.Minute)
		}},
		{"Rotate", func(ctx context.Context) error { _, err := s.Rotate(ctx, "fam", "t0", "t1"); return err }},
		{"RevokeFamily", func(ctx context.Context) error { return s.RevokeFamily(ctx, "fam") }},
		{"FamilyGrant", func(ctx context.Context) error { _, err := s.FamilyGrant(ctx, "fam"); return err }},
	}
	for _, tc := range ops {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			err := tc.op(ctx)
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("%s during outage took %s, want < 2s", tc.name, took)
			}
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("%s during outage = %v, want ErrUnavailable", tc.name, err)
			}
		})
	}

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := s.Ping(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ping 5s after restart = %v, want nil", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := s.Put(ctx, "k", []byte("after"), time.Minute); err != nil {
		t.Fatalf("Put after restart = %v, want nil", err)
	}
	if got, err := s.Get(ctx, "k"); err != nil || !bytes.Equal(got, []byte("after")) {
		t.Fatalf("Get after restart = %q, %v; want %q", got, err, "after")
	}
	if err := s.CreateFamily(ctx, "fam", "t0", []byte("g"), time.Minute); err != nil {
		t.Fatalf("CreateFamily after restart = %v, want nil", err)
	}
	if _, err := s.Rotate(ctx, "fam", "t0", "t1"); err != nil {
		t.Fatalf("Rotate after restart = %v, want nil", err)
	}
}

// TestUnresponsive_S62: a frozen Redis (connections open, no answers, as in a
// partition) fails operations by the read timeout with ErrUnavailable, and
// they succeed again once it answers.
func TestUnresponsive_S62(t *testing.T) {
	srv := redistest.Start(t)
	if srv.External() {
		t.Skip("cannot pause an external redis")
	}
	s := newStore(t, srv.Addr())
	ctx := t.Context()
	if err := s.CreateFamily(ctx, "fam", "t0", []byte("g"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		op   func() error
	}{
		{"Get", func() error { _, err := s.Get(ctx, "k"); return err }},
		{"Rotate", func() error { _, err := s.Rotate(ctx, "fam", "t0", "t1"); return err }},
	} {
		start := time.Now()
		err := tc.op()
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("%s against a frozen redis took %s, want < 2s", tc.name, took)
		}
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s against a frozen redis = %v, want ErrUnavailable", tc.name, err)
		}
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	// The timed-out Rotate may or may not have run on the server once it
	// resumed; either way the family is in a defined state.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := s.FamilyGrant(ctx, "fam")
		if err == nil || errors.Is(err, store.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("FamilyGrant 5s after resume = %v, want an answer", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCanceledIsNotUnavailable: the caller giving up is not an outage.
func TestCanceledIsNotUnavailable(t *testing.T) {
	s := newStore(t, standalone.Addr())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Get(ctx, "k"); !errors.Is(err, context.Canceled) || errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Get with canceled context = %v, want context.Canceled and not ErrUnavailable", err)
	}
}

// TestClusterFamilyOneSlot: a family, however often rotated, is one hash in
// the slot of its hash tag, so its scripts never cross slots.
func TestClusterFamilyOneSlot(t *testing.T) {
	s := newStore(t, cluster.Addrs()...)
	ctx := t.Context()
	fam := "fam-" + randomPrefix()[7:19]
	tokens := []string{"t0", "t1", "t2", "t3"}
	if err := s.CreateFamily(ctx, fam, tokens[0], []byte("grant"), time.Minute); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(tokens); i++ {
		if _, err := s.Rotate(ctx, fam, tokens[i-1], tokens[i]); err != nil {
			t.Fatalf("Rotate(%q, %q) = %v", tokens[i-1], tokens[i], err)
		}
	}

	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster.Addrs()})
	defer cc.Close()
	key := s.FamilyKey(fam)
	slot, err := cc.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	tagSlot, err := cc.ClusterKeySlot(ctx, fam).Result()
	if err != nil {
		t.Fatal(err)
	}
	if slot != tagSlot {
		t.Fatalf("slot of %q = %d, want %d (the slot of its hash tag %q)", key, slot, tagSlot, fam)
	}
	fields, err := cc.HKeys(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(fields)
	want := []string{"cur", "grant", "n", "q:1", "q:2", "q:3", "r:t0", "r:t1", "r:t2"} // n and q: are the rotation ring
	if !slices.Equal(fields, want) {
		t.Fatalf("fields of %q = %q, want %q", key, fields, want)
	}

	// Nothing else about the family exists on any master.
	var (
		mu    sync.Mutex
		found []string
	)
	err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		keys, err := c.Keys(ctx, "*"+fam+"*").Result()
		mu.Lock()
		defer mu.Unlock()
		found = append(found, keys...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(found, []string{key}) {
		t.Fatalf("keys naming family %q on the masters = %q, want only %q", fam, found, key)
	}
}

// TestNoExtraCopies_S17: values are stored only under the keys given, and
// a family only in its hash; nothing else in Redis holds them.
func TestNoExtraCopies_S17(t *testing.T) {
	s := newStore(t, standalone.Addr())
	ctx := t.Context()
	secret := func(name string) []byte { return []byte(name + "-" + randomPrefix()) }
	put, created, taken, grant := secret("put"), secret("created"), secret("taken"), secret("grant")
	if err := s.Put(ctx, "kput", put, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, "kcreate", created, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "ktake", taken, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Take(ctx, "ktake"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Incr(ctx, "kcount", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateFamily(ctx, "fam", "tok0", grant, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rotate(ctx, "fam", "tok0", "tok1"); err != nil {
		t.Fatal(err)
	}

	rc := redis.NewClient(&redis.Options{Addr: standalone.Addr()})
	defer rc.Close()
	// Dump every key of the server (other tests' leftovers included) and
	// record where each value shows up.
	where := map[string][]string{}
	iter := rc.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		var blob []byte
		switch typ := rc.Type(ctx, k).Val(); typ {
		case "string":
			blob, _ = rc.Get(ctx, k).Bytes()
		case "hash":
			for f, v := range rc.HGetAll(ctx, k).Val() {
				blob = append(append(blob, f...), v...)
			}
		case "zset": // indexes (IndexStore): members are store keys
			for _, m := range rc.ZRange(ctx, k, 0, -1).Val() {
				blob = append(blob, m...)
			}
		case "none": // expired meanwhile
		case "stream": // per-tenant audit streams (events, never tokens)
			for _, m := range rc.XRange(ctx, k, "-", "+").Val() {
				for f, v := range m.Values {
					blob = append(append(blob, f...), fmt.Sprint(v)...)
				}
			}
		default:
			t.Errorf("key %q has type %s, want string, hash, zset or stream", k, typ)
		}
		for _, v := range [][]byte{put, created, taken, grant} {
			if bytes.Contains(blob, v) || bytes.Contains([]byte(k), v) {
				where[string(v)] = append(where[string(v)], k)
			}
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	p := s.FamilyKey("fam")
	p = p[:len(p)-len("fam:{fam}")] // the store's prefix
	for _, tc := range []struct {
		name  string
		value []byte
		want  []string
	}{
		{"Put", put, []string{p + "kput"}},
		{"Create", created, []string{p + "kcreate"}},
		{"Take", taken, nil},
		{"CreateFamily", grant, []string{s.FamilyKey("fam")}},
	} {
		if got := where[string(tc.value)]; !slices.Equal(got, tc.want) {
			t.Errorf("%s value found under %q, want only %q", tc.name, got, tc.want)
		}
	}
	keys, err := rc.Keys(ctx, p+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	wantKeys := []string{p + "fam:{fam}", p + "kcount", p + "kcreate", p + "kput"}
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("keys under the prefix = %q, want %q", keys, wantKeys)
	}
}

func TestNewRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts redisstore.Options
	}{
		{"no address", redisstore.Options{}},
		{"brace in prefix", redisstore.Options{Addrs: []string{"127.0.0.1:1"}, Prefix: "a{b}:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := redisstore.New(tc.opts); err == nil {
				_ = s.Close()
				t.Fatalf("New(%+v) = nil error, want an error", tc.opts)
			}
		})
	}
}

// TestNewFromClientLeavesClientOpen: the caller owns a client it passed in.
func TestNewFromClientLeavesClientOpen(t *testing.T) {
	rc := redis.NewClient(&redis.Options{Addr: standalone.Addr(), MaxRetries: -1})
	defer rc.Close()
	s := redisstore.NewFromClient(rc, "")
	if got, want := s.FamilyKey("f"), "rg:fam:{f}"; got != want {
		t.Errorf("FamilyKey with default prefix = %q, want %q", got, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := rc.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("client Ping after Store.Close = %v, want nil", err)
	}
}
