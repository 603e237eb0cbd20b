// Package redistest starts real redis-server processes for tests: a
// standalone server on a free loopback port, or a three-master Redis Cluster.
// It never mocks Redis. When the environment variable
// REALMGATE_TEST_REDIS_ADDR (standalone) or REALMGATE_TEST_REDIS_CLUSTER_ADDRS
// (comma-separated cluster nodes) is set, the helpers use those external
// servers instead of starting processes.
//
// The redis-server and redis-cli binaries must be installed (Debian/Ubuntu:
// apt-get install redis-server); if they are missing the helpers fail the test
// with a message saying so.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Environment variables that point the helpers at external servers.
const (
	// EnvAddr names an external standalone Redis (host:port) to use instead
	// of starting redis-server.
	EnvAddr = "REALMGATE_TEST_REDIS_ADDR"
	// EnvClusterAddrs names the comma-separated nodes of an external Redis
	// Cluster to use instead of starting one.
	EnvClusterAddrs = "REALMGATE_TEST_REDIS_CLUSTER_ADDRS"
)

// ErrNoRedis means the redis-server (or redis-cli) binary is not installed.
var ErrNoRedis = errors.New("redistest: redis-server not found in PATH; install it (apt-get install redis-server) or set " + EnvAddr)

// ErrExternal means Stop or Restart was called on a server this package did
// not start (one named by EnvAddr or EnvClusterAddrs).
var ErrExternal = errors.New("redistest: cannot stop or restart an external redis")

const (
	readyTimeout = 10 * time.Second
	stopTimeout  = 5 * time.Second
	startTries   = 3
)

// Server is one redis-server process (or an external server).
type Server struct {
	addr     string
	port     int
	dir      string
	ownDir   bool // dir was created by StartProcess and is removed by Stop
	extra    []string
	external bool
	tls      *TLS // set by StartTLS (tls.go)

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	log  *lockedBuffer
}

// Start starts a redis-server on a free 127.0.0.1 port with persistence off
// and stops it when the test ends. If EnvAddr is set it returns that external
// server instead. It calls t.Fatal if redis-server is not installed.
func Start(t testing.TB) *Server {
	t.Helper()
	if addr := os.Getenv(EnvAddr); addr != "" {
		return &Server{addr: addr, external: true}
	}
	s, err := startServer(t.TempDir(), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop redis %s: %v", s.addr, err)
		}
	})
	return s
}

// StartProcess is Start for callers without a testing.TB (TestMain). The
// caller must call Stop, which also removes the server's temporary directory.
func StartProcess() (*Server, error) {
	if addr := os.Getenv(EnvAddr); addr != "" {
		return &Server{addr: addr, external: true}, nil
	}
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, fmt.Errorf("redistest: temp dir: %w", err)
	}
	s, err := startServer(dir, true, nil)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return s.addr }

// External reports whether the server was named by an environment variable
// rather than started here; such a server cannot be stopped or restarted.
func (s *Server) External() bool { return s.external }

