package admin

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
)

// secretFields are the JSON keys whose values never leave the API or reach
// a log: every provider secret (providerSecrets) and client secrets.
var secretFields = func() map[string]bool {
	m := map[string]bool{"secret": true}
	for _, f := range providerSecrets(&Provider{}) {
		m[f.name] = true
	}
	return m
}()

// redactJSON returns v as plain JSON data with every secret field replaced
// by a marker (an empty secret stays empty, so the audit shows whether one is set).
func redactJSON(v any) any {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil
	}
	return scrub(out)
}

func scrub(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && secretFields[k] && s != "" {
				x[k] = redacted
				continue
			}
			x[k] = scrub(e)
		}
	case []any:
		for i := range x {
			x[i] = scrub(x[i])
		}
	}
	return v
}

// auditChange writes one audit event for an admin change, applied or
// refused: who, what, the before and after values (secrets redacted) and,
// when refused, why.
func (s *Service) auditChange(ctx context.Context, who *caller, action, resource string, before, after any, st *State, err error) {
	attrs := []slog.Attr{
		slog.String("event", "admin.change"),
		slog.String("actor", who.name),
		slog.String("actor_tenant", who.tenant),
		slog.String("action", action),
		slog.String("resource", resource),
		slog.Any("before", redactJSON(before)),
		slog.Any("after", redactJSON(after)),
	}
	if rid, ok := ctx.Value(requestIDKey{}).(string); ok {
		attrs = append(attrs, slog.String("request_id", rid))
	}
	if ip, ok := ctx.Value(remoteKey{}).(string); ok {
		attrs = append(attrs, slog.String("ip", ip))
	}
	if err != nil {
		attrs = append(attrs, slog.String("outcome", "refused"), slog.String("reason", err.Error()))
		var ve *ValidationError
		if errors.As(err, &ve) {
			attrs = append(attrs, slog.Any("problems", ve.Problems))
		}
	} else {
		attrs = append(attrs, slog.String("outcome", "applied"), slog.Int64("version", st.Version))
	}
	s.opts.Audit.LogAttrs(ctx, slog.LevelInfo, "admin change", attrs...)
}

type (
	requestIDKey struct{}
	remoteKey    struct{}
)
