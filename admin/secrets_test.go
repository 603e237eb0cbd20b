package admin_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/store"
)

const (
	alphaUpstream = "alpha-upstream-secret" // tenantDoc("alpha")'s provider secret
	notesSecret   = "notes-client-secret-0123456789"
)

func notesClient() admin.Client {
	return admin.Client{Client: config.Client{ID: "notes", Secret: notesSecret, RedirectURIs: []string{"https://notes.test/cb"}, AllowedTenants: []string{"*"}}}
}

// serverSecretCases run a test with and without keys.secret: protected
// says whether secrets are then encrypted and revisions keyed.
var serverSecretCases = []struct {
	name      string
	secret    []byte
	protected bool
}{
	{"server secret set", []byte(testServerSecret), true},
	{"no server secret", nil, false},
}

// rawState returns the stored state as one document, {"tenants": [...],
// "clients": [...]} of the records as stored, and the head it was read at.
func rawState(t *testing.T, e *env) (string, []byte) {
	t.Helper()
	rs := e.store.(store.RecordStore)
	head, err := rs.RecordsHead(t.Context(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string][]json.RawMessage{"tenants": {}, "clients": {}}
	cursor := ""
	var names []string
	recs := map[string][]byte{}
	for {
		page, next, err := rs.ScanRecords(t.Context(), "admin", cursor, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			names = append(names, r.Name)
			recs[r.Name] = r.Value
		}
		if cursor = next; cursor == "" {
			break
		}
	}
	sort.Strings(names)
	for _, n := range names {
		switch {
		case strings.HasPrefix(n, "t/"):
			doc["tenants"] = append(doc["tenants"], recs[n])
		case strings.HasPrefix(n, "c/"):
			doc["clients"] = append(doc["clients"], recs[n])
		}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return strconv.FormatInt(head, 10), b
}

// writeRawState writes a document of rawState's form back, a record per
// tenant and client.
func writeRawState(t *testing.T, e *env, raw []byte) {
	t.Helper()
	var doc map[string][]map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var writes []store.RecordWrite
	for kind, list := range map[string]string{"t/": "tenants", "c/": "clients"} {
		for _, x := range doc[list] {
			b, err := json.Marshal(x)
			if err != nil {
				t.Fatal(err)
			}
			writes = append(writes, store.RecordWrite{Name: kind + x["id"].(string), Value: b, Expect: store.AnyVersion})
		}
	}
	if _, err := e.store.(store.RecordStore).CommitRecords(t.Context(), "admin", store.AnyHead, writes, 1000); err != nil {
		t.Fatal(err)
	}
}

// secretsOf returns what an instance applied: the provider secret of
// tenant/provider and the compiled secret of client (what the broker
// authenticates the client with).
func secretsOf(in *instance, tenant, provider, client string) (upstream, clientSecret string) {
	st, comp := in.svc.Applied()
	for _, x := range st.Tenants {
		for _, p := range x.Providers {
			if x.ID == tenant && p.ID == provider {
				upstream = p.ClientSecret
			}
		}
	}
	if comp != nil {
		for _, c := range comp.Clients {
			if c.ID == client {
				clientSecret = c.Secret
			}
		}
	}
	return upstream, clientSecret
}

// TestAdminSecrets_EncryptedAtRest: with a server secret, provider and
// client secrets written through the API are not in the store in
// plaintext, yet every instance reading the store compiles them in clear;
// a replace that leaves them out keeps them, still encrypted. Without a
// server secret they are stored as before, in plaintext.
func TestAdminSecrets_EncryptedAtRest(t *testing.T) {
	for _, tc := range serverSecretCases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.secret = tc.secret
			a := e.instance()
			a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("alpha", "alpha.test"), nil)
			a.must(t, http.StatusCreated, opToken, "POST", "/v1/clients", notesClient(), nil)

			checkStored := func(when string) {
				t.Helper()
				_, doc := rawState(t, e)
				for _, plain := range []string{alphaUpstream, notesSecret} {
					if got := strings.Contains(string(doc), plain); got == tc.protected {
						t.Errorf("%s: stored document holds %q in plaintext: %v, want %v", when, plain, got, !tc.protected)
					}
				}
				if got := strings.Count(string(doc), `"enc:v1:`); tc.protected && got != 2 || !tc.protected && got != 0 {
					t.Errorf("%s: %d encrypted values stored, want %d", when, got, map[bool]int{true: 2}[tc.protected])
				}
			}
			checkApplied := func(when string, in *instance) {
				t.Helper()
				if up, cl := secretsOf(in, "alpha", "alpha-idp", "notes"); up != alphaUpstream || cl != notesSecret {
					t.Errorf("%s: applied secrets %q, %q; want %q, %q", when, up, cl, alphaUpstream, notesSecret)
				}
			}
			checkStored("after create")
			checkApplied("writer after create", a)
			checkApplied("new instance after create", e.instance())

			// Read-modify-write without the secrets: kept, and still encrypted.
			var tn admin.Tenant
			a.must(t, http.StatusOK, opToken, "GET", "/v1/tenants/alpha", nil, &tn)
			tn.Name, tn.Source, tn.Revision = "Alpha Renamed", "", ""
			a.must(t, http.StatusOK, opToken, "PUT", "/v1/tenants/alpha", tn, nil)
			cl := notesClient()
			cl.Secret = ""
			cl.RedirectURIs = append(cl.RedirectURIs, "https://notes.test/cb2")
			a.must(t, http.StatusOK, opToken, "PUT", "/v1/clients/notes", cl, nil)
			checkStored("after replace without secrets")
			checkApplied("writer after replace", a)
			checkApplied("new instance after replace", e.instance())

			var got admin.Tenant
			a.must(t, http.StatusOK, opToken, "GET", "/v1/tenants/alpha", nil, &got)
			if s := got.Providers[0].ClientSecret; s != "[redacted]" {
				t.Errorf("API returns client_secret %q, want [redacted]", s)
			}
		})
	}
}

