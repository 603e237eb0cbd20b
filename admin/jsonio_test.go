package admin_test

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/config"
)

// rawCall makes one API request with a literal body and returns the status
// and the answer's bytes as sent.
func (in *instance) rawCall(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, in.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+opToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := in.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// goNames matches what encoding/json's messages leak: "Go struct field",
// "Go value", package-qualified types like admin.Domain or []admin.Tenant.
var goNames = regexp.MustCompile(`Go (struct|value)|\b(admin|main|json)\.[A-Z]|\bjson: `)

// TestAPI_BodyErrorsNameJSONFieldsNotGoTypes: a body of the wrong shape is
// answered with the JSON field and the JSON types wanted and found, never
// encoding/json's "cannot unmarshal string into Go struct field
// Tenant.domains of type []admin.Domain".
func TestAPI_BodyErrorsNameJSONFieldsNotGoTypes(t *testing.T) {
	a := newEnv(t).instance()
	for _, tc := range []struct {
		name, body, want string
	}{
		{"string for an array", `{"id":"acme","domains":"acme.test"}`, `field "domains": want an array, got a string`},
		{"number for a nested string", `{"id":"acme","domains":[{"name":7}]}`, `field "domains.name": want a string, got a number`},
		{"number for a boolean", `{"id":"acme","domains":[{"name":"a.test","verified":1.5}]}`, `field "domains.verified": want a boolean, got a number`},
		{"array for the tenant", `[{"id":"acme"}]`, `request body: want an object, got an array`},
		{"unknown field", `{"id":"acme","domain":"acme.test"}`, `request body: unknown field "domain"`},
		{"not JSON", `{"id":<acme>}`, `request body is not valid JSON (at byte 7): invalid character '<'`},
		{"cut short", `{"id":"acme"`, `request body: the JSON ends early`},
		{"empty", ``, `request body is empty`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, raw := a.rawCall(t, "POST", "/v1/tenants", tc.body)
			var body apiErr
			if err := json.Unmarshal([]byte(raw), &body); err != nil {
				t.Fatalf("answer %q is not JSON: %v", raw, err)
			}
			if code != http.StatusBadRequest || body.Error != "invalid_request" {
				t.Fatalf("POST /v1/tenants %s = %d %q, want 400 invalid_request", tc.body, code, body.Error)
			}
			if !strings.Contains(body.Message, tc.want) {
				t.Errorf("POST /v1/tenants %s: message = %q, want it to contain %q", tc.body, body.Message, tc.want)
			}
			if m := goNames.FindString(body.Message); m != "" {
				t.Errorf("POST /v1/tenants %s: message %q names Go identifiers (%q)", tc.body, body.Message, m)
			}
		})
	}
}

// TestAPI_AnswersDoNotEscapeHTML: the API's JSON is not embedded in HTML,
// so `<`, `>` and `&` in a message are written as themselves, not as
// \u003c, \u003e and \u0026 (echo's default serializer escapes them).
func TestAPI_AnswersDoNotEscapeHTML(t *testing.T) {
	a := newEnv(t).instance()
	code, raw := a.rawCall(t, "POST", "/v1/tenants", `{"id":"acme","domains":[{"name":"<b>&amp;.test"}]}`)
	if code != http.StatusUnprocessableEntity {
		t.Fatalf("POST a tenant with domain <b>&amp;.test = %d, want 422: %s", code, raw)
	}
	if !strings.Contains(raw, `<b>&amp;.test`) || strings.Contains(raw, `\u003c`) || strings.Contains(raw, `\u0026`) {
		t.Errorf("answer = %s, want the domain quoted as <b>&amp;.test, unescaped", raw)
	}
}

// TestAudit_BatchSummaryCountsInEnglish: a batch of one tenant is audited as
// "batch(1 tenant, 0 clients)", not "1 tenants".
func TestAudit_BatchSummaryCountsInEnglish(t *testing.T) {
	a := newEnv(t).instance()
	for _, tc := range []struct {
		batch admin.BatchRequest
		want  string
	}{
		{admin.BatchRequest{Tenants: []admin.Tenant{tenantDoc("alpha")}}, "batch(1 tenant, 0 clients)"},
		{admin.BatchRequest{Tenants: []admin.Tenant{tenantDoc("beta"), tenantDoc("gamma")},
			Clients: []admin.Client{{Client: config.Client{ID: "app", RedirectURIs: []string{"https://app.test/cb"}}}}}, "batch(2 tenants, 1 client)"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			a.must(t, http.StatusOK, opToken, "POST", "/v1/batch", tc.batch, nil)
			evs := a.audit.events(t)
			if got := evs[len(evs)-1]["resource"]; got != tc.want {
				t.Errorf("audit resource of the batch = %q, want %q", got, tc.want)
			}
		})
	}
}
