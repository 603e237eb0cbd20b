package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// tracingMode is the -tracing flag: off, otlp (also plain -tracing) or
// inprocess.
type tracingMode string

const (
	tracingOff       tracingMode = ""
	tracingOTLP      tracingMode = "otlp"
	tracingInProcess tracingMode = "inprocess"
)

// tracingDiscardEnv is realmgate's benchmark-only variable for an
// in-process exporter that drops every span (internal/telemetry.DiscardEnv;
// spelled out here so the benchmark can drive a realmgate binary of any
// version).
const tracingDiscardEnv = "REALMGATE_TRACES_EXPORTER"

// String implements flag.Value.
func (m *tracingMode) String() string {
	if m == nil || *m == tracingOff {
		return "off"
	}
	return string(*m)
}

// Set implements flag.Value.
func (m *tracingMode) Set(v string) error {
	switch v {
	case "off", "false":
		*m = tracingOff
	case "otlp", "true":
		*m = tracingOTLP
	case "inprocess":
		*m = tracingInProcess
	default:
		return fmt.Errorf("-tracing=%q: want off, otlp or inprocess", v)
	}
	return nil
}

// IsBoolFlag lets a plain -tracing mean -tracing=otlp (what it meant
// before the in-process mode).
func (m *tracingMode) IsBoolFlag() bool { return true }

// otlpSink is a loopback OTLP/HTTP trace receiver that reads and discards
// every export: with -tracing, realmgate exports its spans here through its
// real OTLP exporter (batching, protobuf encoding, HTTP POST), so the cost
// measured in realmgate's process is the cost of tracing on in production
// minus the collector's own, which runs in the load generator's process.
type otlpSink struct {
	srv     *http.Server
	url     string
	exports atomic.Int64
	bytes   atomic.Int64
}

func startOTLPSink() (*otlpSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &otlpSink{url: "http://" + ln.Addr().String()}
	s.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		s.exports.Add(1)
		s.bytes.Add(n)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK) // an empty ExportTraceServiceResponse: all accepted
	})}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// env is the environment that turns realmgate's tracing on towards the sink.
func (s *otlpSink) env() []string {
	return []string{"OTEL_TRACES_EXPORTER=otlp", "OTEL_EXPORTER_OTLP_ENDPOINT=" + s.url}
}

func (s *otlpSink) close() {
	if s != nil {
		_ = s.srv.Close()
	}
}
