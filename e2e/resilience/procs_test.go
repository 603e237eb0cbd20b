package resilience

import (
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/realmgate/realmgate/internal/e2etest"
)

// proc is one realmgate process the test started; it is stopped in cleanup.
type proc struct {
	*e2etest.Proc
	addr string
}

// startRealmgate runs `realmgate serve` with config on addr. It does not
// wait for readiness (see waitReady), so several processes start at once.
// Its output (stdout carries the audit stream, stderr the operational log)
// is searched for panics; a failed test prints it without the request and
// audit lines.
func startRealmgate(t *testing.T, name, config, addr string) *proc {
	t.Helper()
	cmd := exec.Command(env.binary, "serve", "--config", config, "--listen", addr, "--log-format", "text")
	return &proc{addr: addr, Proc: e2etest.Start(t, name, cmd, e2etest.OmitFromDump(func(line string) bool {
		return strings.Contains(line, "msg=request ") || strings.Contains(line, "stream=audit")
	}))}
}

// panicRE matches what a panic leaves in realmgate's output: the runtime's
// crash report, or the broker's recovery middleware's log line.
var panicRE = regexp.MustCompile(`(?m)^panic: |goroutine \d+ \[running\]|msg=panic\b|"msg":"panic"`)

// checkHealthy fails the test if the process exited or ever panicked.
func (p *proc) checkHealthy(t *testing.T) {
	t.Helper()
	if p.Exited() {
		t.Errorf("%s exited during the test (state %v)", p.Name, p.Cmd.ProcessState)
	}
	if loc := panicRE.FindStringIndex(p.Out.String()); loc != nil {
		out := p.Out.String()
		t.Errorf("%s panicked: %q", p.Name, out[max(0, loc[0]-200):min(len(out), loc[1]+1500)])
	}
}

// waitReady waits until /readyz answers 200.
func waitReady(t *testing.T, p *proc) {
	t.Helper()
	p.WaitReady(t, "http://"+p.addr+"/readyz")
}

// readyz returns the status of /readyz (0 when the request failed).
func readyz(addr string) int {
	resp, err := (&http.Client{Timeout: 3 * time.Second}).Get("http://" + addr + "/readyz")
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
