package assemble

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/realmgate/realmgate/config"
	_ "github.com/realmgate/realmgate/idp/builtin" // the oidc type
	"github.com/realmgate/realmgate/providers"
)

// stubConnector is a connector that is never called.
type stubConnector struct{}

func (stubConnector) LoginURL(context.Context, providers.LoginRequest) (string, []byte, error) {
	return "", nil, nil
}

func (stubConnector) HandleCallback(context.Context, providers.LoginRequest, []byte, *http.Request) (providers.Identity, error) {
	return providers.Identity{}, nil
}

// TestPendingIdP_Assemble: providers[].pending reaches the realm tenant
// (Pending) and the broker's IdP (Pending) alike; an active provider is in
// neither.
func TestPendingIdP_Assemble(t *testing.T) {
	b := Builder{Issuer: "https://login.example.com",
		Connect: func(*config.Provider) (providers.Connector, error) { return stubConnector{}, nil }}
	ct, probs := b.Tenant(config.Tenant{ID: "acme", Domains: []string{"acme.test"}, Providers: []config.Provider{
		{ID: "acme-old", Type: "oidc", Issuer: "https://old.acme.test"},
		{ID: "acme-new", Type: "oidc", Issuer: "https://new.acme.test", Pending: true},
	}})
	if len(probs) > 0 {
		t.Fatalf("Tenant: %v", probs)
	}
	if !slices.Equal(ct.Realm.IdPs, []string{"acme-old", "acme-new"}) || !slices.Equal(ct.Realm.Pending, []string{"acme-new"}) {
		t.Errorf("Realm.IdPs, Pending = %v, %v, want [acme-old acme-new], [acme-new]", ct.Realm.IdPs, ct.Realm.Pending)
	}
	for _, p := range ct.IdPs {
		if want := p.ID == "acme-new"; p.Pending != want {
			t.Errorf("IdP %q Pending = %t, want %t", p.ID, p.Pending, want)
		}
	}
}

// TestPendingIdP_ActivationKeepsConnector: activating a pending provider
// (the same provider with pending false) keeps its connector, and with it
// what the test sign-in fetched (discovery, keys, metadata); any other
// change makes a new one.
func TestPendingIdP_ActivationKeepsConnector(t *testing.T) {
	ac := &Compiler{file: &config.Config{}}
	p := config.Provider{ID: "acme-new", Type: "oidc", Issuer: "https://new.acme.test", ClientID: "rg", Pending: true}
	first, err := ac.connector(&p, "https://login.example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	prev := &tenantEntry{conns: []*cachedConn{first}}
	active := p
	active.Pending = false
	if got, err := ac.connector(&active, "https://login.example.com", prev); err != nil || got != first {
		t.Errorf("connector(activated) = %p, %v, want the pending one's %p", got, err, first)
	}
	changed := active
	changed.ClientID = "other"
	if got, _ := ac.connector(&changed, "https://login.example.com", prev); got == first {
		t.Error("connector(another client id) kept the old connector")
	}
}
