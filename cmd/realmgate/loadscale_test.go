package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/internal/scaleconfig"
)

// writeScaleConfig writes a configuration with n tenants sharing one IdP
// issuer to a temporary file.
func writeScaleConfig(tb testing.TB, n int) string {
	tb.Helper()
	return writeScaleConfigWith(tb, scaleconfig.Options{Tenants: n, SharedIssuer: "https://login.idp.example"})
}

func writeScaleConfigWith(tb testing.TB, o scaleconfig.Options) string {
	tb.Helper()
	n := o.Tenants
	var b bytes.Buffer
	if err := scaleconfig.Write(&b, o); err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), fmt.Sprintf("tenants-%d.yaml", n))
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// BenchmarkCheckConfig is `realmgate check-config` on files of many tenants.
func BenchmarkCheckConfig(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		path := writeScaleConfig(b, n)
		b.Run(fmt.Sprintf("tenants=%d", n), func(b *testing.B) {
			for b.Loop() {
				var stderr bytes.Buffer
				if code := cmdCheckConfig([]string{path}, io.Discard, &stderr); code != 0 {
					b.Fatalf("check-config = %d: %s", code, stderr.String())
				}
			}
		})
	}
}

// TestCheckConfigScalesLinearly: checking a file of 10x the tenants costs
// about 10x, not 100x (issue 21: a 100k-tenant file took half a minute).
// It counts allocations, which do not depend on how busy the machine is;
// BenchmarkCheckConfig measures the time.
func TestCheckConfigScalesLinearly(t *testing.T) {
	if testing.Short() {
		t.Skip("loads files of thousands of tenants")
	}
	const small, large = 500, 5_000
	allocs := map[int]float64{}
	for _, n := range []int{small, large} {
		path := writeScaleConfig(t, n)
		allocs[n] = testing.AllocsPerRun(1, func() {
			var stderr bytes.Buffer
			if code := cmdCheckConfig([]string{path}, io.Discard, &stderr); code != 0 {
				t.Fatalf("check-config (%d tenants) = %d: %s", n, code, stderr.String())
			}
		})
	}
	ratio := allocs[large] / allocs[small]
	t.Logf("%d tenants: %.0f allocations; %d tenants: %.0f allocations; ratio %.2f", small, allocs[small], large, allocs[large], ratio)
	if ratio > 11 {
		t.Errorf("check-config allocates %.2fx as much for %dx the tenants, want at most 11x (linear)", ratio, large/small)
	}
}

// loadAndBuild is serve's startup without the listeners: load and check
// the file, compile the rules, build the broker on a memory store.
func loadAndBuild(tb testing.TB, path string) {
	tb.Helper()
	rc := ruleChecker{keep: &compiledRules{}}
	cfg, err := config.Load(path, config.WithRuleChecker(rc))
	if err != nil {
		tb.Fatal(err)
	}
	ms := memstore.New()
	defer ms.Close()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := buildBroker(context.Background(), cfg, ms, discard, discard)
	if err != nil {
		tb.Fatal(err)
	}
	runtime.KeepAlive(rc.keep)
	srv.Close()
}

// BenchmarkServeStartup is serve's startup on files of many tenants.
func BenchmarkServeStartup(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		path := writeScaleConfig(b, n)
		b.Run(fmt.Sprintf("tenants=%d", n), func(b *testing.B) {
			for b.Loop() {
				loadAndBuild(b, path)
			}
		})
	}
}

// TestStartupContactsNoUpstream: building the broker from a file of many
// tenants sharing one IdP fetches nothing from it (discovery happens at a
// tenant's first sign-in), so a restart costs no upstream round trips
// however many tenants there are (issue 21).
func TestStartupContactsNoUpstream(t *testing.T) {
	var hits atomic.Int64
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.NotFound(w, r)
	}))
	t.Cleanup(idp.Close)
	path := writeScaleConfigWith(t, scaleconfig.Options{Tenants: 300, SharedIssuer: idp.URL, AllowLoopback: true})
	loadAndBuild(t, path)
	if n := hits.Load(); n != 0 {
		t.Errorf("startup with 300 tenants sharing one IdP made %d requests to it, want none", n)
	}
}
