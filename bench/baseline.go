package main

// The baseline is a bare net/http server that does, per request, exactly the
// cryptographic and Redis work realmgate's request of the same flow does, and
// nothing else: no router, no middleware, no logging, no JSON encoding of
// maps, no rules. It uses the same store implementation (redisstore, hence
// the same go-redis client, scripts and settings) so every Redis round trip
// is the same command with a payload of the same size.
//
// Work per request (realmgate's, counted from broker/*.go; "limiter" is the
// sign-in rate limiter of SECURITY S60, on with limits no run reaches; its
// failure counters are read at most once a second per counter, as
// realmgate's underLimitCache does, so those GETs are left out below):
//
//	/token code grant   4 HMAC, 3 SHA-256, 3 Redis (GETDEL, SET, EVALSHA), 2 ES256 signatures
//	/token refresh      3 HMAC, 2 SHA-256, 1 Redis (EVALSHA: rotation and logout marker),
//	                    2 ES256 signatures
//	/authorize (login)  5 HMAC, 1 SHA-256, 4 Redis (SET; EVALSHA, EVALSHA: the start sliding windows;
//	                    SET) + 1 audit XADD off the request path, redirect upstream
//	/callback           6 HMAC, 2 SHA-256, 6 Redis (GETDEL, GET, SET session, EVALSHA
//	                    upstream-logout index, DEL, SET) + 1 audit XADD off the request path,
//	                    upstream token and userinfo calls, 1 ES256 verification
//	/token client_credentials  1 SHA-256, 1 ES256 signature, no Redis on the request path
//	                    (the failure limiter's cached read; 1 audit XADD off the request path)
//	/jwks, discovery    none (static documents)
//
// The benchmark reads Redis's read events per request for both servers and
// warns when the counts differ: a new store call in a flow must be mirrored
// here.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/broker/redisstore"
	"github.com/realmgate/realmgate/store"
)

// Payload sizes of realmgate's records for the benchmark's user, measured
// with STRLEN / MEMORY USAGE on a real run (go run ./bench prints them): the
// baseline pads its records to these sizes so Redis moves the same bytes.
const (
	sizeAuthRequest = 311
	sizeUpstream    = 433 // with the copy of the auth request (issue 21); binary form (599 as JSON)
	sizeSession     = 454 // binary form (449 as compact JSON; issue 21 round four)
	sizeCode        = 804 // the grant and binding in their binary form (965 as JSON)
	sizeGrant       = 366
)

const clientSecretEnv = "BENCH_CLIENT_SECRET"

// pprofEnv, when set, has the baseline serve CPU and allocation profiles
// (-profile).
const pprofEnv = "BENCH_PPROF"

// algEnv carries -alg to the baseline: the signing algorithm of its tokens.
const algEnv = "BENCH_ALG"

var b64 = base64.RawURLEncoding

type baseline struct {
	store      *redisstore.Store
	storeKey   []byte
	priv       *ecdsa.PrivateKey
	rsaPriv    *rsa.PrivateKey // -alg RS256: signs instead of priv
	headerAT   string          // base64url JOSE header, typ at+jwt
	headerID   string          // base64url JOSE header, typ JWT
	secretHash [32]byte
	issuer     string
	upstream   struct {
		issuer, authURL, tokenURL, userinfoURL string
		pub                                    *ecdsa.PublicKey
	}
	http      *http.Client
	limMu     sync.Mutex
	limUntil  map[string]time.Time // failure counters read as under the limit, until
	jwks      []byte
	discovery []byte
	audit     chan []byte // events for the tenant's audit stream, written off the request path
}

