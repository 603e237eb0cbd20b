package broker_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"html"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml/samlidp"
	"golang.org/x/crypto/bcrypt"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/broker/redisstore"
	"github.com/realmgate/realmgate/internal/redistest"
	"github.com/realmgate/realmgate/providers/saml"
	"github.com/realmgate/realmgate/realm"
)

func keyPair(t *testing.T, cn string) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return k, c
}

// samlEnv is a broker with tenant contoso on crewjam/saml's samlidp.
type samlEnv struct {
	*env
	idp  *httptest.Server
	conn *saml.Connector
}

func newSAMLEnv(t *testing.T, binding string) *samlEnv {
	t.Helper()
	ms := memstore.New()
	t.Cleanup(func() { ms.Close() })
	return newSAMLEnvOn(t, binding, ms)
}

func newSAMLEnvOn(t *testing.T, binding string, store broker.Store) *samlEnv {
	t.Helper()
	idpKey, idpCert := keyPair(t, "samlidp")
	spKey, spCert := keyPair(t, "realmgate-sp")
	se := &samlEnv{}
	mux := http.NewServeMux()
	se.idp = httptest.NewServer(mux)
	t.Cleanup(se.idp.Close)
	u, _ := url.Parse(se.idp.URL)
	idpStore := &samlidp.MemoryStore{}
	srv, err := samlidp.New(samlidp.Options{URL: *u, Key: idpKey, Certificate: idpCert, Store: idpStore,
		Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/", srv)
	hash, _ := bcrypt.GenerateFromPassword([]byte("wonderland"), bcrypt.MinCost)
	if err := idpStore.Put("/users/alice", samlidp.User{Name: "alice", HashedPassword: hash, Email: "alice@contoso.test",
		Groups: []string{"Finance-Admins"}, GivenName: "Alice", Surname: "Liddell", CommonName: "Alice Liddell"}); err != nil {
		t.Fatal(err)
	}
	var mdBuf bytes.Buffer
	resp, err := http.Get(se.idp.URL + "/metadata")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(&mdBuf, resp.Body)
	resp.Body.Close()

	se.env = newEnvOn(t, &recordingStore{Store: store}, func(cfg *broker.Config) {
		base := cfg.Issuer + "/saml/contoso-saml"
		c, err := saml.New(saml.Config{ID: "contoso-saml", ACSURL: base + "/acs", MetadataURL: base + "/metadata",
			PostURL: base + "/post", IdPMetadata: mdBuf.Bytes(), Key: spKey, Certificate: spCert, Binding: binding,
			SubjectAttribute: "uid"}) // samlidp sends transient NameIDs
		if err != nil {
			t.Fatal(err)
		}
		se.conn = c
		// Keep the harness's tenants (without domains) and add contoso.
		byTenant := map[string][]string{}
		var order []string
		for _, p := range cfg.IdPs {
			if _, ok := byTenant[p.Tenant]; !ok {
				order = append(order, p.Tenant)
			}
			byTenant[p.Tenant] = append(byTenant[p.Tenant], p.ID)
		}
		tenants := []realm.Tenant{{ID: "contoso", Name: "Contoso", Domains: []string{"contoso.test"}, IdPs: []string{"contoso-saml"}}}
		for _, id := range order {
			tenants = append(tenants, realm.Tenant{ID: id, Name: id, IdPs: byTenant[id]})
		}
		res, err := realm.New(tenants, realm.Options{})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Resolver = res
		cfg.IdPs = append(cfg.IdPs, broker.IdP{ID: "contoso-saml", Tenant: "contoso", Name: "Contoso AD FS", Connector: c})
	})
	// The IdP admin imports realmgate's SP metadata.
	_, md := se.browser().getBody(se.issuer + "/saml/contoso-saml/metadata")
	req, _ := http.NewRequest(http.MethodPut, se.idp.URL+"/services/realmgate", strings.NewReader(md))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("register SP at samlidp: %v %v", err, resp)
	}
	return se
}

var (
	hiddenField = regexp.MustCompile(`name="(SAMLResponse|RelayState|SAMLRequest)" value="([^"]*)"`)
	formAction  = regexp.MustCompile(`action="([^"]*)"`)
)

func formFields(body string) (string, url.Values) {
	v := url.Values{}
	for _, m := range hiddenField.FindAllStringSubmatch(body, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	action := ""
	if m := formAction.FindStringSubmatch(body); m != nil {
		action = html.UnescapeString(m[1])
	}
	return action, v
}

// toIdP follows /authorize for alice@contoso.test to the IdP and returns
// the IdP SSO URL (redirect binding) with the AuthnRequest.
func (se *samlEnv) toIdP(b *browser, v url.Values) (ssoMethod, ssoURL string, form url.Values) {
	se.t.Helper()
	v.Set("login_hint", "alice@contoso.test")
	resp := b.get(se.authorizeURL(v))
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound {
		se.t.Fatalf("authorize = %d, want 302", resp.StatusCode)
	}
	if strings.HasPrefix(loc, se.idp.URL+"/sso?") {
		return http.MethodGet, loc, nil
	}
	if !strings.HasPrefix(loc, se.issuer+"/saml/contoso-saml/post?") {
		se.t.Fatalf("authorize Location %q, want the IdP or the POST-binding page", loc)
	}
	pr, body := b.getBody(loc)
	csp := pr.Header.Get("Content-Security-Policy")
	if pr.StatusCode != http.StatusOK || !strings.Contains(csp, "script-src 'sha256-") || strings.Contains(csp, "unsafe-inline'; script") {
		se.t.Fatalf("post page = %d CSP %q", pr.StatusCode, csp)
	}
	action, f := formFields(body)
	if action != se.idp.URL+"/sso" || f.Get("SAMLRequest") == "" || f.Get("RelayState") == "" {
		se.t.Fatalf("post page form = %q %v", action, f)
	}
	return http.MethodPost, action, f
}

// atIdP logs alice in at samlidp and returns the auto-POST form to the ACS.
func (se *samlEnv) atIdP(b *browser, method, ssoURL string, form url.Values) (string, url.Values) {
	se.t.Helper()
	var body string
	if method == http.MethodGet {
		_, body = b.getBody(ssoURL)
	} else {
		_, body = b.postForm(ssoURL, form)
	}
	_, login := formFields(body)
	login.Set("user", "alice")
	login.Set("password", "wonderland")
	if r, _ := b.postForm(se.idp.URL+"/login", login); r.StatusCode != http.StatusOK {
		se.t.Fatalf("samlidp login = %d", r.StatusCode)
	}
	if method == http.MethodGet {
		_, body = b.getBody(ssoURL)
	} else {
		_, body = b.postForm(ssoURL, form)
	}
	action, acs := formFields(body)
	if action != se.issuer+"/saml/contoso-saml/acs" || acs.Get("SAMLResponse") == "" {
		se.t.Fatalf("samlidp answer: action %q fields %v body %.300s", action, acs, body)
	}
	return action, acs
}

// TestSAML_SamlidpEndToEnd: type an email, land on crewjam/saml's samlidp
// (an IdP nobody here wrote), sign in, come back to the ACS, and get
// realmgate tokens with the mapped attributes; both AuthnRequest bindings,
// an encrypted assertion, on the memory store and on a real redis-server.
func TestSAML_SamlidpEndToEnd(t *testing.T) {
	rs := redistest.Start(t)
	for _, tc := range []struct {
		name, binding string
		redis         bool
	}{
		{"HTTP-Redirect", saml.BindingRedirect, false}, {"HTTP-POST", saml.BindingPOST, false},
		{"HTTP-Redirect on Redis", saml.BindingRedirect, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var se *samlEnv
			if tc.redis {
				st, err := redisstore.New(redisstore.Options{Addrs: []string{rs.Addr()}})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				se = newSAMLEnvOn(t, tc.binding, st)
			} else {
				se = newSAMLEnv(t, tc.binding)
			}
			b := se.browser()
			verifier, challenge := pkce()
			v := authParams(challenge)
			m, sso, f := se.toIdP(b, v)
			action, acs := se.atIdP(b, m, sso, f)
			resp, _ := b.postForm(action, acs)
			q := se.clientRedirect(resp, appCB)
			tr := se.exchange(q.Get("code"), verifier)
			if tr.status != http.StatusOK {
				t.Fatalf("token = %d %v", tr.status, tr.body)
			}
			_, claims := claimsOf(t, tr.str("id_token"))
			if claims["tid"] != "contoso" || claims["idp"] != "contoso-saml" || claims["email"] != "alice@contoso.test" {
				t.Fatalf("id_token claims = %v, want tid contoso, idp contoso-saml, email alice@contoso.test", claims)
			}
			if !strings.Contains(string(mustB64(t, acs.Get("SAMLResponse"))), "EncryptedAssertion") {
				t.Error("samlidp did not encrypt the assertion to the SP's metadata key")
			}
			if claims["given_name"] != "Alice" || claims["family_name"] != "Liddell" {
				t.Errorf("names = %v %v", claims["given_name"], claims["family_name"])
			}

			// S42: the state (and with it the AuthnRequest id) is used once.
			r2, _ := b.postForm(action, acs)
			if r2.StatusCode != http.StatusBadRequest {
				t.Fatalf("second POST of the same response = %d, want 400", r2.StatusCode)
			}
		})
	}
}

// TestSAML_S42_AnotherBrowser: a response carried to another browser is
// refused: the state is bound to the browser that started the login (S21).
func TestSAML_S42_AnotherBrowser(t *testing.T) {
	se := newSAMLEnv(t, "")
	victim := se.browser()
	_, challenge := pkce()
	m, sso, f := se.toIdP(victim, authParams(challenge))
	action, acs := se.atIdP(victim, m, sso, f)
	attacker := se.browser()
	resp, body := attacker.postForm(action, acs)
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(body, "another browser") {
		t.Fatalf("response in another browser = %d Location %q, want 400 page", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestSAML_S44_UnsolicitedOff: a response with an unknown RelayState is not
// taken as IdP-initiated when the tenant has not turned it on.
func TestSAML_S44_UnsolicitedOff(t *testing.T) {
	se := newSAMLEnv(t, "")
	b := se.browser()
	_, challenge := pkce()
	m, sso, f := se.toIdP(b, authParams(challenge))
	action, acs := se.atIdP(b, m, sso, f)
	for _, relay := range []string{"", "https://app-a.example/"} {
		acs.Set("RelayState", relay)
		resp, _ := b.postForm(action, acs)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Fatalf("unsolicited POST (RelayState %q) = %d Location %q, want 400", relay, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}

func TestSAML_MetadataAndPostPage(t *testing.T) {
	se := newSAMLEnv(t, "")
	resp, md := se.browser().getBody(se.issuer + "/saml/contoso-saml/metadata")
	for _, want := range []string{`entityID="` + se.issuer + `/saml/contoso-saml/metadata"`,
		`Location="` + se.issuer + `/saml/contoso-saml/acs"`, `use="encryption"`} {
		if !strings.Contains(md, want) {
			t.Errorf("metadata lacks %s", want)
		}
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/samlmetadata+xml" {
		t.Errorf("metadata Content-Type = %q", ct)
	}
	if strings.Contains(md, "HTTP-Artifact") {
		t.Error("metadata offers the artifact binding")
	}
	if r := se.browser().get(se.issuer + "/saml/acme-idp/metadata"); r.StatusCode != http.StatusNotFound {
		t.Errorf("metadata of a non-SAML IdP = %d, want 404", r.StatusCode)
	}
	if r := se.browser().get(se.issuer + "/saml/contoso-saml/post?s=unknown"); r.StatusCode != http.StatusBadRequest {
		t.Errorf("post page for an unknown state = %d, want 400", r.StatusCode)
	}
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
