package broker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/realm"
)

func ExampleNew() {
	res, _ := realm.New([]realm.Tenant{{ID: "acme", Domains: []string{"acme.test"}, IdPs: []string{"acme-idp"}}}, realm.Options{})
	store := memstore.New()
	defer store.Close()
	srv, err := broker.New(context.Background(), broker.Config{
		Issuer:   "https://login.example.com",
		Clients:  []broker.Client{{ID: "notes", Secret: "s3cret-s3cret-s3cret-s3cret-s3cret", RedirectURIs: []string{"https://notes.example.com/cb"}, AllowedTenants: []string{"*"}}},
		IdPs:     []broker.IdP{{ID: "acme-idp", Tenant: "acme", Name: "ACME", Connector: &fakeIdP{id: "acme-idp"}}},
		Resolver: res,
	}, store)
	if err != nil {
		panic(err)
	}
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/.well-known/openid-configuration", nil))
	var meta struct {
		Issuer string   `json:"issuer"`
		Token  string   `json:"token_endpoint"`
		Algs   []string `json:"id_token_signing_alg_values_supported"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &meta)
	fmt.Println(meta.Issuer, meta.Token, meta.Algs)
	fmt.Println(srv.CallbackURL("acme-idp"))
	// Output:
	// https://login.example.com https://login.example.com/token [ES256]
	// https://login.example.com/callback/acme-idp
}
