package redistest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Sentinel timings: short, so a failover finishes in a few seconds on
// loopback. A master unreachable for SentinelDownAfter is subjectively down;
// two of the three sentinels agreeing make it objectively down and one of
// them promotes the replica.
const (
	// SentinelMasterName is the name the sentinels monitor the master under
	// (the master_name of realmgate's Redis configuration).
	SentinelMasterName = "rgmaster"
	// SentinelDownAfter is the sentinels' down-after-milliseconds.
	SentinelDownAfter = time.Second
	sentinelQuorum    = 2
	sentinelFailover  = 3 * time.Second // failover-timeout
	sentinelReady     = 15 * time.Second
)

// Sentinel is a Redis Sentinel deployment on loopback: a primary, a replica
// of it and three sentinels monitoring it with a quorum of two. Which data
// node is the master changes with failovers; MasterAddr asks the sentinels.
type Sentinel struct {
	name      string
	nodes     []*Server // the initial primary, then the initial replica
	sentinels []*sentinelProc
	dir       string
}

// sentinelProc is one `redis-server <conf> --sentinel` process.
type sentinelProc struct {
	addr string
	conf string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *lockedBuffer
}

// StartSentinel starts a primary, a replica and three sentinels, waits until
// the replica is in sync and every sentinel knows the replica and the two
// other sentinels (so a failover can happen), and stops everything when the
// test ends. It calls t.Fatal if redis-server is not installed: sentinels run
// as `redis-server <file> --sentinel`, so no other package is needed.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	s, err := startSentinel(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop redis sentinel deployment: %v", err)
		}
	})
	return s
}

func startSentinel(dir string) (*Sentinel, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, ErrNoRedis
	}
	s := &Sentinel{name: SentinelMasterName, dir: dir}
	primary, err := startServer(dir, false, func(int) []string {
		return []string{"--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"}
	})
	if err != nil {
		return nil, err
	}
	s.nodes = append(s.nodes, primary)
	replica, err := startServer(dir, false, func(int) []string {
		return []string{"--replicaof", "127.0.0.1", strconv.Itoa(primary.port),
			"--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0", "--repl-diskless-load", "swapdb"}
	})
	if err != nil {
		_ = s.Stop()
		return nil, err
	}
	s.nodes = append(s.nodes, replica)
	if err := waitReplicaSynced(replica.Addr(), sentinelReady); err != nil {
		_ = s.Stop()
		return nil, err
	}
	for i := range 3 {
		sp, err := startSentinelProc(dir, i, primary.port)
		if err != nil {
			_ = s.Stop()
			return nil, err
		}
		s.sentinels = append(s.sentinels, sp)
	}
	if err := s.waitMonitoring(sentinelReady); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// waitReplicaSynced waits until the replica at addr reports its link to the
// master up and no sync in progress.
func waitReplicaSynced(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		info, err := command(addr, "INFO", "replication")
		if err == nil && strings.Contains(info, "master_link_status:up") &&
			strings.Contains(info, "master_sync_in_progress:0") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redistest: replica %s not in sync after %s: %v\n%s", addr, timeout, err, info)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func startSentinelProc(dir string, i, masterPort int) (*sentinelProc, error) {
	var lastErr error
	for range startTries {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		conf := filepath.Join(dir, fmt.Sprintf("sentinel-%d.conf", i))
		// The sentinel rewrites its file as it learns the topology.
		text := fmt.Sprintf(`port %d
bind 127.0.0.1
daemonize no
logfile ""
dir %s
sentinel resolve-hostnames no
sentinel monitor %s 127.0.0.1 %d %d
sentinel down-after-milliseconds %s %d
sentinel failover-timeout %s %d
sentinel parallel-syncs %s 1
`, port, dir, SentinelMasterName, masterPort, sentinelQuorum,
			SentinelMasterName, SentinelDownAfter.Milliseconds(),
			SentinelMasterName, sentinelFailover.Milliseconds(), SentinelMasterName)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			return nil, fmt.Errorf("redistest: write %s: %w", conf, err)
		}
		sp := &sentinelProc{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), conf: conf}
		if lastErr = sp.start(); lastErr == nil {
			return sp, nil
		}
	}
	return nil, lastErr
}