// runBaseline serves the baseline on addr until SIGTERM.
func runBaseline(addr, upstreamIssuer, redisAddr string) error {
	st, err := redisstore.New(redisstore.Options{Addrs: []string{redisAddr}})
	if err != nil {
		return err
	}
	defer st.Close()
	b := &baseline{store: st, storeKey: randomBytes(32), issuer: "http://" + addr,
		http: &http.Client{Timeout: requestTimeout, Transport: &http.Transport{
			Proxy: nil, MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: 90 * time.Second}}}
	b.secretHash = sha256.Sum256([]byte(os.Getenv(clientSecretEnv)))
	if err := b.makeKey(os.Getenv(algEnv)); err != nil {
		return err
	}
	b.discovery = staticDiscovery(b.issuer)
	if err := b.fetchUpstream(upstreamIssuer); err != nil {
		return err
	}
	// Like realmgate's audit writer: a bounded queue, the tenant's events
	// written by one worker, what is queued within 10 ms (up to 128) in one
	// pipelined round trip.
	b.audit = make(chan []byte, 2048)
	go func() {
		batch := make([][]byte, 0, 128)
		for ev := range b.audit {
			batch = append(batch[:0], ev)
			linger := time.NewTimer(10 * time.Millisecond)
		gather:
			for len(batch) < 128 {
				select {
				case x, ok := <-b.audit:
					if !ok {
						break gather
					}
					batch = append(batch, x)
				case <-linger.C:
					break gather
				}
			}
			linger.Stop()
			if len(batch) == 1 {
				_ = b.store.AppendAudit(context.Background(), benchTenant, batch[0], broker.DefaultAuditMaxLen)
			} else {
				_ = b.store.AppendAuditBatch(context.Background(), benchTenant, batch, broker.DefaultAuditMaxLen)
			}
		}
	}()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /jwks", b.static(b.jwks, "application/jwk-set+json"))
	mux.HandleFunc("GET /.well-known/openid-configuration", b.static(b.discovery, "application/json"))
	if os.Getenv(pprofEnv) != "" {
		// -profile: the same profiles realmgate's serve --pprof gives.
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.Handle("GET /debug/pprof/allocs", pprof.Handler("allocs"))
	}
	mux.HandleFunc("POST /mint", b.mint)
	mux.HandleFunc("GET /authorize", b.authorize)
	mux.HandleFunc("GET /callback", b.callback)
	mux.HandleFunc("POST /token", b.token)
	return serveUntilSignal(addr, mux)
}

// staticDiscovery is a metadata document of the size realmgate serves.
func staticDiscovery(iss string) []byte {
	doc, _ := json.Marshal(map[string]any{
		"issuer": iss, "authorization_endpoint": iss + "/authorize", "token_endpoint": iss + "/token",
		"userinfo_endpoint": iss + "/userinfo", "jwks_uri": iss + "/jwks", "revocation_endpoint": iss + "/revoke",
		"introspection_endpoint": iss + "/introspect", "response_types_supported": []string{"code"},
		"response_modes_supported": []string{"query"}, "grant_types_supported": []string{"authorization_code", "refresh_token"},
		"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"ES256"},
		"token_endpoint_auth_methods_supported":         []string{"client_secret_basic", "client_secret_post", "none"},
		"revocation_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post"},
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"code_challenge_methods_supported":              []string{"S256"},
		"scopes_supported":                              []string{"openid", "profile", "email", "offline_access"},
		"claims_supported": []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp", "sid", "at_hash",
			"tid", "idp", "roles", "amr", "acr", "email", "email_verified", "name", "given_name", "family_name", "preferred_username"},
		"prompt_values_supported":                        []string{"none", "login", "consent", "select_account"},
		"authorization_response_iss_parameter_supported": true, "request_parameter_supported": false,
		"request_uri_parameter_supported": false, "claims_parameter_supported": false,
	})
	return doc
}

