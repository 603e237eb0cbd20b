package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/realmgate/realmgate/broker/memstore"
	"github.com/realmgate/realmgate/users"
)

// env is a running SCIM endpoint over a memory directory and store, with
// a token for tenant "acme" and one for tenant "other".
type env struct {
	t      *testing.T
	srv    *httptest.Server
	h      *Handler
	dir    *memDir // records deprovisioning, and is the directory unless users is set
	users  *users.Directory
	tokens *Tokens
	acme   string // token of acme
	other  string // token of other
	audit  *bytes.Buffer
	mu     sync.Mutex
	log    []exchange // every response, for the SCIMMY validation
	creds  []string   // users whose password a client set (CredentialObserver)
}

// CredentialChanged implements CredentialObserver.
func (e *env) CredentialChanged(_ context.Context, tenant, userID, actor string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.creds = append(e.creds, tenant+"/"+userID+" by "+actor)
}

// exchange is one response as scimvalidate.mjs reads it.
type exchange struct {
	Name   string `json:"name"`
	Status int    `json:"status"`
	Body   any    `json:"body"`
}

// newEnv starts the endpoint over the memory test directory.
func newEnv(t *testing.T, limits *Limits) *env { return startEnv(t, limits, false) }

// revoker records the users the directory deprovisions.
type revoker struct{ d *memDir }

func (r revoker) RevokeUser(ctx context.Context, u *users.User, actor, reason string) error {
	return r.d.Deprovision(ctx, u.Tenant, u.ID, actor, reason)
}

func startEnv(t *testing.T, limits *Limits, real bool) *env {
	t.Helper()
	e := &env{t: t, dir: newMemDir(), audit: &bytes.Buffer{}}
	st := memstore.New()
	var dir Directory = e.dir
	var dep Deprovisioner = e.dir
	if real {
		ud, ok := users.Open(st, nil)
		if !ok {
			t.Fatal("memstore keeps no directory")
		}
		ud.SetRevoker(revoker{e.dir})
		e.users, dir, dep = ud, NewUsersDirectory(ud), nil
	}
	e.tokens = NewTokens(st, []byte("test server secret of enough length"))
	var err error
	e.acme, _, err = e.tokens.Create(context.Background(), "acme", "entra", "test")
	if err != nil {
		t.Fatal(err)
	}
	e.other, _, _ = e.tokens.Create(context.Background(), "other", "okta", "test")
	mux := http.NewServeMux()
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	e.h, err = New(Options{Directory: dir, Deprovisioner: dep, Credentials: e, Tokens: e.tokens, Store: st,
		TenantExists: func(id string) bool { return id == "acme" || id == "other" },
		Issuer:       e.srv.URL, Limits: limits,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Audit:  slog.New(slog.NewJSONHandler(e.audit, nil))})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle(e.h.Prefix(), e.h)
	return e
}

// do sends a request to acme's endpoint (path relative to it) with token.
func (e *env) do(name, method, path, token string, body any, hdr ...string) (int, map[string]any, http.Header) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	path = encodeQuery(path)
	u := e.srv.URL + path
	if !strings.HasPrefix(path, "/scim/") {
		u = e.srv.URL + "/scim/v2/acme" + path
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		e.t.Fatalf("%s: %v", name, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s: %v", name, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	var logged any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			e.t.Errorf("%s: %s %s: body is not JSON: %q", name, method, path, raw)
		}
		logged = m
		if ct := resp.Header.Get("Content-Type"); ct != ContentType {
			e.t.Errorf("%s: Content-Type = %q, want %q", name, ct, ContentType)
		}
	}
	if resp.StatusCode == http.StatusInternalServerError {
		e.t.Errorf("%s: %s %s: 500: %s", name, method, path, raw)
	}
	e.mu.Lock()
	e.log = append(e.log, exchange{Name: name, Status: resp.StatusCode, Body: logged})
	e.mu.Unlock()
	return resp.StatusCode, m, resp.Header
}

// dig returns the value at a dotted path ("emails.0.value"); a key may
// itself hold dots when it is a schema URN ("urn:...:User.employeeNumber").
// "list[*].sub" collects sub of every element, sorted (for sets such as
// members, whose order the directory chooses).
func dig(v any, path string) any {
	if list, rest, ok := strings.Cut(path, "[*]."); ok {
		var out []any
		for _, el := range values(dig(v, list)) {
			out = append(out, dig(el, rest))
		}
		slices.SortFunc(out, func(a, b any) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
		return out
	}
	for path != "" {
		var key string
		if strings.HasPrefix(path, "urn:") {
			i := strings.LastIndex(path, ":")
			j := strings.IndexByte(path[i:], '.')
			if j < 0 {
				key, path = path, ""
			} else {
				key, path = path[:i+j], path[i+j+1:]
			}
		} else {
			key, path, _ = strings.Cut(path, ".")
		}
		switch x := v.(type) {
		case map[string]any:
			v = x[key]
		case []any:
			i := -1
			_ = json.Unmarshal([]byte(key), &i)
			if i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}
