package admin_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/broker"
)

// fakeConsents keeps consents as the broker would for the API's tests (the
// broker's own rules, and the tenant check, are tested in package broker):
// sub-ann of tenant alpha consented to printer.
type fakeConsents struct {
	mu       sync.Mutex
	consents map[string]*broker.Consent // tenant/sub/client
}

func (in *instance) consents() *fakeConsents {
	in.consent = &fakeConsents{consents: map[string]*broker.Consent{
		"alpha/sub-ann/printer": {Scopes: []string{"email", "openid"}, Granted: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}}
	return in.consent
}

func (f *fakeConsents) ConsentOf(_ context.Context, tenant, sub, client string) (*broker.Consent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.consents[tenant+"/"+sub+"/"+client]; c != nil {
		return c, nil
	}
	return nil, broker.ErrNotFound
}

func (f *fakeConsents) RevokeConsentOf(_ context.Context, tenant, sub, client string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := tenant + "/" + sub + "/" + client
	if f.consents[k] == nil {
		return broker.ErrNotFound
	}
	delete(f.consents, k)
	return nil
}

// TestAPI_Consents: read and withdraw a user's consent to a third-party
// client; a per-tenant admin limited to its tenant; the withdrawal audited.
func TestAPI_Consents(t *testing.T) {
	e := newEnv(t)
	a := e.instance()
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("alpha", "alpha.test"), nil)
	const path = "/v1/tenants/alpha/consents/printer?subject=sub-ann"
	var cn admin.ConsentView
	a.must(t, http.StatusOK, alphaToken, "GET", path, nil, &cn)
	if cn.Client != "printer" || cn.Subject != "sub-ann" || strings.Join(cn.Scopes, " ") != "email openid" || cn.Granted.IsZero() {
		t.Errorf("consent = %+v", cn)
	}
	for _, tt := range []struct {
		name, token, method, path string
		want                      int
	}{
		{"without subject", alphaToken, "GET", "/v1/tenants/alpha/consents/printer", http.StatusBadRequest},
		{"other tenant's admin", fileToken, "GET", path, http.StatusForbidden},
		{"other tenant's admin revokes", fileToken, "DELETE", path, http.StatusForbidden},
		{"no consent", alphaToken, "GET", "/v1/tenants/alpha/consents/other?subject=sub-ann", http.StatusNotFound},
		{"subject not of the tenant", alphaToken, "DELETE", "/v1/tenants/alpha/consents/printer?subject=sub-bob", http.StatusNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := a.call(t, tt.token, tt.method, tt.path, nil, nil); got != tt.want {
				t.Errorf("%s %s = %d, want %d", tt.method, tt.path, got, tt.want)
			}
		})
	}
	a.must(t, http.StatusNoContent, alphaToken, "DELETE", path, nil, nil)
	a.must(t, http.StatusNotFound, alphaToken, "GET", path, nil, nil)
	a.must(t, http.StatusNotFound, alphaToken, "DELETE", path, nil, nil)
	if log := a.audit.String(); !strings.Contains(log, `"event":"admin.consent"`) || !strings.Contains(log, `"outcome":"applied"`) {
		t.Errorf("admin audit lacks the withdrawal:\n%s", log)
	}
}
