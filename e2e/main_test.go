package e2e

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/realmgate/realmgate/internal/redistest"
)

// pinned are the npm packages e2e/node must hold, at these exact versions
// (package.json and package-lock.json pin the same).
var pinned = map[string]string{"oidc-provider": "9.13.3", "openid-client": "6.8.9"}

// env is what TestMain prepared once for every test.
var env struct {
	// binary is the realmgate binary built from ./cmd/realmgate.
	binary string
	// redis is the one redis-server every realmgate process of the run shares
	// (each test uses its own database number).
	redis *redistest.Server
	// nodeDir is e2e/node, with node_modules installed.
	nodeDir string
	// node is the path of the node executable.
	node string
	// err is why the environment could not be prepared; every test fails with it.
	err error
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	tmp, err := os.MkdirTemp("", "realmgate-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	env.err = prepare(tmp)
	if env.redis != nil && !env.redis.External() {
		defer func() {
			if err := env.redis.Stop(); err != nil {
				fmt.Fprintln(os.Stderr, "e2e: stop redis:", err)
			}
		}()
	}
	code := m.Run()
	if env.err != nil {
		fmt.Fprintf(os.Stderr, "e2e: environment not ready: %v\n", env.err)
		if code == 0 {
			code = 1 // a missing peer is a failure, never a skip
		}
	}
	return code
}

// prepare builds the binary, starts Redis and installs the node peers. It
// tries every step and reports all problems together.
func prepare(tmp string) error {
	root, err := filepath.Abs("..")
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return fmt.Errorf("repository root not found above e2e/: %w", err)
	}
	var errs []error
	start := time.Now()
	env.binary = filepath.Join(tmp, "realmgate")
	if err := buildBinary(root, env.binary); err != nil {
		errs = append(errs, err)
	}
	buildTook := time.Since(start)

	if s, err := redistest.StartProcess(); err != nil {
		errs = append(errs, fmt.Errorf("redis: %w", err))
	} else {
		env.redis = s
	}

	env.nodeDir = filepath.Join(root, "e2e", "node")
	if err := installNode(env.nodeDir); err != nil {
		errs = append(errs, err)
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "e2e: setup took %s (build %s)\n", time.Since(start).Round(time.Millisecond), buildTook.Round(time.Millisecond))
	}
	return errors.Join(errs...)
}

func buildBinary(root, out string) error {
	// "go" from PATH: go test puts its own GOROOT/bin first there.
	cmd := exec.Command("go", "build", "-o", out, "./cmd/realmgate")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/realmgate: %w\n%s", err, b)
	}
	return nil
}

// installNode checks node and npm and runs npm ci when node_modules is
// missing or holds other versions than the pinned ones.
func installNode(dir string) error {
	node, err := exec.LookPath("node")
	if err != nil {
		return errors.New("node not found in PATH: the end-to-end tests need Node.js 20+ and npm (apt-get install nodejs npm)")
	}
	env.node = node
	if installedPinned(dir) {
		return nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return errors.New("npm not found in PATH: the end-to-end tests need npm to install e2e/node (apt-get install npm)")
	}
	cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("npm ci in %s: %w\n%s", dir, err, b)
	}
	if !installedPinned(dir) {
		return fmt.Errorf("npm ci in %s did not install the pinned versions %v", dir, pinned)
	}
	return nil
}

func installedPinned(dir string) bool {
	for name, version := range pinned {
		b, err := os.ReadFile(filepath.Join(dir, "node_modules", name, "package.json"))
		if err != nil {
			return false
		}
		var pkg struct {
			Version string `json:"version"`
		}
		if json.Unmarshal(b, &pkg) != nil || pkg.Version != version {
			return false
		}
	}
	return true
}

// needEnv fails the test when the environment is not ready: missing node,
// npm or redis-server is a failure with a message saying what to install.
func needEnv(t *testing.T) {
	t.Helper()
	if env.err != nil {
		t.Fatalf("end-to-end environment not ready: %v", env.err)
	}
}
