package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/portal"
)

// TestSetupPortal_ServedBesideBrokerWhenAdminAPIRuns: with the admin API
// on, <issuer>/setup/<secret> opens a setup link the API created and every
// other path reaches the broker; without it, nothing is added.
func TestSetupPortal_ServedBesideBrokerWhenAdminAPIRuns(t *testing.T) {
	c := newCluster(t, "memory")
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if api(t, c.adminB, testOpToken, "POST", "/v1/tenants", c.newcoTenant(), nil) != http.StatusCreated {
		t.Fatal("create tenant newco")
	}
	var link struct {
		URL string `json:"url"`
	}
	if got := api(t, c.adminB, testNewcoToken, "POST", "/v1/tenants/newco/setup-links", map[string]any{"expires_in": "1h"}, &link); got != http.StatusCreated {
		t.Fatalf("create setup link = %d", got)
	}
	broker := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	srv := httptest.NewServer(withSetupPortal(broker, c.cfg, memstore.New(), nil, c.b, logger))
	defer srv.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(srv.URL + strings.TrimPrefix(link.URL, c.issuer))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/setup/" {
		t.Fatalf("open %s = %d to %q, want 303 to /setup/", link.URL, resp.StatusCode, resp.Header.Get("Location"))
	}
	for path, want := range map[string]int{"/setup/" + admin.SetupLinkPrefix + "unknown": http.StatusNotFound, "/authorize": http.StatusTeapot} {
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
	}
	if h := withSetupPortal(broker, c.cfg, memstore.New(), nil, nil, logger); h == nil || func() bool { _, ok := h.(http.HandlerFunc); return !ok }() {
		t.Error("without the admin API the handler is not the broker's")
	}
}

// TestSetupTester_BrokerRefusalsAreReadable: the adapter of the broker's
// test sign-in refuses an IdP of another tenant as portal.ErrTestRefused
// (a readable page, not a failure) and knows no result it did not make.
func TestSetupTester_BrokerRefusalsAreReadable(t *testing.T) {
	c := newCluster(t, "memory")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := buildBroker(ctx, c.cfg, memstore.New(), c.logger, c.logger)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	tester := setupTester(srv)
	if setupTester(nil) != nil {
		t.Error("setupTester(nil) is not nil: the portal would show a test step it cannot run")
	}
	req := httptest.NewRequest("POST", c.issuer+"/setup/test", nil)
	err = tester.StartTest(httptest.NewRecorder(), req, portal.TestRequest{Tenant: "newco", IdP: "file-idp",
		Return: c.issuer + "/setup/test", Actor: "setup-link:x"})
	if !errors.Is(err, portal.ErrTestRefused) {
		t.Errorf("StartTest(another tenant's IdP) = %v, want ErrTestRefused", err)
	}
	if _, err := tester.TestResult(ctx, "nosuch"); err == nil {
		t.Error("TestResult(nosuch) = nil error")
	}
}
