package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

	"github.com/realmgate/realmgate/internal/e2etest"
)

// The three holes of the security issue (SECURITY S69, S70, S71), attacked
// over HTTP against the real realmgate binary, with real peers where the
// attack needs one: oidc-provider (node/op.mjs) as the upstream IdP,
// openid-client (node/rp.mjs) as the app, Redis as the store.

// TestE2E_S69_ImpersonationOfForeignSubjectRefused: tenant acme lets its
// admins impersonate its users (lcTemplate). alice, an admin of acme, signs
// in; so do bob (acme) and dave, a user of tenant secure (the issue's
// "globex": another tenant, through its own IdP). alice's app asks for a
// token acting as "acme/<dave's sub>": refused with invalid_grant (S69:
// only subjects realmgate issued for acme), while "acme/<bob's sub>" works.
// An actor token issued to another client (alice's token exchanged for
// e2e-api) is refused as the actor of an impersonation and of an RFC 8693
// exchange.
func TestE2E_S69_ImpersonationOfForeignSubjectRefused(t *testing.T) {
	lc := newLifecycle(t, 11, lcOptions{})
	alice := lc.rp.signIn(t, newBrowser(t, "alice", ""), "acme", "--login-hint", "alice@acme.test")
	bob := lc.rp.signIn(t, newBrowser(t, "bob", ""), "", "--login-hint", "bob@acme.test")
	dave := lc.rp.signIn(t, newBrowser(t, "dave", ""), "", "--login-hint", "dave@secure.test")
	aliceSub, _ := alice.Claims["sub"].(string)
	bobSub, _ := bob.Claims["sub"].(string)
	daveSub, _ := dave.Claims["sub"].(string)
	checkRoles(t, "alice", alice.Claims, "admin", "member")
	checkClaims(t, "dave", dave.Claims, map[string]any{"tid": "secure"})
	if daveSub == "" || daveSub == bobSub || daveSub == aliceSub {
		t.Fatalf("subs alice %q, bob %q, dave %q: want three distinct subjects", aliceSub, bobSub, daveSub)
	}

	const (
		userType   = "urn:realmgate:params:oauth:token-type:user"
		accessType = "urn:ietf:params:oauth:token-type:access_token"
	)
	impersonate := func(subject, actor string) outcome {
		return lc.rp.exchange(t, "--subject-token", subject, "--subject-token-type", userType,
			"--actor-token", actor, "--actor-token-type", accessType, "--audience", apiClientID)
	}

	// The attack: a subject of another tenant, named as acme's.
	foreign := impersonate("acme/"+daveSub, alice.AccessToken)
	if foreign.OK {
		t.Errorf("alice (acme admin) impersonating acme/<dave's sub> (a user of tenant secure) succeeded: token claims %v; want invalid_grant",
			foreign.AccessJWT.Payload)
	} else if foreign.Error != "invalid_grant" {
		t.Errorf("impersonating acme/<dave's sub> = %+v, want invalid_grant", foreign)
	}
	if findAudit(lc.rg, map[string]string{"outcome": "refused", "reason": "impersonation_unknown_subject", "subject": daveSub}) == nil {
		t.Errorf("no audit event for the refused impersonation of a foreign subject")
	}

	// Control: a subject realmgate issued for acme.
	own := impersonate("acme/"+bobSub, alice.AccessToken)
	if !own.OK {
		t.Fatalf("alice impersonating acme/<bob's sub> = %+v, want a token", own)
	}
	checkClaims(t, "impersonation token", own.AccessJWT.Payload, map[string]any{"sub": bobSub, "tid": "acme"})

	// An actor token issued to another client: alice's token exchanged for
	// e2e-api (aud e2e-api), presented by e2e-app.
	ex := lc.rp.exchange(t, "--subject-token", alice.AccessToken, "--subject-token-type", accessType, "--audience", apiClientID)
	if !ex.OK {
		t.Fatalf("exchange of alice's token for %s = %+v, want a token", apiClientID, ex)
	}
	apiToken, _ := ex.Response["access_token"].(string)
	if aud := ex.AccessJWT.Payload["aud"]; aud != apiClientID {
		t.Fatalf("exchanged token aud = %v, want %s", aud, apiClientID)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"impersonation", []string{"--subject-token", "acme/" + bobSub, "--subject-token-type", userType,
			"--actor-token", apiToken, "--actor-token-type", accessType, "--audience", apiClientID}},
		{"exchange", []string{"--subject-token", bob.AccessToken, "--subject-token-type", accessType,
			"--actor-token", apiToken, "--actor-token-type", accessType, "--audience", apiClientID}},
	} {
		t.Run("actor token of another client/"+tc.name, func(t *testing.T) {
			got := lc.rp.exchange(t, tc.args...)
			if got.OK {
				t.Errorf("%s with an actor token issued to %s, presented by %s, succeeded: act %v; want invalid_grant",
					tc.name, apiClientID, rpClientID, got.AccessJWT.Payload["act"])
			} else if got.Error != "invalid_grant" {
				t.Errorf("%s with an actor token issued to %s = %+v, want invalid_grant", tc.name, apiClientID, got)
			}
		})
	}
	// Control: the same exchange with e2e-app's own actor token works.
	if ok := lc.rp.exchange(t, "--subject-token", bob.AccessToken, "--subject-token-type", accessType,
		"--actor-token", alice.AccessToken, "--actor-token-type", accessType, "--audience", apiClientID); !ok.OK {
		t.Errorf("exchange of bob's token with alice's own e2e-app token as actor = %+v, want a token", ok)
	}
}

