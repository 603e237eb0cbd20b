// Package saml is the end-to-end test of realmgate's SAML service provider
// against samlify (an IdP nobody on the team wrote): the realmgate binary on
// a real redis-server, two samlify IdPs in node, and the Go test as the
// browser and the app. See README.md.
package saml

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/realmgate/realmgate/internal/e2etest"
)

// pinned are the npm packages node/ must hold, at these exact versions
// (package.json and package-lock.json pin the same).
var pinned = map[string]string{"samlify": "2.13.1", "@authenio/samlify-node-xmllint": "2.0.0"}

// env is what TestMain prepared once.
var env struct {
	binary, nodeDir, node string
}

func TestMain(m *testing.M) {
	os.Exit(e2etest.Main(m, "e2e/saml", prepare))
}

// prepare builds realmgate and installs the node peers, reporting every problem.
func prepare() error {
	var errs []error
	bin, err := e2etest.Binary()
	if err != nil {
		errs = append(errs, err)
	}
	env.binary = bin
	if env.nodeDir, err = filepath.Abs("node"); err != nil {
		errs = append(errs, err)
	} else if env.node, err = e2etest.Node(env.nodeDir, pinned); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
