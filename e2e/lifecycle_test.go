package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/realmgate/realmgate/internal/e2etest"
)

// The session lifecycle of issue 9, end to end: RP-initiated and upstream
// back-channel logout (S64, S65), tenant switching, a tenant that requires
// MFA, impersonation and token exchange. Each test runs its own
// oidc-provider (node/op.mjs) and realmgate process on its own Redis
// database; the app is openid-client (node/rp.mjs), the browser is the Go
// test, and back-channel logout tokens arrive at a Go httptest endpoint
// registered as the app's backchannel_logout_uri.

const (
	// postLogoutURI is the app's registered post_logout_redirect_uri.
	postLogoutURI = "http://127.0.0.1/e2e/signed-out"
	// apiClientID may receive tokens exchanged by the app (exchange_audiences).
	apiClientID = "e2e-api"
	// otherClientID is registered but not among the app's exchange_audiences.
	otherClientID = "e2e-other"
	// secureIdPID is the IdP of tenant secure (require_mfa), at the same
	// oidc-provider as acme-op.
	secureIdPID = "secure-op"
	// papeMFA is what realmgate asks an IdP for when MFA is required and the
	// IdP configures no mfa_acr_values.
	papeMFA = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
	// backchannelEvent is the events member of a logout token (Back-Channel Logout 1.0 §2.4).
	backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"
)

// lcConfig is what a lifecycle configuration varies.
type lcConfig struct {
	Issuer, RedisAddr                     string
	DB                                    int
	Secret                                string
	AppSecret, APISecret, OtherSecret     string
	OPIssuer, OPSecret, BackchannelLogout string
}

// lcTemplate: the app e2e-app registers a post-logout redirect URI, a
// back-channel logout URI (the test's receiver) and may exchange tokens for
// e2e-api. Tenant acme (alice: finance-admins and staff, bob: staff) lets
// its admins impersonate its users. Tenant partner admits alice
// (verified email from acme-op) as a member with its own roles. Tenant
// secure requires MFA; its IdP is the same oidc-provider, where carol
// authenticates with a password only and dave with a password and an OTP.
var lcTemplate = template.Must(template.New("lifecycle.yaml").Parse(`# written by e2e/lifecycle_test.go
issuer: {{.Issuer}}
# Every request comes from 127.0.0.1 and several processes share a host.
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
outbound:
  allow_loopback: true # the upstream IdPs (and back-channel receivers) run on loopback
clients:
  - id: ` + rpClientID + `
    secret: "{{.AppSecret}}"
    redirect_uris: ["` + rpRedirectURI + `"]
    post_logout_redirect_uris: ["` + postLogoutURI + `"]
    allowed_tenants: ["acme", "partner", "secure"]
    claims: [roles]
    backchannel_logout_uri: "{{.BackchannelLogout}}"
    exchange_audiences: ["` + apiClientID + `"]
  - id: ` + apiClientID + `
    secret: "{{.APISecret}}"
    redirect_uris: ["http://127.0.0.1/e2e/api-callback"]
    allowed_tenants: ["acme"]
    claims: [roles]
  - id: ` + otherClientID + `
    secret: "{{.OtherSecret}}"
    redirect_uris: ["http://127.0.0.1/e2e/other-callback"]
    allowed_tenants: ["acme"]
    claims: [roles]
tenants:
  - id: acme
    name: ACME Corporation
    domains: ["acme.test"]
    impersonation:
      operator_roles: ["admin"]
      lifetime: 5m
    providers:
      - id: ` + idpID + `
        type: oidc
        issuer: {{.OPIssuer}}
        client_id: ` + opClientID + `
        client_secret: "{{.OPSecret}}"
        scopes: ["openid", "profile", "email", "groups"]
    rules:
      - name: groups to roles
        map:
          from: upstream.groups
          to: roles
          table:
            finance-admins: admin
            staff: member
  - id: partner
    name: Partner Consulting
    domains: ["partner.test"]
    members:
      - idp: ` + idpID + `
        email: alice@acme.test
    providers:
      - id: partner-op
        type: oidc
        issuer: http://127.0.0.1:9/partner
        client_id: realmgate
        client_secret: never-used
    rules:
      - name: partner roles
        map:
          from: upstream.groups
          to: roles
          table:
            finance-admins: auditor
            staff: consultant
  - id: secure
    name: Secure Ltd
    domains: ["secure.test"]
    require_mfa: true
    providers:
      - id: ` + secureIdPID + `
        type: oidc
        issuer: {{.OPIssuer}}
        client_id: ` + opClientID + `
        client_secret: "{{.OPSecret}}"
        scopes: ["openid", "profile", "email", "groups"]
    rules:
      - name: groups to roles
        map:
          from: upstream.groups
          to: roles
          table:
            staff: member
`))

// lifecycle is one test's running deployment.
type lifecycle struct {
	cfg      lcConfig
	op       *upstreamOP
	rg       *e2etest.Proc
	addr     string
	rp       *nodeRP
	logouts  *logoutReceiver
	upstream *relay // set when the OP's back-channel logout goes through a relay
}

// lcOptions varies a lifecycle deployment.
type lcOptions struct {
	// upstreamBackchannel registers <issuer>/backchannel/acme-op (through a
	// recording relay) as the back-channel logout URI of realmgate's client
	// at oidc-provider.
	upstreamBackchannel bool
}

