package saml

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/net/html"

	"github.com/realmgate/realmgate/internal/e2etest"
	"github.com/realmgate/realmgate/internal/redistest"
)

const (
	clientID    = "notes"
	redirectURI = "http://127.0.0.1:9/callback" // never contacted: the browser stops at it
	redisDB     = 5                             // the other e2e package uses 1 to 3
)

// idpEvent is one line idp.mjs prints.
type idpEvent struct {
	URL          string `json:"url"`
	IdP          string `json:"idp"`
	Event        string `json:"event"`
	Binding      string `json:"binding"`
	Signed       bool   `json:"signed"`
	Encrypted    bool   `json:"encrypted"`
	InResponseTo string `json:"in_response_to"`
	Error        string `json:"error"`
}

// idpSpec is one IdP of idp.mjs's configuration.
type idpSpec struct {
	Name       string `json:"name"`
	Key        string `json:"key"`
	Cert       string `json:"cert"`
	SPMetadata string `json:"spMetadata"`
	Domain     string `json:"domain"`
	Encrypt    bool   `json:"encrypt"`
}

// samlify is the running idp.mjs: the IdP named n is at url/n.
type samlify struct {
	url string
	p   *e2etest.Proc
}

// events returns what the IdP named idp reported so far.
func (s *samlify) events(idp string) []idpEvent {
	var out []idpEvent
	for _, line := range s.p.Lines() {
		var ev idpEvent
		if json.Unmarshal([]byte(line), &ev) == nil && ev.URL == "" && ev.IdP == idp {
			out = append(out, ev)
		}
	}
	return out
}

