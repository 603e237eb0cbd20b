package e2etest

import (
	"bufio"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stopGrace is how long Stop waits after SIGTERM before it kills.
const stopGrace = 5 * time.Second

// dumpBytes is how much of a process's output a failed test prints.
const dumpBytes = 6000

// Proc is a child process a test started with Start. It is stopped when
// the test ends, and its output is printed under the failure if the test
// failed.
type Proc struct {
	// Name names the process in messages.
	Name string
	// Cmd is the command; Cmd.Process and, after the exit, Cmd.ProcessState
	// are the process's.
	Cmd *exec.Cmd
	// Out holds what the process wrote to stdout and stderr, interleaved;
	// stdout arrives a whole line at a time.
	Out *SyncBuffer

	omit  func(line string) bool
	done  chan struct{}
	mu    sync.Mutex
	lines []string // stdout
}

// Option adjusts a Proc at Start.
type Option func(*Proc)

// OmitFromDump leaves the output lines that match out of what a failed test
// prints (per-request log lines, say). Out still holds them.
func OmitFromDump(match func(line string) bool) Option {
	return func(p *Proc) { p.omit = match }
}

// Start starts cmd, which has neither Stdout nor Stderr set, collecting its
// output in Out; its stdout lines are also kept apart (Lines, WaitLine).
// The process is stopped when the test ends (see Stop); on Linux it is also
// killed if the test binary dies without cleaning up. Start fails the test
// if the process cannot start.
func Start(t testing.TB, name string, cmd *exec.Cmd, opts ...Option) *Proc {
	t.Helper()
	p := &Proc{Name: name, Cmd: cmd, Out: &SyncBuffer{}, done: make(chan struct{})}
	for _, o := range opts {
		o(p)
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = sysProcAttr()
	}
	cmd.Stderr = p.Out
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("%s: stdout pipe: %v", name, err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	var reading sync.WaitGroup
	reading.Add(1)
	go func() {
		defer reading.Done()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.lines = append(p.lines, line)
			p.mu.Unlock()
			_, _ = io.WriteString(p.Out, line+"\n")
		}
		_, _ = io.Copy(p.Out, stdout) // a line too long for the scanner: keep the rest
	}()
	go func() {
		reading.Wait() // Wait closes the pipe: read it all first
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("---- output of %s ----\n%s", name, p.dump())
		}
	})
	return p
}

// dump is the tail of the output without the lines OmitFromDump names.
func (p *Proc) dump() string {
	out := p.Out.String()
	if p.omit != nil {
		var b strings.Builder
		for _, line := range strings.Split(out, "\n") {
			if !p.omit(line) {
				b.WriteString(line)
				b.WriteByte('\n')
			}
		}
		out = b.String()
	}
	return tail(out, dumpBytes)
}

// Done is closed when the process has exited and its output is read.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop ends the process: SIGTERM, and SIGKILL if it is still there 5 s
// later. It returns when the process has exited; stopping an exited
// process does nothing.
func (p *Proc) Stop() {
	if p.Exited() {
		return
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(stopGrace):
	}
	_ = p.Cmd.Process.Kill()
	<-p.done
}

// Lines returns the lines the process printed on stdout so far.
func (p *Proc) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// WaitLine waits for the first stdout line that match accepts and returns
// it. It fails the test if the process exits first or no line matches
// within StartTimeout.
func (p *Proc) WaitLine(t testing.TB, match func(line string) bool) string {
	t.Helper()
	deadline := time.Now().Add(StartTimeout)
	for seen := 0; ; {
		exited := p.Exited() // before reading: the lines of an exited process are all there
		lines := p.Lines()
		for _, line := range lines[seen:] {
			if match(line) {
				return line
			}
		}
		seen = len(lines)
		switch {
		case exited:
			t.Fatalf("%s exited at start:\n%s", p.Name, p.Out.Tail(4000))
		case time.Now().After(deadline):
			t.Fatalf("%s did not start within %s:\n%s", p.Name, StartTimeout, p.Out.Tail(4000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitReady waits until url answers 200 (realmgate's /readyz: the store is
// reachable and the keys are loaded). It fails the test if the process
// exits first or url is not ready within StartTimeout.
func (p *Proc) WaitReady(t testing.TB, url string) {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(StartTimeout)
	for {
		if p.Exited() {
			t.Fatalf("%s exited at start:\n%s", p.Name, p.Out.Tail(4000))
		}
		resp, err := hc.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready at %s within %s (last: %v):\n%s", p.Name, url, StartTimeout, err, p.Out.Tail(4000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