// newLifecycle starts the back-channel receiver, oidc-provider and
// realmgate (JSON logs, so the audit stream on stdout can be read) on
// Redis database db.
func newLifecycle(t *testing.T, db int, opt lcOptions) *lifecycle {
	t.Helper()
	e2etest.Need(t)
	flushRedisDB(t, env.redis.Addr(), db)
	addr := e2etest.FreeAddr(t)
	issuer := "http://" + addr
	lc := &lifecycle{addr: addr, logouts: newLogoutReceiver(t)}
	opArgs := []string{"--redirect-uri", issuer + "/callback/" + idpID, "--redirect-uri", issuer + "/callback/" + secureIdPID}
	if opt.upstreamBackchannel {
		lc.upstream = newRelay(t, issuer+"/backchannel/"+idpID)
		opArgs = append(opArgs, "--backchannel-logout-uri", lc.upstream.srv.URL+"/backchannel/"+idpID)
	}
	lc.op = startOPWith(t, opArgs...)
	lc.cfg = lcConfig{Issuer: issuer, RedisAddr: env.redis.Addr(), DB: db, Secret: randomString(t, 32),
		AppSecret: randomString(t, 24), APISecret: randomString(t, 24), OtherSecret: randomString(t, 24),
		OPIssuer: lc.op.issuer, OPSecret: lc.op.secret, BackchannelLogout: lc.logouts.srv.URL + "/bc"}
	path := e2etest.WriteConfig(t, lcTemplate, lc.cfg)
	lc.rg = e2etest.Start(t, "realmgate", exec.Command(env.binary, "serve", "--config", path, "--listen", addr, "--log-format", "json"))
	lc.rg.WaitReady(t, issuer+"/readyz")
	lc.rp = startNodeRP(t, issuer, rpClientID, lc.cfg.AppSecret)
	return lc
}

// startOPWith starts node/op.mjs with realmgate's client and extra
// arguments (redirect URIs, back-channel logout URI) and waits for it to
// print its issuer.
func startOPWith(t *testing.T, extra ...string) *upstreamOP {
	t.Helper()
	secret := randomString(t, 24)
	p := e2etest.Start(t, "oidc-provider", e2etest.NodeCommand(env.node, env.nodeDir,
		append([]string{"op.mjs", "--client-id=" + opClientID, "--client-secret=" + secret}, extra...)...))
	var ready struct {
		Issuer string `json:"issuer"`
	}
	p.WaitLine(t, func(line string) bool { return json.Unmarshal([]byte(line), &ready) == nil && ready.Issuer != "" })
	return &upstreamOP{issuer: ready.Issuer, secret: secret, p: p}
}

