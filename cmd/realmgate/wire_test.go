package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	crewjam "github.com/crewjam/saml"

	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/internal/assemble"
	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/providers/oidc"
)

// wireKey is one RSA key for every test of the file (RSA 2048 generation is
// slow on two cores).
var wireKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func selfSignedCert(t *testing.T, key *rsa.PrivateKey, cn string) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// fakeUpstreams serves, on one loopback server, SAML IdP metadata at
// /saml/metadata (SSO at /saml/sso) and OpenID discovery documents: Entra's
// tenant-independent ones at /common/v2.0 and /organizations/v2.0 (issuer
// template <url>/{tenantid}/v2.0) and a single-issuer one under any other path.
type fakeUpstreams struct {
	srv        *httptest.Server
	idpXML     []byte
	mu         sync.Mutex
	discovered []string
}

func newFakeUpstreams(t *testing.T) *fakeUpstreams {
	t.Helper()
	f := &fakeUpstreams{}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	md, _ := url.Parse(f.srv.URL + "/saml/metadata")
	sso, _ := url.Parse(f.srv.URL + "/saml/sso")
	idp := &crewjam.IdentityProvider{Key: wireKey(), Certificate: selfSignedCert(t, wireKey(), "fake-idp"),
		MetadataURL: *md, SSOURL: *sso}
	b, err := xml.Marshal(idp.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	f.idpXML = b
	return f
}

func (f *fakeUpstreams) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/saml/metadata" {
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		_, _ = w.Write(f.idpXML)
		return
	}
	base, ok := strings.CutSuffix(r.URL.Path, "/.well-known/openid-configuration")
	if !ok {
		http.NotFound(w, r)
		return
	}
	f.mu.Lock()
	f.discovered = append(f.discovered, base)
	f.mu.Unlock()
	iss := f.srv.URL + base
	if base == "/common/v2.0" || base == "/organizations/v2.0" {
		iss = f.srv.URL + "/" + oidc.TenantPlaceholder + "/v2.0"
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"issuer": iss,
		"authorization_endpoint": f.srv.URL + base + "/authorize", "token_endpoint": f.srv.URL + base + "/token",
		"jwks_uri": f.srv.URL + base + "/keys", "id_token_signing_alg_values_supported": []string{"RS256"}})
}

// writeSAMLFiles writes the SP key pair and the IdP metadata into dir.
func writeSAMLFiles(t *testing.T, dir string, f *fakeUpstreams) {
	t.Helper()
	key := wireKey()
	cert := selfSignedCert(t, key, "realmgate-sp")
	for name, block := range map[string]*pem.Block{
		"sp.key": {Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)},
		"sp.crt": {Type: "CERTIFICATE", Bytes: cert.Raw},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "idp-metadata.xml"), f.idpXML, 0o600); err != nil {
		t.Fatal(err)
	}
}

const everyProviderYAML = `issuer: http://127.0.0.1:8080
outbound:
  allow_loopback: true # the fake IdPs are on loopback
clients:
  - id: app
    redirect_uris: ["http://127.0.0.1:9000/callback"]
    allowed_tenants: ["*"]
    claims: [roles]
tenants:
  - id: contoso
    domains: ["contoso.test"]
    providers:
      - id: contoso-adfs
        type: saml
        metadata_file: idp-metadata.xml
        sp_key_file: sp.key
        sp_cert_file: sp.crt
        sign_requests: true
        binding: post
        name_id_format: persistent
        subject_attribute: http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn
        clock_skew: 1m
        idp_initiated: true
        relay_state_allowlist: ["https://notes.example.com/login"]
      - id: contoso-entra-saml
        type: saml
        metadata_url: %[1]s/saml/metadata
      - id: contoso-oidc
        type: oidc
        issuer: %[1]s/contoso
        client_id: rg
        client_secret: s
  - id: fabrikam
    domains: ["fabrikam.test"]
    providers:
      - id: fabrikam-entra
        type: oidc
        issuer: %[1]s/{tenantid}/v2.0
        allowed_tenants: ["11111111-2222-3333-4444-555555555555"]
        client_id: rg
        client_secret: s
      - id: fabrikam-oauth2
        type: oauth2
        client_id: rg
        auth_url: %[1]s/oauth/authorize
        token_url: %[1]s/oauth/token
        userinfo_url: %[1]s/oauth/me
  - id: consumers
    default: true
    providers:
      - id: github
        type: github
        client_id: gh
        client_secret: gh-secret
      - id: google
        type: google
        client_id: g
        client_secret: g-secret
        hosted_domain: example.com
      - id: microsoft
        type: microsoft
        issuer: %[1]s/{tenantid}/v2.0
        client_id: m
        client_secret: m-secret
      - id: microsoft-work
        type: microsoft
        issuer: %[1]s/{tenantid}/v2.0
        accounts: work
        client_id: m
        client_secret: m-secret
`

