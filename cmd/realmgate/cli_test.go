package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/realmgate/realmgate/internal/e2etest"
)

// TestHelp_ExitsZeroWithUsageOnStdout: asking for help is not an error:
// every command's -h / --help prints its usage to stdout and exits 0; a
// flag that does not exist still exits 2 with the problem on stderr.
func TestHelp_ExitsZeroWithUsageOnStdout(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--help"}, "realmgate serve --config FILE"},
		{[]string{"-h"}, "realmgate serve --config FILE"},
		{[]string{"help"}, "realmgate serve --config FILE"},
		{[]string{"help", "serve"}, "usage: realmgate serve"},
		{[]string{"serve", "--help"}, "-log-format"},
		{[]string{"serve", "-h"}, "-pprof"},
		{[]string{"check-config", "--help"}, "usage: realmgate check-config FILE"},
		{[]string{"dev", "--help"}, "usage: realmgate dev"},
		{[]string{"rules", "--help"}, "usage: realmgate rules test"},
		{[]string{"rules", "test", "--help"}, "-tenant"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(tc.args, &out, &errb); code != 0 {
				t.Fatalf("run(%q) = %d, want 0; stderr:\n%s", tc.args, code, errb.String())
			}
			if !strings.Contains(out.String(), tc.want) {
				t.Errorf("run(%q) stdout lacks %q:\n%s", tc.args, tc.want, out.String())
			}
			if errb.Len() != 0 {
				t.Errorf("run(%q) wrote to stderr:\n%s", tc.args, errb.String())
			}
		})
	}
	for _, args := range [][]string{{"serve", "--nope"}, {"check-config", "--nope"}, {"dev", "--nope"}, {"rules", "test", "--nope"}, {"nope"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(args, &out, &errb); code != 2 {
				t.Errorf("run(%q) = %d, want 2", args, code)
			}
			if out.Len() != 0 || errb.Len() == 0 {
				t.Errorf("run(%q): stdout %q, stderr %q; want the problem on stderr only", args, out.String(), errb.String())
			}
		})
	}
}

// TestLogs_DurationsHaveAUnit: a duration in a log line is written with its
// unit in both formats ("took":"28.039ms"), not slog's JSON nanoseconds
// ("took":28039371).
func TestLogs_DurationsHaveAUnit(t *testing.T) {
	for _, tc := range []struct {
		format string
		d      time.Duration
		want   string
	}{
		{"json", 28039371 * time.Nanosecond, `"took":"28.039ms"`},
		{"json", 2*time.Second + 500*time.Millisecond, `"took":"2.5s"`},
		{"json", 450 * time.Nanosecond, `"took":"450ns"`},
		{"text", 28039371 * time.Nanosecond, `took=28.039ms`},
	} {
		t.Run(tc.format+" "+tc.want, func(t *testing.T) {
			var stderr, stdout bytes.Buffer
			logger, audit := newLoggers(&stderr, &stdout, tc.format)
			logger.Info("request", "took", tc.d)
			audit.Info("event", slog.Group("g", slog.Duration("took", tc.d)))
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("log line = %s, want %s", stderr.String(), tc.want)
			}
			if !strings.Contains(stdout.String(), strings.TrimPrefix(tc.want, `"`)) {
				t.Errorf("audit line = %s, want %s in its group", stdout.String(), tc.want)
			}
		})
	}
}