// opLines returns the JSON event lines op.mjs printed with the given event
// name, waiting up to 10 s for at least min of them (its stdout reaches the
// test through a pipe, after the HTTP answers).
func opLines(op *upstreamOP, event string, min int) []map[string]any {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if out := opEvents(op, event); len(out) >= min || time.Now().After(deadline) {
			return out
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func opEvents(op *upstreamOP, event string) []map[string]any {
	var out []map[string]any
	for _, line := range op.p.Lines() {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["event"] == event {
			out = append(out, m)
		}
	}
	return out
}

// auditEvents returns the events of realmgate's audit stream (JSON lines
// on stdout with "stream":"audit").
func auditEvents(p *e2etest.Proc) []map[string]any {
	var out []map[string]any
	for _, line := range p.Lines() {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["stream"] == "audit" {
			out = append(out, m)
		}
	}
	return out
}

// findAudit returns the first audit event whose fields equal want. The
// stream reaches the test through a pipe, after the HTTP answer that caused
// it, so it waits up to 10 s for the event to show.
func findAudit(p *e2etest.Proc, want map[string]string) map[string]any {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ev := matchAudit(p, want); ev != nil || time.Now().After(deadline) {
			return ev
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func matchAudit(p *e2etest.Proc, want map[string]string) map[string]any {
	for _, ev := range auditEvents(p) {
		match := true
		for k, v := range want {
			if s, _ := ev[k].(string); s != v {
				match = false
				break
			}
		}
		if match {
			return ev
		}
	}
	return nil
}

// logoutReceiver is the app's backchannel_logout_uri: it records every
// logout token POSTed to it.
type logoutReceiver struct {
	srv    *httptest.Server
	tokens chan string
	mu     sync.Mutex
	bad    []string // requests that were not a form POST with one logout_token
}

func newLogoutReceiver(t *testing.T) *logoutReceiver {
	t.Helper()
	r := &logoutReceiver{tokens: make(chan string, 16)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// Back-Channel Logout 1.0 §2.5: a POST, form-encoded, logout_token.
		ct := req.Header.Get("Content-Type")
		if req.Method != http.MethodPost || !strings.HasPrefix(ct, "application/x-www-form-urlencoded") || req.ParseForm() != nil || len(req.PostForm["logout_token"]) != 1 {
			r.mu.Lock()
			r.bad = append(r.bad, fmt.Sprintf("%s %s (%s)", req.Method, req.URL, ct))
			r.mu.Unlock()
			http.Error(w, "bad logout request", http.StatusBadRequest)
			return
		}
		r.tokens <- req.PostForm.Get("logout_token")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// wait returns the next logout token, failing the test after 10 s.
func (r *logoutReceiver) wait(t *testing.T) string {
	t.Helper()
	select {
	case tok := <-r.tokens:
		return tok
	case <-time.After(10 * time.Second):
		r.mu.Lock()
		defer r.mu.Unlock()
		t.Fatalf("no back-channel logout token reached the app's backchannel_logout_uri within 10 s (malformed requests: %v)", r.bad)
		return ""
	}
}

// none asserts no logout token arrived so far.
func (r *logoutReceiver) none(t *testing.T, when string) {
	t.Helper()
	select {
	case tok := <-r.tokens:
		t.Errorf("%s: the app received a back-channel logout token, want none: %s", when, tok)
	default:
	}
}

// relay forwards oidc-provider's back-channel logout POSTs to realmgate and
// records each logout token and realmgate's answer, so the test can replay
// a token realmgate already accepted.
type relay struct {
	srv    *httptest.Server
	mu     sync.Mutex
	tokens []string
	status []int
}

func newRelay(t *testing.T, target string) *relay {
	t.Helper()
	r := &relay{}
	hc := &http.Client{Timeout: 10 * time.Second}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(req.Body, 64<<10))
		fwd, err := http.NewRequest(req.Method, target, bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		fwd.Header.Set("Content-Type", req.Header.Get("Content-Type"))
		resp, err := hc.Do(fwd)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		form, _ := url.ParseQuery(string(body))
		r.mu.Lock()
		r.tokens = append(r.tokens, form.Get("logout_token"))
		r.status = append(r.status, resp.StatusCode)
		r.mu.Unlock()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(answer)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *relay) seen() ([]string, []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.tokens), slices.Clone(r.status)
}

// nodeRP is node/rp.mjs (openid-client) serving one client: one node
// process per test, answering one JSON command per line, so the test does
// not pay node's start-up for every step.
type nodeRP struct {
	issuer, clientID string
	stdin            io.WriteCloser
	answers          chan string
	stderr           *e2etest.SyncBuffer
}

// startNodeRP runs `node rp.mjs serve` for the client; it ends when the
// test does.
func startNodeRP(t *testing.T, issuer, clientID, secret string) *nodeRP {
	t.Helper()
	cmd := e2etest.NodeCommand(env.node, env.nodeDir, "rp.mjs", "serve", "--issuer="+issuer, "--client-id="+clientID, "--client-secret="+secret)
	rp := &nodeRP{issuer: issuer, clientID: clientID, answers: make(chan string, 1), stderr: &e2etest.SyncBuffer{}}
	cmd.Stderr = rp.stderr
	var err error
	if rp.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node rp.mjs serve: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			rp.answers <- sc.Text()
		}
		close(rp.answers)
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		rp.stdin.Close() // EOF ends serve
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() && rp.stderr.Tail(1) != "" {
			t.Logf("---- stderr of rp.mjs serve ----\n%s", rp.stderr.Tail(4000))
		}
	})
	return rp
}

// call runs one rp.mjs command with flag, value pairs ("--callback", URL)
// and decodes its answer into out. A command that throws fails the test
// with openid-client's error.
func (rp *nodeRP) call(t *testing.T, out any, cmd string, pairs ...string) {
	t.Helper()
	args := map[string]string{}
	for i := 0; i+1 < len(pairs); i += 2 {
		args[strings.TrimPrefix(pairs[i], "--")] = pairs[i+1]
	}
	line, err := json.Marshal(map[string]any{"cmd": cmd, "args": args})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rp.stdin.Write(append(line, '\n')); err != nil {
		t.Fatalf("rp.mjs %s: %v\n%s", cmd, err, rp.stderr.Tail(4000))
	}
	var answer string
	select {
	case a, ok := <-rp.answers:
		if !ok {
			t.Fatalf("rp.mjs exited during %s:\n%s", cmd, rp.stderr.Tail(4000))
		}
		answer = a
	case <-time.After(30 * time.Second):
		t.Fatalf("rp.mjs %s: no answer within 30 s:\n%s", cmd, rp.stderr.Tail(4000))
	}
	var failed struct {
		Failed bool `json:"failed"`
	}
	if json.Unmarshal([]byte(answer), &failed) == nil && failed.Failed {
		t.Fatalf("rp.mjs %s failed: %s", cmd, answer)
	}
	if err := json.Unmarshal([]byte(answer), out); err != nil {
		t.Fatalf("rp.mjs %s: answer is not JSON: %v\n%s", cmd, err, answer)
	}
}

// tokens is what rp.mjs redeem prints.
type tokens struct {
	IDToken      string         `json:"id_token"`
	AccessToken  string         `json:"access_token"`
	RefreshToken string         `json:"refresh_token"`
	Scope        string         `json:"scope"`
	Claims       map[string]any `json:"claims"`
	// AccessJWT is the access token as jose verified it (at+jwt, aud the client).
	AccessJWT verified `json:"access_token_jwt"`
}

// start makes an authorization URL with openid-client (PKCE, state, nonce)
// and returns it with the file holding its secrets.
func (rp *nodeRP) start(t *testing.T, extra ...string) (authURL, stateFile string) {
	t.Helper()
	stateFile = filepath.Join(t.TempDir(), "rp-state.json")
	var out struct {
		URL string `json:"url"`
	}
	rp.call(t, &out, "start", append([]string{"--redirect-uri", rpRedirectURI, "--state-file", stateFile}, extra...)...)
	return out.URL, stateFile
}

// redeem redeems the callback's code with openid-client's checks.
func (rp *nodeRP) redeem(t *testing.T, callback, stateFile string) tokens {
	t.Helper()
	var out tokens
	rp.call(t, &out, "redeem", "--callback", callback, "--state-file", stateFile)
	return out
}

// signIn runs a whole sign-in: openid-client's authorization URL, the
// browser (choosing tenant on a picker page, if one is shown), and the
// code redeemed by openid-client.
func (rp *nodeRP) signIn(t *testing.T, b *browser, tenant string, extra ...string) tokens {
	t.Helper()
	authURL, stateFile := rp.start(t, extra...)
	end := b.walk(authURL, rpRedirectURI, tenant)
	if end.location == "" {
		t.Fatalf("sign-in did not come back to the app: %s answered %d:\n%s", end.url, end.status, end.body)
	}
	return rp.redeem(t, end.location, stateFile)
}

// probeResult is what rp.mjs probe prints.
type probeResult struct {
	Refresh  *outcome `json:"refresh"`
	Userinfo *outcome `json:"userinfo"`
}

type outcome struct {
	OK           bool           `json:"ok"`
	Error        string         `json:"error"`
	Status       int            `json:"status"`
	RefreshToken string         `json:"refresh_token"`
	Claims       map[string]any `json:"claims"`
	Response     map[string]any `json:"response"`
	AccessJWT    verified       `json:"access_token_jwt"`
}

// verified is what rp.mjs verify-jwt prints.
type verified struct {
	Header  map[string]any `json:"header"`
	Payload map[string]any `json:"payload"`
}

func (rp *nodeRP) verifyJWT(t *testing.T, token, typ, audience string, require ...string) verified {
	t.Helper()
	var out verified
	rp.call(t, &out, "verify-jwt", "--token", token, "--typ", typ, "--audience", audience, "--require", strings.Join(require, ","))
	return out
}

// exchange is an RFC 8693 token exchange at realmgate's token endpoint
// (openid-client's genericGrantRequest); an issued token comes back
// verified by jose for the audience.
func (rp *nodeRP) exchange(t *testing.T, params ...string) outcome {
	t.Helper()
	var out outcome
	rp.call(t, &out, "exchange", params...)
	return out
}

func (rp *nodeRP) logoutURL(t *testing.T, params ...string) string {
	t.Helper()
	var out struct {
		URL string `json:"url"`
	}
	rp.call(t, &out, "logout-url", params...)
	return out.URL
}

func (rp *nodeRP) probe(t *testing.T, params ...string) probeResult {
	t.Helper()
	var out probeResult
	rp.call(t, &out, "probe", params...)
	return out
}

// walkEnd is where a browser walk stopped: a redirect to the stop URL
// (location), or a page it could not or should not answer.
type walkEnd struct {
	location string
	url      string
	status   int
	body     string
}

// walk is browser.signIn that also answers realmgate's tenant picker (with
// tenant) and oidc-provider's logout confirmation, and returns instead of
// failing when it reaches an error or a page it has no answer for.
func (b *browser) walk(start, stop, tenant string) walkEnd {
	b.t.Helper()
	method, target := http.MethodGet, start
	var form url.Values
	for range 30 {
		u, err := url.Parse(target)
		if err != nil {
			b.t.Fatalf("browser: bad URL %q: %v", target, err)
		}
		var body io.Reader
		if method == http.MethodPost {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequest(method, u.String(), body)
		if err != nil {
			b.t.Fatalf("browser: request %s %s: %v", method, u, err)
		}
		if method == http.MethodPost {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req.Header.Set("Accept", "text/html")
		b.visits = append(b.visits, method+" "+u.Host+u.Path)
		resp, err := b.client.Do(req)
		if err != nil {
			b.t.Fatalf("browser: %s %s: %v", method, u, err)
		}
		page, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		end := walkEnd{url: u.String(), status: resp.StatusCode, body: string(page)}
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			loc, err := resp.Location()
			if err != nil {
				return end
			}
			if strings.HasPrefix(loc.String(), stop) {
				end.location = loc.String()
				return end
			}
			method, target, form = http.MethodGet, loc.String(), nil
		case resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html"):
			forms, err := parseForms(string(page))
			if err != nil {
				return end
			}
			f := b.answer(forms, tenant)
			if f == nil {
				return end
			}
			action, err := u.Parse(f.action)
			if err != nil {
				b.t.Fatalf("browser: form action %q: %v", f.action, err)
			}
			method, target, form = http.MethodPost, action.String(), f.values
		default:
			return end
		}
	}
	b.t.Fatalf("browser: no end after 30 steps; visited:\n%s", strings.Join(b.visits, "\n"))
	return walkEnd{}
}

// answer fills in the form this browser answers on a page, or returns nil.
func (b *browser) answer(forms []*htmlForm, tenant string) *htmlForm {
	for _, f := range forms {
		v := f.values
		switch {
		case f.has("login") && v.Get("prompt") == "login": // oidc-provider's login form
			v.Set("login", b.login)
			v.Set("password", b.password)
			return f
		case v.Get("prompt") == "consent": // oidc-provider's consent form
			return f
		case strings.HasSuffix(f.action, "/session/end/confirm") && f.has("xsrf"): // oidc-provider's logout page
			v.Set("logout", "yes") // the "Yes, sign me out" button
			return f
		case strings.HasSuffix(f.action, "/tenant") && f.has("r"): // realmgate's tenant picker
			if tenant == "" {
				return nil
			}
			v.Set("tenant", tenant) // the button of that organization
			return f
		case f.typed["email"] && f.has("r") && b.email != "": // realmgate's discovery page
			v.Set("email", b.email)
			return f
		}
	}
	return nil
}

// visited reports whether the browser requested a path containing part.
func (b *browser) visited(part string) bool {
	return slices.ContainsFunc(b.visits, func(v string) bool { return strings.Contains(v, part) })
}

// silentAuthorize sends the browser to realmgate's /authorize with
// prompt=none (OIDC Core §3.1.2.1) and returns the callback's query: a code
// while the broker session lives, error=login_required once it has ended.
// It names tenant acme: alice, a member of two tenants, would otherwise be
// asked to pick one.
func silentAuthorize(t *testing.T, b *browser, issuer string) url.Values {
	t.Helper()
	verifier := randomString(t, 32)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"client_id": {rpClientID}, "redirect_uri": {rpRedirectURI}, "response_type": {"code"},
		"scope": {"openid"}, "state": {randomString(t, 12)}, "nonce": {randomString(t, 12)}, "prompt": {"none"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		"tenant": {"acme"}}
	end := b.walk(issuer+"/authorize?"+q.Encode(), rpRedirectURI, "")
	if end.location == "" {
		t.Fatalf("prompt=none authorize did not answer the app: %d\n%s", end.status, end.body)
	}
	cb, err := url.Parse(end.location)
	if err != nil {
		t.Fatal(err)
	}
	return cb.Query()
}

// copyCookies returns a new browser holding the cookies b has for issuer.
func copyCookies(t *testing.T, b *browser, issuer string) *browser {
	t.Helper()
	u, _ := url.Parse(issuer)
	nb := newBrowser(t, b.login, b.email)
	jar, _ := cookiejar.New(nil)
	jar.SetCookies(u, b.client.Jar.Cookies(u))
	nb.client.Jar = jar
	return nb
}

// checkLogoutToken asserts what Back-Channel Logout 1.0 §2.4 asks of a
// logout token for this client and session (openid-client's jose verified
// the signature, typ, iss, aud, iat and exp already).
func checkLogoutToken(t *testing.T, v verified, issuer, sub, sid string) {
	t.Helper()
	if v.Header["typ"] != "logout+jwt" {
		t.Errorf("logout token typ = %v, want logout+jwt", v.Header["typ"])
	}
	p := v.Payload
	checkClaims(t, "logout token", p, map[string]any{"iss": issuer, "aud": rpClientID, "sub": sub, "sid": sid})
	if ev, _ := p["events"].(map[string]any); ev == nil || ev[backchannelEvent] == nil {
		t.Errorf("logout token events = %v, want the member %s", p["events"], backchannelEvent)
	} else if m, ok := ev[backchannelEvent].(map[string]any); !ok || len(m) != 0 {
		t.Errorf("logout token events[%s] = %v, want {}", backchannelEvent, ev[backchannelEvent])
	}
	if jti, _ := p["jti"].(string); jti == "" {
		t.Errorf("logout token has no jti")
	}
	if _, ok := p["nonce"]; ok {
		t.Errorf("logout token carries a nonce (§2.4: it MUST NOT)")
	}
}

// TestE2E_Logout_S64_S65_RPInitiated: alice signs in through openid-client;
// an end-session URL naming an unregistered post_logout_redirect_uri is
// refused without a redirect and without signing her out (S65); the URL
// openid-client builds with id_token_hint and the registered URI signs her
// out and returns with state; the app receives a logout token that jose
// verifies against realmgate's JWKS (typ logout+jwt, iss, aud, events,
// jti, the ID token's sub and sid, no nonce: S64); the refresh token and
// access token die, the old session cookie no longer signs in silently, and
// a new sign-in goes upstream again.
func TestE2E_Logout_S64_S65_RPInitiated(t *testing.T) {
	lc := newLifecycle(t, 6, lcOptions{})
	issuer := lc.cfg.Issuer
	b := newBrowser(t, "alice", "")
	tok := lc.rp.signIn(t, b, "acme", "--login-hint", "alice@acme.test")
	sub, _ := tok.Claims["sub"].(string)
	sid, _ := tok.Claims["sid"].(string)
	if sub == "" || sid == "" {
		t.Fatalf("ID token sub, sid = %q, %q; want both (sid ties back-channel logout to the session)", sub, sid)
	}
	checkClaims(t, "ID token", tok.Claims, map[string]any{"tid": "acme", "idp": idpID})

	// S65: an unregistered post_logout_redirect_uri gets no redirect, and
	// the user stays signed in.
	evil := lc.rp.logoutURL(t, "--id-token-hint", tok.IDToken,
		"--post-logout-redirect-uri", "https://attacker.example/after", "--state", "s1")
	end := b.walk(evil, "https://attacker.example", "")
	if end.location != "" || end.status < 400 {
		t.Errorf("end session with an unregistered post_logout_redirect_uri = %d, redirect %q; want a 4xx page and no redirect", end.status, end.location)
	}
	if q := silentAuthorize(t, b, issuer); q.Get("code") == "" {
		t.Errorf("after the refused logout, prompt=none = %v; want a code (the session must live on)", q)
	}
	if findAudit(lc.rg, map[string]string{"outcome": "refused", "reason": "post_logout_redirect_uri_unregistered"}) == nil {
		t.Errorf("no audit event for the refused post_logout_redirect_uri")
	}
	lc.logouts.none(t, "after the refused logout")

	kept := copyCookies(t, b, issuer) // the session cookie, as a thief would keep it

	logout := lc.rp.logoutURL(t, "--id-token-hint", tok.IDToken,
		"--post-logout-redirect-uri", postLogoutURI, "--state", "bye-123")
	if u, err := url.Parse(logout); err != nil || u.Host != lc.addr || u.Path != "/logout" {
		t.Fatalf("openid-client end session URL = %q, want %s/logout (discovery's end_session_endpoint)", logout, issuer)
	}
	end = b.walk(logout, postLogoutURI, "")
	if end.location == "" {
		t.Fatalf("RP-initiated logout with id_token_hint did not return to %s: %d\n%s", postLogoutURI, end.status, end.body)
	}
	if back, _ := url.Parse(end.location); back.Query().Get("state") != "bye-123" {
		t.Errorf("post-logout redirect = %q, want state=bye-123", end.location)
	}

	// S64: the back-channel logout token.
	raw := lc.logouts.wait(t)
	v := lc.rp.verifyJWT(t, raw, "logout+jwt", rpClientID, "jti", "events", "sid", "sub")
	checkLogoutToken(t, v, issuer, sub, sid)

	// The session is over at realmgate.
	probe := lc.rp.probe(t, "--refresh-token", tok.RefreshToken, "--access-token", tok.AccessToken, "--sub", sub)
	if probe.Refresh == nil || probe.Refresh.OK || probe.Refresh.Error != "invalid_grant" {
		t.Errorf("refresh after logout = %+v, want invalid_grant", probe.Refresh)
	}
	if probe.Userinfo == nil || probe.Userinfo.OK {
		t.Errorf("userinfo with the access token after logout = %+v, want refused", probe.Userinfo)
	}
	if q := silentAuthorize(t, kept, issuer); q.Get("error") != "login_required" {
		t.Errorf("prompt=none with the old session cookie after logout = %v, want error=login_required", q)
	}
	if findAudit(lc.rg, map[string]string{"outcome": "logout", "reason": "rp_initiated", "subject": sub}) == nil {
		t.Errorf("no audit event for the logout")
	}

	// A new sign-in goes to the upstream IdP again (it still has its own session).
	b.visits = nil
	again := lc.rp.signIn(t, b, "acme", "--login-hint", "alice@acme.test")
	if !b.visited(lc.op.issuer[len("http://"):]) || !b.visited("/callback/"+idpID) {
		t.Errorf("sign-in after logout did not go upstream; visits:\n%s", strings.Join(b.visits, "\n"))
	}
	if s, _ := again.Claims["sid"].(string); s == "" || s == sid {
		t.Errorf("sid after signing in again = %q, want a new session (old %q)", s, sid)
	}
	lc.logouts.none(t, "after signing in again")
}

// TestE2E_UpstreamBackchannelLogout_S64: oidc-provider's backchannelLogout
// feature posts its logout token to realmgate's /backchannel/acme-op when
// alice ends her session at the IdP (its end_session page, confirmed by the
// browser). realmgate accepts it, ends its own session (refresh dies, the
// browser's cookie no longer signs in silently) and sends the app its own
// logout token for that session. The same upstream token posted again is
// refused with 400 (S64: a jti is used once).
func TestE2E_UpstreamBackchannelLogout_S64(t *testing.T) {
	lc := newLifecycle(t, 7, lcOptions{upstreamBackchannel: true})
	issuer := lc.cfg.Issuer
	b := newBrowser(t, "alice", "")
	tok := lc.rp.signIn(t, b, "acme", "--login-hint", "alice@acme.test")
	sub, _ := tok.Claims["sub"].(string)
	sid, _ := tok.Claims["sid"].(string)

	// Sign out at the IdP: its end_session endpoint asks for confirmation.
	end := b.walk(lc.op.issuer+"/session/end", lc.op.issuer+"/session/end/success", "")
	if end.location == "" {
		t.Fatalf("oidc-provider end_session did not finish: %s answered %d:\n%s", end.url, end.status, end.body)
	}
	tokens, statuses := lc.upstream.seen()
	if len(tokens) != 1 || tokens[0] == "" {
		t.Fatalf("oidc-provider sent %d back-channel logout tokens to realmgate, want 1 (OP events: %v)", len(tokens), opEvents(lc.op, "backchannel.error"))
	}
	if statuses[0] != http.StatusOK {
		t.Errorf("realmgate answered the upstream logout token with %d, want 200", statuses[0])
	}
	if ok := opLines(lc.op, "backchannel.success", 1); len(ok) != 1 || ok[0]["client"] != opClientID {
		t.Errorf("oidc-provider backchannel.success events = %v, want one for %s", ok, opClientID)
	}

	// realmgate ended the session everywhere: the app got its logout token.
	v := lc.rp.verifyJWT(t, lc.logouts.wait(t), "logout+jwt", rpClientID, "jti", "events", "sid", "sub")
	checkLogoutToken(t, v, issuer, sub, sid)
	probe := lc.rp.probe(t, "--refresh-token", tok.RefreshToken)
	if probe.Refresh == nil || probe.Refresh.OK || probe.Refresh.Error != "invalid_grant" {
		t.Errorf("refresh after upstream logout = %+v, want invalid_grant", probe.Refresh)
	}
	if q := silentAuthorize(t, b, issuer); q.Get("error") != "login_required" {
		t.Errorf("prompt=none after upstream logout = %v, want error=login_required (the cookie is still in the browser)", q)
	}
	if findAudit(lc.rg, map[string]string{"outcome": "logout", "reason": "upstream_backchannel", "subject": sub}) == nil {
		t.Errorf("no audit event for the upstream logout")
	}

	// S64: replaying the same logout token is refused.
	resp, err := http.PostForm(issuer+"/backchannel/"+idpID, url.Values{"logout_token": {tokens[0]}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var oe struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &oe)
	if resp.StatusCode != http.StatusBadRequest || oe.Error != "invalid_request" {
		t.Errorf("replayed upstream logout token = %d %s, want 400 invalid_request", resp.StatusCode, body)
	}
	if findAudit(lc.rg, map[string]string{"outcome": "refused", "reason": "logout_token_replayed"}) == nil {
		t.Errorf("no audit event for the replayed logout token")
	}
	lc.logouts.none(t, "after the replay")
}

// TestE2E_TenantSwitch_S51: alice (acme-op, verified alice@acme.test) is a
// configured member of tenant partner. Her first sign-in shows realmgate's
// tenant picker; she picks acme and gets tid acme with acme's roles. A new
// authorization request with tenant=partner switches without going
// upstream and yields tid partner with partner's roles for the same
// upstream groups. bob is not a member: tenant=partner is refused (S51).
func TestE2E_TenantSwitch_S51(t *testing.T) {
	lc := newLifecycle(t, 8, lcOptions{})
	b := newBrowser(t, "alice", "")
	home := lc.rp.signIn(t, b, "acme", "--login-hint", "alice@acme.test")
	if !b.visited("/tenant") {
		t.Errorf("alice's sign-in never showed the tenant picker; visits:\n%s", strings.Join(b.visits, "\n"))
	}
	checkClaims(t, "acme ID token", home.Claims, map[string]any{"tid": "acme", "idp": idpID})
	checkRoles(t, "acme ID token", home.Claims, "admin", "member")

	b.visits = nil
	switched := lc.rp.signIn(t, b, "", "--tenant", "partner")
	if b.visited(lc.op.issuer[len("http://"):]) {
		t.Errorf("switching tenants went upstream (partner asks no reauth); visits:\n%s", strings.Join(b.visits, "\n"))
	}
	checkClaims(t, "partner ID token", switched.Claims, map[string]any{"tid": "partner", "idp": idpID, "email": "alice@acme.test"})
	checkRoles(t, "partner ID token", switched.Claims, "auditor", "consultant")
	checkClaims(t, "partner access token", switched.AccessJWT.Payload, map[string]any{"tid": "partner"})
	checkRoles(t, "partner access token", switched.AccessJWT.Payload, "auditor", "consultant")

	// S51: bob is not a member of partner.
	bob := newBrowser(t, "bob", "")
	authURL, _ := lc.rp.start(t, "--login-hint", "bob@acme.test", "--tenant", "partner")
	end := bob.walk(authURL, rpRedirectURI, "")
	cb, _ := url.Parse(end.location)
	if end.location == "" || cb.Query().Get("error") != "access_denied" || cb.Query().Get("code") != "" {
		t.Errorf("bob asking for tenant partner ended at %q (%d), want an access_denied error response", end.location, end.status)
	}
	if findAudit(lc.rg, map[string]string{"outcome": "refused", "reason": "not_a_member", "tenant": "partner"}) == nil {
		t.Errorf("no audit event for the refused tenant switch")
	}
}

// TestE2E_MFA_TenantRequires: tenant secure requires MFA. realmgate asks
// the IdP for it with acr_values (the PAPE multi-factor policy). carol's
// authentication there was password only (amr ["pwd"]): realmgate refuses
// the sign-in with a page and no code. dave's was password and OTP: he
// signs in with acr urn:realmgate:acr:mfa and his amr.
func TestE2E_MFA_TenantRequires(t *testing.T) {
	lc := newLifecycle(t, 9, lcOptions{})

	carol := newBrowser(t, "carol", "")
	authURL, _ := lc.rp.start(t, "--login-hint", "carol@secure.test")
	end := carol.walk(authURL, rpRedirectURI, "")
	if end.location != "" || end.status != http.StatusForbidden || !strings.Contains(end.body, "Multi-factor") {
		t.Errorf("carol (amr pwd) at tenant secure ended at %q with %d, want a 403 multi-factor page:\n%s", end.location, end.status, end.body)
	}
	if !carol.visited("/callback/" + secureIdPID) {
		t.Errorf("carol never came back from the IdP; visits:\n%s", strings.Join(carol.visits, "\n"))
	}
	auths := opLines(lc.op, "authorization", 1)
	if len(auths) == 0 {
		t.Fatalf("the IdP logged no authorization request")
	}
	for _, a := range auths {
		if acr, _ := a["acr_values"].(string); !slices.Contains(strings.Fields(acr), papeMFA) {
			t.Errorf("upstream authorization acr_values = %v, want %s (tenant secure requires MFA)", a["acr_values"], papeMFA)
		}
	}
	if findAudit(lc.rg, map[string]string{"outcome": "denied", "reason": "mfa_required", "tenant": "secure"}) == nil {
		t.Errorf("no audit event for the refused single-factor sign-in")
	}

	dave := newBrowser(t, "dave", "")
	tok := lc.rp.signIn(t, dave, "", "--login-hint", "dave@secure.test")
	checkClaims(t, "dave's ID token", tok.Claims, map[string]any{"tid": "secure", "idp": secureIdPID,
		"acr": "urn:realmgate:acr:mfa", "email": "dave@secure.test"})
	checkRoles(t, "dave's ID token", tok.Claims, "member")
	amr, _ := tok.Claims["amr"].([]any)
	if !slices.Contains(amr, any("otp")) || !slices.Contains(amr, any("pwd")) {
		t.Errorf("dave's amr = %v, want pwd and otp from the IdP", tok.Claims["amr"])
	}
}

// TestE2E_Impersonation_TokenExchange: acme lets its admins impersonate its
// users. alice (admin) exchanges her access token, as actor, for a token
// acting as bob: jose verifies it; it names bob as sub and alice in act,
// lives at most the tenant's 5 minutes, has no refresh token, and the audit
// stream carries both ids. bob (no admin role) cannot impersonate alice.
// RFC 8693 exchange of alice's token for e2e-api works and carries act; for
// e2e-other (not in exchange_audiences) it is invalid_target, and a wider
// scope is invalid_scope.
func TestE2E_Impersonation_TokenExchange(t *testing.T) {
	lc := newLifecycle(t, 10, lcOptions{})
	alice := lc.rp.signIn(t, newBrowser(t, "alice", ""), "acme", "--login-hint", "alice@acme.test")
	bob := lc.rp.signIn(t, newBrowser(t, "bob", ""), "", "--login-hint", "bob@acme.test")
	aliceSub, _ := alice.Claims["sub"].(string)
	bobSub, _ := bob.Claims["sub"].(string)
	checkRoles(t, "alice", alice.Claims, "admin", "member")
	checkRoles(t, "bob", bob.Claims, "member")

	const (
		userType   = "urn:realmgate:params:oauth:token-type:user"
		accessType = "urn:ietf:params:oauth:token-type:access_token"
	)
	imp := lc.rp.exchange(t, "--subject-token", "acme/"+bobSub, "--subject-token-type", userType,
		"--actor-token", alice.AccessToken, "--actor-token-type", accessType, "--audience", apiClientID)
	if !imp.OK {
		t.Fatalf("alice impersonating bob: %+v", imp)
	}
	if imp.Response["issued_token_type"] != accessType {
		t.Errorf("issued_token_type = %v, want %s", imp.Response["issued_token_type"], accessType)
	}
	if _, ok := imp.Response["refresh_token"]; ok {
		t.Errorf("impersonation returned a refresh token")
	}
	v := imp.AccessJWT // verified by jose: at+jwt, aud e2e-api, iss, signature
	checkClaims(t, "impersonation token", v.Payload, map[string]any{"sub": bobSub, "tid": "acme", "client_id": rpClientID})
	act, _ := v.Payload["act"].(map[string]any)
	checkClaims(t, "impersonation act", act, map[string]any{"sub": aliceSub, "tid": "acme"})
	iat, _ := v.Payload["iat"].(float64)
	exp, _ := v.Payload["exp"].(float64)
	if life := exp - iat; life <= 0 || life > 300 {
		t.Errorf("impersonation token lives %vs, want at most the tenant's 300 s", life)
	}
	ev := findAudit(lc.rg, map[string]string{"outcome": "impersonation", "subject": bobSub, "actor": "acme/" + aliceSub})
	if ev == nil {
		t.Errorf("no audit event naming both bob (subject) and alice (actor) for the impersonation; audit: %v", auditEvents(lc.rg))
	} else if ev["tenant"] != "acme" || ev["client"] != rpClientID {
		t.Errorf("impersonation audit event = %v, want tenant acme, client %s", ev, rpClientID)
	}

	denied := lc.rp.exchange(t, "--subject-token", "acme/"+aliceSub, "--subject-token-type", userType,
		"--actor-token", bob.AccessToken, "--actor-token-type", accessType, "--audience", apiClientID)
	if denied.OK || denied.Error != "invalid_grant" {
		t.Errorf("bob (no admin role) impersonating alice = %+v, want invalid_grant", denied)
	}
	if findAudit(lc.rg, map[string]string{"outcome": "refused", "reason": "impersonation_operator_not_allowed", "actor": "acme/" + bobSub}) == nil {
		t.Errorf("no audit event for bob's refused impersonation")
	}

	// RFC 8693 exchange of alice's own token.
	ex := lc.rp.exchange(t, "--subject-token", alice.AccessToken, "--subject-token-type", accessType, "--audience", apiClientID)
	if !ex.OK || ex.Response["issued_token_type"] != accessType {
		t.Fatalf("exchange for %s = %+v, want an access token", apiClientID, ex)
	}
	v = ex.AccessJWT
	checkClaims(t, "exchanged token", v.Payload, map[string]any{"sub": aliceSub, "tid": "acme"})
	checkRoles(t, "exchanged token", v.Payload, "admin", "member")
	act, _ = v.Payload["act"].(map[string]any)
	checkClaims(t, "exchanged act", act, map[string]any{"sub": rpClientID})

	wide := lc.rp.exchange(t, "--subject-token", alice.AccessToken, "--subject-token-type", accessType, "--audience", otherClientID)
	if wide.OK || wide.Error != "invalid_target" {
		t.Errorf("exchange for %s (not in exchange_audiences) = %+v, want invalid_target", otherClientID, wide)
	}
	if findAudit(lc.rg, map[string]string{"outcome": "refused", "reason": "exchange_audience_not_allowed"}) == nil {
		t.Errorf("no audit event for the refused audience")
	}
	scope := lc.rp.exchange(t, "--subject-token", alice.AccessToken, "--subject-token-type", accessType,
		"--audience", apiClientID, "--scope", "openid email profile offline_access")
	if scope.OK || scope.Error != "invalid_scope" {
		t.Errorf("exchange with a wider scope = %+v, want invalid_scope", scope)
	}
}
