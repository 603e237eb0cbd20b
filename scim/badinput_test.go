package scim

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSCIM_S66_OtherTenantsToken: a token of tenant "other" opens nothing
// of tenant "acme", and the refusal is the same 401 as an unknown token's.
func TestSCIM_S66_OtherTenantsToken(t *testing.T) {
	e := newEnv(t, nil)
	status, _, _ := e.do("create", "POST", "/Users", e.acme, map[string]any{"schemas": []string{UserSchema}, "userName": "a@acme.test"})
	if status != http.StatusCreated {
		t.Fatalf("create = %d", status)
	}
	for _, tc := range []struct{ name, method, path, token string }{
		{"other tenant's token lists", "GET", "/Users", e.other},
		{"other tenant's token creates", "POST", "/Users", e.other},
		{"other tenant's token reads config", "GET", "/ServiceProviderConfig", e.other},
		{"unknown token", "GET", "/Users", TokenPrefix + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{"no token", "GET", "/Users", ""},
		{"acme's token on an unknown tenant", "GET", "/scim/v2/nosuch/Users", e.acme},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body, hdr := e.do(tc.name, tc.method, tc.path, tc.token, map[string]any{"schemas": []string{UserSchema}, "userName": "x@acme.test"})
			if status != http.StatusUnauthorized || hdr.Get("WWW-Authenticate") == "" {
				t.Fatalf("%s %s = %d (%v), want 401 with WWW-Authenticate", tc.method, tc.path, status, body)
			}
			if body["schemas"].([]any)[0] != ErrorSchema {
				t.Errorf("body = %v, want a SCIM error", body)
			}
		})
	}
	if n := len(e.dir.users["acme"]); n != 1 {
		t.Errorf("acme has %d users after the refused requests, want 1", n)
	}
	if !strings.Contains(e.audit.String(), `"reason":"other_tenant_token"`) {
		t.Errorf("no audit event for the other tenant's token: %s", e.audit)
	}
	if strings.Contains(e.audit.String(), e.other) || strings.Contains(e.audit.String(), e.acme) {
		t.Error("a token reached the audit log")
	}
}

// TestSCIM_RevokedToken: a revoked token stops working at once.
func TestSCIM_RevokedToken(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	tok, info, err := e.tokens.Create(ctx, "acme", "to-revoke", "test")
	if err != nil {
		t.Fatal(err)
	}
	if status, _, _ := e.do("before", "GET", "/Users", tok, nil); status != http.StatusOK {
		t.Fatalf("before revocation: %d", status)
	}
	if _, err := e.tokens.Revoke(ctx, "acme", info.ID); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := e.do("after", "GET", "/Users", tok, nil); status != http.StatusUnauthorized {
		t.Fatalf("after revocation: %d, want 401", status)
	}
	list, _ := e.tokens.List(ctx, "acme")
	for _, l := range list {
		if l.ID == info.ID {
			t.Error("revoked token still listed")
		}
	}
}