// fetchUpstream reads the upstream's metadata and signing key once.
func (b *baseline) fetchUpstream(issuer string) error {
	var md struct {
		Issuer   string `json:"issuer"`
		Auth     string `json:"authorization_endpoint"`
		Token    string `json:"token_endpoint"`
		Userinfo string `json:"userinfo_endpoint"`
		JWKS     string `json:"jwks_uri"`
	}
	if err := b.getJSON(issuer+"/.well-known/openid-configuration", "", &md); err != nil {
		return err
	}
	var ks struct {
		Keys []struct{ Kty, Crv, X, Y string } `json:"keys"`
	}
	if err := b.getJSON(md.JWKS, "", &ks); err != nil {
		return err
	}
	if len(ks.Keys) == 0 || ks.Keys[0].Kty != "EC" {
		return errors.New("baseline: upstream has no EC key (start devidp with ES256)")
	}
	// RFC 7518 §6.2.1.2-3: x and y are full-size coordinates; as a SEC 1
	// uncompressed point (0x04 || X || Y) they parse with an on-curve check.
	x, errX := b64.DecodeString(ks.Keys[0].X)
	y, errY := b64.DecodeString(ks.Keys[0].Y)
	if err := errors.Join(errX, errY); err != nil {
		return fmt.Errorf("baseline: upstream EC key: %w", err)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		return fmt.Errorf("baseline: upstream EC key: %w", err)
	}
	b.upstream.pub = pub
	b.upstream.issuer, b.upstream.authURL, b.upstream.tokenURL, b.upstream.userinfoURL = md.Issuer, md.Auth, md.Token, md.Userinfo
	return nil
}

func (b *baseline) getJSON(u, bearer string, v any) error {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := b.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d", u, resp.StatusCode)
	}
	return json.Unmarshal(body, v)
}

func (b *baseline) static(doc []byte, ctype string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", ctype)
		w.Write(doc)
	}
}

// key is realmgate's store key: kind + ":" + base64url(HMAC-SHA256).
func (b *baseline) key(kind, secret string) string {
	m := hmac.New(sha256.New, b.storeKey)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(secret))
	return kind + ":" + b64.EncodeToString(m.Sum(nil))
}

func (b *baseline) mac(purpose, value string) []byte {
	m := hmac.New(sha256.New, b.storeKey)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return m.Sum(nil)
}

func randomBytes(n int) []byte {
	p := make([]byte, n)
	rand.Read(p)
	return p
}

func randomToken(n int) string { return b64.EncodeToString(randomBytes(n)) }

// record joins fields with newlines and pads the result to size bytes.
func record(size int, fields ...string) []byte {
	out := []byte(strings.Join(fields, "\n"))
	out = append(out, '\n')
	for len(out) < size {
		out = append(out, ' ')
	}
	return out
}

func fields(rec []byte, n int) []string { return strings.SplitN(string(rec), "\n", n+1)[:n] }

// codeRecord is a code's record as realmgate stores it
// (store.JoinCodeRecord): the grant its family keeps, then the binding
// only the exchange reads (redirect URI, challenge, nonce, time).
func codeRecord(client, redirect, challenge, nonce, sid, subject, now, scope string) []byte {
	grant := record(sizeGrant, client, "", "", "", sid, subject, benchTenant, benchIdPID, now, scope, claimsFragment)
	bind := record(sizeCode-sizeGrant, redirect, challenge, nonce, now)
	return store.JoinCodeRecord(grant, bind)
}

// claimsFragment is the JSON members of the user's claims, as a grant carries them.
const claimsFragment = `"email":"alice@acme.test","email_verified":true,"family_name":"Anders","given_name":"Alice","name":"Alice Anders","roles":["admin"]`

// makeKey makes the signing key of alg (ES256 when empty, or RS256, as
// realmgate's keys.algorithm) and the JOSE headers and JWKS that go with it.
func (b *baseline) makeKey(alg string) error {
	var jwk map[string]any
	var thumb [32]byte
	switch alg {
	case "", "ES256":
		alg = "ES256"
		var err error
		if b.priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return err
		}
		pt, err := b.priv.PublicKey.Bytes() // SEC 1 uncompressed point: 0x04 || X || Y, 32 bytes each
		if err != nil {
			return err
		}
		x, y := b64.EncodeToString(pt[1:33]), b64.EncodeToString(pt[33:])
		thumb = sha256.Sum256(fmt.Appendf(nil, `{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}`, x, y))
		jwk = map[string]any{"kty": "EC", "crv": "P-256", "x": x, "y": y}
	case "RS256":
		var err error
		if b.rsaPriv, err = rsa.GenerateKey(rand.Reader, 2048); err != nil { // realmgate's size (broker/keys.go)
			return err
		}
		e := b64.EncodeToString(big.NewInt(int64(b.rsaPriv.E)).Bytes())
		n := b64.EncodeToString(b.rsaPriv.N.Bytes())
		thumb = sha256.Sum256(fmt.Appendf(nil, `{"e":"%s","kty":"RSA","n":"%s"}`, e, n)) // RFC 7638 §3.2
		jwk = map[string]any{"kty": "RSA", "e": e, "n": n}
	default:
		return fmt.Errorf("baseline: unknown algorithm %q (want ES256 or RS256)", alg)
	}
	kid := b64.EncodeToString(thumb[:])
	b.headerAT = b64.EncodeToString(fmt.Appendf(nil, `{"alg":"%s","kid":"%s","typ":"at+jwt"}`, alg, kid))
	b.headerID = b64.EncodeToString(fmt.Appendf(nil, `{"alg":"%s","kid":"%s","typ":"JWT"}`, alg, kid))
	jwk["kid"], jwk["alg"], jwk["use"] = kid, alg, "sig"
	b.jwks, _ = json.Marshal(map[string]any{"keys": []any{jwk}})
	return nil
}

