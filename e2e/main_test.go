package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/realmgate/realmgate/internal/e2etest"
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
}

func TestMain(m *testing.M) {
	os.Exit(e2etest.Main(m, "e2e", prepare))
}

// prepare builds the binary, starts Redis and installs the node peers. It
// tries every step and reports all problems together.
func prepare() error {
	var errs []error
	start := time.Now()
	bin, err := e2etest.Binary()
	if err != nil {
		errs = append(errs, err)
	}
	env.binary = bin
	buildTook := time.Since(start)

	if s, err := redistest.StartProcess(); err != nil {
		errs = append(errs, fmt.Errorf("redis: %w", err))
	} else {
		env.redis = s
		if !s.External() {
			e2etest.AtExit(func() {
				if err := s.Stop(); err != nil {
					fmt.Fprintln(os.Stderr, "e2e: stop redis:", err)
				}
			})
		}
	}

	if env.nodeDir, err = filepath.Abs("node"); err != nil {
		errs = append(errs, err)
	} else if env.node, err = e2etest.Node(env.nodeDir, pinned); err != nil {
		errs = append(errs, err)
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "e2e: setup took %s (build %s)\n", time.Since(start).Round(time.Millisecond), buildTook.Round(time.Millisecond))
	}
	return errors.Join(errs...)
}