// TestBuildBroker_EveryProviderType: a configuration with every provider
// type, every SAML option (key files, metadata file and URL, IdP-initiated
// with an allow-list) and the Google and Microsoft options loads, builds a
// broker without touching the network, and each connector reaches its fake
// upstream the way its options say.
func TestBuildBroker_EveryProviderType(t *testing.T) {
	f := newFakeUpstreams(t)
	dir := t.TempDir()
	writeSAMLFiles(t, dir, f)
	file := filepath.Join(dir, "realmgate.yaml")
	cfg, err := config.Parse(file, fmt.Appendf(nil, everyProviderYAML, f.srv.URL), nil)
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	logger := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	store := memstore.New()
	t.Cleanup(func() { store.Close() })
	srv, err := buildBroker(ctx, cfg, store, logger, logger)
	if err != nil {
		t.Fatalf("buildBroker = %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	if len(f.discovered) != 0 {
		t.Errorf("buildBroker fetched %v; connectors must fetch on first use", f.discovered)
	}

	// The SP metadata publishes the key from sp_cert_file and the ACS.
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/saml/contoso-adfs/metadata", nil))
	spCert := base64Cert(t, filepath.Join(dir, "sp.crt"))
	for _, want := range []string{spCert, `Location="http://127.0.0.1:8080/saml/contoso-adfs/acs"`, `AuthnRequestsSigned="true"`,
		"urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("GET /saml/contoso-adfs/metadata = %d, lacks %.80s", rec.Code, want)
		}
	}

	conn := func(id string) providers.Connector {
		t.Helper()
		_, p := cfg.Provider(id)
		c, err := assemble.Connector(p, cfg.Issuer, upstreamClient(cfg), logger)
		if err != nil {
			t.Fatalf("connector(%s) = %v", id, err)
		}
		return c
	}
	login := func(id string) string {
		t.Helper()
		req := providers.LoginRequest{State: "state-0123456789", Nonce: "nonce-0123456789",
			CodeVerifier: strings.Repeat("v", 43), CallbackURL: "http://127.0.0.1:8080/callback/" + id}
		u, _, err := conn(id).LoginURL(ctx, req)
		if err != nil {
			t.Fatalf("%s: LoginURL = %v", id, err)
		}
		return u
	}
	tests := []struct {
		id, wantPrefix, wantParam string
	}{
		// binding: post sends the browser to realmgate's own form page.
		{"contoso-adfs", "http://127.0.0.1:8080/saml/contoso-adfs/post?", ""},
		{"contoso-entra-saml", f.srv.URL + "/saml/sso?", "SAMLRequest"},
		{"contoso-oidc", f.srv.URL + "/contoso/authorize?", "code_challenge"},
		{"fabrikam-entra", f.srv.URL + "/organizations/v2.0/authorize?", "nonce"},
		{"fabrikam-oauth2", f.srv.URL + "/oauth/authorize?", "state"},
		{"microsoft", f.srv.URL + "/common/v2.0/authorize?", "nonce"},
		{"microsoft-work", f.srv.URL + "/organizations/v2.0/authorize?", "nonce"},
		{"github", "https://github.com/login/oauth/authorize?", "state"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			u := login(tt.id)
			if !strings.HasPrefix(u, tt.wantPrefix) {
				t.Fatalf("LoginURL = %q, want prefix %q", u, tt.wantPrefix)
			}
			if pu, _ := url.Parse(u); tt.wantParam != "" && pu.Query().Get(tt.wantParam) == "" {
				t.Errorf("LoginURL = %q, want a %s parameter", u, tt.wantParam)
			}
		})
	}

	// idp_initiated is wired with its allow-list (S44).
	type unsolicited interface {
		Unsolicited(relayState string) (string, bool)
	}
	u, ok := conn("contoso-adfs").(unsolicited)
	if !ok {
		t.Fatal("SAML connector lacks Unsolicited")
	}
	if target, ok := u.Unsolicited(""); !ok || target != "https://notes.example.com/login" {
		t.Errorf("Unsolicited(\"\") = %q, %v, want the first allow-listed URL", target, ok)
	}
	if _, ok := u.Unsolicited("https://evil.example/"); ok {
		t.Error("Unsolicited(evil) = ok, want refused")
	}
	if _, ok := conn("contoso-entra-saml").(unsolicited).Unsolicited(""); ok {
		t.Error("Unsolicited on a provider without idp_initiated = ok, want refused")
	}

	// Google, pointed at the fake by a Provider built in code, sends hd.
	_, g := cfg.Provider("google")
	gp := *g
	gp.Issuer = f.srv.URL + "/google"
	gc, err := assemble.Connector(&gp, cfg.Issuer, upstreamClient(cfg), logger)
	if err != nil {
		t.Fatal(err)
	}
	gu, _, err := gc.LoginURL(ctx, providers.LoginRequest{State: "s-0123456789", Nonce: "n-0123456789",
		CodeVerifier: strings.Repeat("v", 43), CallbackURL: "http://127.0.0.1:8080/callback/google"})
	if pu, _ := url.Parse(gu); err != nil || pu.Query().Get("hd") != "example.com" {
		t.Errorf("google LoginURL = %q, %v, want hd=example.com", gu, err)
	}
}

// base64Cert returns the start of the base64 DER of the PEM certificate at
// path, as SAML metadata carries it.
func base64Cert(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	return base64.StdEncoding.EncodeToString(block.Bytes)[:60]
}