// TestCheckConfig_CountsInEnglish: check-config says "1 client", not
// "1 clients".
func TestCheckConfig_CountsInEnglish(t *testing.T) {
	var out, errb bytes.Buffer
	file := filepath.Join(t.TempDir(), "one.yaml")
	one := `issuer: https://login.example.test
clients:
  - id: app
    redirect_uris: ["https://app.example.test/cb"]
    allowed_tenants: ["*"]
tenants:
  - id: acme
    domains: [acme.test]
    providers:
      - id: acme-gh
        type: github
        client_id: x
        client_secret: y
`
	if err := os.WriteFile(file, []byte(one), 0o600); err != nil {
		t.Fatal(err)
	}
	if code := run([]string{"check-config", file}, &out, &errb); code != 0 {
		t.Fatalf("check-config %s = %d:\n%s", file, code, errb.String())
	}
	if want := file + ": ok (1 tenant, 1 client)\n"; out.String() != want {
		t.Errorf("check-config %s printed %q, want %q", file, out.String(), want)
	}
	for _, tc := range []struct {
		n    int
		want string
	}{{0, "0 tenants"}, {1, "1 tenant"}, {2, "2 tenants"}} {
		if got := count(tc.n, "tenant"); got != tc.want {
			t.Errorf("count(%d, tenant) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

// TestServe_LogsOnceWithUnits runs `realmgate serve` with the broker, the
// admin API and the ops listener, makes one request and stops it with
// SIGINT as an operator does: the request line's duration has a unit, and
// "shutting down" is logged once, not once per listener.
func TestServe_LogsOnceWithUnits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "serve.yaml")
	if err := os.WriteFile(path, []byte(opsYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr e2etest.SyncBuffer // written by the server's goroutines
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"serve", "--config", path, "--listen", "127.0.0.1:0", "--log-format", "json"}, io.Discard, &stderr)
	}()
	listen := regexp.MustCompile(`"msg":"realmgate serving".*"listen":"([^"]+)"`)
	var m []string
	for deadline := time.Now().Add(20 * time.Second); m == nil; {
		select {
		case code := <-done:
			t.Fatalf("serve exited %d before serving:\n%s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not log that it serves:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
		m = listen.FindStringSubmatch(stderr.String())
	}
	resp, err := http.Get("http://" + m[1] + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil { // serve's signal.NotifyContext catches it
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exited %d after SIGINT, want 0", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not stop after SIGINT:\n%s", stderr.String())
	}
	var requests, shutdowns int
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		switch rec["msg"] {
		case "request":
			requests++
			if took, ok := rec["took"].(string); !ok || !regexp.MustCompile(`^[0-9.]+(ns|µs|ms|s)$`).MatchString(took) {
				t.Errorf("request line %s: took = %v, want a duration with its unit", line, rec["took"])
			}
		case "shutting down":
			shutdowns++
		}
	}
	if requests != 1 {
		t.Errorf("%d request lines, want 1:\n%s", requests, stderr.String())
	}
	if shutdowns != 1 {
		t.Errorf("\"shutting down\" logged %d times, want once:\n%s", shutdowns, stderr.String())
	}
}

// TestOps_DefaultListenerIsAnnounced: an ops listener nobody configured says
// at start where it is and how to move or turn it off.
func TestOps_DefaultListenerIsAnnounced(t *testing.T) {
	cfg, _, srv := opsFixture(t)
	defer func(prev string) { defaultOpsListen = prev }(defaultOpsListen)
	defaultOpsListen = "127.0.0.1:0" // a free port, not 9090
	for _, tc := range []struct {
		listen string
		want   []string
	}{
		{"", []string{"default address", "/metrics", "/healthz", "/readyz", "ops.listen: off"}},
		{"127.0.0.1:0", []string{`msg="ops listener serving"`}},
	} {
		t.Run("listen="+tc.listen, func(t *testing.T) {
			cfg.Ops.Listen = tc.listen
			var log bytes.Buffer
			ctx, cancel := context.WithCancel(context.Background())
			addr, done, err := startOps(ctx, cfg, srv, false, slog.New(slog.NewTextHandler(&log, nil)))
			cancel()
			if err != nil || addr == "" {
				t.Fatalf("startOps(listen %q) = %q, %v; want a listener", tc.listen, addr, err)
			}
			<-done
			for _, w := range tc.want {
				if !strings.Contains(log.String(), w) || !strings.Contains(log.String(), addr) {
					t.Errorf("startOps(listen %q) logged %q, want %q and the address %s", tc.listen, log.String(), w, addr)
				}
			}
		})
	}
}
