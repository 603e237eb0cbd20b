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
	"strings"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/internal/assemble"
	"github.com/realmgate/realmgate/internal/demoapp"
	"github.com/realmgate/realmgate/internal/devidp"
)

//go:embed dev.yaml
var devConfig []byte

const (
	devIdPAddr = "127.0.0.1:8081"
	devAppAddr = "127.0.0.1:9000"
)

// devPorts are the loopback ports of the demo: realmgate, the development
// IdP, the demo app, the admin API and the example app of
// docs/integration.md. `realmgate dev --port-offset N` adds N to each.
var devPorts = []int{8080, 8081, 9000, 8443, 3000}

// shiftPorts rewrites every 127.0.0.1:<demo port> in s by offset.
func shiftPorts(s string, offset int) string {
	if offset == 0 {
		return s
	}
	pairs := make([]string, 0, 2*len(devPorts))
	for _, p := range devPorts {
		pairs = append(pairs, fmt.Sprintf("127.0.0.1:%d", p), fmt.Sprintf("127.0.0.1:%d", p+offset))
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

// cmdDev runs the demo: realmgate on its memory store with two tenants, the
// development IdP (clearly marked, refusing to start outside dev mode) and a
// demo SaaS app that shows the decoded ID token.
func cmdDev(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	logFormat := fs.String("log-format", "text", "log format: json or text")
	offset := fs.Int("port-offset", 0, "add this to every port of the demo (8080, 8081, 9000, 8443, 3000)")
	if code, done := parseFlags(fs, args, "dev", stdout, stderr); done {
		return code
	}
	if *offset < 0 || *offset+9000 > 65535 {
		fmt.Fprintln(stderr, "realmgate dev: --port-offset must keep the ports between 1 and 65535")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runDevAt(ctx, stdout, stderr, *logFormat, *offset)
}

// runDev serves the demo on its usual ports until ctx ends.
func runDev(ctx context.Context, stdout, stderr io.Writer, logFormat string) int {
	return runDevAt(ctx, stdout, stderr, logFormat, 0)
}

// runDevAt serves the demo with every port moved by offset until ctx ends.
func runDevAt(ctx context.Context, stdout, stderr io.Writer, logFormat string, offset int) int {
	logger, audit := newLoggers(stderr, stdout, logFormat)
	devIdPAddr, devAppAddr := shiftPorts(devIdPAddr, offset), shiftPorts(devAppAddr, offset)
	cfg, err := config.Parse("dev.yaml (embedded)", []byte(shiftPorts(string(devConfig), offset)), os.LookupEnv)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	idpOpts := devidp.DefaultDemo("http://" + devIdPAddr)
	for i := range idpOpts.Realms {
		for j := range idpOpts.Realms[i].Clients {
			c := &idpOpts.Realms[i].Clients[j]
			for k, u := range c.RedirectURIs {
				c.RedirectURIs[k] = shiftPorts(u, offset)
			}
		}
	}
	idp, err := devidp.New(idpOpts)
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
	boot := &assemble.Boot{} // the admin API's compiler starts from the broker's tenants
	srv, err := buildBroker(ctx, cfg, store, logger, audit, assemble.KeepBoot(boot))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer srv.Close()
	admin, err := startAdminAPI(ctx, cfg, store, srv, logger, audit, assemble.WithBoot(boot)) // adminapi.go
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
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
  admin API        http://%s/v1/  (token: %s)
Press Ctrl+C to stop.

`, devAppAddr, cfg.Issuer, cfg.Issuer, devIdPAddr, admin.Addr, cfg.AdminAPI.Tokens[0].Token)
	g, gctx := errgroup.WithContext(withShutdownNotice(ctx, logger))
	site := withSetupPortal(srv.Handler(), cfg, store, srv, admin, logger) // setupportal.go: <issuer>/setup/
	g.Go(func() error { return serveHTTP(gctx, listeners[cfg.Listen], site, logger) })
	g.Go(func() error { return serveHTTP(gctx, listeners[devIdPAddr], idp.Handler(), logger) })
	g.Go(func() error { return serveHTTP(gctx, listeners[devAppAddr], app.Handler(), logger) })
	if err := g.Wait(); err != nil {
		logger.Error("dev", "err", err)
		return 1
	}
	return 0
}
