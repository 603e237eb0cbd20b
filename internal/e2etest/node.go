package e2etest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Node checks that Node.js is installed and that dir/node_modules holds the
// pinned packages (name to exact version), running `npm ci` in dir when it
// does not. It returns the path of the node executable. The errors say what
// to install.
func Node(dir string, pinned map[string]string) (string, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return "", errors.New("node not found in PATH: the end-to-end tests need Node.js 20+ and npm (apt-get install nodejs npm)")
	}
	if InstalledPinned(dir, pinned) {
		return node, nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return node, fmt.Errorf("npm not found in PATH: the end-to-end tests need npm to install %s (apt-get install npm)", dir)
	}
	cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return node, fmt.Errorf("npm ci in %s: %w\n%s", dir, err, b)
	}
	if !InstalledPinned(dir, pinned) {
		return node, fmt.Errorf("npm ci in %s did not install the pinned versions %v", dir, pinned)
	}
	return node, nil
}

// InstalledPinned reports whether dir/node_modules holds every package of
// pinned at exactly its version.
func InstalledPinned(dir string, pinned map[string]string) bool {
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

// NodeCommand is `node args...` run in dir, with Node's warnings off so
// that its output is only what the script prints.
func NodeCommand(node, dir string, args ...string) *exec.Cmd {
	cmd := exec.Command(node, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NODE_NO_WARNINGS=1")
	return cmd
}
