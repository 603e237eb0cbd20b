package admin_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/admin"
)

type setupLinkAnswer struct {
	admin.SetupLink
	URL string `json:"url"`
}

// TestSetupLinks_S16_CreateListRevoke: an operator or the tenant's admin
// creates a setup link whose URL holds the secret once; the list shows
// its state and never the secret; another tenant's admin is refused; a
// revoked link opens as revoked; the audit names the link's id only.
func TestSetupLinks_S16_CreateListRevoke(t *testing.T) {
	e := newEnv(t)
	in := e.instance()
	in.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("alpha"), nil)
	var created setupLinkAnswer
	in.must(t, http.StatusCreated, alphaToken, "POST", "/v1/tenants/alpha/setup-links",
		map[string]any{"allow": []string{"domains", "idp", "domains"}, "expires_in": "72h", "note": "for pat"}, &created)
	secret, ok := strings.CutPrefix(created.URL, issuer+"/setup/")
	if !ok || !strings.HasPrefix(secret, admin.SetupLinkPrefix) || len(secret) < 40 {
		t.Fatalf("url = %q", created.URL)
	}
	if created.Tenant != "alpha" || created.State != admin.SetupOpen || strings.Join(created.Allow, ",") != "idp,domains" ||
		created.ExpiresAt.Sub(created.CreatedAt).Hours() != 72 || created.CreatedBy != "alpha-admin" {
		t.Fatalf("created = %+v", created.SetupLink)
	}
	var dflt setupLinkAnswer
	in.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants/alpha/setup-links", map[string]any{}, &dflt)
	if len(dflt.Allow) != 4 || dflt.ExpiresAt.Sub(dflt.CreatedAt).Hours() != 7*24 {
		t.Fatalf("default link = %+v", dflt.SetupLink)
	}
	ctx := context.Background()
	if l, err := in.svc.OpenSetupLink(ctx, secret); err != nil || l.ID != created.ID || l.State != admin.SetupOpen {
		t.Fatalf("OpenSetupLink = %+v, %v", l, err)
	}
	for _, bad := range []string{secret[:len(secret)-1] + "x", "", admin.SetupLinkPrefix, created.ID, strings.Repeat("a", 200)} {
		if _, err := in.svc.OpenSetupLink(ctx, bad); err != admin.ErrSetupLinkNotFound {
			t.Errorf("OpenSetupLink(%q) = %v, want ErrSetupLinkNotFound", bad, err)
		}
	}
	var raw map[string][]map[string]any
	in.must(t, http.StatusOK, alphaToken, "GET", "/v1/tenants/alpha/setup-links", nil, &raw)
	if len(raw["links"]) != 2 {
		t.Fatalf("list = %+v", raw)
	}
	for _, l := range raw["links"] {
		for k, v := range l {
			if s, ok := v.(string); ok && strings.Contains(s, admin.SetupLinkPrefix) || k == "digest" || k == "url" {
				t.Errorf("list shows %s = %v", k, v)
			}
		}
	}
	for _, tc := range []struct {
		name, token, method, path string
		body                      any
		want                      int
	}{
		{"other tenant's admin creates", fileToken, "POST", "/v1/tenants/alpha/setup-links", map[string]any{}, http.StatusForbidden},
		{"other tenant's admin lists", fileToken, "GET", "/v1/tenants/alpha/setup-links", nil, http.StatusForbidden},
		{"other tenant's admin revokes", fileToken, "DELETE", "/v1/tenants/alpha/setup-links/" + created.ID, nil, http.StatusForbidden},
		{"file tenant", opToken, "POST", "/v1/tenants/filecorp/setup-links", map[string]any{}, http.StatusConflict},
		{"unknown tenant", opToken, "POST", "/v1/tenants/nosuch/setup-links", map[string]any{}, http.StatusNotFound},
		{"unknown allow", opToken, "POST", "/v1/tenants/alpha/setup-links", map[string]any{"allow": []string{"clients"}}, http.StatusBadRequest},
		{"too long", opToken, "POST", "/v1/tenants/alpha/setup-links", map[string]any{"expires_in": "31d"}, http.StatusBadRequest},
		{"too short", opToken, "POST", "/v1/tenants/alpha/setup-links", map[string]any{"expires_in": "1m"}, http.StatusBadRequest},
		{"not a duration", opToken, "POST", "/v1/tenants/alpha/setup-links", map[string]any{"expires_in": "soon"}, http.StatusBadRequest},
		{"unknown field", opToken, "POST", "/v1/tenants/alpha/setup-links", map[string]any{"tenant": "filecorp"}, http.StatusBadRequest},
		{"note too long", opToken, "POST", "/v1/tenants/alpha/setup-links", map[string]any{"note": strings.Repeat("n", 501)}, http.StatusBadRequest},
		{"unknown link", opToken, "DELETE", "/v1/tenants/alpha/setup-links/nosuch", nil, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := in.call(t, tc.token, tc.method, tc.path, tc.body, nil); got != tc.want {
				t.Errorf("%s %s = %d, want %d", tc.method, tc.path, got, tc.want)
			}
		})
	}
	in.must(t, http.StatusNoContent, alphaToken, "DELETE", "/v1/tenants/alpha/setup-links/"+created.ID, nil, nil)
	in.must(t, http.StatusConflict, alphaToken, "DELETE", "/v1/tenants/alpha/setup-links/"+created.ID, nil, nil)
	if l, err := in.svc.OpenSetupLink(ctx, secret); err != nil || l.State != admin.SetupRevoked {
		t.Fatalf("revoked link opens as %+v, %v", l, err)
	}
	if _, err := in.svc.SetupTenant(ctx, created.ID); err != admin.ErrSetupLinkEnded {
		t.Fatalf("SetupTenant of a revoked link = %v, want ErrSetupLinkEnded", err)
	}
	var actions []string
	for _, ev := range in.audit.events(t) {
		if a := fmt.Sprint(ev["action"]); strings.HasPrefix(a, "setup_link") {
			actions = append(actions, a+"/"+fmt.Sprint(ev["outcome"]))
		}
		for _, v := range ev {
			if s, ok := v.(string); ok && strings.Contains(s, secret) {
				t.Fatalf("audit event shows the secret: %v", ev)
			}
		}
	}
	if got := strings.Join(actions, " "); !strings.Contains(got, "setup_link.create/applied") || !strings.Contains(got, "setup_link.revoke/applied") || !strings.Contains(got, "setup_link.revoke/refused") {
		t.Fatalf("audit = %s", got)
	}
}
