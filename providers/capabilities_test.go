package providers_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/realmgate/realmgate/providers"
)

// plain is a connector with no optional capability.
type plain struct{}

func (plain) LoginURL(context.Context, providers.LoginRequest) (string, []byte, error) {
	return "", nil, nil
}

func (plain) HandleCallback(context.Context, providers.LoginRequest, []byte, *http.Request) (providers.Identity, error) {
	return providers.Identity{}, nil
}

// metadata is a connector publishing the given metadata.
type metadata struct {
	plain
	md string
}

func (m metadata) Metadata(context.Context) ([]byte, error) { return []byte(m.md), nil }

// wrapper wraps a connector, as the broker's bulkhead does.
type wrapper struct {
	plain
	inner providers.Connector
}

func (w wrapper) Unwrap() providers.Connector { return w.inner }

// wrappingMetadata wraps a connector and publishes metadata of its own.
type wrappingMetadata struct {
	metadata
	inner providers.Connector
}

func (w wrappingMetadata) Unwrap() providers.Connector { return w.inner }

// TestAs_FindsCapabilitiesThroughWrappers: As finds a capability on the
// connector or on any connector it wraps (the outermost first), and reports
// false when none in the chain has it, including a nil connector and a
// wrapper that wraps nothing.
func TestAs_FindsCapabilitiesThroughWrappers(t *testing.T) {
	inner := metadata{md: "inner"}
	tests := []struct {
		name   string
		c      providers.Connector
		want   string
		wantOK bool
	}{
		{"on the connector", inner, "inner", true},
		{"through one wrapper", wrapper{inner: inner}, "inner", true},
		{"through two wrappers", wrapper{inner: wrapper{inner: inner}}, "inner", true},
		{"the outermost wins", wrappingMetadata{metadata: metadata{md: "outer"}, inner: inner}, "outer", true},
		{"missing", wrapper{inner: plain{}}, "", false},
		{"wrapper around nil", wrapper{}, "", false},
		{"nil connector", nil, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mp, ok := providers.As[providers.MetadataPublisher](tc.c)
			if ok != tc.wantOK {
				t.Fatalf("As[MetadataPublisher](%T) ok = %v, want %v", tc.c, ok, tc.wantOK)
			}
			if !ok {
				return
			}
			if md, _ := mp.Metadata(context.Background()); string(md) != tc.want {
				t.Errorf("As[MetadataPublisher](%T).Metadata() = %q, want %q", tc.c, md, tc.want)
			}
		})
	}
}
