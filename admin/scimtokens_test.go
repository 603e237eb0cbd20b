package admin_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/scim"
)

// TestSCIMTokens_S16_CreateListRevoke: an operator or the tenant's admin
// creates a SCIM token, shown once; the list never shows it; another
// tenant's admin is refused; a revoked token stops verifying at once; the
// audit names the token's id, never the token.
func TestSCIMTokens_S16_CreateListRevoke(t *testing.T) {
	e := newEnv(t)
	in := e.instance()
	var created struct {
		ID, Tenant, Name, Token, Endpoint string
	}
	in.must(t, http.StatusCreated, fileToken, "POST", "/v1/tenants/filecorp/scim/tokens", map[string]string{"name": "entra-prod"}, &created)
	if !strings.HasPrefix(created.Token, scim.TokenPrefix) || created.Tenant != "filecorp" || created.Endpoint != issuer+"/scim/v2/filecorp" {
		t.Fatalf("created = %+v", created)
	}
	tokens := scim.NewTokens(e.store, e.secret)
	if info, err := tokens.Verify(context.Background(), created.Token); err != nil || info.Tenant != "filecorp" || info.CreatedBy != "filecorp-admin" {
		t.Fatalf("Verify = %+v, %v", info, err)
	}
	var list struct {
		Tokens []map[string]any
	}
	in.must(t, http.StatusOK, opToken, "GET", "/v1/tenants/filecorp/scim/tokens", nil, &list)
	if len(list.Tokens) != 1 || list.Tokens[0]["id"] != created.ID || list.Tokens[0]["token"] != nil || list.Tokens[0]["key"] != nil {
		t.Fatalf("list = %+v", list)
	}
	for _, tc := range []struct {
		name, token, method, path string
		want                      int
	}{
		{"other tenant's admin lists", alphaToken, "GET", "/v1/tenants/filecorp/scim/tokens", http.StatusForbidden},
		{"other tenant's admin creates", alphaToken, "POST", "/v1/tenants/filecorp/scim/tokens", http.StatusForbidden},
		{"other tenant's admin revokes", alphaToken, "DELETE", "/v1/tenants/filecorp/scim/tokens/" + created.ID, http.StatusForbidden},
		{"unknown tenant", opToken, "GET", "/v1/tenants/nosuch/scim/tokens", http.StatusNotFound},
		{"unknown token", opToken, "DELETE", "/v1/tenants/filecorp/scim/tokens/nosuch", http.StatusNotFound},
		{"no name", opToken, "POST", "/v1/tenants/filecorp/scim/tokens", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := in.call(t, tc.token, tc.method, tc.path, map[string]string{"name": ""}, nil); got != tc.want {
				t.Errorf("%s %s = %d, want %d", tc.method, tc.path, got, tc.want)
			}
		})
	}
	in.must(t, http.StatusNoContent, fileToken, "DELETE", "/v1/tenants/filecorp/scim/tokens/"+created.ID, nil, nil)
	if _, err := tokens.Verify(context.Background(), created.Token); err == nil {
		t.Fatal("revoked token still verifies")
	}
	events := in.audit.events(t)
	var actions []string
	for _, ev := range events {
		if a, _ := ev["action"].(string); strings.HasPrefix(a, "scim_token.") {
			actions = append(actions, a+"/"+ev["outcome"].(string))
		}
	}
	if strings.Join(actions, ",") != "scim_token.create/applied,scim_token.revoke/refused,scim_token.create/refused,scim_token.revoke/applied" {
		t.Errorf("audited %v", actions)
	}
	if strings.Contains(in.audit.String(), created.Token) {
		t.Error("the token reached the audit log")
	}
}