// Stop terminates the server and waits for it to exit. Stopping a stopped
// server is not an error.
func (s *Server) Stop() error {
	if s.external {
		return ErrExternal
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.stopLocked()
	if s.ownDir {
		if rmErr := os.RemoveAll(s.dir); rmErr != nil && err == nil {
			err = fmt.Errorf("redistest: remove %s: %w", s.dir, rmErr)
		}
	}
	return err
}

func (s *Server) stopLocked() error {
	if s.cmd == nil {
		return nil
	}
	cmd, done := s.cmd, s.done
	s.cmd, s.done = nil, nil
	_ = cmd.Process.Signal(sigTerm)
	if sigCont != nil {
		_ = cmd.Process.Signal(sigCont) // in case it was paused
	}
	select {
	case <-done:
		return nil
	case <-time.After(stopTimeout):
	}
	_ = cmd.Process.Kill()
	<-done
	return nil
}

// Pause freezes the server (SIGSTOP): connections stay open but nothing is
// answered, as in a network partition. Resume undoes it; Stop works either way.
func (s *Server) Pause() error { return s.signal(sigStop) }

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() error { return s.signal(sigCont) }

func (s *Server) signal(sig os.Signal) error {
	if s.external {
		return ErrExternal
	}
	if sig == nil {
		return errors.New("redistest: pause and resume need Unix signals")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return errors.New("redistest: server not running")
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("redistest: signal %s: %w", sig, err)
	}
	return nil
}

// Restart stops the server and starts it again on the same port (an outage).
// Its data is lost: persistence is off.
func (s *Server) Restart() error {
	if s.external {
		return ErrExternal
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.stopLocked(); err != nil {
		return err
	}
	var err error
	for range startTries {
		if err = s.startLocked(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// startServer starts a server on a fresh free port in dir, trying again on
// another port if the chosen one was taken meanwhile.
func startServer(dir string, ownDir bool, extra func(port int) []string) (*Server, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, ErrNoRedis
	}
	var lastErr error
	for range startTries {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &Server{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), port: port, dir: dir, ownDir: ownDir}
		if extra != nil {
			s.extra = extra(port)
			if s.extra == nil {
				lastErr = errors.New("redistest: no free cluster bus port")
				continue
			}
		}
		s.mu.Lock()
		lastErr = s.startLocked()
		s.mu.Unlock()
		if lastErr == nil {
			return s, nil
		}
	}
	return nil, lastErr
}

func (s *Server) startLocked() error {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return ErrNoRedis
	}
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--dir", s.dir,
		"--logfile", "",
	}
	args = append(args, s.extra...)
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = sysProcAttr()
	s.log = &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redistest: start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done

	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-done:
			s.cmd, s.done = nil, nil
			return fmt.Errorf("redistest: redis-server on port %d exited at start:\n%s", s.port, s.log.tail())
		default:
		}
		if reply, err := command(s.addr, "PING"); err == nil && reply == "PONG" {
			return nil
		}
		if time.Now().After(deadline) {
			_ = s.stopLocked()
			return fmt.Errorf("redistest: redis-server on port %d not ready after %s:\n%s", s.port, readyTimeout, s.log.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Cluster is a Redis Cluster of three masters without replicas.
type Cluster struct {
	nodes []*Server
	addrs []string
}

// StartCluster starts three cluster-enabled redis-server processes, joins
// them with redis-cli --cluster create and waits until every node reports
// cluster_state:ok. The cluster is stopped when the test ends. If
// EnvClusterAddrs is set it returns that external cluster instead.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	if addrs := os.Getenv(EnvClusterAddrs); addrs != "" {
		return &Cluster{addrs: strings.Split(addrs, ",")}
	}
	c, err := startCluster(t.TempDir())
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

// StartClusterProcess is StartCluster for callers without a testing.TB
// (TestMain). The caller must call Stop.
func StartClusterProcess() (*Cluster, error) {
	if addrs := os.Getenv(EnvClusterAddrs); addrs != "" {
		return &Cluster{addrs: strings.Split(addrs, ",")}, nil
	}
	dir, err := os.MkdirTemp("", "redistest-cluster-")
	if err != nil {
		return nil, fmt.Errorf("redistest: temp dir: %w", err)
	}
	c, err := startCluster(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	c.nodes[0].ownDir = true // the first node's Stop removes the shared dir
	return c, nil
}

func startCluster(dir string) (*Cluster, error) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, fmt.Errorf("redistest: redis-cli not found in PATH; install it (apt-get install redis-server) or set %s", EnvClusterAddrs)
	}
	c := &Cluster{}
	for range 3 {
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
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		_ = c.Stop()
		return nil, fmt.Errorf("redistest: redis-cli --cluster create: %w\n%s", err, out)
	}
	deadline := time.Now().Add(readyTimeout)
	for _, addr := range c.addrs {
		for {
			info, err := command(addr, "CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") &&
				strings.Contains(info, "cluster_slots_ok:16384") &&
				strings.Contains(info, "cluster_known_nodes:3") {
				break
			}
			if time.Now().After(deadline) {
				_ = c.Stop()
				return nil, fmt.Errorf("redistest: cluster node %s not ok after %s: %v\n%s", addr, readyTimeout, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c, nil
}

// Addrs returns the host:port of every master.
func (c *Cluster) Addrs() []string { return append([]string(nil), c.addrs...) }

// Nodes returns the cluster's servers (nil for an external cluster).
func (c *Cluster) Nodes() []*Server { return append([]*Server(nil), c.nodes...) }

// Stop stops every node of a cluster this package started.
func (c *Cluster) Stop() error {
	if c.nodes == nil {
		return ErrExternal
	}
	var errs []error
	// Stop in reverse so the node owning the shared directory goes last.
	for i := len(c.nodes) - 1; i >= 0; i-- {
		errs = append(errs, c.nodes[i].Stop())
	}
	return errors.Join(errs...)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redistest: find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// command sends one command on a fresh connection and returns the reply as
// text (array elements joined by newlines). A Redis error reply is an error.
func command(addr string, args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	var b bytes.Buffer
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write(b.Bytes()); err != nil {
		return "", err
	}
	return readReply(bufio.NewReader(conn))
}

// readReply reads one RESP2 reply.
func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("redistest: empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", fmt.Errorf("redistest: redis: %s", line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", fmt.Errorf("redistest: bad bulk length %q", line)
		}
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", fmt.Errorf("redistest: bad array length %q", line)
		}
		parts := make([]string, 0, max(n, 0))
		for range n {
			p, err := readReply(r)
			if err != nil {
				return "", err
			}
			parts = append(parts, p)
		}
		return strings.Join(parts, "\n"), nil
	}
	return "", fmt.Errorf("redistest: unexpected reply %q", line)
}

// lockedBuffer collects a process's output for error messages.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	if len(s) > 4000 {
		s = s[len(s)-4000:]
	}
	return s
}
