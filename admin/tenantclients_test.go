package admin_test

import (
	"net/http"
	"testing"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/config"
)

// TestAPI_TenantAdminClients: a tenant's admin manages its own tenant's API
// clients, and only those: never a client of another tenant or of none,
// never one that allows another tenant or whose URLs reach another
// tenant's subdomain or the issuer's host.
func TestAPI_TenantAdminClients(t *testing.T) {
	e := newEnv(t)
	a := e.instance()
	alpha := tenantDoc("alpha", "alpha.test")
	beta := tenantDoc("beta", "beta.test")
	beta.Subdomain = "beta"
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", alpha, nil)
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", beta, nil)
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/clients", admin.Client{Client: config.Client{ID: "beta-sync", Secret: "beta-secret-0123456789",
		RedirectURIs: []string{"https://b.test/cb"}, Tenant: "beta"}}, nil)
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/clients", admin.Client{Client: config.Client{ID: "global", Secret: "global-secret-0123456789",
		RedirectURIs: []string{"https://g.test/cb"}}}, nil)

	mine := admin.Client{Client: config.Client{ID: "alpha-sync", Secret: "alpha-secret-0123456789", Tenant: "alpha",
		RedirectURIs: []string{"https://alpha.test/cb"}, AllowedTenants: []string{"alpha"}}}
	var got admin.Client
	a.must(t, http.StatusCreated, alphaToken, "POST", "/v1/clients", mine, &got)
	if got.Tenant != "alpha" || got.Secret != "[redacted]" {
		t.Fatalf("created client = %+v, want tenant alpha, secret redacted", got)
	}
	var list struct {
		Clients []admin.Client `json:"clients"`
	}
	a.must(t, http.StatusOK, alphaToken, "GET", "/v1/clients", nil, &list)
	if len(list.Clients) != 1 || list.Clients[0].ID != "alpha-sync" {
		t.Errorf("alpha's admin lists %+v, want alpha-sync only", list.Clients)
	}
	a.must(t, http.StatusOK, alphaToken, "GET", "/v1/clients/alpha-sync", nil, nil)
	mine.RedirectURIs = append(mine.RedirectURIs, "https://alpha.test/cb2")
	a.must(t, http.StatusOK, alphaToken, "PUT", "/v1/clients/alpha-sync", mine, nil)

	with := func(f func(c *config.Client)) admin.Client {
		c := mine
		c.ID = "alpha-other"
		c.RedirectURIs = []string{"https://alpha.test/cb"}
		f(&c.Client)
		return c
	}
	refused := []struct {
		name, method, path string
		body               any
	}{
		{"client of another tenant", "POST", "/v1/clients", with(func(c *config.Client) { c.Tenant, c.AllowedTenants = "beta", nil })},
		{"client of no tenant", "POST", "/v1/clients", with(func(c *config.Client) { c.Tenant, c.AllowedTenants = "", nil })},
		{"allowing every tenant", "POST", "/v1/clients", with(func(c *config.Client) { c.AllowedTenants = []string{"*"} })},
		{"allowing another tenant", "POST", "/v1/clients", with(func(c *config.Client) { c.AllowedTenants = []string{"alpha", "beta"} })},
		{"redirect to another tenant's subdomain", "POST", "/v1/clients", with(func(c *config.Client) {
			c.RedirectURIs = []string{"https://beta.login.example.test/cb"}
		})},
		{"redirect to the issuer", "POST", "/v1/clients", with(func(c *config.Client) { c.RedirectURIs = []string{issuer + "/cb"} })},
		{"read another tenant's client", "GET", "/v1/clients/beta-sync", nil},
		{"read a global client", "GET", "/v1/clients/global", nil},
		{"read a file client", "GET", "/v1/clients/file-app", nil},
		{"read a missing client", "GET", "/v1/clients/nope", nil},
		{"take over another tenant's client", "PUT", "/v1/clients/beta-sync", admin.Client{Client: config.Client{ID: "beta-sync", Tenant: "alpha",
			RedirectURIs: []string{"https://alpha.test/cb"}}}},
		{"delete another tenant's client", "DELETE", "/v1/clients/beta-sync", nil},
		{"delete a global client", "DELETE", "/v1/clients/global", nil},
	}
	before := a.svc.Version()
	for _, r := range refused {
		t.Run(r.name, func(t *testing.T) {
			var body apiErr
			if got := a.call(t, alphaToken, r.method, r.path, r.body, &body); got != http.StatusForbidden {
				t.Errorf("%s %s as alpha's admin = %d %+v, want 403", r.method, r.path, got, body)
			}
		})
	}
	if v := a.svc.Version(); v != before {
		t.Fatalf("version moved from %d to %d through refused calls", before, v)
	}
	a.must(t, http.StatusNoContent, alphaToken, "DELETE", "/v1/clients/alpha-sync", nil, nil)
}
