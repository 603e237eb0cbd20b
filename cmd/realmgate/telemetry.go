package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/realmgate/realmgate/internal/telemetry"
)

// tracing is the process's OpenTelemetry tracing: nil (off) unless the
// OTEL_* environment turns it on (telemetry.Init). cmdServe sets it once,
// before anything is built; upstreamClient, openStore and the listeners
// read it. Off, each of them builds exactly what it builds without it.
var tracing *telemetry.Telemetry

// traceShutdownTimeout bounds the export of the last spans at exit.
const traceShutdownTimeout = 5 * time.Second

// startTracing sets tracing from the environment and, when it is on,
// returns the loggers with trace_id and span_id on every line logged with
// a request's context. stop exports the last spans.
func startTracing(logger, audit *slog.Logger) (stop func(), _, _ *slog.Logger, _ error) {
	tel, err := telemetry.Init(context.Background())
	if err != nil {
		return nil, nil, nil, err
	}
	tracing = tel
	if !tel.Enabled() {
		return func() {}, logger, audit, nil
	}
	// The SDK reports export failures here; the process's one handler.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { logger.Warn("tracing", "err", err) }))
	if os.Getenv(telemetry.DiscardEnv) != "" {
		logger.Warn("tracing on: spans are discarded in the process, nothing is exported (" + telemetry.DiscardEnv + "=discard is for benchmarks)")
	} else {
		logger.Info("tracing on: exporting OTLP spans", "endpoint", firstEnv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"))
	}
	stop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), traceShutdownTimeout)
		defer cancel()
		if err := tel.Shutdown(ctx); err != nil {
			logger.Warn("tracing: spans not exported at exit", "err", err)
		}
	}
	return stop, tel.Logger(logger), tel.Logger(audit), nil
}

func firstEnv(keys ...string) string {
	for _, k := range keys {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return "(default)"
}
