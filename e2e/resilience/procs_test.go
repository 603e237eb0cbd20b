package resilience

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const startTimeout = 20 * time.Second

// proc is one realmgate process the test started; it is stopped in cleanup.
type proc struct {
	name string
	addr string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

// startRealmgate runs `realmgate serve` with config on addr. It does not
// wait for readiness (see waitReady), so several processes start at once.
func startRealmgate(t *testing.T, name, config, addr string) *proc {
	t.Helper()
	cmd := exec.Command(env.binary, "serve", "--config", config, "--listen", addr, "--log-format", "text")
	p := &proc{name: name, addr: addr, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	// stdout carries the audit stream, stderr the operational log: both are
	// searched for panics.
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.Env = os.Environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("---- output of %s (request and audit lines left out) ----\n%s", name, p.out.interesting(6000))
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process: SIGTERM, and SIGKILL if it is still there after 5 s.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(5 * time.Second):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// panicRE matches what a panic leaves in realmgate's output: the runtime's
// crash report, or the broker's recovery middleware's log line.
var panicRE = regexp.MustCompile(`(?m)^panic: |goroutine \d+ \[running\]|msg=panic\b|"msg":"panic"`)

// checkHealthy fails the test if the process exited or ever panicked.
func (p *proc) checkHealthy(t *testing.T) {
	t.Helper()
	if p.exited() {
		t.Errorf("%s exited during the test (state %v)", p.name, p.cmd.ProcessState)
	}
	if loc := panicRE.FindStringIndex(p.out.String()); loc != nil {
		out := p.out.String()
		t.Errorf("%s panicked: %q", p.name, out[max(0, loc[0]-200):min(len(out), loc[1]+1500)])
	}
}

// waitReady waits until /readyz answers 200.
func waitReady(t *testing.T, p *proc) {
	t.Helper()
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		if p.exited() {
			t.Fatalf("%s exited at start:\n%s", p.name, p.out.tail(4000))
		}
		resp, err := hc.Get("http://" + p.addr + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within %s (last: %v):\n%s", p.name, startTimeout, err, p.out.tail(4000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readyz returns the status of /readyz (0 when the request failed).
func readyz(addr string) int {
	resp, err := (&http.Client{Timeout: 3 * time.Second}).Get("http://" + addr + "/readyz")
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// syncBuffer is a goroutine-safe output collector.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) tail(n int) string {
	b := s.String()
	if len(b) > n {
		b = "..." + b[len(b)-n:]
	}
	return b
}

// interesting returns the last n bytes of the output without the
// per-request and audit lines.
func (s *syncBuffer) interesting(n int) string {
	var b strings.Builder
	for _, line := range strings.Split(s.String(), "\n") {
		if !strings.Contains(line, "msg=request ") && !strings.Contains(line, "stream=audit") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	out := b.String()
	if len(out) > n {
		out = "..." + out[len(out)-n:]
	}
	return out
}

// freeAddr returns a 127.0.0.1 address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}
