package e2etest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"text/template"

	"github.com/realmgate/realmgate/internal/e2etest"
)

// env is what setup prepared for every test of the package.
var env struct{ binary, node, nodeDir string }

// setup builds realmgate and installs the package's node peers; Main keeps
// its error for Need.
func setup() error {
	var err error
	if env.binary, err = e2etest.Binary(); err != nil {
		return err
	}
	env.nodeDir, _ = filepath.Abs("node")
	env.node, err = e2etest.Node(env.nodeDir, map[string]string{"oidc-provider": "9.13.3"})
	return err
}

var config = template.Must(template.New("realmgate.yaml").Parse("issuer: http://{{.}}\n"))

// testMain is an end-to-end package's TestMain.
func testMain(m *testing.M) { os.Exit(e2etest.Main(m, "e2e/example", setup)) }

// testServe is one of its tests: realmgate on a free loopback port, stopped
// when the test ends, its output printed if the test fails.
func testServe(t *testing.T) {
	e2etest.Need(t)
	addr := e2etest.FreeAddr(t)
	cfg := e2etest.WriteConfig(t, config, addr)
	rg := e2etest.Start(t, "realmgate", exec.Command(env.binary, "serve", "--config", cfg, "--listen", addr))
	rg.WaitReady(t, "http://"+addr+"/readyz")
	op := e2etest.Start(t, "oidc-provider", e2etest.NodeCommand(env.node, env.nodeDir, "op.mjs"))
	op.WaitLine(t, func(line string) bool { return line != "" })
}

// Example shows an end-to-end package built on the harness: testMain is its
// TestMain, testServe one of its tests (TestServe).
func Example() {
	_, _ = testMain, testServe
}
