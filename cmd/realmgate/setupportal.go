package main

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/portal"
	"github.com/realmgate/realmgate/ui"
)

// withSetupPortal serves the setup portal (package portal) at
// <issuer>/setup/ beside h when the admin API runs: customers' IT admins
// holding a setup link configure their tenant there through the admin
// API's own validation (docs/setup-portal.md).
func withSetupPortal(h http.Handler, cfg *config.Config, store broker.Store, srv *broker.Server, api *adminAPI, logger *slog.Logger) http.Handler {
	if api == nil {
		return h
	}
	opts := portal.Options{Issuer: cfg.Issuer, Admin: api.Service, Store: store, Secret: []byte(cfg.Keys.Secret),
		Tester: setupTester(srv), MaxUpload: portal.DefaultMaxUpload, Logger: logger}
	if srv != nil {
		opts.Brand = func(tenant string) ui.Brand { return srv.Brand(tenant, "") }
		ip := broker.IPExtractor(srv.TrustedProxies()) // S73
		opts.ClientIP = func(r *http.Request) string { return ip(r) }
	}
	p, err := portal.New(opts)
	if err != nil {
		logger.Error("setup portal: not started", "err", err)
		return h
	}
	mux := http.NewServeMux()
	mux.Handle(p.Prefix(), p)
	mux.Handle(strings.TrimSuffix(p.Prefix(), "/"), p)
	mux.Handle("/", h)
	return mux
}