// TestAdminSecrets_PlaintextRecordsEncryptedOnNextWrite: a state stored
// before encryption (plaintext secrets) is read by an instance with a
// server secret, and its next write stores every secret encrypted.
func TestAdminSecrets_PlaintextRecordsEncryptedOnNextWrite(t *testing.T) {
	e := newEnv(t)
	e.secret = nil // the format written before encryption
	old := e.instance()
	old.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("alpha", "alpha.test"), nil)
	old.must(t, http.StatusCreated, opToken, "POST", "/v1/clients", notesClient(), nil)
	if _, doc := rawState(t, e); !strings.Contains(string(doc), alphaUpstream) || !strings.Contains(string(doc), notesSecret) {
		t.Fatalf("legacy document does not hold the secrets in plaintext: %s", doc)
	}

	e.secret = []byte(testServerSecret)
	a := e.instance()
	if up, cl := secretsOf(a, "alpha", "alpha-idp", "notes"); up != alphaUpstream || cl != notesSecret {
		t.Fatalf("plaintext record read as %q, %q; want %q, %q", up, cl, alphaUpstream, notesSecret)
	}
	a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("beta", "beta.test"), nil)
	_, doc := rawState(t, e)
	for _, plain := range []string{alphaUpstream, notesSecret, "beta-upstream-secret"} {
		if strings.Contains(string(doc), plain) {
			t.Errorf("after the next write the store still holds %q in plaintext", plain)
		}
	}
	b := e.instance()
	if up, cl := secretsOf(b, "alpha", "alpha-idp", "notes"); up != alphaUpstream || cl != notesSecret {
		t.Fatalf("re-encrypted record read as %q, %q; want %q, %q", up, cl, alphaUpstream, notesSecret)
	}
}

// TestAdminSecrets_UndecryptableIsAnError: a stored secret that does not
// decrypt (another server secret, none, a ciphertext moved to another
// tenant or client, altered bytes) fails the load with ErrSecret naming
// the tenant or client; nothing is applied and no write goes through.
func TestAdminSecrets_UndecryptableIsAnError(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secret []byte
		alter  func(doc map[string]any)
		want   string // in the error
	}{
		{name: "wrong server secret", secret: []byte("another-server-secret-0123456789abcdef"), want: `client "notes"`},
		{name: "no server secret", secret: nil, want: `client "notes"`},
		{name: "provider secret moved to another tenant", secret: []byte(testServerSecret), want: `tenant "alpha"`,
			alter: func(doc map[string]any) {
				ts := doc["tenants"].([]any)
				pa := ts[0].(map[string]any)["providers"].([]any)[0].(map[string]any)
				pb := ts[1].(map[string]any)["providers"].([]any)[0].(map[string]any)
				pa["client_secret"], pb["client_secret"] = pb["client_secret"], pa["client_secret"]
			}},
		{name: "client secret moved to another client", secret: []byte(testServerSecret), want: `client "notes"`,
			alter: func(doc map[string]any) {
				cs := doc["clients"].([]any)
				ca, cb := cs[0].(map[string]any), cs[1].(map[string]any)
				ca["secret"], cb["secret"] = cb["secret"], ca["secret"]
			}},
		{name: "ciphertext altered", secret: []byte(testServerSecret), want: `client "notes"`,
			alter: func(doc map[string]any) {
				c := doc["clients"].([]any)[0].(map[string]any)
				s := c["secret"].(string) // enc:v1: then base64url: change the nonce's first character
				flip := map[bool]string{true: "B", false: "A"}[s[7] == 'A']
				c["secret"] = s[:7] + flip + s[8:]
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			a := e.instance()
			a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("alpha", "alpha.test"), nil)
			a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("beta", "beta.test"), nil)
			a.must(t, http.StatusCreated, opToken, "POST", "/v1/clients", notesClient(), nil)
			other := notesClient()
			other.ID, other.Secret = "other", "other-client-secret-0123456789"
			a.must(t, http.StatusCreated, opToken, "POST", "/v1/clients", other, nil)
			key, raw := rawState(t, e)
			if tc.alter != nil {
				var doc map[string]any
				if err := json.Unmarshal(raw, &doc); err != nil {
					t.Fatal(err)
				}
				tc.alter(doc)
				b, err := json.Marshal(doc)
				if err != nil {
					t.Fatal(err)
				}
				writeRawState(t, e, b)
				key, _ = rawState(t, e)
			}

			in := &instance{comp: &testCompiler{}}
			svc, err := admin.New(admin.Options{Store: e.store, Compiler: in.comp,
				Apply:  func(*admin.Compiled) error { in.applied.Add(1); return nil },
				Tokens: []admin.Token{{Name: "ops", Token: opToken}}, Secret: tc.secret,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			err = svc.Load(context.Background())
			if !errors.Is(err, admin.ErrSecret) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load() = %v, want admin.ErrSecret naming %s", err, tc.want)
			}
			if strings.Contains(err.Error(), "enc:v1:") {
				t.Errorf("error %q shows the ciphertext", err)
			}
			if in.applied.Load() != 0 || svc.Version() != 0 {
				t.Fatalf("applied %d times, version %d: want nothing applied", in.applied.Load(), svc.Version())
			}
			// A write on top of a state this instance cannot read is refused:
			// it would otherwise replace every tenant with its empty state.
			in.svc = svc
			in.srv = httpServer(t, svc)
			if got := in.call(t, opToken, "POST", "/v1/tenants", tenantDoc("gamma"), nil); got != http.StatusServiceUnavailable {
				t.Fatalf("write over an undecryptable state = %d, want 503", got)
			}
			if k, _ := rawState(t, e); k != key {
				t.Fatalf("head is %s after a refused write, want %s", k, key)
			}
		})
	}
}

