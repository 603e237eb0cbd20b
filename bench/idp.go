package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/realmgate/realmgate/internal/devidp"
)

// upstreamOptions is the development IdP the benchmark signs in at: one realm
// with realmgate's (and the baseline's) client and one user, ES256 ID tokens,
// every login approved at once.
func upstreamOptions(baseURL string, callbacks []string) devidp.Options {
	return devidp.Options{
		BaseURL:     baseURL,
		DevMode:     true,
		AutoApprove: "*",
		Algorithm:   "ES256",
		Realms: []devidp.Realm{{
			Name:    upstreamRealm,
			Clients: []devidp.Client{{ID: upstreamClient, Secret: upstreamSecret, RedirectURIs: callbacks}},
			Users: []devidp.User{{
				Subject: "acme-u-1001", Email: benchUserEmail, EmailVerified: true,
				Name: "Alice Anders", GivenName: "Alice", FamilyName: "Anders",
				Groups: []string{"Finance-Admins"},
			}},
		}},
	}
}

// runIdP serves the development IdP on addr until SIGTERM.
func runIdP(addr string, callbacks []string) error {
	idp, err := devidp.New(upstreamOptions("http://"+addr, callbacks))
	if err != nil {
		return err
	}
	return serveUntilSignal(addr, idp.Handler())
}

// serveUntilSignal serves h on addr until SIGTERM or SIGINT.
func serveUntilSignal(addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", addr, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
