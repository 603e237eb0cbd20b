package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/internal/demoapp"
	"github.com/realmgate/realmgate/internal/devidp"
)

//go:embed dev.yaml
var devConfig []byte

const (
	devIdPAddr = "127.0.0.1:8081"
	devAppAddr = "127.0.0.1:9000"
)

// cmdDev runs the demo: realmgate on its memory store with two tenants, the
// development IdP (clearly marked, refusing to start outside dev mode) and a
// demo SaaS app that shows the decoded ID token.
func cmdDev(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	logFormat := fs.String("log-format", "text", "log format: json or text")
	if code, done := parseFlags(fs, args, "dev", stdout, stderr); done {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runDev(ctx, stdout, stderr, *logFormat)
}

// runDev serves the demo until ctx ends.
func runDev(ctx context.Context, stdout, stderr io.Writer, logFormat string) int {
	logger, audit := newLoggers(stderr, stdout, logFormat)
	cfg, err := config.Parse("dev.yaml (embedded)", devConfig, os.LookupEnv)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	idp, err := devidp.New(devidp.DefaultDemo("http://" + devIdPAddr))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	app, err := demoapp.New(demoapp.Options{Issuer: cfg.Issuer, ClientID: "demo-app",
		ClientSecret: cfg.Clients[0].Secret, RedirectURL: "http://" + devAppAddr + "/callback"})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	store := memstore.New()
	defer store.Close()
	srv, err := buildBroker(ctx, cfg, store, logger, audit)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer srv.Close()
	listeners := map[string]net.Listener{}
	for _, addr := range []string{cfg.Listen, devIdPAddr, devAppAddr} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, open := range listeners {
				open.Close()
			}
			fmt.Fprintf(stderr, "realmgate dev: cannot listen on %s: %v\n", addr, err)
			return 1
		}
		listeners[addr] = ln
	}
	fmt.Fprintf(stderr, `
realmgate dev: DEVELOPMENT MODE, do not expose.
  demo app         http://%s/            <- open this, sign in as alice@acme.test or carol@globex.test
  realmgate        %s (discovery: %s/.well-known/openid-configuration)
  development IdP  http://%s/  (tenants: acme -> /acme, globex -> /globex)
Press Ctrl+C to stop.

`, devAppAddr, cfg.Issuer, cfg.Issuer, devIdPAddr)
	g, gctx := errgroup.WithContext(withShutdownNotice(ctx, logger))
	g.Go(func() error { return serveHTTP(gctx, listeners[cfg.Listen], srv.Handler(), logger) })
	g.Go(func() error { return serveHTTP(gctx, listeners[devIdPAddr], idp.Handler(), logger) })
	g.Go(func() error { return serveHTTP(gctx, listeners[devAppAddr], app.Handler(), logger) })
	if err := g.Wait(); err != nil {
		logger.Error("dev", "err", err)
		return 1
	}
	return 0
}
