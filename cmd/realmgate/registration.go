package main

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/registration"
)

// registrationTokens is the store of dynamic client registration's tokens,
// keyed by the server secret (the admin API creates initial access tokens,
// the registration endpoint verifies them: both build it the same way).
func registrationTokens(cfg *config.Config, store broker.Store) *registration.Tokens {
	return registration.NewTokens(store, []byte(cfg.Keys.Secret))
}

// withRegistration serves dynamic client registration (RFC 7591/7592) at
// <issuer>/register beside h when the admin API runs: the clients it
// registers are the admin API's clients of the token's tenant.
func withRegistration(h http.Handler, cfg *config.Config, store broker.Store, srv *broker.Server, api *adminAPI, logger, audit *slog.Logger) http.Handler {
	if api == nil {
		return h
	}
	ip := broker.IPExtractor(srv.TrustedProxies()) // S73
	reg, err := registration.New(registration.Options{Issuer: cfg.Issuer, Tokens: registrationTokens(cfg, store),
		Clients: api.Service, Store: store, ClientIP: func(r *http.Request) string { return ip(r) }, Logger: logger, Audit: audit})
	if err != nil {
		logger.Error("registration: endpoint not started", "err", err)
		return h
	}
	mux := http.NewServeMux()
	mux.Handle(reg.Prefix(), reg)
	mux.Handle(strings.TrimSuffix(reg.Prefix(), "/"), reg)
	mux.Handle("/", h)
	return mux
}
