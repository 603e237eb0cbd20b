package e2etest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/realmgate/realmgate/internal/e2etest"
)

func ExampleSyncBuffer_Tail() {
	var b e2etest.SyncBuffer
	fmt.Fprint(&b, "starting\nready\n")
	fmt.Printf("%q\n", b.Tail(6))
	// Output: "...ready\n"
}

func TestSyncBuffer_ConcurrentWriters(t *testing.T) {
	var b e2etest.SyncBuffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				fmt.Fprintln(&b, "0123456789")
			}
		})
	}
	wg.Wait()
	if got, want := len(b.String()), 8*100*11; got != want {
		t.Errorf("len(String()) = %d, want %d", got, want)
	}
	for _, line := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
		if line != "0123456789" {
			t.Fatalf("line %q, want every write whole", line)
		}
	}
}

// fakeT records Fatalf instead of ending the test that runs the harness;
// the methods the harness does not call are the nil embedded TB's.
type fakeT struct {
	testing.TB
	mu       sync.Mutex
	fatal    string
	logs     []string
	cleanups []func()
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatal = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}
func (f *fakeT) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
func (f *fakeT) Failed() bool      { f.mu.Lock(); defer f.mu.Unlock(); return f.fatal != "" }
func (f *fakeT) Logf(format string, args ...any) {
	f.logs = append(f.logs, fmt.Sprintf(format, args...))
}

// run calls fn with a fakeT and returns what it failed with ("" if nothing),
// after running the cleanups fn registered.
func run(fn func(t *fakeT)) string { return runOn(&fakeT{}, fn) }

func runOn(f *fakeT, fn func(t *fakeT)) string {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
	return f.fatal
}

func sh(script string) *exec.Cmd { return exec.Command("/bin/sh", "-c", script) }

func TestStart_CapturesOutput(t *testing.T) {
	p := e2etest.Start(t, "sh", sh("echo one; echo oops >&2; echo two"))
	<-p.Done()
	if got, want := p.Lines(), []string{"one", "two"}; !slices.Equal(got, want) {
		t.Errorf("Lines() = %q, want %q (stdout only)", got, want)
	}
	for _, want := range []string{"one\n", "oops\n", "two\n"} {
		if !strings.Contains(p.Out.String(), want) {
			t.Errorf("Out = %q, want it to hold %q", p.Out.String(), want)
		}
	}
	if !p.Exited() || !p.Cmd.ProcessState.Success() {
		t.Errorf("Exited() = %v, state %v; want a finished, successful process", p.Exited(), p.Cmd.ProcessState)
	}
}

func TestStart_StopsAtCleanup(t *testing.T) {
	var p *e2etest.Proc
	if msg := run(func(f *fakeT) { p = e2etest.Start(f, "sleeper", exec.Command("sleep", "600")) }); msg != "" {
		t.Fatalf("Start failed: %s", msg)
	}
	if !p.Exited() {
		t.Errorf("the process still runs after the test's cleanup")
	}
}

func TestStart_DumpsOutputOnFailure(t *testing.T) {
	f := &fakeT{}
	runOn(f, func(f *fakeT) {
		p := e2etest.Start(f, "server", sh("echo msg=request path=/x; echo msg=started; echo boom >&2"),
			e2etest.OmitFromDump(func(line string) bool { return strings.Contains(line, "msg=request") }))
		<-p.Done()
		f.Fatalf("the test failed")
	})
	dump := strings.Join(f.logs, "\n")
	if !strings.Contains(dump, "output of server") || !strings.Contains(dump, "msg=started") || !strings.Contains(dump, "boom") ||
		strings.Contains(dump, "msg=request") {
		t.Errorf("dump of a failed test = %q, want the output of server without the omitted lines", dump)
	}
	f = &fakeT{}
	runOn(f, func(f *fakeT) { <-e2etest.Start(f, "server", sh("echo fine")).Done() })
	if len(f.logs) != 0 {
		t.Errorf("a passing test logged %q, want nothing", f.logs)
	}
}

func TestWaitLine(t *testing.T) {
	for _, tc := range []struct {
		name, script, wantLine, wantFatal string
	}{
		{"a later line matches", "echo starting; echo ready at 1; exec sleep 600", "ready at 1", ""},
		{"the process exits first", "echo starting; echo broken >&2; exit 3", "", "exited at start"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			msg := run(func(f *fakeT) {
				p := e2etest.Start(f, "sh", sh(tc.script))
				got = p.WaitLine(f, func(line string) bool { return strings.HasPrefix(line, "ready") })
			})
			if got != tc.wantLine || !strings.Contains(msg, tc.wantFatal) || (tc.wantFatal == "") != (msg == "") {
				t.Errorf("WaitLine = %q, failure %q; want %q, failure containing %q", got, msg, tc.wantLine, tc.wantFatal)
			}
			if tc.wantFatal != "" && !strings.Contains(msg, "broken") {
				t.Errorf("failure %q does not show the process's output", msg)
			}
		})
	}
}

func TestWaitReady(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name, script, wantFatal string
	}{
		{"ready after two 503s", "exec sleep 600", ""},
		{"the process exits first", "echo no config >&2; exit 1", "exited at start"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls.Store(0)
			msg := run(func(f *fakeT) {
				p := e2etest.Start(f, "server", sh(tc.script))
				if tc.wantFatal != "" {
					<-p.Done()
				}
				p.WaitReady(f, srv.URL+"/readyz")
			})
			if !strings.Contains(msg, tc.wantFatal) || (tc.wantFatal == "") != (msg == "") {
				t.Errorf("WaitReady failed with %q, want a failure containing %q", msg, tc.wantFatal)
			}
			if tc.wantFatal == "" && calls.Load() != 3 {
				t.Errorf("WaitReady asked %d times, want 3 (two 503s, then 200)", calls.Load())
			}
		})
	}
}

func TestFreeAddr_Loopback(t *testing.T) {
	if addr := e2etest.FreeAddr(t); !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Errorf("FreeAddr() = %q, want 127.0.0.1:port", addr)
	}
}

func TestInstalledPinned(t *testing.T) {
	dir := t.TempDir()
	pkg := filepath.Join(dir, "node_modules", "@scope", "lib")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pkg, "package.json"), []byte(`{"name":"@scope/lib","version":"1.2.3"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		pinned map[string]string
		want   bool
	}{
		{"the pinned version", map[string]string{"@scope/lib": "1.2.3"}, true},
		{"another version", map[string]string{"@scope/lib": "1.2.4"}, false},
		{"a package missing", map[string]string{"@scope/lib": "1.2.3", "other": "1.0.0"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := e2etest.InstalledPinned(dir, tc.pinned); got != tc.want {
				t.Errorf("InstalledPinned(%v) = %v, want %v", tc.pinned, got, tc.want)
			}
		})
	}
}

func TestRepoRoot(t *testing.T) {
	root, err := e2etest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !strings.HasPrefix(string(b), "module github.com/realmgate/realmgate\n") {
		t.Errorf("RepoRoot() = %q: go.mod %.40q, %v; want realmgate's module", root, b, err)
	}
}
