// Package e2etest is the process harness the end-to-end test packages share
// (e2e, e2e/resilience, e2e/saml, and e2e/chrome for its buffer): a TestMain
// body that lets a broken environment fail every test instead of skipping
// it, the realmgate binary built once per test binary, the Node.js peers
// checked and installed, child processes with captured output (printed when
// the test fails), readiness waits, free loopback ports and a
// concurrency-safe buffer.
//
// It imports nothing of realmgate, so any package's tests may use it.
package e2etest

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// EnvBinary names a prebuilt realmgate binary to test instead of building
// ./cmd/realmgate (CI that already built it, or a binary under study).
const EnvBinary = "REALMGATE_BIN"

// StartTimeout bounds how long a process may take to start or become ready.
// It is generous on purpose: CI machines are shared and slow under load, and
// a healthy process is waited for only as long as it needs.
const StartTimeout = 90 * time.Second

// state is what Main prepared for this test binary.
var state struct {
	mu       sync.Mutex
	name     string // the package, for messages
	err      error  // why the environment is not ready
	cleanups []func()
}

// Main is the body of an end-to-end package's TestMain; it returns the exit
// code for os.Exit. It parses the flags, runs setup once, runs the tests,
// then the functions given to AtExit (the last first). An error of setup
// does not stop the run: every test that calls Need fails with it, and the
// run fails even when no test did, since a missing peer is a failure, never
// a skip. name (the package, "e2e/saml") prefixes Main's messages.
func Main(m *testing.M, name string, setup func() error) int {
	flag.Parse()
	state.mu.Lock()
	state.name = name
	state.mu.Unlock()
	err := setup()
	state.mu.Lock()
	state.err = err
	state.mu.Unlock()
	code := m.Run()
	runCleanups()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: environment not ready: %v\n", name, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Need fails t when the setup of Main failed, with what it said (what is
// missing and how to install it).
func Need(t testing.TB) {
	t.Helper()
	state.mu.Lock()
	name, err := state.name, state.err
	state.mu.Unlock()
	if err != nil {
		t.Fatalf("%s: end-to-end environment not ready: %v", name, err)
	}
}

// AtExit registers f to run after the tests of Main (stopping a server the
// setup started, removing a directory). Functions run the last first.
func AtExit(f func()) {
	state.mu.Lock()
	defer state.mu.Unlock()
	state.cleanups = append(state.cleanups, f)
}

func runCleanups() {
	state.mu.Lock()
	fs := state.cleanups
	state.cleanups = nil
	state.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// RepoRoot returns the directory of the go.mod above the working directory
// (a test runs in its package's directory).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("e2etest: working directory: %w", err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("e2etest: no go.mod above %s", dir)
		}
	}
}

// binary is the outcome of the one build of Binary.
var binary struct {
	once sync.Once
	path string
	err  error
}

// Binary returns the realmgate binary to test: $REALMGATE_BIN when set,
// else ./cmd/realmgate of this module, built the first time Binary is
// called in a test binary (later calls return the same file) into a
// temporary directory that Main removes after the tests.
func Binary() (string, error) {
	binary.once.Do(func() {
		if bin := os.Getenv(EnvBinary); bin != "" {
			if _, err := os.Stat(bin); err != nil {
				binary.err = fmt.Errorf("%s: %w", EnvBinary, err)
			}
			binary.path = bin
			return
		}
		root, err := RepoRoot()
		if err != nil {
			binary.err = err
			return
		}
		dir, err := os.MkdirTemp("", "realmgate-e2e-bin-")
		if err != nil {
			binary.err = fmt.Errorf("e2etest: temp dir: %w", err)
			return
		}
		AtExit(func() { os.RemoveAll(dir) })
		binary.path = filepath.Join(dir, "realmgate")
		binary.err = Build(root, "./cmd/realmgate", binary.path)
	})
	return binary.path, binary.err
}

// Build runs `go build -o out pkg` in the module at root.
func Build(root, pkg, out string) error {
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
		if _, err := os.Stat(gobin); err != nil {
			return errors.New("go not found in PATH or $GOROOT/bin: the end-to-end tests build realmgate with it")
		}
	}
	cmd := exec.Command(gobin, "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// FreeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}