// httpServer serves svc's API for the test.
func httpServer(t *testing.T, svc *admin.Service) *httptest.Server {
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(srv.Close)
	return srv
}

// TestAdminSecrets_SealedPrefixRefused: a secret that looks encrypted is
// refused on input, with or without a server secret: stored as it is it
// would fail every instance's load.
func TestAdminSecrets_SealedPrefixRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secret []byte
	}{
		{"server secret set", []byte(testServerSecret)},
		{"no server secret", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.secret = tc.secret
			a := e.instance()
			c := notesClient()
			c.Secret = "enc:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
			var body apiErr
			if got := a.call(t, opToken, "POST", "/v1/clients", c, &body); got != http.StatusUnprocessableEntity ||
				len(body.Problems) != 1 || body.Problems[0].Field != "clients[notes].secret" {
				t.Fatalf("client with an enc:v1: secret = %d %+v, want 422 on clients[notes].secret", got, body)
			}
			tn := tenantDoc("alpha")
			tn.Providers[0].ClientSecret = c.Secret
			if got := a.call(t, opToken, "POST", "/v1/tenants", tn, &body); got != http.StatusUnprocessableEntity ||
				len(body.Problems) != 1 || body.Problems[0].Field != "tenants[alpha].providers[0].client_secret" {
				t.Fatalf("provider with an enc:v1: secret = %d %+v, want 422 on its client_secret", got, body)
			}
			if v := a.svc.Version(); v != 0 {
				t.Fatalf("version %d after refused writes, want 0", v)
			}
		})
	}
}

// TestAdminSecrets_RevisionIsKeyed: a tenant's revision hashes its JSON,
// plaintext secrets included; with a server secret it is an HMAC, so the
// stored revision cannot test guesses of a weak secret offline. Without
// one it stays the plain SHA-256 (the secrets are stored in clear anyway).
// Either way, changing only the secret changes the revision.
func TestAdminSecrets_RevisionIsKeyed(t *testing.T) {
	for _, tc := range serverSecretCases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.secret = tc.secret
			a := e.instance()
			a.must(t, http.StatusCreated, opToken, "POST", "/v1/tenants", tenantDoc("alpha", "alpha.test"), nil)
			var tn admin.Tenant
			a.must(t, http.StatusOK, opToken, "GET", "/v1/tenants/alpha", nil, &tn)
			rev := tn.Revision
			plain := tn
			plain.Providers = append([]admin.Provider(nil), tn.Providers...)
			plain.Providers[0].ClientSecret = alphaUpstream
			plain.Source, plain.Revision = "", ""
			b, err := json.Marshal(plain)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			if unkeyed := hex.EncodeToString(sum[:8]); (rev == unkeyed) == tc.protected {
				t.Errorf("revision %q, SHA-256 of the plaintext JSON %q: keyed = %v, want %v", rev, unkeyed, rev != unkeyed, tc.protected)
			}

			tn.Providers[0].ClientSecret = "another-upstream-secret"
			tn.Source, tn.Revision = "", ""
			a.must(t, http.StatusOK, opToken, "PUT", "/v1/tenants/alpha", tn, nil)
			var after admin.Tenant
			a.must(t, http.StatusOK, opToken, "GET", "/v1/tenants/alpha", nil, &after)
			if after.Revision == rev {
				t.Errorf("revision %q unchanged after the secret changed", rev)
			}
		})
	}
}
