package broker_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// dpopKey is a client's DPoP key (ES256, P-256) that makes proofs by hand,
// so tests can also make every malformed proof of the attack list.
type dpopKey struct {
	t    *testing.T
	priv *ecdsa.PrivateKey
	now  func() time.Time // iat of proofs
}

func newDPoPKey(t *testing.T) *dpopKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &dpopKey{t: t, priv: k, now: time.Now}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func pad32(n *big.Int) []byte { b := make([]byte, 32); n.FillBytes(b); return b }

// jwk is the public JWK; withPrivate adds d.
func (k *dpopKey) jwk(withPrivate bool) map[string]any {
	ecdh, err := k.priv.PublicKey.ECDH()
	if err != nil {
		k.t.Fatal(err)
	}
	raw := ecdh.Bytes() // 0x04 || x || y
	m := map[string]any{"kty": "EC", "crv": "P-256", "x": b64(raw[1:33]), "y": b64(raw[33:])}
	if withPrivate {
		d, err := k.priv.Bytes()
		if err != nil {
			k.t.Fatal(err)
		}
		m["d"] = b64(d)
	}
	return m
}

// jkt is the RFC 7638 thumbprint of the key.
func (k *dpopKey) jkt() string {
	j := k.jwk(false)
	sum := sha256.Sum256([]byte(`{"crv":"P-256","kty":"EC","x":"` + j["x"].(string) + `","y":"` + j["y"].(string) + `"}`))
	return b64(sum[:])
}

// proofOpt changes a proof's header or claims before it is signed.
type proofOpt func(h, c map[string]any)

func withClaim(k string, v any) proofOpt {
	return func(_, c map[string]any) {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
}

func withHeader(k string, v any) proofOpt {
	return func(h, _ map[string]any) {
		if v == nil {
			delete(h, k)
		} else {
			h[k] = v
		}
	}
}

// forToken adds ath for an access token (RFC 9449 §4.2).
func forToken(at string) proofOpt {
	sum := sha256.Sum256([]byte(at))
	return withClaim("ath", b64(sum[:]))
}

// proof makes a DPoP proof for method and URL, signed ES256 unless the
// options change alg ("none" and "HS256" are signed as they say).
func (k *dpopKey) proof(method, u string, opts ...proofOpt) string {
	k.t.Helper()
	h := map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": k.jwk(false)}
	c := map[string]any{"jti": randomID(), "htm": method, "htu": u, "iat": k.now().Unix()}
	for _, o := range opts {
		o(h, c)
	}
	hb, _ := json.Marshal(h)
	cb, _ := json.Marshal(c)
	input := b64(hb) + "." + b64(cb)
	var sig []byte
	switch h["alg"] {
	case "none":
	case "HS256":
		m := hmac.New(sha256.New, []byte("a-shared-secret-0123456789abcdef"))
		m.Write([]byte(input))
		sig = m.Sum(nil)
	default:
		sum := sha256.Sum256([]byte(input))
		r, s, err := ecdsa.Sign(rand.Reader, k.priv, sum[:])
		if err != nil {
			k.t.Fatal(err)
		}
		sig = append(pad32(r), pad32(s)...)
	}
	return input + "." + b64(sig)
}

func randomID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return b64(b)
}

// send makes a request with the given Authorization value (if any) and
// DPoP headers, and decodes a JSON answer.
func (e *env) sendDPoP(method, path string, form url.Values, basicUser, basicPass, authz string, proofs ...string) tokenResp {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, e.issuer+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if basicUser != "" {
		req.SetBasicAuth(url.QueryEscape(basicUser), url.QueryEscape(basicPass))
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out := tokenResp{status: resp.StatusCode, header: resp.Header, body: map[string]any{}}
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out.body)
	return out
}

// dpopSignIn signs alice in to app-a and redeems the code with a proof by k.
func (e *env) dpopSignIn(k *dpopKey) tokenResp {
	e.t.Helper()
	verifier, challenge := pkce()
	q := e.login(e.browser(), authParams(challenge))
	tr := e.sendDPoP(http.MethodPost, "/token", url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
		"redirect_uri": {appCB}, "code_verifier": {verifier}}, "app-a", secretA, "", k.proof("POST", e.issuer+"/token"))
	if tr.status != http.StatusOK {
		e.t.Fatalf("token with a DPoP proof = %d %v", tr.status, tr.body)
	}
	return tr
}

// pubSignIn signs alice in to the public client pub and redeems the code,
// with a proof by k when k is not nil.
func (e *env) pubSignIn(k *dpopKey) tokenResp {
	e.t.Helper()
	verifier, challenge := pkce()
	v := authParams(challenge)
	v.Set("client_id", "pub")
	v.Set("redirect_uri", "http://127.0.0.1:7000/cb")
	q := e.login(e.browser(), v)
	var proofs []string
	if k != nil {
		proofs = append(proofs, k.proof("POST", e.issuer+"/token"))
	}
	tr := e.sendDPoP(http.MethodPost, "/token", url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
		"client_id": {"pub"}, "redirect_uri": {"http://127.0.0.1:7000/cb"}, "code_verifier": {verifier}}, "", "", "", proofs...)
	if tr.status != http.StatusOK {
		e.t.Fatalf("public client token = %d %v", tr.status, tr.body)
	}
	return tr
}