// sign is ES256 over header.claims (RFC 7515 §3.1, RFC 7518 §3.4), with
// the same primitive realmgate uses: crypto/ecdsa's deterministic RFC 6979
// signature (nil random source), converted to R || S; or, with an RSA key,
// RS256 (RFC 7518 §3.3: RSASSA-PKCS1-v1_5 with SHA-256), as realmgate's.
func (b *baseline) sign(header string, claims []byte) string {
	buf := make([]byte, 0, 1024)
	buf = append(buf, header...)
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, claims)
	h := sha256.Sum256(buf)
	if b.rsaPriv != nil {
		sig, err := rsa.SignPKCS1v15(nil, b.rsaPriv, crypto.SHA256, h[:])
		if err != nil {
			panic(err)
		}
		buf = append(buf, '.')
		buf = b64.AppendEncode(buf, sig)
		return string(buf)
	}
	der, err := b.priv.Sign(nil, h[:], crypto.SHA256)
	if err != nil {
		panic(err)
	}
	var r, s big.Int
	var inner cryptobyte.String
	in := cryptobyte.String(der)
	if !in.ReadASN1(&inner, casn1.SEQUENCE) || !inner.ReadASN1Integer(&r) || !inner.ReadASN1Integer(&s) {
		panic("baseline: malformed signature")
	}
	var sig [64]byte
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, sig[:])
	return string(buf)
}

func halfHash(v string) string {
	sum := sha256.Sum256([]byte(v))
	return b64.EncodeToString(sum[:16])
}

// auditEvent queues an event of the size realmgate's audit events have.
func (b *baseline) auditEvent(r *http.Request, outcome string) {
	ev := fmt.Appendf(nil, `{"time":%q,"outcome":%q,"tenant":%q,"idp":%q,"subject":%q,"client":%q,"ip":%q,"user_agent":%q,"request_id":%q}`,
		time.Now().UTC().Format(time.RFC3339Nano), outcome, benchTenant, benchIdPID, randomToken(24), benchClientID,
		"127.0.0.1", r.UserAgent(), randomToken(9))
	select {
	case b.audit <- ev:
	default:
	}
}

func (b *baseline) fail(w http.ResponseWriter, status int, msg string) {
	http.Error(w, msg, status)
}

// The rate limiter's counters (broker/ratelimit.go): one sliding window per
// limit and subject, peeked at and counted with one script call each.
const (
	clientIP       = "127.0.0.1"
	failuresWindow = 10 * time.Minute
	startsWindow   = time.Minute
	benchLimit     = 1 << 40 // never reached: the bench measures the work, not refusals
)

func limiterKey(name, subject string) string { return "rl:" + name + ":" + subject }

// overLimit reads a failure counter (below its limit in every run) at most
// once a second per counter, as realmgate does (broker/ratelimit.go,
// underLimitCache: a counter read as under its limit is believed for 1 s).
func (b *baseline) overLimit(ctx context.Context, name, subject string, window time.Duration) {
	key := limiterKey(name, subject)
	now := time.Now()
	b.limMu.Lock()
	fresh := now.Before(b.limUntil[key])
	b.limMu.Unlock()
	if fresh {
		return
	}
	_, _ = b.store.SlidingWindow(ctx, key, store.Window{Limit: benchLimit, Length: window}, store.WindowPeek, now)
	b.limMu.Lock()
	if b.limUntil == nil {
		b.limUntil = map[string]time.Time{}
	}
	b.limUntil[key] = now.Add(time.Second)
	b.limMu.Unlock()
}