// TestSCIM_BadInput: every malformed request gets a SCIM error with the
// right status, never a 500 (the harness fails any 500).
func TestSCIM_BadInput(t *testing.T) {
	e := newEnv(t, nil)
	_, created, hdr := e.do("create", "POST", "/Users", e.acme, map[string]any{"schemas": []string{UserSchema}, "userName": "bob@acme.test"})
	id, _ := created["id"].(string)
	etag := hdr.Get("ETag")
	deep := strings.Repeat("(", 40) + `userName eq "x"` + strings.Repeat(")", 40)
	deepJSON := strings.Repeat(`{"a":`, 20000) + "1" + strings.Repeat("}", 20000)
	patch := func(ops string) string {
		return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[` + ops + `]}`
	}
	for _, tc := range []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
		scimType                 string
	}{
		{"malformed JSON", "POST", "/Users", `{"schemas":[`, nil, 400, ScimTypeInvalidSyntax},
		{"not an object", "POST", "/Users", `[1,2]`, nil, 400, ScimTypeInvalidSyntax},
		{"empty body", "POST", "/Users", ``, nil, 400, ScimTypeInvalidSyntax},
		{"two JSON values", "POST", "/Users", `{} {}`, nil, 400, ScimTypeInvalidSyntax},
		{"deeply nested JSON", "POST", "/Users", deepJSON, nil, 400, ScimTypeInvalidSyntax},
		{"unknown attribute", "POST", "/Users", `{"schemas":["` + UserSchema + `"],"userName":"x","shoeSize":44}`, nil, 400, ScimTypeInvalidSyntax},
		{"unknown sub-attribute", "POST", "/Users", `{"schemas":["` + UserSchema + `"],"userName":"x","name":{"nick":"y"}}`, nil, 400, ScimTypeInvalidSyntax},
		{"unknown extension", "POST", "/Users", `{"schemas":["` + UserSchema + `"],"userName":"x","urn:example:ext:1.0:User":{"a":1}}`, nil, 400, ScimTypeInvalidSyntax},
		{"no core schema", "POST", "/Users", `{"schemas":["urn:example"],"userName":"x"}`, nil, 400, ScimTypeInvalidSyntax},
		{"missing userName", "POST", "/Users", `{"schemas":["` + UserSchema + `"]}`, nil, 400, ScimTypeInvalidValue},
		{"wrong type", "POST", "/Users", `{"schemas":["` + UserSchema + `"],"userName":["x"]}`, nil, 400, ScimTypeInvalidValue},
		{"active not a boolean", "POST", "/Users", `{"schemas":["` + UserSchema + `"],"userName":"x","active":"maybe"}`, nil, 400, ScimTypeInvalidValue},
		{"huge string", "POST", "/Users", `{"schemas":["` + UserSchema + `"],"userName":"` + strings.Repeat("x", 5000) + `"}`, nil, 400, ScimTypeInvalidValue},
		{"too many emails", "POST", "/Users", `{"schemas":["` + UserSchema + `"],"userName":"x","emails":[` + strings.TrimSuffix(strings.Repeat(`{"value":"a@b.c"},`, 50), ",") + `]}`, nil, 400, ScimTypeInvalidValue},
		{"body over 1 MiB", "POST", "/Users", `{"schemas":["` + UserSchema + `"],"userName":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, nil, 413, ""},
		{"duplicate userName", "POST", "/Users", `{"schemas":["` + UserSchema + `"],"userName":"BOB@acme.test"}`, nil, 409, ScimTypeUniqueness},
		{"huge filter", "GET", "/Users?filter=" + strings.Repeat("userName eq \"x\" or ", 200) + "active pr", "", nil, 400, ScimTypeInvalidFilter},
		{"deep filter", "GET", "/Users?filter=" + deep, "", nil, 400, ScimTypeInvalidFilter},
		{"malformed filter", "GET", "/Users?filter=userName eq", "", nil, 400, ScimTypeInvalidFilter},
		{"unbalanced filter", "GET", "/Users?filter=(userName eq \"x\"", "", nil, 400, ScimTypeInvalidFilter},
		{"filter on an unknown attribute", "GET", "/Users?filter=shoeSize eq 44", "", nil, 400, ScimTypeInvalidFilter},
		{"filter with an unknown schema", "GET", "/Users?filter=urn:example:x:employeeNumber eq \"1\"", "", nil, 400, ScimTypeInvalidFilter},
		{"count not a number", "GET", "/Users?count=ten", "", nil, 400, ScimTypeInvalidValue},
		{"unknown attribute requested", "GET", "/Users?attributes=shoeSize", "", nil, 400, ScimTypeInvalidValue},
		{"unknown user", "GET", "/Users/nosuch", "", nil, 404, ""},
		{"unknown endpoint", "GET", "/Bulk", "", nil, 404, ""},
		{"method not allowed", "DELETE", "/Users", "", nil, 405, ""},
		{"wrong ETag on PUT", "PUT", "/Users/" + id, `{"schemas":["` + UserSchema + `"],"userName":"bob@acme.test"}`, []string{"If-Match", `W/"999"`}, 412, ""},
		{"wrong ETag on PATCH", "PATCH", "/Users/" + id, patch(`{"op":"replace","path":"title","value":"x"}`), []string{"If-Match", `W/"999"`}, 412, ""},
		{"wrong ETag on DELETE", "DELETE", "/Users/" + id, "", []string{"If-Match", `W/"999"`}, 412, ""},
		{"PATCH without PatchOp schema", "PATCH", "/Users/" + id, `{"Operations":[{"op":"add","path":"title","value":"x"}]}`, nil, 400, ScimTypeInvalidSyntax},
		{"PATCH without operations", "PATCH", "/Users/" + id, patch(``), nil, 400, ScimTypeInvalidSyntax},
		{"PATCH unknown op", "PATCH", "/Users/" + id, patch(`{"op":"move","path":"title","value":"x"}`), nil, 400, ScimTypeInvalidSyntax},
		{"PATCH unknown path", "PATCH", "/Users/" + id, patch(`{"op":"add","path":"shoeSize","value":44}`), nil, 400, ScimTypeInvalidPath},
		{"PATCH malformed path", "PATCH", "/Users/" + id, patch(`{"op":"add","path":"emails[type eq","value":"x"}`), nil, 400, ScimTypeInvalidPath},
		{"PATCH remove without path", "PATCH", "/Users/" + id, patch(`{"op":"remove"}`), nil, 400, ScimTypeNoTarget},
		{"PATCH replace without path and no object", "PATCH", "/Users/" + id, patch(`{"op":"replace","value":"x"}`), nil, 400, ScimTypeInvalidValue},
		{"PATCH the id", "PATCH", "/Users/" + id, patch(`{"op":"replace","path":"id","value":"other"}`), nil, 400, ScimTypeMutability},
		{"PATCH no matching value", "PATCH", "/Users/" + id, patch(`{"op":"replace","path":"emails[type eq \"work\" or primary eq true].value","value":"x@y.z"}`), nil, 400, ScimTypeNoTarget},
		{"PATCH bad value type", "PATCH", "/Users/" + id, patch(`{"op":"replace","path":"active","value":"nope"}`), nil, 400, ScimTypeInvalidValue},
		{"group with an unknown member", "POST", "/Groups", `{"schemas":["` + GroupSchema + `"],"displayName":"g","members":[{"value":"nosuch"}]}`, nil, 400, ScimTypeInvalidValue},
		{"group member without value", "POST", "/Groups", `{"schemas":["` + GroupSchema + `"],"displayName":"g","members":[{"display":"x"}]}`, nil, 400, ScimTypeInvalidValue},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			if tc.body != "" {
				body = tc.body
			}
			status, got, _ := e.do(tc.name, tc.method, tc.path, e.acme, body, tc.hdr...)
			if status != tc.status {
				t.Fatalf("%s %s = %d (%v), want %d", tc.method, clip(tc.path, 60), status, got, tc.status)
			}
			if got == nil || got["schemas"] == nil || got["schemas"].([]any)[0] != ErrorSchema {
				t.Fatalf("body = %v, want a SCIM error", got)
			}
			if st, _ := got["scimType"].(string); st != tc.scimType {
				t.Errorf("scimType = %q, want %q (%v)", st, tc.scimType, got["detail"])
			}
		})
	}
	// The user is unchanged by all of it.
	_, after, hdr2 := e.do("read back", "GET", "/Users/"+id, e.acme, nil)
	if hdr2.Get("ETag") != etag || after["title"] != nil {
		t.Errorf("user changed by refused requests: ETag %q -> %q, %v", etag, hdr2.Get("ETag"), after)
	}
	validateWithSCIMMY(t, e.log)
}

