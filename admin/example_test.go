package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/broker/memstore"
)

// Example onboards a tenant through the API: an operator creates it with an
// OIDC IdP, and reads what to register at the IdP. cmd/realmgate supplies a
// Compiler built on the configuration file's code and applies each version
// with the broker's Reconfigure; testCompiler stands in for it here.
func Example() {
	svc, err := admin.New(admin.Options{
		Store:    memstore.New(),
		Compiler: &testCompiler{},
		Apply:    func(*admin.Compiled) error { return nil },
		Issuer:   "https://login.example.com",
		Tokens:   []admin.Token{{Name: "ops", Token: "an-operator-token-of-32-characters-or-more"}},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Audit:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := svc.Load(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	call := func(method, path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer an-operator-token-of-32-characters-or-more")
		rec := httptest.NewRecorder()
		svc.Handler().ServeHTTP(rec, req)
		return rec
	}
	rec := call("POST", "/v1/tenants", `{"id": "contoso", "domains": [{"name": "contoso.com"}],
		"providers": [{"id": "contoso-entra", "type": "oidc", "issuer": "https://login.contoso.test/v2.0", "client_id": "rg", "client_secret": "s3cret"}]}`)
	var t admin.Tenant
	_ = json.Unmarshal(rec.Body.Bytes(), &t)
	fmt.Println(rec.Code, t.ID, "version", svc.Version())
	fmt.Println(t.Domains[0].Name, "verified:", t.Domains[0].Verified, "publish TXT at", t.Domains[0].TXTName)
	fmt.Println("secret:", t.Providers[0].ClientSecret)

	rec = call("GET", "/v1/tenants/contoso/providers/contoso-entra/onboarding", "")
	var o admin.Onboarding
	_ = json.Unmarshal(rec.Body.Bytes(), &o)
	fmt.Println(rec.Code, "register redirect URI", o.RedirectURI)

	rec = call("PUT", "/v1/tenants/contoso/rules", `{"rules": [{"name": "broken", "set": {"email": "lower("}}]}`)
	fmt.Println(rec.Code, http.StatusText(rec.Code), "version", svc.Version())
	// Output:
	// 201 contoso version 1
	// contoso.com verified: false publish TXT at _realmgate.contoso.com
	// secret: [redacted]
	// 200 register redirect URI https://login.example.com/callback/contoso-entra
	// 422 Unprocessable Entity version 1
}
