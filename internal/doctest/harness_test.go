package doctest

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/realmgate/realmgate/internal/e2etest"
)

func TestMain(m *testing.M) {
	os.Exit(e2etest.Main(m, "internal/doctest", func() error { return nil }))
}

// repo is the repository root.
func repo(t *testing.T) string {
	t.Helper()
	root, err := e2etest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// binary is realmgate built from ./cmd/realmgate (once per test binary).
func binary(t *testing.T) string {
	t.Helper()
	bin, err := e2etest.Binary()
	if err != nil {
		t.Fatalf("build realmgate: %v", err)
	}
	return bin
}

// demoPorts are the demo's ports (cmd/realmgate/dev.go's devPorts).
var demoPorts = []int{8080, 8081, 9000, 8443, 3000}

// demo is a running `realmgate dev --port-offset offset`.
type demo struct {
	offset int
	proc   *e2etest.Proc
}

// addr is the moved address of the demo's default port.
func (d *demo) addr(port int) string { return fmt.Sprintf("127.0.0.1:%d", port+d.offset) }

// move rewrites the demo's default 127.0.0.1 ports in s as the demo moved them.
func (d *demo) move(s string) string {
	pairs := make([]string, 0, 2*len(demoPorts))
	for _, p := range demoPorts {
		pairs = append(pairs, fmt.Sprintf("127.0.0.1:%d", p), d.addr(p))
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

// startDemo runs `realmgate dev` on an offset whose five ports are free and
// waits until realmgate's discovery answers. It stops when the test ends.
func startDemo(t *testing.T) *demo {
	t.Helper()
	d := &demo{offset: freeOffset(t)}
	cmd := exec.Command(binary(t), "dev", "--port-offset", strconv.Itoa(d.offset))
	d.proc = e2etest.Start(t, "realmgate dev", cmd)
	d.proc.WaitReady(t, "http://"+d.addr(8080)+"/.well-known/openid-configuration")
	d.proc.WaitReady(t, "http://"+d.addr(8081)+"/acme/.well-known/openid-configuration")
	return d
}

// freeOffset picks a port offset at which every demo port is free.
func freeOffset(t *testing.T) int {
	t.Helper()
	for range 50 {
		off := 20000 + rand.IntN(3000)*10
		free := true
		for _, p := range demoPorts {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+off))
			if err != nil {
				free = false
				break
			}
			ln.Close()
		}
		if free {
			return off
		}
	}
	t.Fatal("no free port offset for the demo")
	return 0
}

var requestID = regexp.MustCompile(`name="request_id" value="([^"]+)"`)

// signIn plays the browser: it opens appURL (an example app's start page
// with ?email=), which sends it through realmgate to the development IdP,
// picks user there, and returns the page the app shows at its callback.
func signIn(t *testing.T, d *demo, appURL, realm, user string) (int, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := c.Get(appURL)
	if err != nil {
		t.Fatalf("GET %s: %v", appURL, err)
	}
	page := read(t, resp)
	idp := "http://" + d.addr(8081) + "/" + realm + "/"
	if !strings.HasPrefix(resp.Request.URL.String(), idp+"authorize") {
		t.Fatalf("GET %s landed on %s (%d), want the development IdP's %s picker:\n%s", appURL, resp.Request.URL, resp.StatusCode, realm, page)
	}
	rid := requestID.FindStringSubmatch(page)
	if rid == nil {
		t.Fatalf("no request_id on the development IdP's page:\n%s", page)
	}
	resp, err = c.PostForm(idp+"select", url.Values{"request_id": {rid[1]}, "user": {user}})
	if err != nil {
		t.Fatalf("pick %s at the development IdP: %v", user, err)
	}
	return resp.StatusCode, read(t, resp)
}

func read(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitHTTP waits until url answers at all (any status), or the process exits.
func waitHTTP(t *testing.T, p *e2etest.Proc, url string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	deadline := time.Now().Add(e2etest.StartTimeout)
	for {
		if p.Exited() {
			t.Fatalf("%s exited at start:\n%s", p.Name, p.Out.Tail(4000))
		}
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer at %s within %s:\n%s", p.Name, url, e2etest.StartTimeout, p.Out.Tail(4000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// linkTestdata makes dir/testdata a link to the repository's testdata.
func linkTestdata(t *testing.T, dir string) {
	t.Helper()
	if err := os.Symlink(filepath.Join(repo(t), "testdata"), filepath.Join(dir, "testdata")); err != nil {
		t.Fatal(err)
	}
}
