package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/internal/devidp"
	"github.com/realmgate/realmgate/transform"
)

// TestClaims_OnePipelineForAllPaths runs one upstream identity through the
// four places realmgate turns an identity into claims: a real sign-in (ID
// token and userinfo), a refresh, the admin API's dry run over HTTP and
// `realmgate rules test`, all from one configuration file, and requires
// the same claims from each (after the client's release, without the
// protocol claims only tokens carry). The identity is multi-factor (amr
// has mfa, so acr is realmgate's MFA class) and has groups the rules map
// to roles; its email is in the tenant's verified domain, in another
// tenant's (S52: dropped) or in nobody's (marked unverified).
func TestClaims_OnePipelineForAllPaths(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	lnB, lnIdP := listen(t), listen(t)
	issuer, idpURL := "http://"+lnB.Addr().String(), "http://"+lnIdP.Addr().String()
	person := func(sub, email string) devidp.User {
		return devidp.User{Subject: sub, Email: email, EmailVerified: true, Name: "Pat " + sub, GivenName: "Pat", FamilyName: sub,
			Groups: []string{"Finance-Admins", "Domain Users"}, Extra: map[string]any{"amr": []string{"pwd", "mfa"}, "department": "Finance"}}
	}
	users := map[string]devidp.User{
		"in the tenant's domain": person("alice", "alice@acme.test"),
		"in another tenant's":    person("bob", "bob@globex.test"),
		"in no tenant's domain":  person("carol", "carol@elsewhere.example"),
	}
	realmUsers := []devidp.User{users["in the tenant's domain"], users["in another tenant's"], users["in no tenant's domain"]}
	idp, err := devidp.New(devidp.Options{BaseURL: idpURL, DevMode: true, AutoApprove: "*", Algorithm: "ES256",
		Realms: []devidp.Realm{
			{Name: "acme", Clients: []devidp.Client{{ID: "realmgate", Secret: "acme-upstream-secret",
				RedirectURIs: []string{issuer + "/callback/acme-idp"}}}, Users: realmUsers},
			{Name: "globex", Clients: []devidp.Client{{ID: "realmgate", Secret: "globex-upstream-secret",
				RedirectURIs: []string{issuer + "/callback/globex-idp"}}}, Users: []devidp.User{{Subject: "g-1", Email: "gina@globex.test"}}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, lnIdP, idp.Handler())
	yaml := fmt.Sprintf(`issuer: %s
store:
  type: memory
keys:
  secret: 0123456789abcdef0123456789abcdef-test
outbound:
  allow_loopback: true # the development IdP is on loopback
clients:
  - id: app
    secret: %s
    redirect_uris: [%q]
    allowed_tenants: ["*"]
    claims: [roles, department, mfa_note]
rules:
  - name: everyone is a member
    add: {roles: '"member"'}
tenants:
  - id: acme
    domains: [acme.test]
    providers:
      - id: acme-idp
        type: oidc
        issuer: %[4]s/acme
        client_id: realmgate
        client_secret: acme-upstream-secret
    rules:
      - name: groups to roles
        map: {from: upstream.groups, to: roles, table: {Finance-Admins: admin}}
      - name: department
        set: {department: 'upstream.department'}
      - name: rules see amr and acr
        if: '"mfa" in get(claims, "amr", []) && get(claims, "acr", "") == "urn:realmgate:acr:mfa"'
        set: {mfa_note: '"strong"'}
  - id: globex
    domains: [globex.test]
    providers:
      - id: globex-idp
        type: oidc
        issuer: %[4]s/globex
        client_id: realmgate
        client_secret: globex-upstream-secret
admin_api:
  listen: 127.0.0.1:0
  tokens:
    - name: ops
      token: %[5]s
`, issuer, appSecret, appCallback, idpURL, testOpToken)
	path := filepath.Join(t.TempDir(), "realmgate.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, adm := startWithAdmin(t, ctx, cancel, cfg, memstore.New(), logger)
	serve(t, lnB, srv.Handler())
	const scope = "openid profile email"
	released := func(c map[string]any) map[string]any { // the client's release, as the broker does it (S75)
		return transform.FilterClaims(c, strings.Fields(scope), cfg.Clients[0].Claims)
	}

	for _, name := range []string{"in the tenant's domain", "in another tenant's", "in no tenant's domain"} {
		u := users[name]
		t.Run("email "+name, func(t *testing.T) {
			// The upstream claims the IdP sends, as the what-if testers take them.
			upstream := map[string]any{"sub": u.Subject, "email": u.Email, "email_verified": true, "name": u.Name,
				"given_name": u.GivenName, "family_name": u.FamilyName, "groups": []any{"Finance-Admins", "Domain Users"},
				"amr": []any{"pwd", "mfa"}, "department": "Finance"}
			paths := map[string]map[string]any{}

			// 1. A sign-in, then 2. a refresh, and userinfo after each.
			tok, err := codeFlow(issuer, url.Values{"idp_hint": {"acme-idp"}, "login_hint": {u.Email}}, scope)
			if err != nil {
				t.Fatal(err)
			}
			paths["sign-in id_token"] = withoutProtocol(idTokenClaims(t, tok.IDToken))
			paths["sign-in userinfo"] = withoutProtocol(userinfo(t, issuer, tok.AccessToken))
			rt, err := tokenRequest(issuer, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
			if err != nil {
				t.Fatal(err)
			}
			paths["refresh id_token"] = withoutProtocol(idTokenClaims(t, rt.IDToken))
			paths["refresh userinfo"] = withoutProtocol(userinfo(t, issuer, rt.AccessToken))

			// 3. The admin API's dry run over HTTP.
			var dr admin.DryRunResult
			req := admin.DryRunRequest{Tenant: "acme", IdP: "acme-idp", ClientID: "app", Identity: admin.SampleIdentity{
				Subject: u.Subject, Email: u.Email, EmailVerified: true, Name: u.Name, GivenName: u.GivenName,
				FamilyName: u.FamilyName, AMR: []string{"pwd", "mfa"}, Claims: upstream}}
			if code := api(t, "http://"+adm.Addr, testOpToken, "POST", "/v1/dry-run", req, &dr); code != http.StatusOK {
				t.Fatalf("dry run = %d %+v, want 200", code, dr)
			}
			paths["admin dry run"] = released(dr.Claims)
			if dr.Claims == nil {
				paths["admin dry run"] = map[string]any{"denied": dr.Denied, "error": dr.Error}
			}

			// 4. realmgate rules test over the same upstream claims.
			file := filepath.Join(t.TempDir(), "identity.json")
			raw, _ := json.Marshal(upstream)
			if err := os.WriteFile(file, raw, 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			args := []string{"rules", "test", "--config", path, "--tenant", "acme", "--idp", "acme-idp", "--client", "app", file}
			if code := run(args, &out, &errb); code != 0 {
				t.Errorf("run(%q) = %d, want 0:\n%s%s", args, code, out.String(), errb.String())
			} else {
				paths["rules test"] = released(rulesTestClaims(t, out.String()))
			}

			want := paths["sign-in id_token"]
			for p, got := range paths {
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s claims = %v,\nwant (as the sign-in's ID token) %v", p, got, want)
				}
			}
			// What the one pipeline must have produced, on every path.
			if want["acr"] != broker.ACRMFA || !reflect.DeepEqual(want["amr"], []any{"pwd", "mfa"}) || want["mfa_note"] != "strong" {
				t.Errorf("sign-in acr, amr, mfa_note = %v, %v, %v; want %s, [pwd mfa], strong", want["acr"], want["amr"], want["mfa_note"], broker.ACRMFA)
			}
			if !reflect.DeepEqual(want["roles"], []any{"member", "admin"}) || want["department"] != "Finance" {
				t.Errorf("sign-in roles, department = %v, %v; want [member admin], Finance", want["roles"], want["department"])
			}
			switch name {
			case "in the tenant's domain":
				if want["email"] != u.Email || want["email_verified"] != true {
					t.Errorf("email, email_verified = %v, %v; want %s, true", want["email"], want["email_verified"], u.Email)
				}
			case "in another tenant's": // S52
				if _, ok := want["email"]; ok {
					t.Errorf("email = %v, want none: globex verified that domain, not acme", want["email"])
				}
			case "in no tenant's domain":
				if want["email"] != u.Email || want["email_verified"] != false {
					t.Errorf("email, email_verified = %v, %v; want %s, false", want["email"], want["email_verified"], u.Email)
				}
			}
		})
	}
}

// tokens is a token endpoint answer (RFC 6749 §5.1).
type tokens struct {
	AccessToken  string `json:"access_token"`
	IDToken      string `json:"id_token"`
	RefreshToken string `json:"refresh_token"`
}

// codeFlow signs in to client app at issuer with hints (the IdP approves
// at once) and redeems the code.
func codeFlow(issuer string, hints url.Values, scope string) (tokens, error) {
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), appCallback) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	vb := make([]byte, 32)
	_, _ = rand.Read(vb)
	verifier := base64.RawURLEncoding.EncodeToString(vb)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {"app"}, "redirect_uri": {appCallback},
		"scope": {scope}, "state": {"st-0123456789"}, "nonce": {"n-0123456789"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	for k, v := range hints {
		q[k] = v
	}
	resp, err := hc.Get(issuer + "/authorize?" + q.Encode())
	if err != nil {
		return tokens{}, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode/100 != 3 || err != nil || !strings.HasPrefix(loc.String(), appCallback) {
		if resp.StatusCode/100 != 3 && strings.HasPrefix(resp.Request.URL.String(), issuer+"/") {
			return tokens{}, errNotRouted // the broker's own page: discovery found no tenant
		}
		return tokens{}, fmt.Errorf("sign-in ended with %d at %s (Location %q): %.300s", resp.StatusCode, resp.Request.URL,
			resp.Header.Get("Location"), body)
	}
	if e := loc.Query().Get("error"); e != "" {
		return tokens{}, fmt.Errorf("sign-in refused: %s %s", e, loc.Query().Get("error_description"))
	}
	return tokenRequest(issuer, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {appCallback}, "code_verifier": {verifier}})
}

// tokenRequest posts form to issuer's token endpoint as client app.
func tokenRequest(issuer string, form url.Values) (tokens, error) {
	req, _ := http.NewRequest(http.MethodPost, issuer+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", appSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return tokens{}, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var tr tokens
	if err := json.Unmarshal(raw, &tr); err != nil || resp.StatusCode != http.StatusOK || tr.IDToken == "" {
		return tokens{}, fmt.Errorf("token response %d: %.300s", resp.StatusCode, raw)
	}
	return tr, nil
}

// idTokenClaims decodes a JWT's payload (the broker's own tests verify signatures).
func idTokenClaims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func userinfo(t *testing.T, issuer, accessToken string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("userinfo = %d %v", resp.StatusCode, err)
	}
	return c
}

// withoutProtocol drops the claims the broker sets itself in tokens and
// userinfo (OIDC Core §2, §5.3.2; tid, idp, sid): they are not the
// pipeline's output.
func withoutProtocol(c map[string]any) map[string]any {
	for _, k := range []string{"iss", "sub", "aud", "azp", "iat", "exp", "auth_time", "nonce", "at_hash", "tid", "idp", "sid"} {
		delete(c, k)
	}
	return c
}

// rulesTestClaims parses the "result: claims" block `rules test` prints.
func rulesTestClaims(t *testing.T, out string) map[string]any {
	t.Helper()
	_, block, ok := strings.Cut(out, "result: claims\n")
	if !ok {
		t.Fatalf("rules test printed no claims:\n%s", out)
	}
	c := map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ": ")
		if !ok {
			t.Fatalf("rules test line %q is not `claim: value`", line)
		}
		var val any
		if err := json.Unmarshal([]byte(v), &val); err != nil {
			t.Fatalf("rules test claim %s = %q: %v", k, v, err)
		}
		c[k] = val
	}
	return c
}
