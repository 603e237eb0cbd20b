// Command bench is realmgate's load benchmark (issue 6). One command starts
// everything on loopback, measures four flows against realmgate and against a
// same-run baseline, and prints a table:
//
//	go run ./bench                      # 10 s per flow after a 2 s warm-up
//	go run ./bench -duration 5s -flows token,refresh
//
// It starts a redis-server (internal/redistest), builds and starts the real
// realmgate binary (`realmgate serve --config <generated> --log-format json`,
// Redis store, keys.secret set) as its own process, a development OpenID
// Provider (internal/devidp, ES256, auto-approve) as another process, and the
// baseline: a bare net/http server, also its own process, that does exactly
// the cryptographic and Redis work one request of each flow needs (same
// ES256 signatures and verifications, HMACs, SHA-256s and Redis round trips
// with payloads of the same size) and nothing else. The same Go load
// generator (fixed concurrency, keep-alive, a cookie jar per virtual user)
// drives both; CPU seconds per request come from /proc/<pid>/stat of the
// server process. Because the machine is shared and noisy, the figure that
// counts is realmgate / baseline measured in the same run.
//
// Flows: token (code exchange at /token; codes are minted beforehand by SSO
// round trips through /authorize, only /token is measured), refresh (refresh
// grant, each virtual user rotating its own family), login (a fresh browser:
// /authorize -> upstream /authorize (auto-approve) -> /callback -> /token),
// jwks, discovery and client_credentials (a tenant's API client at /token,
// RFC 6749 §4.4: client authentication, the tenant's rules, one signature).
// Token and refresh are then run again, paced at half the
// measured maximum rate, for the p99 latency target.
//
// With -profile DIR realmgate runs with `serve --pprof` (pprof on its
// operations listener), the baseline serves pprof on its own mux, and CPU
// and allocation profiles of the first closed-loop run of each flow are
// written to DIR: <flow>.cpu.pprof for realmgate, <flow>.baseline.cpu.pprof
// for the baseline.
//
// With -dex BIN the login flow also runs against Dex (memory storage, the
// same upstream and client), and the report compares realmgate + its Redis
// with Dex (issue 21). -alg RS256 has realmgate and the baseline sign with
// RS256, Dex's algorithm.
//
// docs/performance.md describes the method, the baseline and the results.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/realmgate/realmgate/internal/gcpace"
)

// options are the command-line flags.
type options struct {
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	loginConc   int
	flows       []string
	paced       bool
	pacedRuns   int // paced runs of token and refresh per target (issue 21: p99 in every one of 10 runs)
	memory      bool
	realmgate   string
	profileDir  string
	keepDir     bool
	order       string
	rounds      int
	serverEnv   []string
	tracing     tracingMode
	ackCompare  bool
	conditional bool
	dex         string // a Dex binary: the login flow also runs against Dex (issue 21)
	alg         string // keys.algorithm of realmgate and the baseline's signatures
}

var allFlows = []string{"token", "refresh", "login", "jwks", "discovery", "client_credentials"}

