// Command realmgate is the realmgate federation broker.
//
//	realmgate serve --config FILE      run the broker
//	realmgate check-config FILE        report every problem of a configuration file
//	realmgate dev                      run the click-through demo (development only)
//	realmgate version                  print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/internal/assemble"
	"github.com/realmgate/realmgate/internal/gcpace"
)

const usage = `realmgate: a federation broker and security token service

Usage:
  realmgate serve --config FILE     run the broker
  realmgate check-config FILE       check a configuration file; exit 1 listing every problem
  realmgate dev                     run the demo: broker, development IdP and demo app on 127.0.0.1
  realmgate rules test --config FILE --tenant ID IDENTITY.json
                                    run a tenant's rules over a sample identity and show what each did
  realmgate rules import-adfs RULES.txt
                                    convert AD FS claim rules to realmgate rules (docs/adfs-migration.md)
  realmgate rules import-entra POLICY.json
                                    convert an Entra ID claims mapping policy to realmgate rules
  realmgate import-adfs-trust TRUST.json
                                    an AD FS relying party trust export to a SAML app and its rules
  realmgate version                 print the version (also --version)
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) == 2 && args[0] == "help" && args[1] != "help" { // realmgate help serve
			return run([]string{args[1], "--help"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return 0
	case "serve":
		return cmdServe(args[1:], stdout, stderr)
	case "check-config":
		return cmdCheckConfig(args[1:], stdout, stderr)
	case "dev":
		return cmdDev(args[1:], stdout, stderr)
	case "rules":
		return cmdRules(args[1:], stdout, stderr)
	case "import-adfs-trust":
		return cmdImportADFSTrust(args[1:], stdout, stderr) // ruleimport.go
	case "version", "--version", "-version":
		return cmdVersion(stdout)
	}
	fmt.Fprintf(stderr, "realmgate: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// cmdCheckConfig loads, validates and compiles a configuration file and
// reports every problem at once with file:line.
func cmdCheckConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	path := fs.String("config", "", "configuration file")
	if code, done := parseFlags(fs, args, "check-config FILE", stdout, stderr); done { // cli.go: --help exits 0
		return code
	}
	if *path == "" && fs.NArg() == 1 {
		*path = fs.Arg(0)
	}
	if *path == "" {
		fmt.Fprintln(stderr, "usage: realmgate check-config FILE")
		return 2
	}
	rc := ruleChecker{keep: &compiledRules{}}
	cfg, err := loadConfig(*path, config.WithRuleChecker(rc))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer runtime.KeepAlive(rc.keep) // compileRules reuses its programs
	// The checker compiled each rule alone; what only shows when a
	// tenant's rules compile together with the global ones (a name used
	// twice) is found here, as serve would find it.
	if _, err := compileRules(cfg, rc.keep); err != nil {
		fmt.Fprintf(stderr, "%s: rules: %v\n", *path, err)
		return 1
	}
	if err := checkAccess(cfg); err != nil { // rulesaccess.go
		fmt.Fprintf(stderr, "%s: %v\n", *path, err)
		return 1
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	fmt.Fprintf(stdout, "%s: ok (%s, %s)\n", *path, count(len(cfg.Tenants), "tenant"), count(len(cfg.Clients), "client"))
	return 0
}

func newLoggers(stderr, stdout io.Writer, format string) (*slog.Logger, *slog.Logger) {
	var h, a slog.Handler
	opts := &slog.HandlerOptions{ReplaceAttr: readableDurations} // cli.go: "took":"28.039ms"
	if format == "text" {
		h, a = slog.NewTextHandler(stderr, opts), slog.NewTextHandler(stdout, opts)
	} else {
		h, a = newLineHandler(stderr, opts), newLineHandler(stdout, opts) // loghandler.go: slog's JSON, written faster
	}
	return slog.New(h), slog.New(a).With("stream", "audit")
}

func cmdServe(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serveUntil(ctx, args, stdout, stderr)
}

// serveUntil is serve until ctx ends (SIGINT or SIGTERM; a test's cancel).
func serveUntil(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	path := fs.String("config", "realmgate.yaml", "configuration file")
	logFormat := fs.String("log-format", "json", "log format: json or text")
	listen := fs.String("listen", "", "override the configuration's listen address")
	withPprof := fs.Bool("pprof", false, "serve /debug/pprof/ on the ops listener (ops.listen)")
	if code, done := parseFlags(fs, args, "serve --config FILE", stdout, stderr); done {
		return code
	}
	stderr, stdout, flushLogs := lingerLogs(stderr, stdout) // logwriter.go: one write per 10 ms of lines
	defer flushLogs()
	logger, audit := newLoggers(stderr, stdout, *logFormat)
	stopTracing, logger, audit, err := startTracing(logger, audit) // telemetry.go: OTEL_* environment
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer stopTracing()
	rc := ruleChecker{keep: &compiledRules{}} // until startBroker has compiled the engines
	cfg, err := loadConfig(*path, config.WithRuleChecker(rc))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	for _, w := range cfg.Warnings() {
		logger.Warn(w)
	}
	ctx = withShutdownNotice(ctx, logger) // logged once, not once per listener
	store, err := openStore(cfg)
	if err != nil {
		logger.Error("store", "err", err)
		return 1
	}
	if c, ok := store.(closer); ok {
		defer c.Close()
	}
	// boot: what the broker builds of the file's tenants, for the admin API's compiler.
	boot := &assemble.Boot{}
	srv, err := startBroker(ctx, cfg, store, logger, audit, assemble.WithCompile(rc.keep.compile), // the rule check's engines
		assemble.KeepBoot(boot))
	if err != nil {
		logger.Error("start", "err", err)
		return 1
	}
	runtime.KeepAlive(rc.keep) // the broker holds its programs now
	gcpace.Start(ctx, logger)
	api, err := startAdminAPI(ctx, cfg, store, srv, logger, audit, assemble.WithBoot(boot)) // adminapi.go: file tenants not compiled again
	if err != nil {
		logger.Error("admin api", "err", err)
		return 1
	}
	// Started: the file's problems are reported, and what validates later
	// changes needs few of its field sources (config/compactsources.go).
	cfg.CompactSources()
	if _, _, err := startOps(ctx, cfg, srv, *withPprof, logger); err != nil { // admin.go: metrics, health, audit, pprof
		// Sign-ins matter more than metrics: keep serving, loudly.
		logger.Error("ops listener not started; serving sign-ins without metrics", "addr", cfg.Ops.Listen, "err", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		logger.Error("listen", "addr", cfg.Listen, "err", err)
		return 1
	}
	if ln, err = withTLS(ln, cfg.TLS, logger); err != nil { // tls.go
		logger.Error("listen", "addr", cfg.Listen, "err", err)
		return 1
	}
	logger.Info("realmgate serving", "issuer", cfg.Issuer, "listen", ln.Addr().String(), "store", cfg.Store.Type, "tls", cfg.TLS != nil)
	defer srv.Close()                                                        // after in-flight requests: deliver queued back-channel logouts
	handler := mainHandler(cfg, store, srv, logger, audit)                   // scim.go: the broker and the SCIM endpoint
	handler = withRegistration(handler, cfg, store, srv, api, logger, audit) // registration.go: RFC 7591/7592
	handler = withSetupPortal(handler, cfg, store, srv, api, logger)         // setupportal.go: <issuer>/setup/
	if err := serveHTTP(ctx, ln, tracing.Handler(handler, "realmgate"), logger); err != nil {
		logger.Error("serve", "err", err)
		return 1
	}
	return 0
}

// startBroker builds the broker, waiting for the store when it is not
// reachable yet (a broker started before its Redis comes up by itself).
func startBroker(ctx context.Context, cfg *config.Config, store broker.Store, logger, audit *slog.Logger, opts ...assemble.Option) (*broker.Server, error) {
	delay := 200 * time.Millisecond
	for {
		srv, err := buildBroker(ctx, cfg, store, logger, audit, opts...)
		if err == nil || !errors.Is(err, broker.ErrUnavailable) {
			return srv, err
		}
		logger.Warn("store not reachable yet; retrying", "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// serveHTTP serves h on ln until ctx ends, then shuts down gracefully,
// letting in-flight requests finish.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, logger *slog.Logger) error {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 32 << 10,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	noticeShutdown(ctx)
	return hs.Shutdown(shutdown)
}