// clientOK is client_secret_basic with the secret's SHA-256 compared in constant time.
func (b *baseline) clientOK(r *http.Request) bool {
	id, secret, ok := r.BasicAuth()
	h := sha256.Sum256([]byte(secret))
	return ok && (id == benchClientID || id == benchM2MID) && subtle.ConstantTimeCompare(h[:], b.secretHash[:]) == 1
}

// clientCredentials signs the access token realmgate issues to the
// tenant's API client (the same claims) and writes the RFC 6749 §4.4.3
// response.
func (b *baseline) clientCredentials(w http.ResponseWriter, r *http.Request) {
	if id, _, _ := r.BasicAuth(); id != benchM2MID {
		b.fail(w, http.StatusBadRequest, "unauthorized_client")
		return
	}
	now := time.Now().Unix()
	at := fmt.Appendf(nil, `{"aud":%q,"client_id":%q,"exp":%d,"iat":%d,"iss":%q,"jti":%q,"roles":["sync"],"scope":%q,"sub":%q,"tid":%q}`,
		benchM2MAudience, benchM2MID, now+600, now, b.issuer, randomToken(16), benchM2MScope, benchM2MID, benchTenant)
	access := b.sign(b.headerAT, at)
	b.auditEvent(r, "success")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":600,"scope":%q}`, access, benchM2MScope)
}

