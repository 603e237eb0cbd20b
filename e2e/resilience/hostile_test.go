package resilience

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/realmgate/realmgate/internal/redistest"
)

// envHostileSeed fixes the generator's seed to replay a failing run.
const envHostileSeed = "REALMGATE_HOSTILE_SEED"

// hostileEndpoints are every route realmgate serves, plus near misses.
var hostileEndpoints = []string{
	"/.well-known/openid-configuration", "/jwks", "/authorize", "/login", "/login/forget", "/tenant",
	"/callback/acme-idp", "/callback/slow-idp", "/callback/nope", "/callback/%2e%2e",
	"/saml/acme-idp/acs", "/saml/acme-idp/metadata", "/saml/acme-idp/post", "/saml/x/acs",
	"/token", "/userinfo", "/revoke", "/introspect", "/logout", "/backchannel/acme-idp", "/backchannel/nope",
	"/healthz", "/readyz", "/metrics",
	"//authorize", "/authorize/", "/authorize/../token", "/%00", "/callback/" + strings.Repeat("x", 3000),
}

var hostileParams = []string{
	"client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "code_challenge",
	"code_challenge_method", "login_hint", "idp_hint", "kc_idp_hint", "domain_hint", "whr", "prompt",
	"max_age", "acr_values", "response_mode", "request", "request_uri", "r", "email", "idp", "tenant",
	"code", "grant_type", "refresh_token", "code_verifier", "token", "token_type_hint", "client_secret",
	"id_token_hint", "post_logout_redirect_uri", "logout_token", "SAMLResponse", "RelayState", "s", "iss",
	"error", "error_description", "subject_token", "subject_token_type", "audience", "requested_token_type",
	"resource", "ui_locales", "claims", "x",
}

// hostileValues are classic attack strings and edge cases.
var hostileValues = []string{
	"", " ", "\x00", "%00", "%", "%zz", strings.Repeat("A", 5000), strings.Repeat("é", 600),
	"../../../etc/passwd", "<script>alert(1)</script>", `"'><img src=x onerror=alert(1)>`,
	"javascript:alert(1)", "http://evil.example/cb", appRedirectURI + "#frag", appRedirectURI + "?x=1",
	appRedirectURI + "/../evil", "HTTP://127.0.0.1/app/cb", "${jndi:ldap://x/a}", "{{7*7}}", "' OR 1=1 --",
	"\u202egnp.exe", "ü@exämple.test", "alice@", "@acme.test", "alice@acme.test\r\nX-Injected: 1",
	"alice@[127.0.0.1]", strings.Repeat("a@", 200), "alice@xn--80ak6aa92e.com", "alice@ACME.TEST.",
	"-1", "0", "99999999999999999999", "1e309", "NaN", "true", "null", "[]", "{}", `{"a":`,
	"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "a.b.c", "....", "\xff\xfe\xfd", "🙂", "none",
	"openid openid openid", "code id_token", "S256", "plain", "authorization_code", "refresh_token",
	"urn:ietf:params:oauth:grant-type:token-exchange", "urn:ietf:params:oauth:token-type:access_token",
	"acme", "globex", "slow", "acme-idp", "slow-idp", "*", appClientID, appRedirectURI,
}

// hostileGen builds random requests from a seeded source, mixing hostile
// values with real artifacts (tokens, codes, request ids, states, cookies)
// taken from genuine sign-ins and then mutated, so requests reach deep
// into each handler.
type hostileGen struct {
	r     *mrand.Rand
	d     *deployment
	valid []string // genuine artifacts
}

func (g *hostileGen) pick(s []string) string { return s[g.r.IntN(len(s))] }

// mutate damages a genuine value: flip, cut, extend, re-encode.
func (g *hostileGen) mutate(v string) string {
	if v == "" {
		return g.pick(hostileValues)
	}
	b := []byte(v)
	switch g.r.IntN(7) {
	case 0:
		i := g.r.IntN(len(b))
		b[i] ^= byte(1 << g.r.IntN(8))
	case 1:
		b = b[:g.r.IntN(len(b))]
	case 2:
		b = append(b, g.pick(hostileValues)...)
	case 3:
		return strings.ToUpper(v)
	case 4:
		return base64.StdEncoding.EncodeToString(b)
	case 5:
		return v + "." + v
	default:
		return v // unchanged: a replay
	}
	return string(b)
}

func (g *hostileGen) value() string {
	switch g.r.IntN(3) {
	case 0:
		return g.pick(hostileValues)
	case 1:
		return g.mutate(g.pick(g.valid))
	default:
		return g.pick(g.valid)
	}
}

func (g *hostileGen) form() url.Values {
	v := url.Values{}
	for range g.r.IntN(10) {
		k := g.pick(hostileParams)
		v.Add(k, g.value())
		if g.r.IntN(12) == 0 {
			v.Add(k, g.value()) // sent twice
		}
	}
	return v
}

