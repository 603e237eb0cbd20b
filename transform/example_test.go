package transform_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/realmgate/realmgate/transform"
)

func Example() {
	engine, err := transform.Compile(nil, []transform.Rule{
		{Name: "email from upn", If: `has(upstream.upn)`,
			Set: []transform.Assignment{{Claim: "email", Expr: `lower(upstream.upn)`}}},
		{Name: "groups to roles", Map: &transform.Map{From: "upstream.groups", To: "roles",
			Table: map[string]string{"Finance-Admins": "admin", "Finance-Readers": "reader"}}},
		{Name: "employees only", If: `get(upstream, "employee_type", "employee") != "employee"`,
			Deny: "only employees may sign in"},
	}, transform.Options{Tenant: "contoso"})
	if err != nil {
		fmt.Println(err)
		return
	}
	claims, err := engine.Apply(context.Background(), transform.Input{
		Upstream: map[string]any{
			"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": "Alice.Smith@Contoso.com",
			"groups": []string{"Finance-Admins", "Domain Users"},
		},
		Claims: map[string]any{"tid": "contoso"},
		Tenant: "contoso",
	})
	fmt.Println(claims["email"], claims["roles"], claims["tid"], err)

	_, err = engine.Apply(context.Background(), transform.Input{
		Upstream: map[string]any{"employee_type": "contractor"},
	})
	var denied *transform.DeniedError
	if errors.As(err, &denied) {
		fmt.Printf("denied by %q: %s\n", denied.Rule, denied.Message)
	}
	// Output:
	// alice.smith@contoso.com [admin] contoso <nil>
	// denied by "employees only": only employees may sign in
}
