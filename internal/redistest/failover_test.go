package redistest

import (
	"strings"
	"testing"
	"time"
)

// TestClusterForceFailover_BackAndForth fails one shard over three times
// in a row, as TestResilience_SingleUseAcrossFailover does when it picks a
// shard again within seconds: each time the replica must take over and the
// old master must become its in-sync replica, both by their own word (INFO
// replication). With CLUSTER FAILOVER FORCE (an election) the second and
// third took 20 s each ("Failover auth denied: it is a master node",
// "Failover attempt expired", "Manual failover timed out" in the nodes'
// logs) or were undone (see ForceFailover); TAKEOVER takes milliseconds.
func TestClusterForceFailover_BackAndForth(t *testing.T) {
	t.Setenv(EnvClusterAddrs, "")
	c := StartClusterWithReplicas(t)
	shards, err := c.Shards()
	if err != nil {
		t.Fatal(err)
	}
	sh := shards[0]
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, n := range []*Server{shards[0].Master, shards[0].Replica} {
			for _, l := range strings.Split(n.log.tail(), "\n") {
				if strings.Contains(l, "ailover") || strings.Contains(l, "epoch") || strings.Contains(l, "Configuration change") {
					t.Logf("%s: %s", n.Addr(), l)
				}
			}
		}
	})
	for i := range 3 {
		start := time.Now()
		_, err := c.ForceFailover(sh, 40*time.Second)
		t.Logf("failover %d took %s", i+1, time.Since(start).Round(time.Millisecond))
		if err != nil {
			t.Fatalf("failover %d of %s by %s: %v", i+1, sh.Master.Addr(), sh.Replica.Addr(), err)
		}
		sh = Shard{Master: sh.Replica, Replica: sh.Master}
		info, err := command(sh.Master.Addr(), "INFO", "replication")
		if err != nil || !strings.Contains(info, "role:master\r\n") {
			t.Fatalf("after failover %d, INFO of %s = %v\n%s; want role:master", i+1, sh.Master.Addr(), err, info)
		}
		if err := waitReplicaOf(sh.Replica.Addr(), sh.Master.Addr(), 0); err != nil {
			t.Fatalf("after failover %d: %v", i+1, err)
		}
	}
}
