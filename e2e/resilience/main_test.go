package resilience

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/realmgate/realmgate/internal/e2etest"
)

// env is what TestMain prepared once for every test.
var env struct {
	// binary is the realmgate binary built from ./cmd/realmgate, or
	// $REALMGATE_BIN (a binary CI already built, or one under study).
	binary string
}

func TestMain(m *testing.M) {
	os.Exit(e2etest.Main(m, "resilience", prepare))
}

// prepare builds the binary and checks that the Redis binaries are installed.
func prepare() error {
	var errs []error
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			errs = append(errs, fmt.Errorf("%s not found in PATH: install it (apt-get install redis-server)", bin))
		}
	}
	bin, err := e2etest.Binary()
	if err != nil {
		errs = append(errs, err)
	}
	env.binary = bin
	return errors.Join(errs...)
}
