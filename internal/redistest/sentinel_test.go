package redistest

import (
	"strings"
	"testing"
	"time"
)

// TestSentinelFailover starts the deployment, checks that a write on the
// master reaches the replica, fails the master over and checks that the
// promoted node holds the data and accepts writes.
func TestSentinelFailover(t *testing.T) {
	s := StartSentinel(t)
	if got := len(s.SentinelAddrs()); got != 3 {
		t.Fatalf("SentinelAddrs() has %d addresses, want 3", got)
	}
	first, err := s.Master()
	if err != nil {
		t.Fatal(err)
	}
	if first != s.Nodes()[0] {
		t.Fatalf("Master() = %s, want the initial primary %s", first.Addr(), s.Nodes()[0].Addr())
	}
	if _, err := command(first.Addr(), "SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	replica := s.Nodes()[1]
	if _, err := command(replica.Addr(), "SET", "x", "y"); err == nil || !strings.Contains(err.Error(), "READONLY") {
		t.Errorf("SET on the replica = %v, want a READONLY error", err)
	}
	if _, err := command(first.Addr(), "WAIT", "1", "2000"); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	old, promoted, err := s.Failover(20 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("failover took %s", time.Since(start).Round(time.Millisecond))
	if old != first || promoted != replica {
		t.Fatalf("Failover() = %s -> %s, want %s -> %s", old.Addr(), promoted.Addr(), first.Addr(), replica.Addr())
	}
	if got, err := command(promoted.Addr(), "GET", "k"); err != nil || got != "v" {
		t.Errorf("GET k on the promoted node = %q, %v; want v", got, err)
	}
	if _, err := command(promoted.Addr(), "SET", "k2", "v2"); err != nil {
		t.Errorf("SET on the promoted node: %v", err)
	}
	if addr, err := s.MasterAddr(); err != nil || addr != promoted.Addr() {
		t.Errorf("MasterAddr() = %q, %v; want %q", addr, err, promoted.Addr())
	}
}
