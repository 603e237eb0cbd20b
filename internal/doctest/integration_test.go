package doctest

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/realmgate/realmgate/internal/e2etest"
)

// The integration guide's examples (docs/integration.md, whose code blocks
// TestDocs_Blocks checks equal to these files) each run as a web app on
// the example-app registration of `realmgate dev`; the test plays the
// browser through realmgate and the development IdP and checks the claims
// the app verified and shows.

func TestIntegration_Node_OpenIDClient(t *testing.T) {
	e2etest.Need(t)
	root := repo(t)
	node, err := e2etest.Node(filepath.Join(root, "e2e", "node"), map[string]string{"openid-client": "6.8.9"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join(root, "docs", "examples", "node", "app.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "app.mjs"), src, 0o600); err != nil {
		t.Fatal(err)
	}
	// The guide's `npm install openid-client`, from the pinned e2e peers.
	if err := os.Symlink(filepath.Join(root, "e2e", "node", "node_modules"), filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	runExample(t, func(d *demo) *exec.Cmd { return e2etest.NodeCommand(node, dir, "app.mjs") })
}

func TestIntegration_Go_GoOIDC(t *testing.T) {
	e2etest.Need(t)
	bin := filepath.Join(t.TempDir(), "example")
	if err := e2etest.Build(repo(t), "./docs/examples/go", bin); err != nil {
		t.Fatal(err)
	}
	runExample(t, func(d *demo) *exec.Cmd { return exec.Command(bin) })
}

func TestIntegration_Python_Authlib(t *testing.T) {
	e2etest.Need(t)
	python := "/usr/bin/python3" // Debian's, where python3-authlib installs
	if _, err := os.Stat(python); err != nil {
		if python, err = exec.LookPath("python3"); err != nil {
			t.Fatal("python3 not found: the Python example needs Debian's python3, python3-authlib and python3-requests (apt-get install python3-authlib python3-requests)")
		}
	}
	if b, err := exec.Command(python, "-c", "import authlib, requests").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import authlib and requests (apt-get install python3-authlib python3-requests; scripts/test.sh does): %v\n%s", python, err, b)
	}
	app := filepath.Join(repo(t), "docs", "examples", "python", "app.py")
	runExample(t, func(d *demo) *exec.Cmd { return exec.Command(python, "-u", app) })
}

// runExample starts the demo and the example app (command, with ISSUER and
// REDIRECT_URI set to the demo's moved ports) and signs two users of two
// tenants in through it.
func runExample(t *testing.T, command func(*demo) *exec.Cmd) {
	t.Helper()
	d := startDemo(t)
	cmd := command(d)
	issuer := "http://" + d.addr(8080)
	cmd.Env = append(os.Environ(), "NODE_NO_WARNINGS=1", "ISSUER="+issuer, "REDIRECT_URI=http://"+d.addr(3000)+"/callback")
	app := e2etest.Start(t, "example app", cmd)
	waitHTTP(t, app, "http://"+d.addr(3000)+"/")
	for _, tc := range []struct {
		email, realm, user, tid string
		roles                   []string
	}{
		{"alice@acme.test", "acme", "acme-u-1001", "acme", []string{"admin"}},
		{"carol@globex.test", "globex", "globex-u-2001", "globex", []string{"member"}},
	} {
		t.Run(tc.email, func(t *testing.T) {
			status, page := signIn(t, d, "http://"+d.addr(3000)+"/?email="+tc.email, tc.realm, tc.user)
			if status != http.StatusOK {
				t.Fatalf("the app's callback answered %d:\n%s", status, page)
			}
			var claims struct {
				Iss   string   `json:"iss"`
				Aud   any      `json:"aud"`
				Tid   string   `json:"tid"`
				Roles []string `json:"roles"`
				Email string   `json:"email"`
			}
			if err := json.Unmarshal([]byte(page), &claims); err != nil {
				t.Fatalf("the app's callback page is not the JSON claims: %v\n%s", err, page)
			}
			if claims.Iss != issuer || claims.Tid != tc.tid || claims.Email != tc.email || !slices.Equal(claims.Roles, tc.roles) {
				t.Errorf("claims iss=%q tid=%q email=%q roles=%q, want %q %q %q %q", claims.Iss, claims.Tid, claims.Email, claims.Roles,
					issuer, tc.tid, tc.email, tc.roles)
			}
		})
	}
}
