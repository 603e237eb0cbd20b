package redisstore

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Tracing (Options.Tracing): every command, pipeline and dial is an event
// on the caller's span, not a span of its own. A sign-in makes about 14
// commands; as spans they were half of what tracing cost (ids, sampling,
// a record per span through the batch processor and exporter), as events
// they are a timestamped entry in the request's span: the command, when it
// started, how long it took and, if it failed, the error class. Keys,
// values and arguments are never recorded (they hold session data). A
// caller without a recording span (tracing off, or a request not sampled)
// costs one context lookup per command.

// Attribute keys of the events. db.system.name is the OpenTelemetry
// semantic conventions' database attribute; the event's name is the
// command (their db.operation.name).
const (
	attrDBSystem   = attribute.Key("db.system.name")
	attrBatchSize  = attribute.Key("db.operation.batch.size")
	attrDurationUS = attribute.Key("realmgate.redis.duration_us")
	attrErrorType  = attribute.Key("error.type")
)

var dbRedis = attrDBSystem.String("redis")

// instrument adds the tracing hook to c; a Cluster client's hook goes on
// each node's client, where commands are sent and connections dialled.
func instrument(c redis.UniversalClient) {
	switch c := c.(type) {
	case *redis.ClusterClient:
		c.OnNewNode(func(n *redis.Client) { n.AddHook(tracingHook{}) })
	default:
		c.AddHook(tracingHook{})
	}
}

// tracingHook records Redis calls as events of the caller's span.
type tracingHook struct{}

// DialHook implements redis.Hook: a dial (a new pooled connection) is an
// event "redis dial".
func (tracingHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		span := trace.SpanFromContext(ctx)
		if !span.IsRecording() {
			return next(ctx, network, addr)
		}
		start := time.Now()
		conn, err := next(ctx, network, addr)
		record(span, "redis dial", start, err, attribute.KeyValue{})
		return conn, err
	}
}

// ProcessHook implements redis.Hook: a command is an event named after it
// (get, set, evalsha...).
func (tracingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		span := trace.SpanFromContext(ctx)
		if !span.IsRecording() {
			return next(ctx, cmd)
		}
		start := time.Now()
		err := next(ctx, cmd)
		record(span, cmd.Name(), start, err, attribute.KeyValue{})
		return err
	}
}

// ProcessPipelineHook implements redis.Hook: a pipeline (or MULTI/EXEC) is
// one event "pipeline" with the number of commands
// (db.operation.batch.size).
func (tracingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		span := trace.SpanFromContext(ctx)
		if !span.IsRecording() {
			return next(ctx, cmds)
		}
		start := time.Now()
		err := next(ctx, cmds)
		record(span, "pipeline", start, err, attrBatchSize.Int(len(cmds)))
		return err
	}
}

// record adds the event name (the command, which is also its
// db.operation.name): stamped with the call's start, db.system.name, its
// duration in microseconds, extra when set and, when it failed, error.type
// (redis.Nil, a missing key, is an answer, not a failure). One allocation
// for the attributes: a sign-in records about 14 of these.
func record(span trace.Span, name string, start time.Time, err error, extra attribute.KeyValue) {
	attrs := make([]attribute.KeyValue, 2, 4)
	attrs[0], attrs[1] = dbRedis, attrDurationUS.Int64(time.Since(start).Microseconds())
	if extra.Key != "" {
		attrs = append(attrs, extra)
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		attrs = append(attrs, attrErrorType.String(errorType(err)))
	}
	span.AddEvent(name, trace.WithTimestamp(start), trace.WithAttributes(attrs...))
}

// errorType is a failure's class without its text: the error prefix of a
// Redis error reply (WRONGTYPE, NOSCRIPT, READONLY...), "timeout", or
// "_OTHER" (the semantic conventions' fallback).
func errorType(err error) string {
	var re redis.Error
	if errors.As(err, &re) {
		if prefix, _, ok := strings.Cut(re.Error(), " "); ok && prefix == strings.ToUpper(prefix) {
			return prefix
		}
		return "_OTHER"
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return "_OTHER"
}