// internalAnswer is what the "internal service" of the S70 test answers;
// it must never show up anywhere.
const internalAnswer = "INTERNAL-ANSWER-do-not-leak"

// TestE2E_S70_TenantAdminSSRFRefused: the admin API is on, and the outbound
// policy allows 127.0.0.2/32 only (standing in for the public internet,
// where the attacker's IdP lives: a real oidc-provider) and not loopback
// itself, where an internal service listens (127.0.0.1). The operator
// onboards tenant evil; its per-tenant admin adds an oauth2 provider whose
// authorization and token endpoints are the attacker's IdP and whose
// userinfo_url is the internal service, and a rule copying upstream.secret
// into a claim the app is registered for. A user signs in through it: the
// sign-in reaches the attacker's token endpoint and then fails, no code
// reaches the app, the internal service receives no request, and realmgate
// keeps serving. An OIDC issuer on the internal service is refused at write
// (422 naming a forbidden address), again without a request reaching it.
func TestE2E_S70_TenantAdminSSRFRefused(t *testing.T) {
	e2etest.Need(t)
	var internalHits atomic.Int64
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { // on 127.0.0.1
		internalHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"sub": "internal", "email": "eve@evil.test", "secret": %q}`, internalAnswer)
	}))
	t.Cleanup(svc.Close)
	internal := svc.URL

	addr := e2etest.FreeAddr(t)
	issuer := "http://" + addr
	const idp = "evil-idp"
	// The attacker's IdP, on the one address the outbound policy allows.
	op := startOPWith(t, "--host=127.0.0.2", "--redirect-uri", issuer+"/callback/"+idp)
	h := startAdminDeployment(t, 12, addr, `["127.0.0.2/32"]`, nil)

	if got, body := h.api(t, h.opToken, "POST", "/v1/tenants", map[string]any{"id": "evil", "name": "Evil",
		"domains": []any{map[string]any{"name": "evil.test", "verified": true}}}); got != http.StatusCreated {
		t.Fatalf("operator creates tenant evil = %d %s, want 201", got, body)
	}
	provider := map[string]any{"id": idp, "type": "oauth2", "client_id": opClientID, "client_secret": op.secret,
		"scopes": []string{"openid"}, "auth_url": op.issuer + "/auth", "token_url": op.issuer + "/token",
		"userinfo_url": internal + "/latest/meta-data"}
	if got, body := h.api(t, h.tenantToken, "POST", "/v1/tenants/evil/providers", provider); got != http.StatusCreated {
		t.Fatalf("tenant admin adds provider %s (userinfo_url %s) = %d %s, want 201", idp, provider["userinfo_url"], got, body)
	}
	rules := []any{map[string]any{"name": "exfiltrate", "set": map[string]string{"leak": "has(upstream.secret) ? upstream.secret : 'none'"}}}
	if got, body := h.api(t, h.tenantToken, "PUT", "/v1/tenants/evil/rules", map[string]any{"rules": rules}); got != http.StatusOK {
		t.Fatalf("tenant admin sets rules = %d %s, want 200", got, body)
	}

	// Eve signs in at tenant evil. The change reaches the broker shortly
	// after the write: until then discovery does not know evil.test.
	var end walkEnd
	var b *browser
	var stateFile string
	opHost := strings.TrimPrefix(op.issuer, "http://")
	deadline := time.Now().Add(15 * time.Second)
	for {
		b = newBrowser(t, "alice", "")
		var authURL string
		authURL, stateFile = h.rp.start(t, "--login-hint", "eve@evil.test")
		end = b.walk(authURL, rpRedirectURI, "")
		if b.visited("/callback/" + idp) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sign-in never came back from the attacker's IdP (ended at %s: %d); visits:\n%s",
				end.url, end.status, strings.Join(b.visits, "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the sign-in ended at %s with %d %s", end.url, end.status, end.location)
	if !b.visited(opHost + "/auth") {
		t.Errorf("the sign-in did not go through the attacker's IdP; visits:\n%s", strings.Join(b.visits, "\n"))
	}
	if cb, _ := url.Parse(end.location); end.location != "" && cb.Query().Get("code") != "" {
		tok := h.rp.redeem(t, end.location, stateFile)
		t.Fatalf("sign-in through %s (userinfo_url on loopback) succeeded, want it refused; ID token claims %v", idp, tok.Claims)
	}
	if strings.Contains(end.body, internalAnswer) || strings.Contains(end.location, internalAnswer) {
		t.Errorf("the failed sign-in showed the internal answer: %s %s", end.location, end.body)
	}
	if end.location == "" && end.status < 400 {
		t.Errorf("the sign-in ended at %s with %d, want an error page or an error response to the app", end.url, end.status)
	}
	// The attacker's IdP answered realmgate's token request: the sign-in went
	// as far as the userinfo call, which the outbound policy refused.
	if n := len(opLines(op, "token", 1)); n == 0 {
		t.Errorf("the attacker's IdP served no token request: the test did not reach the userinfo call")
	}

	// An OIDC issuer on the internal service: discovery is fetched at write.
	got, body := h.api(t, h.tenantToken, "POST", "/v1/tenants/evil/providers",
		map[string]any{"id": "evil-oidc", "type": "oidc", "issuer": internal + "/realm", "client_id": "rg", "client_secret": "s"})
	if got != http.StatusUnprocessableEntity || !strings.Contains(string(body), "forbidden address") {
		t.Errorf("tenant admin adds an OIDC issuer on loopback = %d %s, want 422 naming a forbidden address", got, body)
	}

	if n := internalHits.Load(); n != 0 {
		t.Errorf("the internal service received %d requests, want 0", n)
	}
	h.checkServing(t)
}

// TestE2E_S71_DryRunRuleCannotExhaustMemory: a per-tenant admin posts to
// the admin API's dry run a rule nesting regexReplace(x, ".", "$0" * 600)
// three levels deep (the 3.7 KB of CEL: 10 characters of input
// would become 17 GB), and two variants (the error absorbed by ||, a join
// over a huge split). Each is answered 422 rule_limit with a message naming
// the evaluation budget; the process stays up (readyz 200) with its peak
// resident memory (VmHWM) under 300 MB, and a reasonable dry run still
// works. realmgate runs under an 8 GiB address-space limit (prlimit), so
// that on a build without the budget it dies at that bound instead of
// taking the machine's memory. (A tighter bound is fragile: the Go runtime
// reserves address space it never touches, and 1.5 GiB sometimes failed at
// start.)
func TestE2E_S71_DryRunRuleCannotExhaustMemory(t *testing.T) {
	e2etest.Need(t)
	const (
		addressSpace = 8 << 30 // the child's RLIMIT_AS
		maxPeakRSS   = 300 << 20
	)
	h := startAdminDeployment(t, 13, e2etest.FreeAddr(t), "", []string{"--as=" + strconv.Itoa(addressSpace)})
	if got, body := h.api(t, h.opToken, "POST", "/v1/tenants", map[string]any{"id": "evil", "name": "Evil",
		"domains": []any{map[string]any{"name": "evil.test", "verified": true}}}); got != http.StatusCreated {
		t.Fatalf("operator creates tenant evil = %d %s, want 201", got, body)
	}
	amp := strings.Repeat("$0", 600) // "$0" * 600
	expr := "upstream.x"
	for range 3 {
		expr = `regexReplace(` + expr + `, ".", "` + amp + `")`
	}
	identity := map[string]any{"subject": "u1", "claims": map[string]any{"x": "abcdefghij"}}
	dryRun := func(rule map[string]any) (int, []byte) {
		return h.api(t, h.tenantToken, "POST", "/v1/dry-run", map[string]any{"tenant": "evil", "identity": identity, "rules": []any{rule}})
	}
	// The tenant reaches the API's applied state shortly after the write.
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, body := dryRun(map[string]any{"name": "fine", "set": map[string]string{"nickname": `regexReplace(upstream.x, ".", "$0$0")`}})
		if got == http.StatusOK {
			break
		}
		if got != http.StatusNotFound || time.Now().After(deadline) {
			t.Fatalf("a reasonable dry run = %d %s, want 200", got, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the attack rule is %d bytes of CEL", len(expr))

	for _, tc := range []struct {
		name string
		rule map[string]any
	}{
		{"set", map[string]any{"name": "boom", "set": map[string]string{"nickname": expr}}},
		{"if, error absorbed", map[string]any{"name": "boom", "if": "size(" + expr + ") > 0 || true", "deny": "no"}},
		{"join of a huge list", map[string]any{"name": "boom", "set": map[string]string{
			"nickname": `join(split(join(split(upstream.x, ""), "` + amp + `"), ""), "` + amp + `")`}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, body := dryRun(tc.rule)
			var e struct {
				Error   string `json:"error"`
				Message string `json:"message"`
			}
			_ = json.Unmarshal(body, &e)
			if got != http.StatusUnprocessableEntity || e.Error != "rule_limit" || !strings.Contains(e.Message, "budget") {
				t.Errorf("POST /v1/dry-run with the amplifying rule = %d %s, want 422 rule_limit naming the evaluation budget", got, body)
			}
			h.checkServing(t)
			if hwm := procStatusBytes(t, h.rg, "VmHWM"); hwm > maxPeakRSS {
				t.Errorf("realmgate's peak resident memory (VmHWM) = %d MB, want under %d MB", hwm>>20, maxPeakRSS>>20)
			}
		})
	}
	if got, body := dryRun(map[string]any{"name": "fine", "set": map[string]string{"nickname": `regexReplace(upstream.x, ".", "$0$0")`}}); got != http.StatusOK {
		t.Errorf("a reasonable dry run after the attack = %d %s, want 200", got, body)
	}
	t.Logf("realmgate VmHWM %d MB, VmRSS %d MB", procStatusBytes(t, h.rg, "VmHWM")>>20, procStatusBytes(t, h.rg, "VmRSS")>>20)
}

// adminConfig is what an admin API deployment's configuration varies.
type adminConfig struct {
	Issuer, RedisAddr, Secret, AppSecret string
	DB                                   int
	AdminAddr, OpToken, TenantToken      string
	// AllowCIDRs is the outbound.allow_cidrs list in YAML flow form; empty:
	// the default outbound policy (public addresses only).
	AllowCIDRs string
}

// adminTemplate: the admin API on its own loopback listener with an
// operator token (ops) and a per-tenant admin token for tenant evil, which
// the tests create through the API. The app e2e-app accepts every tenant
// and is registered for the custom claim leak (so a leak would reach it).
var adminTemplate = template.Must(template.New("admin.yaml").Parse(`# written by e2e/holes_test.go
issuer: {{.Issuer}}
rate_limits:
  starts_per_ip: "off"
  failures_per_ip: "off"
ops:
  listen: 127.0.0.1:0
store:
  type: redis
  redis:
    addrs: ["{{.RedisAddr}}"]
    db: {{.DB}}
keys:
  algorithm: ES256
  secret: "{{.Secret}}"
{{- if .AllowCIDRs}}
outbound:
  allow_cidrs: {{.AllowCIDRs}} # loopback itself is not allowed
{{- end}}
clients:
  - id: ` + rpClientID + `
    secret: "{{.AppSecret}}"
    redirect_uris: ["` + rpRedirectURI + `"]
    allowed_tenants: ["*"]
    claims: [leak]
admin_api:
  listen: {{.AdminAddr}}
  tokens:
    - name: ops
      token: "{{.OpToken}}"
    - name: evil-admin
      token: "{{.TenantToken}}"
      tenant: evil
`))

// adminDeployment is a realmgate process with its admin API on, and
// openid-client for e2e-app.
type adminDeployment struct {
	cfg                  adminConfig
	rg                   *e2etest.Proc
	rp                   *nodeRP
	base                 string // the admin API's base URL
	opToken, tenantToken string
}

// startAdminDeployment writes adminTemplate for realmgate on addr (Redis
// database db, flushed) and starts it, under `prlimit limits...` when
// limits are given, and waits until /readyz answers 200.
func startAdminDeployment(t *testing.T, db int, addr, allowCIDRs string, limits []string) *adminDeployment {
	t.Helper()
	e2etest.Need(t)
	flushRedisDB(t, env.redis.Addr(), db)
	cfg := adminConfig{Issuer: "http://" + addr, RedisAddr: env.redis.Addr(), DB: db, Secret: randomString(t, 32),
		AppSecret: randomString(t, 24), AdminAddr: e2etest.FreeAddr(t), OpToken: randomString(t, 32),
		TenantToken: randomString(t, 32), AllowCIDRs: allowCIDRs}
	path := e2etest.WriteConfig(t, adminTemplate, cfg)
	bin, args := env.binary, []string{"serve", "--config", path, "--listen", addr, "--log-format", "json"}
	if len(limits) > 0 {
		prlimit, err := exec.LookPath("prlimit")
		if err != nil {
			t.Fatalf("prlimit (util-linux) not found: it bounds realmgate's memory in this test: %v", err)
		}
		bin, args = prlimit, append(append(append([]string{}, limits...), "--", env.binary), args...)
	}
	h := &adminDeployment{cfg: cfg, base: "http://" + cfg.AdminAddr, opToken: cfg.OpToken, tenantToken: cfg.TenantToken}
	h.rg = e2etest.Start(t, "realmgate", exec.Command(bin, args...))
	h.rg.WaitReady(t, cfg.Issuer+"/readyz")
	h.rp = startNodeRP(t, cfg.Issuer, rpClientID, cfg.AppSecret)
	return h
}

// api calls the admin API with token and a JSON body; it returns the status
// and the answer's body.
func (h *adminDeployment) api(t *testing.T, token, method, path string, body any) (int, []byte) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, h.base+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		select { // a process that died answers nothing: say so
		case <-h.rg.Done():
			t.Fatalf("%s %s: %v: realmgate exited (%v) %s", method, path, err, h.rg.Cmd.ProcessState, fatalLine(h.rg))
		case <-time.After(2 * time.Second):
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, data
}

// checkServing asserts the realmgate process is alive and ready.
func (h *adminDeployment) checkServing(t *testing.T) {
	t.Helper()
	if h.rg.Exited() {
		t.Fatalf("realmgate exited:\n%s", h.rg.Out.Tail(2000))
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(h.cfg.Issuer + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /readyz = %d, want 200", resp.StatusCode)
	}
}

// fatalLine returns the Go runtime's "fatal error: ..." line from p's
// output (its goroutine dump follows it, so it is not in the tail).
func fatalLine(p *e2etest.Proc) string {
	for _, line := range strings.Split(p.Out.String(), "\n") {
		if strings.HasPrefix(line, "fatal error:") {
			return line
		}
	}
	return ""
}

// procStatusBytes reads a "kB" field of /proc/<pid>/status (VmRSS, VmHWM)
// of a running process, in bytes.
func procStatusBytes(t *testing.T, p *e2etest.Proc, field string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.Cmd.Process.Pid))
	if err != nil {
		t.Fatalf("%s status: %v", p.Name, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			t.Fatalf("%s status %s = %q: %v", p.Name, field, value, err)
		}
		return kb << 10
	}
	t.Fatalf("%s status has no %s", p.Name, field)
	return 0
}