// wellFormed returns the parameters of a request the endpoint accepts,
// filled with genuine artifacts, and whether it wants client credentials.
func (g *hostileGen) wellFormed(ep string) (url.Values, bool) {
	challenge := "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	switch ep {
	case "/authorize":
		v := url.Values{"client_id": {appClientID}, "redirect_uri": {appRedirectURI}, "response_type": {"code"},
			"scope": {"openid email profile"}, "state": {"s"}, "nonce": {"n"}, "code_challenge": {challenge},
			"code_challenge_method": {"S256"}}
		hint := g.pick([]string{"login_hint", "idp_hint", "domain_hint", "kc_idp_hint", "whr", "prompt", "max_age"})
		v.Set(hint, g.pick([]string{"alice@acme.test", "acme-idp", "globex.test", "slow-idp", "none", "login", "0", g.value()}))
		return v, false
	case "/token":
		switch g.r.IntN(3) {
		case 0:
			return url.Values{"grant_type": {"authorization_code"}, "code": {g.pick(g.valid)}, "redirect_uri": {appRedirectURI},
				"code_verifier": {g.pick(g.valid)}}, true
		case 1:
			return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {g.pick(g.valid)}}, true
		default:
			return url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {g.pick(g.valid)},
				"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}, "audience": {g.value()}}, true
		}
	case "/revoke", "/introspect":
		return url.Values{"token": {g.pick(g.valid)}, "token_type_hint": {g.pick([]string{"refresh_token", "access_token", "x"})}}, true
	case "/login":
		return url.Values{"r": {g.pick(g.valid)}, "email": {g.pick([]string{"alice@acme.test", "bob@globex.test", g.value()})},
			"idp": {g.pick([]string{"acme-idp", "slow-idp", "nope"})}}, false
	case "/callback/acme-idp", "/callback/slow-idp":
		return url.Values{"state": {g.pick(g.valid)}, "code": {g.value()}, "iss": {g.d.up.base + "/acme"}}, false
	case "/logout":
		return url.Values{"id_token_hint": {g.pick(g.valid)}, "post_logout_redirect_uri": {g.pick([]string{appRedirectURI, g.value()})},
			"client_id": {appClientID}, "state": {"s"}}, false
	case "/backchannel/acme-idp":
		return url.Values{"logout_token": {g.pick(g.valid)}}, false
	case "/saml/acme-idp/acs":
		return url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString([]byte("<samlp:Response>" + g.value()))},
			"RelayState": {g.pick(g.valid)}}, false
	}
	return nil, false
}

// request returns a random request and the endpoint it targets.
func (g *hostileGen) request() (*http.Request, string, error) {
	ep := g.pick(hostileEndpoints)
	method := http.MethodGet
	switch n := g.r.IntN(20); {
	case n < 9:
		method = http.MethodPost
	case n == 19:
		method = g.pick([]string{http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions, http.MethodHead, "PROPFIND"})
	}
	params := g.form()
	wf, creds := g.wellFormed(ep)
	if wf != nil && g.r.IntN(2) == 0 {
		// A request the endpoint accepts, with one or two parameters damaged.
		for range g.r.IntN(3) {
			k := g.pick(hostileParams)
			if _, ok := wf[k]; ok || g.r.IntN(3) == 0 {
				wf.Set(k, g.value())
			}
		}
		params = wf
	} else {
		creds = false
	}
	var query string
	if method == http.MethodGet || g.r.IntN(4) == 0 {
		query = params.Encode()
	}
	if g.r.IntN(30) == 0 {
		query += "&%zz=1;x" // a malformed query string
	}
	var body io.Reader
	ctype := "application/x-www-form-urlencoded"
	if method != http.MethodGet && method != http.MethodHead {
		switch g.r.IntN(8) {
		case 0:
			raw := make([]byte, g.r.IntN(4096))
			for i := range raw {
				raw[i] = byte(g.r.IntN(256))
			}
			body = bytes.NewReader(raw)
		case 1:
			body = strings.NewReader(strings.Repeat("a=b&", 20000)) // beyond the 64 KiB limit
		case 2:
			body = strings.NewReader(`{"grant_type":"authorization_code","code":` + strconv.Quote(g.value()) + `}`)
			ctype = "application/json"
		default:
			body = strings.NewReader(params.Encode())
		}
		if g.r.IntN(6) == 0 {
			ctype = g.pick([]string{"", "multipart/form-data; boundary=", "text/xml", "application/x-www-form-urlencoded; charset=utf-16", "application/jwt"})
		}
	}
	req, err := http.NewRequest(method, "http://"+g.d.addrs[0], body)
	if err != nil {
		return nil, ep, err
	}
	req.URL.Opaque = ep // sent as written, not cleaned
	req.URL.RawQuery = query
	if ctype != "" && body != nil {
		req.Header.Set("Content-Type", ctype)
	}
	if creds && g.r.IntN(4) != 0 {
		req.SetBasicAuth(appClientID, g.d.clientSecret)
	} else if g.r.IntN(3) == 0 {
		switch g.r.IntN(4) {
		case 0:
			req.SetBasicAuth(g.pick([]string{appClientID, g.value()}), g.value())
		case 1:
			req.Header.Set("Authorization", "Bearer "+headerSafe(g.value()))
		case 2:
			req.Header.Set("Authorization", "Basic "+headerSafe(g.value()))
		default:
			req.Header.Set("Authorization", headerSafe(g.value()))
		}
	}
	if g.r.IntN(3) == 0 {
		var cs []string
		for _, name := range []string{"rg_session", "rg_bind", "rg_bind_x", "rg_idp", "x"} {
			if g.r.IntN(2) == 0 {
				cs = append(cs, name+"="+url.QueryEscape(g.value()))
			}
		}
		req.Header.Set("Cookie", strings.Join(cs, "; "))
	}
	ip := fmt.Sprintf("10.9.%d.%d", g.r.IntN(256), g.r.IntN(256))
	if g.r.IntN(10) == 0 {
		ip = g.pick([]string{"", "not-an-ip", "1.2.3.4, evil", "::1", "999.1.1.1", strings.Repeat("1.", 400)})
	}
	req.Header.Set("X-Forwarded-For", ip)
	if g.r.IntN(10) == 0 {
		req.Host = g.pick([]string{"evil.example", "acme.localhost", "", "127.0.0.1:1", strings.Repeat("a", 300) + ".test"})
	}
	if g.r.IntN(4) == 0 {
		req.Header.Set("Accept", g.pick([]string{"application/json", "text/html", "*/*", "text/html;q=0.9, \xff"}))
	}
	return req, ep, nil
}