// startSamlify runs idp.mjs with the IdPs of specs, each with a fresh key.
func startSamlify(t *testing.T, dir string, specs []idpSpec) *samlify {
	t.Helper()
	for i := range specs {
		specs[i].Key, specs[i].Cert = e2etest.WriteKeyPair(t, dir, specs[i].Name+"-idp")
	}
	cfg, _ := json.Marshal(specs)
	cfgFile := filepath.Join(dir, "idp.json")
	if err := os.WriteFile(cfgFile, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	// xmllint's first compile is slow on a busy machine: WaitLine is patient.
	p := e2etest.Start(t, "samlify idp.mjs", e2etest.NodeCommand(env.node, env.nodeDir, "idp.mjs", cfgFile))
	var ready idpEvent
	p.WaitLine(t, func(line string) bool { return json.Unmarshal([]byte(line), &ready) == nil && ready.URL != "" })
	return &samlify{url: ready.URL, p: p}
}

// startRealmgate writes cfg to dir/realmgate.yaml, runs realmgate with it
// until the test ends, and returns its discovery once it is ready.
func startRealmgate(t *testing.T, ctx context.Context, dir, issuer, cfg string) *gooidc.Provider {
	t.Helper()
	cfgFile := filepath.Join(dir, "realmgate.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	rg := e2etest.Start(t, "realmgate", exec.Command(env.binary, "serve", "--config", cfgFile, "--log-format", "text"))
	rg.WaitReady(t, issuer+"/readyz")
	provider, err := gooidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("realmgate discovery: %v\n%s", err, rg.Out.Tail(4000))
	}
	return provider
}

func randomText(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// rgConfig is realmgate's configuration: tenant contoso on a samlify IdP
// with the HTTP-Redirect binding (signed AuthnRequests, encrypted
// assertions), tenant fabrikam on another with the HTTP-POST binding; each
// maps the AD FS role claim to roles.
const rgConfig = `issuer: http://%[1]s
listen: %[1]s
store:
  type: redis
  redis:
    addrs: ["%[2]s"]
    db: %[3]d
keys:
  secret: %[4]s
outbound:
  allow_loopback: true # the upstream IdPs (and back-channel receivers) run on loopback
clients:
  - id: notes
    secret: %[5]s
    redirect_uris: ["%[6]s"]
    allowed_tenants: ["*"]
    claims: [roles]
tenants:
  - id: contoso
    name: Contoso
    domains: ["contoso.test"]
    providers:
      - id: contoso-adfs
        type: saml
        name: Contoso AD FS
        metadata_url: %[7]s/metadata
        sp_key_file: contoso-sp.key
        sp_cert_file: contoso-sp.crt
        name_id_format: persistent
        binding: redirect
    rules: &rules
      - name: AD FS roles to realmgate roles
        map:
          from: upstream.role
          to: roles
          table:
            Finance-Admins: admin
            Domain Users: member
  - id: fabrikam
    name: Fabrikam
    domains: ["fabrikam.test"]
    providers:
      - id: fabrikam-adfs
        type: saml
        metadata_url: %[8]s/metadata
        sp_key_file: fabrikam-sp.key
        sp_cert_file: fabrikam-sp.crt
        binding: post
    rules: *rules
`

// browser is the user's browser: a cookie jar, redirects followed one at a
// time, and the forms it meets filled in (realmgate's email box, samlify's
// login form) or submitted as they are (the SAML auto-POST forms).
type browser struct {
	t        *testing.T
	c        *http.Client
	email    string
	visits   []string
	response url.Values // the last SAMLResponse form posted to an ACS
	acs      string
}

func newBrowser(t *testing.T, email string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, email: email, c: &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends one request and returns the response with its body read.
func (b *browser) do(method, target string, form url.Values) (*http.Response, []byte) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	b.visits = append(b.visits, method+" "+target)
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("browser: %s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	page, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp, page
}

// signIn walks from start until a redirect to stop, which it returns.
func (b *browser) signIn(start, stop string) *url.URL {
	b.t.Helper()
	method, target, form := http.MethodGet, start, url.Values(nil)
	for range 20 {
		resp, page := b.do(method, target, form)
		base := resp.Request.URL
		if loc := resp.Header.Get("Location"); resp.StatusCode/100 == 3 && loc != "" {
			u, err := base.Parse(loc)
			if err != nil {
				b.t.Fatal(err)
			}
			if strings.HasPrefix(u.String(), stop) {
				return u
			}
			method, target, form = http.MethodGet, u.String(), nil
			continue
		}
		if resp.StatusCode != http.StatusOK {
			b.t.Fatalf("browser: %s %s = %d:\n%s\nvisits:\n%s", method, target, resp.StatusCode, page, strings.Join(b.visits, "\n"))
		}
		action, fields := postForm(b.t, page)
		switch {
		case fields.Has("email") && fields.Has("r"): // realmgate's discovery page
			fields.Set("email", b.email)
		case fields.Has("username"): // samlify's login page
			fields.Set("username", "alice")
			fields.Set("password", "wonderland")
		case fields.Has("SAMLResponse"):
			b.response, b.acs = fields, action
		case fields.Has("SAMLRequest"):
		default:
			b.t.Fatalf("browser: no form it can answer at %s:\n%s", base, page)
		}
		u, err := base.Parse(action)
		if err != nil {
			b.t.Fatal(err)
		}
		method, target, form = http.MethodPost, u.String(), fields
	}
	b.t.Fatalf("browser: no redirect to %s after 20 steps:\n%s", stop, strings.Join(b.visits, "\n"))
	return nil
}

// postForm returns the action and the named inputs of the page's first POST form.
func postForm(t *testing.T, page []byte) (string, url.Values) {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	attr := func(n *html.Node, k string) string {
		for _, a := range n.Attr {
			if a.Key == k {
				return a.Val
			}
		}
		return ""
	}
	var form *html.Node
	var find func(n *html.Node)
	find = func(n *html.Node) {
		if form != nil {
			return
		}
		if n.Type == html.ElementNode && n.Data == "form" && strings.EqualFold(attr(n, "method"), "post") {
			form = n
			return
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			find(c)
		}
	}
	find(doc)
	if form == nil {
		t.Fatalf("no POST form on the page:\n%s", page)
	}
	fields := url.Values{}
	var inputs func(n *html.Node)
	inputs = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "input" && attr(n, "name") != "" {
			fields.Set(attr(n, "name"), attr(n, "value"))
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			inputs(c)
		}
	}
	inputs(form)
	return attr(form, "action"), fields
}

// TestE2E_SAML_Samlify: type an email on realmgate, land on a samlify IdP,
// sign in there, come back through realmgate's ACS, and get realmgate
// tokens with the mapped attributes (tid, email, names, roles from the AD FS
// role claim), with realmgate on the Redis store. Contoso's IdP uses the
// HTTP-Redirect binding, wants signed AuthnRequests (samlify verifies
// realmgate's signature and checks the request against the SAML schemas) and
// encrypts the assertion to realmgate's key; Fabrikam's uses the HTTP-POST
// binding. The same SAMLResponse posted again is refused (S42, S43).
func TestE2E_SAML_Samlify(t *testing.T) {
	e2etest.Need(t)
	redis := redistest.Start(t)
	dir := t.TempDir()
	addr := e2etest.FreeAddr(t)
	issuer := "http://" + addr
	e2etest.WriteKeyPair(t, dir, "contoso-sp")
	e2etest.WriteKeyPair(t, dir, "fabrikam-sp")
	idps := startSamlify(t, dir, []idpSpec{
		{Name: "contoso", SPMetadata: issuer + "/saml/contoso-adfs/metadata", Domain: "contoso.test", Encrypt: true},
		{Name: "fabrikam", SPMetadata: issuer + "/saml/fabrikam-adfs/metadata", Domain: "fabrikam.test"},
	})

	clientSecret := randomText(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	provider := startRealmgate(t, ctx, dir, issuer, fmt.Sprintf(rgConfig, addr, redis.Addr(), redisDB, randomText(t), clientSecret, redirectURI, idps.url+"/contoso", idps.url+"/fabrikam"))
	verifier := provider.Verifier(&gooidc.Config{ClientID: clientID})

	for _, tc := range []struct {
		name, email, tenant, idp string
		binding                  string
		encrypted                bool
	}{
		{"HTTP-Redirect, signed request, encrypted assertion", "alice@contoso.test", "contoso", "contoso-adfs", "redirect", true},
		{"HTTP-POST", "alice@fabrikam.test", "fabrikam", "fabrikam-adfs", "post", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			verifierCode, nonce, state := randomText(t), randomText(t), randomText(t)
			challenge := sha256.Sum256([]byte(verifierCode))
			q := url.Values{"client_id": {clientID}, "redirect_uri": {redirectURI}, "response_type": {"code"},
				"scope": {"openid email profile"}, "state": {state}, "nonce": {nonce},
				"code_challenge": {base64.RawURLEncoding.EncodeToString(challenge[:])}, "code_challenge_method": {"S256"}}
			b := newBrowser(t, tc.email)
			cb := b.signIn(provider.Endpoint().AuthURL+"?"+q.Encode(), redirectURI)
			if !slices.ContainsFunc(b.visits, func(v string) bool { return strings.Contains(v, idps.url+"/"+tc.tenant+"/login") }) {
				t.Errorf("the browser never signed in at the samlify IdP; visits:\n%s", strings.Join(b.visits, "\n"))
			}
			if cb.Query().Get("state") != state || cb.Query().Get("code") == "" {
				t.Fatalf("callback %s: want the state and a code", cb)
			}
			if want := issuer + "/saml/" + tc.idp + "/acs"; b.acs != want {
				t.Errorf("SAMLResponse posted to %q, want the ACS %q", b.acs, want)
			}
			raw, _ := base64.StdEncoding.DecodeString(b.response.Get("SAMLResponse"))
			if got := bytes.Contains(raw, []byte("EncryptedAssertion")); got != tc.encrypted {
				t.Errorf("assertion encrypted = %v, want %v", got, tc.encrypted)
			}
			var requests []idpEvent
			for _, ev := range idps.events(tc.tenant) {
				switch ev.Event {
				case "request":
					requests = append(requests, ev)
				case "error":
					t.Errorf("samlify IdP error: %s", ev.Error)
				}
			}
			if len(requests) != 1 || requests[0].Binding != tc.binding || !requests[0].Signed {
				t.Errorf("samlify saw requests %+v, want one signed %s request", requests, tc.binding)
			}

			// The app redeems the code with PKCE and verifies the ID token.
			tok := url.Values{"grant_type": {"authorization_code"}, "code": {cb.Query().Get("code")},
				"redirect_uri": {redirectURI}, "code_verifier": {verifierCode}}
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, provider.Endpoint().TokenURL, strings.NewReader(tok.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(clientID, clientSecret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var tr struct {
				IDToken     string `json:"id_token"`
				AccessToken string `json:"access_token"`
			}
			err = json.NewDecoder(resp.Body).Decode(&tr)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || tr.IDToken == "" {
				t.Fatalf("token = %d %v", resp.StatusCode, err)
			}
			idt, err := verifier.Verify(ctx, tr.IDToken)
			if err != nil {
				t.Fatalf("verify id_token: %v", err)
			}
			var claims struct {
				Tid        string   `json:"tid"`
				IdP        string   `json:"idp"`
				Email      string   `json:"email"`
				GivenName  string   `json:"given_name"`
				FamilyName string   `json:"family_name"`
				Roles      []string `json:"roles"`
				Nonce      string   `json:"nonce"`
			}
			if err := idt.Claims(&claims); err != nil {
				t.Fatal(err)
			}
			slices.Sort(claims.Roles)
			if claims.Tid != tc.tenant || claims.IdP != tc.idp || claims.Email != tc.email || claims.Nonce != nonce ||
				claims.GivenName != "Alice" || claims.FamilyName != "Liddell" || !slices.Equal(claims.Roles, []string{"admin", "member"}) {
				t.Errorf("id_token claims = %+v, want tid %s, idp %s, email %s, Alice Liddell, roles [admin member]", claims, tc.tenant, tc.idp, tc.email)
			}

			// S42, S43: the same response again is refused.
			again, page := b.do(http.MethodPost, b.acs, b.response)
			if again.StatusCode != http.StatusBadRequest || again.Header.Get("Location") != "" {
				t.Errorf("the same SAMLResponse again = %d Location %q, want 400:\n%.300s", again.StatusCode, again.Header.Get("Location"), page)
			}
		})
	}
}
