package redistest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Failovers with the old primary alive (issue 22): the moment of danger for
// single-use writes is when a replica has been promoted but the old primary
// still accepts writes, until it learns that it was replaced.

// StartReplica starts a redis-server replicating primary on a free loopback
// port, waits until it is in sync and stops it when the test ends.
func StartReplica(t testing.TB, primary *Server) *Server {
	t.Helper()
	r, err := StartReplicaProcess(primary)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Stop() })
	return r
}

// StartReplicaProcess is StartReplica for callers without a testing.TB; the
// caller must call Stop.
func StartReplicaProcess(primary *Server) (*Server, error) {
	host, port, err := net.SplitHostPort(primary.Addr())
	if err != nil {
		return nil, fmt.Errorf("redistest: primary address %q: %w", primary.Addr(), err)
	}
	r, err := StartProcessArgs("--replicaof", host, port)
	if err != nil {
		return nil, err
	}
	if err := waitReplicaSynced(r.Addr(), readyTimeout); err != nil {
		_ = r.Stop()
		return nil, err
	}
	return r, nil
}

// StartProcessArgs is StartProcess with extra redis-server arguments (it
// starts a process even when EnvAddr is set).
func StartProcessArgs(args ...string) (*Server, error) {
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, fmt.Errorf("redistest: temp dir: %w", err)
	}
	s, err := startServer(dir, true, func(int) []string { return append([]string{}, args...) })
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// ForceFailover makes the sentinels fail the master over while it is
// alive (SENTINEL FAILOVER: no agreement of the old master, which keeps
// accepting writes until the sentinels convert it into a replica of the new
// one). It waits until a sentinel sees a replica fit to promote, sends the
// command, waits until every sentinel names the promoted node (see
// WaitMaster) and then until the old master has become its replica and is
// in sync, so the next failover can start at once. It returns the old
// master, the promoted node, and when the sentinels agreed on the promoted
// node.
func (s *Sentinel) ForceFailover(timeout time.Duration) (old, promoted *Server, agreed time.Time, err error) {
	deadline := time.Now().Add(timeout)
	old, err = s.Master()
	if err != nil {
		return nil, nil, time.Time{}, err
	}
	sp := s.sentinels[0]
	for {
		reply, rerr := command(sp.addr, "SENTINEL", "FAILOVER", s.name)
		if rerr == nil && reply == "OK" {
			break
		}
		// NOGOODSLAVE until the sentinel has seen the replica in sync;
		// INPROG while the last failover finishes.
		if time.Now().After(deadline) {
			return nil, nil, time.Time{}, fmt.Errorf("redistest: SENTINEL FAILOVER: %v %q\n%s", rerr, reply, sp.log.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if promoted, err = s.WaitMaster(old.Addr(), time.Until(deadline)); err != nil {
		return nil, nil, time.Time{}, err
	}
	agreed = time.Now()
	if err := waitReplicaOf(old.Addr(), promoted.Addr(), time.Until(deadline)); err != nil {
		return nil, nil, time.Time{}, err
	}
	return old, promoted, agreed, nil
}

// waitReplicaOf waits until the server at addr replicates master, its link
// up and no sync in progress.
func waitReplicaOf(addr, master string, timeout time.Duration) error {
	host, port, _ := net.SplitHostPort(master)
	deadline := time.Now().Add(timeout)
	for {
		info, err := command(addr, "INFO", "replication")
		if err == nil && strings.Contains(info, "role:slave") &&
			strings.Contains(info, "master_host:"+host+"\r\n") && strings.Contains(info, "master_port:"+port+"\r\n") &&
			strings.Contains(info, "master_link_status:up") && strings.Contains(info, "master_sync_in_progress:0") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redistest: %s not an in-sync replica of %s after %s: %v\n%s", addr, master, timeout, err, info)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// StartClusterWithReplicas starts a Redis Cluster of three masters with one
// replica each (six redis-server processes), waits until every node reports
// cluster_state:ok with six known nodes and every replica is in sync, and
// stops it when the test ends.
func StartClusterWithReplicas(t testing.TB) *Cluster {
	t.Helper()
	c, err := startClusterN(t.TempDir(), 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop redis cluster: %v", err)
		}
	})
	return c
}

// clusterNode is one line of CLUSTER NODES.
type clusterNode struct {
	id, addr, flags, master string
	slots                   bool // it serves slots
}

func (n clusterNode) is(flag string) bool {
	return strings.Contains(","+n.flags+",", ","+flag+",")
}

// clusterNodes asks the node at addr for its view of the cluster.
func clusterNodes(addr string) ([]clusterNode, error) {
	reply, err := command(addr, "CLUSTER", "NODES")
	if err != nil {
		return nil, err
	}
	var out []clusterNode
	for _, line := range strings.Split(reply, "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		a, _, _ := strings.Cut(f[1], "@")
		out = append(out, clusterNode{id: f[0], addr: a, flags: f[2], master: f[3], slots: len(f) > 8})
	}
	return out, nil
}

// Shard is one master of a cluster and its replica.
type Shard struct{ Master, Replica *Server }

// Shards returns each master with its replica, as each replica reports
// its own role (INFO replication), in a stable order (by the replica's
// address): the nodes' own word, not one node's gossip view, which may
// still show a shard as it was before a recent failover. A cluster without
// replicas has none.
func (c *Cluster) Shards() ([]Shard, error) {
	var out []Shard
	nodes := c.nodes
	if len(nodes) == 0 { // an external cluster: the addresses given
		for _, a := range c.addrs {
			nodes = append(nodes, c.server(a))
		}
	}
	for _, n := range nodes {
		info, err := command(n.Addr(), "INFO", "replication")
		if err != nil {
			return nil, err
		}
		if !strings.Contains(info, "role:slave\r\n") {
			continue
		}
		host, port := infoField(info, "master_host"), infoField(info, "master_port")
		out = append(out, Shard{Master: c.server(net.JoinHostPort(host, port)), Replica: n})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("redistest: the cluster has no replica")
	}
	slices.SortFunc(out, func(a, b Shard) int { return strings.Compare(a.Replica.Addr(), b.Replica.Addr()) })
	return out, nil
}

// infoField is the value of name in an INFO reply, or "".
func infoField(info, name string) string {
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return v
		}
	}
	return ""
}

func (c *Cluster) server(addr string) *Server {
	for _, n := range c.nodes {
		if n.Addr() == addr {
			return n
		}
	}
	return &Server{addr: addr, external: true}
}

// ForceFailover makes the replica of shard take over while its master is
// alive (CLUSTER FAILOVER TAKEOVER on the replica: no handshake with the
// master, which keeps accepting writes until it learns of the new
// configuration and turns itself into the new master's replica). It waits
// until the replica reports itself master, every node's view gives it
// slots and every node reports cluster_state:ok (returned as promotedAt),
// then until the old master is an in-sync replica of it.
//
// TAKEOVER, not FORCE: FORCE still holds an election, and elections make
// a failover of a loaded test cluster a matter of timing (seen in Redis
// 7.0's logs): masters deny their vote while their gossip view still
// lists the replica as a master ("it is a master node", for a second or
// two after a role change); a replica starts no new election within 2x to
// 4x cluster-node-timeout of its last one ("Failover attempt expired"),
// and within 2x it counts that election's votes again, "wins" at once
// with its old configEpoch and hands the slots straight back to the
// current master, whose epoch is higher (the failover undone; the test
// fails a shard over again within seconds). TAKEOVER bumps the replica's
// configEpoch past every other one and claims the slots without votes.
func (c *Cluster) ForceFailover(sh Shard, timeout time.Duration) (promotedAt time.Time, err error) {
	deadline := time.Now().Add(timeout)
	// The pair's roles as the two nodes report them now: on a loaded
	// machine the cluster may have failed the shard over by itself since
	// sh was read (a master slow past cluster-node-timeout).
	for {
		if info, err := command(sh.Master.Addr(), "INFO", "replication"); err == nil && strings.Contains(info, "role:slave\r\n") &&
			net.JoinHostPort(infoField(info, "master_host"), infoField(info, "master_port")) == sh.Replica.Addr() {
			sh = Shard{Master: sh.Replica, Replica: sh.Master}
		}
		if err := waitReplicaOf(sh.Replica.Addr(), sh.Master.Addr(), min(5*time.Second, time.Until(deadline))); err == nil {
			break
		} else if time.Now().After(deadline) {
			return time.Time{}, err
		}
	}
	if reply, err := command(sh.Replica.Addr(), "CLUSTER", "FAILOVER", "TAKEOVER"); err != nil || reply != "OK" {
		return time.Time{}, fmt.Errorf("redistest: CLUSTER FAILOVER TAKEOVER on %s: %v %q", sh.Replica.Addr(), err, reply)
	}
	for {
		info, err := command(sh.Replica.Addr(), "INFO", "replication")
		if err == nil && strings.Contains(info, "role:master\r\n") {
			break
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("redistest: %s not promoted by CLUSTER FAILOVER TAKEOVER after %s: %v\n%s\n%s", sh.Replica.Addr(), timeout, err, info, c.failoverReport(sh))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, n := range c.nodes {
		for {
			// The promoted node must own slots in n's view: a node that
			// merely claims the master role is listed as a master (without
			// slots) before its claim on the slots is accepted, if ever.
			nodes, err := clusterNodes(n.Addr())
			info, ierr := command(n.Addr(), "CLUSTER", "INFO")
			ok := err == nil && ierr == nil && strings.Contains(info, "cluster_state:ok") &&
				slices.ContainsFunc(nodes, func(x clusterNode) bool { return x.addr == sh.Replica.Addr() && x.is("master") && x.slots })
			if ok {
				break
			}
			if time.Now().After(deadline) {
				return time.Time{}, fmt.Errorf("redistest: %s not master of its slots in the view of %s after %s: %v %v\n%s", sh.Replica.Addr(), n.Addr(), timeout, err, ierr, c.failoverReport(sh))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	promotedAt = time.Now()
	if err := waitReplicaOf(sh.Master.Addr(), sh.Replica.Addr(), time.Until(deadline)); err != nil {
		return time.Time{}, fmt.Errorf("%w\n%s", err, c.failoverReport(sh))
	}
	return promotedAt, nil
}

// failoverReport is what the two nodes of sh say about the cluster and
// what they logged, for a failover's error.
func (c *Cluster) failoverReport(sh Shard) string {
	var b strings.Builder
	for _, n := range []*Server{sh.Master, sh.Replica} {
		nodes, err := command(n.Addr(), "CLUSTER", "NODES")
		fmt.Fprintf(&b, "---- CLUSTER NODES of %s (%v):\n%s\n", n.Addr(), err, nodes)
		if n.log != nil {
			fmt.Fprintf(&b, "---- log of %s:\n%s\n", n.Addr(), n.log.tail())
		}
	}
	return b.String()
}

// startClusterN starts masters cluster-enabled masters with replicas
// replicas each and joins them with redis-cli --cluster create.
func startClusterN(dir string, masters, replicas int) (*Cluster, error) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, fmt.Errorf("redistest: redis-cli not found in PATH; install it (apt-get install redis-server) or set %s", EnvClusterAddrs)
	}
	total := masters * (1 + replicas)
	c := &Cluster{}
	for range total {
		n, err := startServer(dir, false, func(port int) []string {
			bus, err := freePort()
			if err != nil {
				return nil
			}
			return []string{
				"--cluster-enabled", "yes",
				"--cluster-config-file", fmt.Sprintf("nodes-%d.conf", port),
				"--cluster-port", strconv.Itoa(bus),
				"--cluster-node-timeout", "5000",
				"--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
			}
		})
		if err != nil {
			_ = c.Stop()
			return nil, err
		}
		c.nodes = append(c.nodes, n)
		c.addrs = append(c.addrs, n.Addr())
	}
	args := append([]string{"--cluster", "create"}, c.addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		_ = c.Stop()
		return nil, fmt.Errorf("redistest: redis-cli --cluster create: %w\n%s", err, out)
	}
	deadline := time.Now().Add(3 * readyTimeout)
	want := "cluster_known_nodes:" + strconv.Itoa(total)
	for _, addr := range c.addrs {
		for {
			info, err := command(addr, "CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") &&
				strings.Contains(info, "cluster_slots_ok:16384") && strings.Contains(info, want) {
				break
			}
			if time.Now().After(deadline) {
				_ = c.Stop()
				return nil, fmt.Errorf("redistest: cluster node %s not ok after %s: %v\n%s", addr, 3*readyTimeout, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if replicas > 0 {
		// redis-cli makes the replicas follow their masters after the
		// cluster is ok; wait until the first node lists every one.
		var shards []Shard
		for {
			shards, err = c.Shards()
			if err == nil && len(shards) == masters*replicas {
				break
			}
			if time.Now().After(deadline) {
				_ = c.Stop()
				return nil, fmt.Errorf("redistest: cluster replicas not set up after %s: %d of %d, %v", 3*readyTimeout, len(shards), masters*replicas, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		for _, sh := range shards {
			if err := waitReplicaOf(sh.Replica.Addr(), sh.Master.Addr(), time.Until(deadline)); err != nil {
				_ = c.Stop()
				return nil, err
			}
		}
		// Then until every node's gossip view lists every replica as one:
		// for a second or two a view shows a replica just assigned as a
		// master without slots (a client reading it sees a cluster
		// without replicas; a master reading it denies the replica its
		// vote in a failover election).
		for _, n := range c.nodes {
			for {
				nodes, err := clusterNodes(n.Addr())
				seen := 0
				for _, x := range nodes {
					if x.is("slave") {
						seen++
					}
				}
				if err == nil && seen == masters*replicas {
					break
				}
				if time.Now().After(deadline) {
					_ = c.Stop()
					return nil, fmt.Errorf("redistest: %s lists %d of %d replicas after %s: %v", n.Addr(), seen, masters*replicas, 3*readyTimeout, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	return c, nil
}