func main() {
	log.SetFlags(0)
	log.SetPrefix("bench: ")
	// Every process of the benchmark (load generator, baseline, upstream)
	// paces its GC as realmgate serve does: the baseline gets the same
	// runtime setting, and the harness adds less noise to the tails.
	gcpace.Start(context.Background(), slog.New(slog.DiscardHandler))
	role := flag.String("role", "", "internal: run as a child process (idp or baseline)")
	var o options
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per flow and target")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "warm-up before each measurement")
	flag.IntVar(&o.concurrency, "concurrency", 16, "virtual users for token, refresh, jwks and discovery")
	flag.IntVar(&o.loginConc, "login-concurrency", 32, "virtual users for the full login flow")
	flows := flag.String("flows", strings.Join(allFlows, ","), "comma-separated flows: "+strings.Join(allFlows, ", "))
	flag.BoolVar(&o.paced, "paced", true, "also run token and refresh paced at half their maximum rate (p99 target)")
	flag.IntVar(&o.pacedRuns, "paced-runs", 1, "paced runs of token and refresh per target, in alternating order; above 1 the report counts the runs whose p99 is within 5 ms and gives the median run's p99 and the p99 of all runs' requests pooled (issue 21)")
	flag.BoolVar(&o.memory, "memory", true, "measure Redis memory per SSO session")
	flag.StringVar(&o.realmgate, "realmgate", "", "prebuilt realmgate binary (default: go build ./cmd/realmgate)")
	flag.StringVar(&o.profileDir, "profile", "", "write pprof CPU and alloc profiles of realmgate (<flow>.cpu.pprof) and of the baseline (<flow>.baseline.cpu.pprof) per flow to this directory")
	flag.BoolVar(&o.keepDir, "keep", false, "keep the work directory (configs, logs) for inspection")
	serverEnv := flag.String("server-env", "", "comma-separated KEY=VALUE added to the environment of realmgate and the baseline (e.g. GOGC=400)")
	flag.Var(&o.tracing, "tracing", "run realmgate with OpenTelemetry tracing on (the baseline traces nothing): -tracing or -tracing=otlp exports OTLP to a loopback sink in this process; -tracing=inprocess exports to an in-process exporter in realmgate that drops the spans ("+tracingDiscardEnv+"=discard); -tracing=off")
	flag.BoolVar(&o.ackCompare, "ack-compare", false, "give Redis a replica and run a second realmgate with store.redis.replica_ack: off beside the default (auto, which then waits for the replica's acknowledgement of single-use writes); the report compares them (issue 22)")
	flag.BoolVar(&o.conditional, "conditional", false, "give the tenant conditional access (issue 16: five policies, an authentication context, the test GeoIP database) and the baseline the same one Redis round trip (the user's sign-in history)")
	flag.StringVar(&o.dex, "dex", "", "a Dex binary (v2.45, run as dex serve): the login flow also runs against Dex with memory storage and the same upstream, and the report compares realmgate + its Redis with Dex (issue 21; docs/performance.md says how to build one)")
	flag.StringVar(&o.alg, "alg", "ES256", "signing algorithm of realmgate's tokens (keys.algorithm) and of the baseline's: ES256 or RS256 (Dex signs RS256 only)")
	flag.IntVar(&o.rounds, "rounds", 2, "alternating rounds per flow; -duration is split among them")
	flag.StringVar(&o.order, "order", "realmgate-first", "which target runs first in each flow: realmgate-first or baseline-first")
	// Child roles take their own flags.
	addr := flag.String("addr", "", "internal: listen address of a child")
	idpURL := flag.String("idp", "", "internal: upstream base URL (baseline)")
	redisAddr := flag.String("redis", "", "internal: redis address (baseline)")
	callbacks := flag.String("callbacks", "", "internal: redirect URIs registered at the upstream (idp)")
	flag.Parse()

	switch *role {
	case "idp":
		if err := runIdP(*addr, strings.Split(*callbacks, ",")); err != nil {
			log.Fatal(err)
		}
		return
	case "baseline":
		if err := runBaseline(*addr, *idpURL, *redisAddr); err != nil {
			log.Fatal(err)
		}
		return
	case "":
	default:
		log.Fatalf("unknown role %q", *role)
	}
	o.rounds = max(1, o.rounds)
	if o.alg != "ES256" && o.alg != "RS256" {
		log.Fatalf("unknown -alg %q (want ES256 or RS256)", o.alg)
	}
	if *serverEnv != "" {
		o.serverEnv = strings.Split(*serverEnv, ",")
	}
	for _, f := range strings.Split(*flows, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !contains(allFlows, f) {
			log.Fatalf("unknown flow %q (want %s)", f, strings.Join(allFlows, ", "))
		}
		o.flows = append(o.flows, f)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		log.Print(err)
		stop()
		os.Exit(1)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// run sets up the processes, runs every selected flow on both targets and
// prints the report.
func run(ctx context.Context, o options, out io.Writer) error {
	env, err := startEnv(ctx, o)
	if env != nil {
		defer env.close()
	}
	if err != nil {
		return err
	}
	rep := &report{opts: o, started: time.Now(), env: env}
	rep.machine = machineInfo()
	fmt.Fprintf(out, "realmgate load benchmark: %s, %d CPUs (GOMAXPROCS %d), %s\n", rep.machine.cpu, rep.machine.nproc,
		runtime.GOMAXPROCS(0), rep.started.Format(time.RFC3339))
	fmt.Fprintf(out, "realmgate pid %d, baseline pid %d, upstream pid %d, redis %s; tokens signed %s\n",
		env.rg.pid, env.base.pid, env.idp.pid, env.redis.Addr(), o.alg)
	if env.dex != nil {
		fmt.Fprintf(out, "dex pid %d at %s (memory storage, RS256), login flow only\n", env.dex.pid, env.dexIssuer())
	}
	if o.tracing == tracingInProcess {
		fmt.Fprintf(out, "realmgate tracing on: spans go to an in-process exporter that drops them (%s=discard)\n", tracingDiscardEnv)
	}
	if env.sink != nil {
		fmt.Fprintf(out, "realmgate tracing on: every span exported over OTLP/HTTP to %s\n", env.sink.url)
		defer func() {
			fmt.Fprintf(out, "OTLP sink received %d exports, %d bytes\n", env.sink.exports.Load(), env.sink.bytes.Load())
		}()
	}
	fmt.Fprintln(out)

	if o.memory {
		m, err := measureMemory(ctx, env)
		if err != nil {
			return fmt.Errorf("memory per session: %w", err)
		}
		rep.memory = m
		m.print(out)
	}
	for _, flow := range o.flows {
		if err := ctx.Err(); err != nil {
			return err
		}
		rows, err := runFlow(ctx, env, o, flow, out)
		if err != nil {
			return fmt.Errorf("flow %s: %w", flow, err)
		}
		rep.rows = append(rep.rows, rows...)
	}
	rep.print(out)
	if bad := rep.errors(); bad > 0 {
		return fmt.Errorf("%d requests failed", bad)
	}
	return nil
}

var errExhausted = errors.New("work pool exhausted")
