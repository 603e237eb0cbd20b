package resilience

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// envBinary names a prebuilt realmgate binary to test instead of building
// ./cmd/realmgate (CI that already built it, or a binary under study).
const envBinary = "REALMGATE_BIN"

// env is what TestMain prepared once for every test.
var env struct {
	// binary is the realmgate binary built from ./cmd/realmgate.
	binary string
	// err is why the environment could not be prepared; every test fails with it.
	err error
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	tmp, err := os.MkdirTemp("", "realmgate-resilience-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "resilience: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	env.err = prepare(tmp)
	code := m.Run()
	if env.err != nil {
		fmt.Fprintf(os.Stderr, "resilience: environment not ready: %v\n", env.err)
		if code == 0 {
			code = 1 // a missing redis-server is a failure, never a skip
		}
	}
	return code
}

// prepare builds the binary and checks that the Redis binaries are installed.
func prepare(tmp string) error {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return fmt.Errorf("repository root not found above e2e/resilience: %w", err)
	}
	var errs []error
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			errs = append(errs, fmt.Errorf("%s not found in PATH: install it (apt-get install redis-server)", bin))
		}
	}
	if bin := os.Getenv(envBinary); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", envBinary, err))
		}
		env.binary = bin
		return errors.Join(errs...)
	}
	env.binary = filepath.Join(tmp, "realmgate")
	// "go" from PATH: go test puts its own GOROOT/bin first there.
	cmd := exec.Command("go", "build", "-o", env.binary, "./cmd/realmgate")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		errs = append(errs, fmt.Errorf("go build ./cmd/realmgate: %w\n%s", err, b))
	}
	return errors.Join(errs...)
}

// needEnv fails the test when the environment is not ready.
func needEnv(t *testing.T) {
	t.Helper()
	if env.err != nil {
		t.Fatalf("resilience environment not ready: %v", env.err)
	}
}