// mint stores n codes for the token flow (setup only, not measured): the
// grant a code redeems, bound to the client, redirect URI and challenge.
func (b *baseline) mint(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	challenge := r.URL.Query().Get("challenge")
	now := strconv.FormatInt(time.Now().Unix(), 10)
	var out bytes.Buffer
	for range n {
		sid := randomToken(16)
		code := sid + broker.FamilySeparator + randomToken(32)
		g := codeRecord(benchClientID, benchRedirectURI, challenge, "", sid, randomToken(24), now, benchScope)
		if err := b.store.Put(r.Context(), b.key("cd:{"+sid+"}", code), g, time.Minute); err != nil {
			b.fail(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		out.WriteString(code)
		out.WriteByte('\n')
	}
	w.Write(out.Bytes())
}

// token is the code and refresh grants.
func (b *baseline) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || !b.clientOK(r) {
		b.fail(w, http.StatusBadRequest, "bad request")
		return
	}
	ctx := r.Context()
	b.overLimit(ctx, "failures_per_ip", b.key("ip", clientIP), failuresWindow)
	switch r.PostForm.Get("grant_type") {
	case "client_credentials":
		b.clientCredentials(w, r)
	case "authorization_code":
		// The code is "<sid>~<random>": taken, marked used and its
		// family started in one script in the session's slot, as realmgate
		// does (store.CodeRedeemer).
		code := r.PostForm.Get("code")
		sid, _, _ := strings.Cut(code, broker.FamilySeparator)
		fam := sid + broker.FamilySeparator + randomToken(16)
		rt := fam + "." + randomToken(32)
		blob, err := b.store.RedeemCode(ctx, store.Redemption{Code: b.key("cd:{"+sid+"}", code), Used: b.key("cu:{"+sid+"}", code),
			UsedTTL: 11 * time.Minute, Marker: "sx:{" + sid + "}", Family: fam, Token: b.key("rt", rt), FamilyTTL: 720 * time.Hour})
		if err != nil {
			b.fail(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		grant, bind, _ := store.SplitCodeRecord(blob)
		g, cb := fields(grant, 11), fields(bind, 4)
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if g[0] != benchClientID || cb[0] != r.PostForm.Get("redirect_uri") || b64.EncodeToString(sum[:]) != cb[1] {
			_ = b.store.RevokeFamily(ctx, fam)
			b.fail(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		b.respond(w, g, fam, rt, cb[2])
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		fam, _, ok := strings.Cut(rt, ".")
		if !ok {
			b.fail(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		next := fam + "." + randomToken(32)
		// Logout: a session that was logged out ends its refresh tokens; the
		// rotation checks the session's marker in the same script.
		sid := broker.SessionOfFamily(fam)
		blob, err := b.store.RotateUnlessRevoked(ctx, fam, b.key("rt", rt), b.key("rt", next), "sx:{"+sid+"}")
		if err != nil {
			b.fail(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		g := fields(blob, 11)
		// The user's directory record, as realmgate reads it at every
		// refresh (status, groups, attributes): one round trip.
		if _, err := b.store.DirGet(ctx, benchTenant+"/u", g[5]); err != nil && !errors.Is(err, store.ErrNotFound) {
			b.fail(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		b.respond(w, g, fam, next, "")
	default:
		b.fail(w, http.StatusBadRequest, "unsupported_grant_type")
	}
}

// respond signs the access and ID tokens (the same claims realmgate puts in
// them) and writes the token response.
func (b *baseline) respond(w http.ResponseWriter, g []string, fam, rt, nonce string) {
	now := time.Now().Unix()
	at := fmt.Appendf(nil, `{"aud":%q,"auth_time":%s,"client_id":%q,"exp":%d,"gid":%q,"iat":%d,"idp":%q,"iss":%q,"jti":%q,"roles":["admin"],"scope":%q,"sid":%q,"sub":%q,"tid":%q}`,
		g[0], g[8], g[0], now+600, fam, now, g[7], b.issuer, randomToken(16), g[9], g[4], g[5], g[6])
	access := b.sign(b.headerAT, at)
	nonceClaim := ""
	if nonce != "" {
		nonceClaim = fmt.Sprintf(`"nonce":%q,`, nonce)
	}
	id := fmt.Appendf(nil, `{"at_hash":%q,"aud":%q,"auth_time":%s,"azp":%q,"exp":%d,"iat":%d,"idp":%q,"iss":%q,%s"sid":%q,"sub":%q,"tid":%q,%s}`,
		halfHash(access), g[0], g[8], g[0], now+600, now, g[7], b.issuer, nonceClaim, g[4], g[5], g[6], g[10])
	idToken := b.sign(b.headerID, id)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintf(w, `{"access_token":%q,"expires_in":600,"id_token":%q,"refresh_token":%q,"scope":%q,"token_type":"Bearer"}`,
		access, idToken, rt, g[9])
}

// authorize takes the client's request and sends the browser upstream:
// realmgate's /authorize with a login_hint (auth request, home realm, upstream state).
func (b *baseline) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != benchClientID || q.Get("redirect_uri") != benchRedirectURI ||
		q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" {
		b.fail(w, http.StatusBadRequest, "bad request")
		return
	}
	ctx := r.Context()
	bind := ""
	if c, err := r.Cookie("bl_bind"); err == nil {
		bind = c.Value
	} else {
		bind = randomToken(32)
		http.SetCookie(w, &http.Cookie{Name: "bl_bind", Value: bind, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	}
	binding := b64.EncodeToString(b.mac("binding", bind))
	id := randomToken(32)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	arFields := []string{q.Get("client_id"), q.Get("redirect_uri"), q.Get("state"), q.Get("nonce"),
		q.Get("scope"), q.Get("code_challenge"), q.Get("login_hint"), binding, now}
	ar := record(sizeAuthRequest, arFields...)
	ip := b.key("ip", clientIP) // the limiter keys client addresses by HMAC
	b.overLimit(ctx, "failures_per_ip", ip, failuresWindow)
	b.overLimit(ctx, "failures_per_tenant", benchTenant, failuresWindow)
	state, nonce, verifier := randomToken(32), randomToken(32), randomToken(32)
	sum := sha256.Sum256([]byte(verifier))
	// The upstream state carries a copy of the auth request (the callback
	// reads it from there), as realmgate's does.
	ul := record(sizeUpstream, append([]string{b.key("ar", id), benchIdPID, nonce, verifier, binding, q.Get("login_hint"), now}, arFields...)...)
	// The start counters, the auth request and the upstream state: one
	// batch, one round trip (store.Batcher), as realmgate sends them.
	starts := store.Window{Limit: benchLimit, Length: startsWindow}
	at := time.Now()
	if _, err := b.store.Batch(ctx, []store.Op{
		{Kind: store.OpWindow, Key: limiterKey("starts_per_ip", ip), Window: starts, WindowOp: store.WindowTake, Now: at},
		{Kind: store.OpPut, Key: b.key("ar", id), Value: ar, TTL: 10 * time.Minute},
		{Kind: store.OpWindow, Key: limiterKey("starts_per_tenant", benchTenant), Window: starts, WindowOp: store.WindowTake, Now: at},
		{Kind: store.OpPut, Key: b.key("ul", state), Value: ul, TTL: 10 * time.Minute},
	}); err != nil {
		b.fail(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	b.auditEvent(r, "started")
	up := url.Values{"client_id": {upstreamClient}, "redirect_uri": {b.issuer + "/callback"}, "response_type": {"code"},
		"scope": {benchScope}, "state": {state}, "nonce": {nonce}, "code_challenge": {b64.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"}, "login_hint": {q.Get("login_hint")}}
	http.Redirect(w, r, b.upstream.authURL+"?"+up.Encode(), http.StatusFound)
}

// callback validates the upstream answer (state, browser binding, code
// exchange, ID token ES256 signature, nonce, at_hash), creates the
// session and a code, and redirects to the client.
func (b *baseline) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	b.overLimit(ctx, "failures_per_ip", b.key("ip", clientIP), failuresWindow)
	state := q.Get("state")
	blob, err := b.store.Take(ctx, b.key("ul", state))
	if err != nil {
		b.fail(w, http.StatusBadRequest, "unknown state")
		return
	}
	ul := fields(blob, 16) // ar key, idp, nonce, verifier, binding, hint, created, then the auth request
	c, err := r.Cookie("bl_bind")
	if err != nil || b64.EncodeToString(b.mac("binding", c.Value)) != ul[4] {
		b.fail(w, http.StatusBadRequest, "not bound")
		return
	}
	ar := ul[7:] // client, redirect, state, nonce, scope, challenge, hint, binding, created
	if q.Get("iss") != b.upstream.issuer {
		b.fail(w, http.StatusBadRequest, "iss")
		return
	}
	tok, err := b.exchange(ctx, q.Get("code"), ul[3])
	if err != nil {
		b.fail(w, http.StatusBadGateway, err.Error())
		return
	}
	payload, sub, err := b.verifyIDToken(tok.IDToken, ul[2], tok.AccessToken)
	if err != nil {
		b.fail(w, http.StatusBadRequest, err.Error())
		return
	}
	// No userinfo call: the upstream's ID token carries every claim the
	// requested scopes stand for, so realmgate's default (userinfo: auto)
	// skips it too.
	h := sha256.New()
	h.Write([]byte(b.issuer + "\x00" + benchTenant + "\x00" + benchIdPID + "\x00" + sub))
	subject := b64.EncodeToString(h.Sum(nil)[:24])
	// The tenant directory: find the user by their upstream link and stamp
	// the sign-in (one round trip); a first sign-in creates the record.
	link := []store.IndexEntry{{Index: "l", Value: benchIdPID + " " + sub}}
	if _, err := b.store.DirFind(ctx, benchTenant+"/u", link, []byte(strconv.FormatInt(time.Now().Unix(), 10)+" 127.0.0.1")); errors.Is(err, store.ErrNotFound) {
		rec := store.DirRecord{ID: subject, Data: []byte(`{"s":"` + subject + `","l":[["` + benchIdPID + `","` + sub + `"]]}`), Unique: link}
		if _, err := b.store.DirPut(ctx, benchTenant+"/u", rec, 0); err != nil && !errors.Is(err, store.ErrExists) && !errors.Is(err, store.ErrTaken) {
			b.fail(w, http.StatusServiceUnavailable, err.Error())
			return
		}
	} else if err != nil {
		b.fail(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	// -conditional: the user's sign-in history (conditional.go).
	if err := rememberSignIn(ctx, b.store, b.key("rk", benchTenant+"\x00"+subject)); err != nil {
		b.fail(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	sessID, sid := randomToken(32), randomToken(16)
	now := time.Now()
	sess := record(sizeSession, sid, benchTenant, benchIdPID, subject, string(payload))
	sess = sess[:sizeSession] // the session is never read back here: only its size matters
	ssKey := b.key("ss", sessID)
	http.SetCookie(w, &http.Cookie{Name: "bl_session", Value: sessID, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	code := sid + broker.FamilySeparator + randomToken(32)
	g := codeRecord(ar[0], ar[1], ar[5], ar[3], sid, subject, strconv.FormatInt(now.Unix(), 10), ar[4])
	// The auth request's consumption, the session, the index an upstream
	// back-channel logout finds it by, and the code: one batch, as realmgate.
	res, err := b.store.Batch(ctx, []store.Op{
		{Kind: store.OpTake, Key: ul[0]},
		{Kind: store.OpPut, Key: ssKey, Value: sess, TTL: 8 * time.Hour},
		{Kind: store.OpIndex, Key: b.key("uz", benchIdPID+"\x00"+sub), Value: []byte(ssKey), Max: 64, TTL: 8 * time.Hour},
		// The IdP's and the client's session indexes (broker/deletion.go).
		{Kind: store.OpIndex, Key: b.key("si", benchIdPID), Value: []byte(ssKey + " " + sid), Max: 10000, TTL: 720 * time.Hour},
		{Kind: store.OpIndex, Key: b.key("sc", benchClientID), Value: []byte(ssKey + " " + sid), Max: 10000, TTL: 720 * time.Hour},
		{Kind: store.OpPut, Key: b.key("cd:{"+sid+"}", code), Value: g, TTL: time.Minute},
	})
	if err != nil {
		b.fail(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	if len(res) < 4 {
		b.fail(w, http.StatusBadRequest, "expired")
		return
	}
	b.auditEvent(r, "success")
	back := url.Values{"code": {code}, "iss": {b.issuer}, "state": {ar[2]}}
	http.Redirect(w, r, ar[1]+"?"+back.Encode(), http.StatusFound)
}

type upstreamTokens struct {
	AccessToken string `json:"access_token"`
	IDToken     string `json:"id_token"`
}

// exchange redeems the upstream code with the PKCE verifier (client_secret_basic).
func (b *baseline) exchange(ctx context.Context, code, verifier string) (*upstreamTokens, error) {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {b.issuer + "/callback"}, "code_verifier": {verifier}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, b.upstream.tokenURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(upstreamClient, upstreamSecret)
	resp, err := b.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("upstream token: %d %s", resp.StatusCode, body)
	}
	var t upstreamTokens
	if err := json.Unmarshal(body, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// verifyIDToken checks the ES256 signature, issuer, audience, expiry, nonce
// and at_hash, and returns the payload and subject.
func (b *baseline) verifyIDToken(raw, nonce, accessToken string) ([]byte, string, error) {
	h, rest, _ := strings.Cut(raw, ".")
	p, s, _ := strings.Cut(rest, ".")
	sig, err := b64.DecodeString(s)
	if err != nil || len(sig) != 64 {
		return nil, "", errors.New("bad signature encoding")
	}
	digest := sha256.Sum256([]byte(h + "." + p))
	if !ecdsa.Verify(b.upstream.pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return nil, "", errors.New("bad signature")
	}
	payload, err := b64.DecodeString(p)
	if err != nil {
		return nil, "", err
	}
	var c struct {
		Iss    string `json:"iss"`
		Sub    string `json:"sub"`
		Aud    any    `json:"aud"`
		Exp    int64  `json:"exp"`
		Nonce  string `json:"nonce"`
		AtHash string `json:"at_hash"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, "", err
	}
	if c.Iss != b.upstream.issuer || c.Nonce != nonce || c.Exp < time.Now().Unix() || c.Sub == "" ||
		(c.AtHash != "" && c.AtHash != halfHash(accessToken)) {
		return nil, "", errors.New("id token claims")
	}
	return payload, c.Sub, nil
}