// headerSafe drops the bytes Go's client refuses to put in a header (CTLs):
// a real attacker can send them, but net/http's server rejects such a
// request before realmgate sees it (rawHostile sends some over TCP).
func headerSafe(v string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return -1
		}
		return r
	}, v)
}

// rawHostile sends one malformed HTTP/1.1 request over TCP (what Go's
// client refuses to write) and returns the status of the answer, or 0 if
// the server closed the connection without one.
func rawHostile(addr string, r *mrand.Rand, valid []string) (int, string, error) {
	tok := valid[r.IntN(len(valid))]
	msgs := []string{
		"GET /authorize?client_id=app\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /token HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok + "\r\nX-Injected\x01: 1\r\n\r\n",
		"POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\ngrant_type=refresh_token",
		"POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
		"POST /token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nzz\r\n",
		"GET /userinfo HTTP/1.1\r\nHost: x\r\nCookie: rg_session=" + strings.Repeat("A", 40000) + "\r\n\r\n",
		"GET /" + strings.Repeat("%", 100) + " HTTP/1.1\r\nHost: x\r\n\r\n",
		"BREW /authorize HTCPCP/1.0\r\n\r\n",
		"GET /authorize HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET http://evil.example/authorize?client_id=app HTTP/1.1\r\nHost: x\r\n\r\n",
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", // a TLS ClientHello
		"GET /login?r=" + tok + " HTTP/1.1\r\nHost: x\r\nCookie: rg_bind=\xff\xfe\r\n\r\n",
	}
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	// A request whose body never comes makes the server wait (up to its
	// read timeout): hanging up after a moment is what an attacker does.
	_ = conn.SetDeadline(time.Now().Add(500 * time.Millisecond))
	msg := msgs[r.IntN(len(msgs))]
	if _, err := io.WriteString(conn, msg); err != nil {
		return 0, msg, nil // closed before reading it all: no answer
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return 0, msg, nil
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0, msg, fmt.Errorf("answer %q is not an HTTP status line", line)
	}
	code, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, msg, fmt.Errorf("answer %q is not an HTTP status line", line)
	}
	return code, msg, nil
}