func (p *sentinelProc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return ErrNoRedis
	}
	cmd := exec.Command(bin, p.conf, "--sentinel")
	cmd.SysProcAttr = sysProcAttr()
	p.log = &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redistest: start sentinel: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.cmd, p.done = cmd, done
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-done:
			p.cmd, p.done = nil, nil
			return fmt.Errorf("redistest: sentinel %s exited at start:\n%s", p.addr, p.log.tail())
		default:
		}
		if reply, err := command(p.addr, "PING"); err == nil && reply == "PONG" {
			return nil
		}
		if time.Now().After(deadline) {
			_ = p.stop()
			return fmt.Errorf("redistest: sentinel %s not ready after %s:\n%s", p.addr, readyTimeout, p.log.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *sentinelProc) stop() error {
	if p.cmd == nil {
		return nil
	}
	cmd, done := p.cmd, p.done
	p.cmd, p.done = nil, nil
	_ = cmd.Process.Signal(sigTerm)
	select {
	case <-done:
		return nil
	case <-time.After(stopTimeout):
	}
	_ = cmd.Process.Kill()
	<-done
	return nil
}

// waitMonitoring waits until every sentinel sees the master up with one
// replica and two other sentinels.
func (s *Sentinel) waitMonitoring(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, sp := range s.sentinels {
		for {
			m, err := sentinelMaster(sp.addr, s.name)
			if err == nil && m["num-slaves"] == "1" && m["num-other-sentinels"] == "2" &&
				!strings.Contains(m["flags"], "down") {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("redistest: sentinel %s not monitoring %s with 1 replica and 2 peers after %s: %v %v\n%s",
					sp.addr, s.name, timeout, m, err, sp.log.tail())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// sentinelMaster returns SENTINEL MASTER name as a map.
func sentinelMaster(addr, name string) (map[string]string, error) {
	reply, err := command(addr, "SENTINEL", "MASTER", name)
	if err != nil {
		return nil, err
	}
	f := strings.Split(reply, "\n")
	m := make(map[string]string, len(f)/2)
	for i := 0; i+1 < len(f); i += 2 {
		m[f[i]] = f[i+1]
	}
	return m, nil
}

// MasterName returns the name the sentinels monitor the master under.
func (s *Sentinel) MasterName() string { return s.name }

// SentinelAddrs returns the host:port of the three sentinels.
func (s *Sentinel) SentinelAddrs() []string {
	out := make([]string, len(s.sentinels))
	for i, sp := range s.sentinels {
		out[i] = sp.addr
	}
	return out
}

// Nodes returns the data nodes: the initial primary, then the initial replica.
func (s *Sentinel) Nodes() []*Server { return append([]*Server(nil), s.nodes...) }

// MasterAddr asks the sentinels (the first that answers) which node is the
// master now.
func (s *Sentinel) MasterAddr() (string, error) {
	var errs []error
	for _, sp := range s.sentinels {
		reply, err := command(sp.addr, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		host, port, ok := strings.Cut(reply, "\n")
		if !ok {
			errs = append(errs, fmt.Errorf("sentinel %s: no master %q: %q", sp.addr, s.name, reply))
			continue
		}
		return net.JoinHostPort(host, port), nil
	}
	return "", fmt.Errorf("redistest: no sentinel named the master: %w", errors.Join(errs...))
}

// agreedMaster returns the master every sentinel names, or an error when
// one cannot be asked or they differ.
func (s *Sentinel) agreedMaster() (string, error) {
	agreed := ""
	for _, sp := range s.sentinels {
		reply, err := command(sp.addr, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.name)
		if err != nil {
			return "", err
		}
		host, port, _ := strings.Cut(reply, "\n")
		addr := net.JoinHostPort(host, port)
		if agreed != "" && addr != agreed {
			return "", fmt.Errorf("redistest: sentinels disagree: %s and %s", agreed, addr)
		}
		agreed = addr
	}
	return agreed, nil
}

// Master returns the data node the sentinels name as master.
func (s *Sentinel) Master() (*Server, error) {
	addr, err := s.MasterAddr()
	if err != nil {
		return nil, err
	}
	for _, n := range s.nodes {
		if n.Addr() == addr {
			return n, nil
		}
	}
	return nil, fmt.Errorf("redistest: sentinels name %s, which is not a node of this deployment", addr)
}

// Failover stops the current master (as a crash would: no handover) and
// waits until the sentinels have promoted the other node and it accepts
// writes. It returns the stopped node and the new master; the stopped node
// stays down until its Restart, after which the sentinels make it a replica.
func (s *Sentinel) Failover(timeout time.Duration) (old, promoted *Server, err error) {
	old, err = s.Master()
	if err != nil {
		return nil, nil, err
	}
	if err := waitReplicaSynced(s.other(old).Addr(), timeout); err != nil {
		return nil, nil, err
	}
	if err := old.Stop(); err != nil {
		return nil, nil, err
	}
	promoted, err = s.WaitMaster(old.Addr(), timeout)
	return old, promoted, err
}

// WaitMaster waits until every sentinel names the same master, other than
// notAddr, and that node answers ROLE as master, and returns it. Sentinels
// other than the one that led the failover learn the new master a moment
// later (from hello messages); a client asks whichever sentinel it is
// connected to, so the failover is complete when they all agree.
func (s *Sentinel) WaitMaster(notAddr string, timeout time.Duration) (*Server, error) {
	deadline := time.Now().Add(timeout)
	for {
		addr, err := s.agreedMaster()
		if err == nil && addr != notAddr {
			if role, rerr := command(addr, "ROLE"); rerr == nil && strings.HasPrefix(role, "master") {
				for _, n := range s.nodes {
					if n.Addr() == addr {
						return n, nil
					}
				}
			}
		}
		if time.Now().After(deadline) {
			var logs strings.Builder
			for _, sp := range s.sentinels {
				fmt.Fprintf(&logs, "--- sentinel %s\n%s\n", sp.addr, sp.log.tail())
			}
			return nil, fmt.Errorf("redistest: no new master after %s (sentinels say %q, %v)\n%s", timeout, addr, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// other returns the data node that is not n.
func (s *Sentinel) other(n *Server) *Server {
	if s.nodes[0] == n {
		return s.nodes[1]
	}
	return s.nodes[0]
}

// Stop stops the sentinels and the data nodes. Stopping twice is not an error.
func (s *Sentinel) Stop() error {
	var errs []error
	for _, sp := range s.sentinels {
		sp.mu.Lock()
		errs = append(errs, sp.stop())
		sp.mu.Unlock()
	}
	for _, n := range s.nodes {
		errs = append(errs, n.Stop())
	}
	return errors.Join(errs...)
}
