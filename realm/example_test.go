package realm_test

import (
	"fmt"

	"github.com/realmgate/realmgate/realm"
)

func ExampleResolver_Resolve() {
	r, err := realm.New([]realm.Tenant{
		{ID: "contoso", Domains: []string{"contoso.com", "*.contoso.com"}, IdPs: []string{"contoso-entra"}},
		{ID: "consumers", Default: true, IdPs: []string{"github", "google"}},
	}, realm.Options{})
	if err != nil {
		panic(err)
	}
	for _, email := range []string{"alice@contoso.com", "bob@eu.contoso.com", "carol@example.org"} {
		res, _ := r.Resolve(realm.Request{LoginHint: email})
		fmt.Println(email, "->", res.Tenant, res.IdPs)
	}
	// Output:
	// alice@contoso.com -> contoso [contoso-entra]
	// bob@eu.contoso.com -> contoso [contoso-entra]
	// carol@example.org -> consumers [github google]
}