// harvest runs genuine sign-ins and collects artifacts for the generator:
// tokens, a code, an upstream state, discovery request ids, cookies.
func harvest(t *testing.T, d *deployment) []string {
	t.Helper()
	var out []string
	for i, tenant := range []string{"acme", "globex"} {
		b := newBrowser()
		tok, err := d.login(b, "alice@"+tenant+".test", route{})
		if err != nil {
			t.Fatalf("genuine sign-in %d: %v", i, err)
		}
		out = append(out, tok.access, tok.id, tok.refresh)
		if u, err := url.Parse(d.issuer); err == nil {
			for _, c := range b.c.Jar.Cookies(u) {
				out = append(out, c.Value)
			}
		}
		// An authorization request left half way: its upstream state and
		// the code the upstream issued, never redeemed.
		start, _, verifier := d.authorizeRequest(0, "alice@"+tenant+".test")
		out = append(out, verifier)
		resp, body, err := newBrowser().get("authorize", start)
		if err != nil {
			t.Fatal(err)
		}
		loc, err := redirect("authorize", resp, body)
		if err != nil {
			t.Fatal(err)
		}
		if lu, err := url.Parse(loc); err == nil {
			out = append(out, lu.Query().Get("state"), lu.Query().Get("nonce"))
		}
		// A discovery page's request id (no hint: realmgate asks for an email).
		start, _, _ = d.authorizeRequest(0, "")
		if resp, _, err := newBrowser().get("authorize", start); err == nil {
			if l, err := resp.Location(); err == nil {
				out = append(out, l.Query().Get("r"))
			}
		}
	}
	return out
}

// TestResilience_HostileRequests sends 10,000 generated hostile requests
// across every endpoint of a realmgate process on Redis (8 at a time; 2%
// of them malformed at the HTTP level over raw TCP): no
// answer may be a 500 or any 5xx but a 502 naming an upstream, and the
// process must not panic. The seed is logged; REALMGATE_HOSTILE_SEED
// replays a run.
func TestResilience_HostileRequests(t *testing.T) {
	srv := redistest.Start(t)
	d := deploy(t, 1, storeSpec{addrs: []string{srv.Addr()}})
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(envHostileSeed); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", envHostileSeed, v, err)
		}
	}
	t.Logf("seed %d (%s=%d replays this run)", seed, envHostileSeed, seed)
	valid := harvest(t, d)

	const total, workers = 10000, 8
	type answer struct {
		ep     string
		method string
		url    string
		status int
		body   string
	}
	reqs := make(chan int)
	answers := make(chan answer, 64)
	var wg sync.WaitGroup
	client := &http.Client{Transport: transport, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := &hostileGen{r: mrand.New(mrand.NewPCG(seed, uint64(w))), d: d, valid: valid}
			for i := range reqs {
				if i%50 == 0 { // 2% malformed at the HTTP level
					code, msg, err := rawHostile(d.addrs[0], g.r, valid)
					if err != nil {
						code, msg = -1, err.Error()
					}
					answers <- answer{ep: "(raw TCP)", method: "RAW", url: strconv.Quote(msg), status: code, body: msg}
					continue
				}
				req, ep, err := g.request()
				if err != nil {
					answers <- answer{ep: ep, status: -1, body: err.Error()}
					continue
				}
				resp, err := client.Do(req)
				if err != nil {
					var ue *url.Error
					if errors.As(err, &ue) {
						err = ue.Err
					}
					answers <- answer{ep: ep, method: req.Method, url: req.URL.String(), status: 0, body: err.Error()}
					continue
				}
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
				resp.Body.Close()
				answers <- answer{ep: ep, method: req.Method, url: req.URL.String(), status: resp.StatusCode, body: string(b)}
			}
		}()
	}
	go func() {
		for i := range total {
			reqs <- i
		}
		close(reqs)
		wg.Wait()
		close(answers)
	}()

	start := time.Now()
	statuses := map[int]int{}
	perEndpoint := map[string]map[int]int{}
	var bad []answer
	for a := range answers {
		statuses[a.status]++
		if perEndpoint[a.ep] == nil {
			perEndpoint[a.ep] = map[int]int{}
		}
		perEndpoint[a.ep][a.status]++
		switch {
		case a.status == http.StatusBadGateway && strings.Contains(a.body, "sign-in"):
			// an upstream that refused a forged exchange, named on the page
		case a.status == 0 && a.ep == "(raw TCP)":
			// the server hung up on a malformed request: fine
		case a.status >= 500, a.status <= 0:
			bad = append(bad, a)
		}
	}
	t.Logf("%d hostile requests in %s; statuses %v", total, time.Since(start).Round(time.Millisecond), statuses)
	eps := make([]string, 0, len(perEndpoint))
	for ep := range perEndpoint {
		eps = append(eps, ep)
	}
	sort.Strings(eps)
	for _, ep := range eps {
		t.Logf("  %-40.40s %v", ep, perEndpoint[ep])
	}
	for i, a := range bad {
		if i == 10 {
			t.Errorf("... and %d more", len(bad)-10)
			break
		}
		t.Errorf("%s %.300s (endpoint %s) = %d: %.500s", a.method, a.url, a.ep, a.status, a.body)
	}
	if n := len(perEndpoint); n != len(hostileEndpoints)+1 {
		t.Errorf("requests reached %d endpoints, want all %d and raw TCP", n, len(hostileEndpoints))
	}
	d.checkHealthy(t)
}
