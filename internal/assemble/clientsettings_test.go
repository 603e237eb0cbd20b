package assemble_test

import (
	"testing"
	"time"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/internal/assemble"
)

// TestClientSettings_Bounds: the bounds the configuration enforces are the
// ones the broker clamps to.
func TestClientSettings_Bounds(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config config.Duration
		broker time.Duration
	}{
		{"access", config.MaxClientAccessTokenLifetime, broker.MaxAccessTokenLifetime},
		{"id", config.MaxClientIDTokenLifetime, broker.MaxIDTokenLifetime},
		{"refresh", config.MaxClientRefreshTokenLifetime, broker.MaxRefreshTokenLifetime},
	} {
		if tc.config.Duration() != tc.broker {
			t.Errorf("%s: config bound %s, broker bound %s, want equal", tc.name, tc.config, tc.broker)
		}
	}
	if config.SubjectPairwise != broker.SubjectPairwise || config.SubjectPublic != broker.SubjectPublic {
		t.Errorf("subject types differ between config and broker")
	}
}

func TestClientSettings_Assembled(t *testing.T) {
	got := assemble.Client(config.Client{ID: "x", ClientName: "X App", AccessTokenLifetime: config.Duration(time.Minute),
		IDTokenLifetime: config.Duration(2 * time.Minute), RefreshTokenLifetime: config.Duration(time.Hour),
		SubjectType: config.SubjectPairwise, SectorIdentifierURI: "https://x.example/s.json", ThirdParty: true}).ClientSettings
	want := broker.ClientSettings{Name: "X App", AccessTokenLifetime: time.Minute, IDTokenLifetime: 2 * time.Minute,
		RefreshTokenLifetime: time.Hour, SubjectType: broker.SubjectPairwise, SectorIdentifierURI: "https://x.example/s.json", ThirdParty: true}
	if got != want {
		t.Errorf("Client(...).ClientSettings = %+v, want %+v", got, want)
	}
}