// TestSCIM_RateLimit: past the tenant's limit, 429 with Retry-After; a
// guesser's failures are throttled per IP.
func TestSCIM_RateLimit(t *testing.T) {
	e := newEnv(t, &Limits{RequestsPerTenant: RateLimit{Limit: 3, Window: time.Hour}, FailuresPerIP: RateLimit{Limit: 2, Window: time.Hour}})
	for i := range 3 {
		if status, _, _ := e.do("within", "GET", "/Users", e.acme, nil); status != 200 {
			t.Fatalf("request %d = %d", i, status)
		}
	}
	status, _, hdr := e.do("over", "GET", "/Users", e.acme, nil)
	if status != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
		t.Fatalf("4th request = %d (Retry-After %q), want 429", status, hdr.Get("Retry-After"))
	}
	// The other tenant has its own budget.
	if status, _, _ := e.do("other tenant", "GET", "/scim/v2/other/Users", e.other, nil); status != 200 {
		t.Fatalf("other tenant = %d", status)
	}
	for i, want := range []int{401, 401, 429} {
		if status, _, _ := e.do("guess", "GET", "/Users", TokenPrefix+"guess", nil); status != want {
			t.Fatalf("guess %d = %d, want %d", i, status, want)
		}
	}
}

// TestSCIM_ETag: GET gives an ETag, If-None-Match answers 304, a PATCH
// with the current ETag applies and changes it.
func TestSCIM_ETag(t *testing.T) {
	e := newEnv(t, nil)
	_, u, hdr := e.do("create", "POST", "/Users", e.acme, map[string]any{"schemas": []string{UserSchema}, "userName": "eve@acme.test"})
	id, tag := u["id"].(string), hdr.Get("ETag")
	if tag == "" || u["meta"].(map[string]any)["version"] != tag {
		t.Fatalf("ETag %q, meta %v", tag, u["meta"])
	}
	if status, _, _ := e.do("not modified", "GET", "/Users/"+id, e.acme, nil, "If-None-Match", tag); status != http.StatusNotModified {
		t.Errorf("If-None-Match current = %d, want 304", status)
	}
	status, _, hdr := e.do("patch", "PATCH", "/Users/"+id, e.acme,
		`{"schemas":["`+PatchOpSchema+`"],"Operations":[{"op":"add","path":"title","value":"CFO"}]}`, "If-Match", tag)
	if status != 200 || hdr.Get("ETag") == tag {
		t.Fatalf("PATCH with current ETag = %d, ETag %q (was %q)", status, hdr.Get("ETag"), tag)
	}
	if status, _, _ := e.do("stale", "PATCH", "/Users/"+id, e.acme,
		`{"schemas":["`+PatchOpSchema+`"],"Operations":[{"op":"add","path":"title","value":"CEO"}]}`, "If-Match", tag); status != http.StatusPreconditionFailed {
		t.Errorf("PATCH with the replayed ETag = %d, want 412", status)
	}
}
