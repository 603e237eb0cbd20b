package admin_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"net/http"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/branding"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/store"
)

func pngOf(t *testing.T, w, h int) string {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestAPI_LogoUpload(t *testing.T) {
	e := newEnv(t)
	a := e.instance()
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("alpha", "alpha.test"), nil)
	beta := tenantDoc("beta", "beta.test")
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", beta, nil)
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/clients", admin.Client{Client: config.Client{ID: "alpha-app", Secret: "alpha-secret-0123456789",
		Tenant: "alpha", RedirectURIs: []string{"https://alpha.test/cb"}, AllowedTenants: []string{"alpha"}}}, nil)
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/clients", admin.Client{Client: config.Client{ID: "beta-app", Secret: "beta-secret-0123456789",
		Tenant: "beta", RedirectURIs: []string{"https://beta.test/cb"}}}, nil)
	logo := pngOf(t, 512, 128)

	tests := []struct {
		name, token, path, body string
		want                    int
		wantErr                 string // the error code, for a refusal
	}{
		{"tenant admin, own tenant", alphaToken, "/v1/tenants/alpha/branding/logo", logo, http.StatusOK, ""},
		{"tenant admin, own client", alphaToken, "/v1/clients/alpha-app/branding/logo", logo, http.StatusOK, ""},
		{"operator, any tenant", opToken, "/v1/tenants/beta/branding/logo", logo, http.StatusOK, ""},
		{"tenant admin, other tenant", alphaToken, "/v1/tenants/beta/branding/logo", logo, http.StatusForbidden, "forbidden"},
		{"tenant admin, other tenant's client", alphaToken, "/v1/clients/beta-app/branding/logo", logo, http.StatusForbidden, "forbidden"},
		{"file tenant", fileToken, "/v1/tenants/filecorp/branding/logo", logo, http.StatusConflict, "read_only"},
		{"file client", opToken, "/v1/clients/file-app/branding/logo", logo, http.StatusConflict, "read_only"},
		{"unknown tenant", opToken, "/v1/tenants/nobody/branding/logo", logo, http.StatusNotFound, "not_found"},
		{"svg", alphaToken, "/v1/tenants/alpha/branding/logo", `<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`, http.StatusBadRequest, "invalid_logo"},
		{"html", alphaToken, "/v1/tenants/alpha/branding/logo", `<html><body onload=alert(1)>`, http.StatusBadRequest, "invalid_logo"},
		{"too large", alphaToken, "/v1/tenants/alpha/branding/logo", logo + strings.Repeat("x", branding.MaxLogoBytes), http.StatusRequestEntityTooLarge, "logo_too_large"},
		{"no token", "", "/v1/tenants/alpha/branding/logo", logo, http.StatusUnauthorized, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out struct {
				admin.LogoUpload
				Error, Message string
			}
			if got := a.call(t, tc.token, "PUT", tc.path, tc.body, &out); got != tc.want {
				t.Fatalf("PUT %s = %d, want %d (%s %s)", tc.path, got, tc.want, out.Error, out.Message)
			}
			if tc.wantErr != "" && out.Error != tc.wantErr {
				t.Errorf("error = %q, want %q", out.Error, tc.wantErr)
			}
			if tc.want == http.StatusOK && (!branding.ValidHash(out.Logo) || out.Path != branding.Path(out.Logo)) {
				t.Errorf("answer = %+v, want a logo hash and its path", out.LogoUpload)
			}
		})
	}

	// The tenant's JSON now names the stored, re-encoded logo.
	var alpha admin.Tenant
	a.must(t, http.StatusOK, alphaToken, "GET", "/v1/tenants/alpha", nil, &alpha)
	if alpha.Branding == nil || !branding.ValidHash(alpha.Branding.Logo) {
		t.Fatalf("tenant alpha's branding = %+v, want the uploaded logo", alpha.Branding)
	}
	got, err := branding.Load(context.Background(), e.store.(store.RecordStore), map[string]bool{alpha.Branding.Logo: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(got[alpha.Branding.Logo]))
	if err != nil || cfg.Width != 256 || cfg.Height != 64 {
		t.Errorf("stored logo: %dx%d, %v; want a 256x64 PNG", cfg.Width, cfg.Height, err)
	}
	var cl admin.Client
	a.must(t, http.StatusOK, alphaToken, "GET", "/v1/clients/alpha-app", nil, &cl)
	if cl.Branding == nil || cl.Branding.Logo != alpha.Branding.Logo {
		t.Errorf("client alpha-app's branding = %+v, want the same logo", cl.Branding)
	}

	// Audited with who did it and the logo before and after.
	var actions []string
	for _, ev := range a.audit.events(t) {
		if act, _ := ev["action"].(string); strings.HasSuffix(act, ".branding.logo") {
			actions = append(actions, ev["actor"].(string)+" "+act+" "+ev["outcome"].(string))
		}
	}
	want := []string{"alpha-admin tenant.branding.logo applied", "alpha-admin client.branding.logo applied", "ops tenant.branding.logo applied"}
	if strings.Join(actions, "; ") != strings.Join(want, "; ") {
		t.Errorf("audit = %q, want %q", actions, want)
	}
}
