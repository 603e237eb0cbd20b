package admin_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/store"
)

// TestDomainVerification_DNS: a domain added through the API routes no one
// until its TXT record is published and verified; another tenant cannot
// then claim it; a per-tenant admin cannot skip DNS, an operator can.
func TestDomainVerification_DNS(t *testing.T) {
	e := newEnv(t)
	a := e.instance()
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("alpha"), nil)
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("beta"), nil)

	var d admin.Domain
	a.must(t, http.StatusCreated, alphaToken, "POST", "/v1/tenants/alpha/domains", map[string]any{"name": "Alpha.TEST."}, &d)
	if d.Name != "alpha.test" || d.Verified || d.TXTName != "_realmgate.alpha.test" || d.TXTValue != "realmgate-verification="+d.Token || len(d.Token) < 22 {
		t.Fatalf("added domain = %+v, want alpha.test unverified with a TXT record to publish", d)
	}
	if r := a.resolves("u@alpha.test"); r != "" {
		t.Fatalf("unverified alpha.test resolves to %q, want nothing", r)
	}
	// beta may also claim it while unverified (a squatter must not block the owner)...
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants/beta/domains", map[string]any{"name": "alpha.test"}, nil)
	a.must(t, http.StatusConflict, alphaToken, "POST", "/v1/tenants/alpha/domains", map[string]any{"name": "alpha.test"}, nil)

	var body apiErr
	if got := a.call(t, alphaToken, "POST", "/v1/tenants/alpha/domains/alpha.test/verify", nil, &body); got != http.StatusUnprocessableEntity || body.Error != "not_verified" {
		t.Fatalf("verify without a record = %d %+v, want 422 not_verified", got, body)
	}
	e.dns.Set("_realmgate.alpha.test.", "v=spf1 -all", "realmgate-verification=wrong")
	if got := a.call(t, alphaToken, "POST", "/v1/tenants/alpha/domains/alpha.test/verify", nil, nil); got != http.StatusUnprocessableEntity {
		t.Fatalf("verify with a wrong token = %d, want 422", got)
	}
	e.dns.Set("_realmgate.alpha.test.", "v=spf1 -all", d.TXTValue)
	a.must(t, http.StatusOK, alphaToken, "POST", "/v1/tenants/alpha/domains/alpha.test/verify", nil, &d)
	if !d.Verified || d.VerifiedBy != "dns" || d.VerifiedAt == nil {
		t.Fatalf("verified domain = %+v, want verified by dns", d)
	}
	if r := a.resolves("u@alpha.test"); r != "alpha" {
		t.Fatalf("verified alpha.test resolves to %q, want alpha", r)
	}
	// ...but beta can no longer verify it, even with the record in place.
	if got := a.call(t, opToken, "POST", "/v1/tenants/beta/domains/alpha.test/verify", map[string]any{"override": true}, &body); got != http.StatusConflict {
		t.Fatalf("beta verifying alpha's domain = %d %+v, want 409", got, body)
	}
	a.must(t, http.StatusUnprocessableEntity, opToken, "POST", "/v1/tenants", tenantDoc("gamma", "alpha.test"), nil)

	// Wildcards are proven at the parent name; operators may override.
	a.must(t, http.StatusCreated, alphaToken, "POST", "/v1/tenants/alpha/domains", map[string]any{"name": "*.corp.alpha.test"}, &d)
	if d.TXTName != "_realmgate.corp.alpha.test" {
		t.Fatalf("wildcard TXT name = %q, want _realmgate.corp.alpha.test", d.TXTName)
	}
	a.must(t, http.StatusForbidden, alphaToken, "POST", "/v1/tenants/alpha/domains/*.corp.alpha.test/verify", map[string]any{"override": true}, nil)
	a.must(t, http.StatusOK, opToken, "POST", "/v1/tenants/alpha/domains/*.corp.alpha.test/verify", map[string]any{"override": true}, &d)
	if d.VerifiedBy != "operator:ops" {
		t.Fatalf("override verified_by = %q, want operator:ops", d.VerifiedBy)
	}
	if r := a.resolves("u@eu.corp.alpha.test"); r != "alpha" {
		t.Fatalf("u@eu.corp.alpha.test resolves to %q, want alpha", r)
	}
	var ds struct {
		Domains []admin.Domain `json:"domains"`
	}
	a.must(t, http.StatusOK, alphaToken, "GET", "/v1/tenants/alpha/domains", nil, &ds)
	if len(ds.Domains) != 2 || !ds.Domains[0].Verified || !ds.Domains[1].Verified {
		t.Fatalf("domains = %+v, want two verified", ds.Domains)
	}
	a.must(t, http.StatusNoContent, alphaToken, "DELETE", "/v1/tenants/alpha/domains/alpha.test", nil, nil)
	if r := a.resolves("u@alpha.test"); r != "" {
		t.Fatalf("removed alpha.test resolves to %q", r)
	}
	a.must(t, http.StatusNotFound, alphaToken, "DELETE", "/v1/tenants/alpha/domains/alpha.test", nil, nil)
}

// flakyStore fails every call while down (a store outage).
type flakyStore struct {
	broker.Store
	down atomic.Bool
}

func (f *flakyStore) records() store.RecordStore { return f.Store.(store.RecordStore) }

func (f *flakyStore) CommitRecords(ctx context.Context, set string, base int64, w []store.RecordWrite, logLen int) (int64, error) {
	if f.down.Load() {
		return 0, broker.ErrUnavailable
	}
	return f.records().CommitRecords(ctx, set, base, w, logLen)
}

func (f *flakyStore) RecordsSince(ctx context.Context, set string, after int64, max int) (int64, []store.Record, error) {
	if f.down.Load() {
		return 0, nil, broker.ErrUnavailable
	}
	return f.records().RecordsSince(ctx, set, after, max)
}

func (f *flakyStore) RecordsHead(ctx context.Context, set string) (int64, error) {
	if f.down.Load() {
		return 0, broker.ErrUnavailable
	}
	return f.records().RecordsHead(ctx, set)
}

func (f *flakyStore) ScanRecords(ctx context.Context, set, cursor string, count int) ([]store.Record, string, error) {
	if f.down.Load() {
		return nil, "", broker.ErrUnavailable
	}
	return f.records().ScanRecords(ctx, set, cursor, count)
}

func (f *flakyStore) Get(ctx context.Context, key string) ([]byte, error) {
	if f.down.Load() {
		return nil, broker.ErrUnavailable
	}
	return f.Store.Get(ctx, key)
}

func (f *flakyStore) Create(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	if f.down.Load() {
		return broker.ErrUnavailable
	}
	return f.Store.Create(ctx, key, v, ttl)
}
