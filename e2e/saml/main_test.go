// Package saml is the end-to-end test of realmgate's SAML service provider
// against samlify (an IdP nobody on the team wrote): the realmgate binary on
// a real redis-server, two samlify IdPs in node, and the Go test as the
// browser and the app. See README.md.
package saml

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// pinned are the npm packages node/ must hold, at these exact versions
// (package.json and package-lock.json pin the same).
var pinned = map[string]string{"samlify": "2.13.1", "@authenio/samlify-node-xmllint": "2.0.0"}

// env is what TestMain prepared once.
var env struct {
	binary, nodeDir, node string
	// err is why the environment is not ready; every test fails with it.
	err error
}

func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "realmgate-e2e-saml-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e/saml: temp dir:", err)
		os.Exit(1)
	}
	env.err = prepare(tmp)
	code := m.Run()
	os.RemoveAll(tmp)
	if env.err != nil && code == 0 {
		code = 1 // a missing peer is a failure, never a skip
	}
	os.Exit(code)
}

// prepare builds realmgate and installs the node peers, reporting every problem.
func prepare(tmp string) error {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return fmt.Errorf("repository root not found above e2e/saml: %w", err)
	}
	var errs []error
	env.binary = filepath.Join(tmp, "realmgate")
	// "go" from PATH: go test puts its own GOROOT/bin first there.
	build := exec.Command("go", "build", "-o", env.binary, "./cmd/realmgate")
	build.Dir = root
	if b, err := build.CombinedOutput(); err != nil {
		errs = append(errs, fmt.Errorf("go build ./cmd/realmgate: %w\n%s", err, b))
	}
	env.nodeDir = filepath.Join(root, "e2e", "saml", "node")
	if err := installNode(env.nodeDir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// installNode runs npm ci when node_modules is missing or holds other
// versions than the pinned ones.
func installNode(dir string) error {
	node, err := exec.LookPath("node")
	if err != nil {
		return errors.New("node not found in PATH: the SAML end-to-end test needs Node.js 20+ and npm (apt-get install nodejs npm)")
	}
	env.node = node
	if installedPinned(dir) {
		return nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return errors.New("npm not found in PATH: the SAML end-to-end test needs npm to install e2e/saml/node (apt-get install npm)")
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

// needEnv fails the test when the environment is not ready.
func needEnv(t *testing.T) {
	t.Helper()
	if env.err != nil {
		t.Fatalf("end-to-end environment not ready: %v", env.err)
	}
}
