package broker

import (
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/oauth"
)

// DPoP: Demonstrating Proof of Possession (RFC 9449). A client proves, with
// a fresh JWT signed by a key it holds (the proof, in the DPoP header),
// that it holds the key its tokens are bound to:
//
//   - at /token a valid proof binds the access token to the key: the token
//     carries cnf.jkt, the key's RFC 7638 thumbprint, and token_type is
//     DPoP (§5); a public client's refresh tokens are bound too (§5, §5.8):
//     a refresh with another key or none is refused and ends the family;
//   - at /userinfo a DPoP-bound token is accepted only with the DPoP scheme
//     and a proof by that key over this request and this token (ath, §7);
//   - /introspect returns cnf.jkt (§6.2) and checks a proof sent to it;
//   - at the PAR endpoint a proof binds the authorization code to the key
//     (dpop_jkt, §10).
//
// Every proof is checked against the request (htm, htu), its age (iat),
// and replay: its jti is recorded with store.Create for the proof's
// lifetime, so of any number of instances sharing the store exactly one
// accepts it (§11.1); redisstore acknowledges the write on a replica before
// answering, so a failover cannot forget it. With DPoPOptions.RequireNonce
// proofs also carry a server nonce (§8, §9), which bounds a proof's use to
// the nonce's lifetime even where the client's clock is wrong.

// DPoPOptions configures DPoP proofs (RFC 9449).
type DPoPOptions struct {
	// RequireNonce makes every proof carry a nonce the server issued
	// (RFC 9449 §8, §9): a proof without one, or with a stale one, is
	// refused with use_dpop_nonce and a fresh nonce in the DPoP-Nonce header.
	RequireNonce bool
	// ProofLifetime is how old a proof (its iat) may be; zero means
	// DefaultDPoPProofLifetime.
	ProofLifetime time.Duration
}

// DefaultDPoPProofLifetime is how old a DPoP proof may be by default.
const DefaultDPoPProofLifetime = 60 * time.Second

// dpopClockSkew is how far a proof's iat may be in the future (the
// client's clock ahead of ours), and is added to the replay window.
const dpopClockSkew = 10 * time.Second

// dpopNonceStep is how long one server nonce is current; the previous one
// is still accepted, so a nonce lives between one and two steps.
const dpopNonceStep = 5 * time.Minute

// maxDPoPProof bounds the DPoP header: a proof with an RSA 4096 key is
// under 2 KB.
const maxDPoPProof = 8 << 10

// dpopAlgs are the proof algorithms accepted (RFC 9449 §4.2: asymmetric
// only; none and MAC algorithms never).
var dpopAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.PS256, jose.PS384, jose.PS512,
	jose.RS256, jose.RS384, jose.RS512, jose.EdDSA}

// dpopAlgNames are dpopAlgs as discovery and the WWW-Authenticate challenge
// list them (dpop_signing_alg_values_supported, RFC 9449 §5.1, §7.1).
func dpopAlgNames() []string {
	out := make([]string, len(dpopAlgs))
	for i, a := range dpopAlgs {
		out[i] = string(a)
	}
	return out
}

// Echo context keys of a request's DPoP state.
const (
	dpopJKTKey       = "dpop_jkt"       // thumbprint of a valid proof's key at /token
	dpopChallengeKey = "dpop_challenge" // answer 401s with a DPoP challenge (RFC 9449 §7.1)
)

// dpopCheck is what a proof must match.
type dpopCheck struct {
	method string
	url    string // the endpoint's URL, from the issuer
	// accessToken, at a resource endpoint, is the token the proof's ath
	// must hash (RFC 9449 §4.3 check 11).
	accessToken string
}

// dpopClaims are the claims of a proof (RFC 9449 §4.2).
type dpopClaims struct {
	JTI   string      `json:"jti"`
	HTM   string      `json:"htm"`
	HTU   string      `json:"htu"`
	IAT   json.Number `json:"iat"`
	ATH   string      `json:"ath"`
	Nonce string      `json:"nonce"`
}

func dpopError(desc string) *oauth.Error { return oauth.New(oauth.InvalidDPoPProof, desc) }

// dpopProof checks the request's DPoP proof (RFC 9449 §4.3) and returns the
// thumbprint of its key, or "" when the request carries none. Its errors
// are invalid_dpop_proof or use_dpop_nonce (400; resource endpoints answer
// 401), or unavailability of the store.
func (s *Server) dpopProof(c echo.Context, want dpopCheck) (string, error) {
	vals := c.Request().Header.Values("DPoP")
	if len(vals) == 0 {
		return "", nil
	}
	if s.cfg.DPoP.RequireNonce {
		// A fresh nonce with every answer to a request that used DPoP (§8.2).
		c.Response().Header().Set("DPoP-Nonce", s.dpopNonce(s.now()))
	}
	if len(vals) > 1 { // §4.3 check 1
		return "", dpopError("send exactly one DPoP header")
	}
	raw := strings.TrimSpace(vals[0])
	if raw == "" || len(raw) > maxDPoPProof {
		return "", dpopError("the DPoP proof is empty or too large")
	}
	// §4.3 checks 2-6: one JWS, compact, an asymmetric algorithm we accept
	// (go-jose refuses none and every other algorithm not listed), typ
	// dpop+jwt, and a public key in jwk (go-jose refuses a private one).
	jws, err := jose.ParseSignedCompact(raw, dpopAlgs)
	if err != nil {
		return "", dpopError("the DPoP proof is not a JWS signed with one of " + strings.Join(dpopAlgNames(), ", ") +
			" with a public key in its jwk header")
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "dpop+jwt" {
		return "", dpopError(`the DPoP proof's typ must be "dpop+jwt"`)
	}
	jwk := h.JSONWebKey
	if jwk == nil || !jwk.Valid() || !jwk.IsPublic() {
		return "", dpopError("the DPoP proof's jwk header must be a public key")
	}
	if pub, ok := jwk.Key.(*rsa.PublicKey); ok && pub.N.BitLen() < 2048 {
		return "", dpopError("the DPoP proof's RSA key is shorter than 2048 bits")
	}
	payload, err := jws.Verify(jwk.Key) // §4.3 check 7
	if err != nil {
		return "", dpopError("the DPoP proof's signature does not verify with its jwk")
	}
	var cl dpopClaims
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	dec.UseNumber()
	if err := dec.Decode(&cl); err != nil {
		return "", dpopError("the DPoP proof's claims are not a JSON object")
	}
	// §4.3 check 8: the request it was made for.
	if cl.JTI == "" || len(cl.JTI) > 256 {
		return "", dpopError("the DPoP proof needs a jti of at most 256 characters")
	}
	if cl.HTM != want.method {
		return "", dpopError("the DPoP proof's htm is not " + want.method)
	}
	if !sameHTU(cl.HTU, want.url) { // §4.3 check 9
		return "", dpopError("the DPoP proof's htu is not " + want.url)
	}
	// §4.3 checks 10-11: nonce and age.
	if s.cfg.DPoP.RequireNonce || cl.Nonce != "" {
		if !s.validDPoPNonce(cl.Nonce, s.now()) {
			c.Response().Header().Set("DPoP-Nonce", s.dpopNonce(s.now()))
			return "", oauth.New(oauth.UseDPoPNonce, "use the DPoP-Nonce the server sent in this response")
		}
	}
	iat, err := strconv.ParseInt(string(cl.IAT), 10, 64)
	if err != nil {
		return "", dpopError("the DPoP proof needs iat, in whole seconds")
	}
	now, life := s.now(), s.dpopProofLifetime()
	t := time.Unix(iat, 0)
	if t.After(now.Add(dpopClockSkew)) {
		return "", dpopError("the DPoP proof's iat is in the future")
	}
	if t.Before(now.Add(-life - dpopClockSkew)) {
		return "", dpopError("the DPoP proof is too old (iat)")
	}
	// §4.3 check 12: a proof at a resource endpoint hashes the token it sends.
	if want.accessToken != "" {
		sum := sha256.Sum256([]byte(want.accessToken))
		if !hmac.Equal([]byte(cl.ATH), []byte(base64.RawURLEncoding.EncodeToString(sum[:]))) {
			return "", dpopError("the DPoP proof's ath is not the hash of the access token")
		}
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", dpopError("the DPoP proof's jwk has no thumbprint")
	}
	jkt := base64.RawURLEncoding.EncodeToString(tp)
	// §11.1: single use, across every instance sharing the store. Checked
	// last, so proofs refused for another reason never fill the cache.
	ttl := life + 2*dpopClockSkew
	switch err := s.store.Create(c.Request().Context(), s.keyer.key("dj", jkt+"\x00"+cl.JTI), []byte{1}, ttl); {
	case errors.Is(err, ErrExists):
		s.auditEvent(c, "refused", "dpop_proof_replayed", attrs{})
		return "", dpopError("the DPoP proof was already used")
	case err != nil:
		return "", storeErr("dpop replay cache", err)
	}
	return jkt, nil
}

func (s *Server) dpopProofLifetime() time.Duration {
	if s.cfg.DPoP.ProofLifetime > 0 {
		return s.cfg.DPoP.ProofLifetime
	}
	return DefaultDPoPProofLifetime
}

// sameHTU compares a proof's htu with an endpoint URL, ignoring query and
// fragment (RFC 9449 §4.3 check 9), after RFC 3986 §6.2.2 and §6.2.3
// normalization: scheme and host in lower case, a default port dropped,
// an empty path as "/".
func sameHTU(htu, endpoint string) bool {
	a, ok1 := normalHTU(htu)
	b, ok2 := normalHTU(endpoint)
	return ok1 && ok2 && a == b
}

func normalHTU(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil {
		return "", false
	}
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	switch {
	case port != "":
		host = net.JoinHostPort(host, port)
	case strings.Contains(host, ":"): // an IPv6 literal
		host = "[" + host + "]"
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, true
}

// dpopNonce is the server nonce of the step now falls in (RFC 9449 §8):
// the step and an HMAC over it under the server secret, so every instance
// makes and accepts the same nonces without storing them.
func (s *Server) dpopNonce(now time.Time) string {
	return s.dpopNonceAt(now.Unix() / int64(dpopNonceStep/time.Second))
}

func (s *Server) dpopNonceAt(step int64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(step))
	mac := s.keyer.mac("dpop-nonce", string(b[:]))
	return base64.RawURLEncoding.EncodeToString(append(b[:], mac[:16]...))
}

// validDPoPNonce accepts the current step's nonce and the previous one.
func (s *Server) validDPoPNonce(nonce string, now time.Time) bool {
	if nonce == "" || len(nonce) > 64 {
		return false
	}
	step := now.Unix() / int64(dpopNonceStep/time.Second)
	for _, st := range []int64{step, step - 1} {
		if hmac.Equal([]byte(nonce), []byte(s.dpopNonceAt(st))) {
			return true
		}
	}
	return false
}

// tokenDPoP checks the proof of a token request (RFC 9449 §5) and keeps
// its key's thumbprint for the tokens issued (tokenBinding); a client with
// dpop_bound_access_tokens must send one (§5.2).
func (s *Server) tokenDPoP(c echo.Context, cl *client) error {
	jkt, err := s.dpopProof(c, dpopCheck{method: http.MethodPost, url: s.url("/token")})
	if err != nil {
		return err
	}
	if jkt == "" && cl.DPoPBoundAccessTokens {
		return dpopError("this client's access tokens are DPoP-bound: send a DPoP proof")
	}
	if jkt != "" {
		c.Set(dpopJKTKey, jkt)
	}
	return nil
}

// dpopJKT is the thumbprint of the key of the request's valid DPoP proof
// at the token endpoint, or "".
func dpopJKT(c echo.Context) string { s, _ := c.Get(dpopJKTKey).(string); return s }

// confirmation is the cnf claim of a DPoP-bound access token (RFC 9449 §6.1).
type confirmation struct {
	JKT string `json:"jkt"`
}

// tokenBinding is what a token response issued for this request binds its
// access token to: the cnf claim (nil when unbound) and the token_type,
// DPoP or Bearer (RFC 9449 §5.1). Every grant that issues an access token
// uses it.
func tokenBinding(c echo.Context) (*confirmation, string) {
	if jkt := dpopJKT(c); jkt != "" {
		return &confirmation{JKT: jkt}, "DPoP"
	}
	return nil, "Bearer"
}

// boundKeyMatches reports whether the request's DPoP proof is by the key g
// is bound to: a code's dpop_jkt (RFC 9449 §10) or a public client's
// refresh-token family (§5). An unbound g matches any request.
func boundKeyMatches(c echo.Context, g *grant) bool {
	return g.JKT == "" || hmac.Equal([]byte(dpopJKT(c)), []byte(g.JKT))
}

// accessTokenFromRequest reads the access token of a resource request: the
// Bearer scheme (RFC 6750 §2.1) or the DPoP scheme (RFC 9449 §7.1), which
// it reports.
func accessTokenFromRequest(c echo.Context) (token string, dpop bool) {
	h := c.Request().Header.Get("Authorization")
	switch {
	case len(h) > 5 && strings.EqualFold(h[:5], "dpop "):
		return strings.TrimSpace(h[5:]), true
	case len(h) > 7 && strings.EqualFold(h[:7], "bearer "):
		return strings.TrimSpace(h[7:]), false
	}
	return "", false
}

// jktOf is the cnf.jkt of verified access-token claims, or "".
func jktOf(claims jwt.MapClaims) string {
	cnf, _ := claims["cnf"].(map[string]any)
	jkt, _ := cnf["jkt"].(string)
	return jkt
}

// resourceDPoP enforces a DPoP-bound access token's binding at a resource
// endpoint (RFC 9449 §7.1): the DPoP scheme and a proof by the token's key
// over this request and this token. An unbound token is refused with the
// DPoP scheme. Its errors are 401s with a DPoP challenge.
func (s *Server) resourceDPoP(c echo.Context, claims jwt.MapClaims, token, path string, dpopScheme bool) error {
	jkt := jktOf(claims)
	if jkt == "" {
		if dpopScheme {
			c.Set(dpopChallengeKey, true)
			return oauth.New(oauth.InvalidToken, "the access token is not DPoP-bound: use the Bearer scheme")
		}
		return nil
	}
	c.Set(dpopChallengeKey, true)
	if !dpopScheme {
		// §7.1: a DPoP-bound token sent as a bearer token is refused.
		return oauth.New(oauth.InvalidToken, "the access token is DPoP-bound: use the DPoP scheme with a proof")
	}
	got, err := s.dpopProof(c, dpopCheck{method: c.Request().Method, url: s.url(path), accessToken: token})
	if e, ok := oauth.As(err); ok {
		return e.WithStatus(http.StatusUnauthorized)
	} else if err != nil {
		return err
	}
	if got == "" {
		return dpopError("a DPoP proof is required with a DPoP-bound access token").WithStatus(http.StatusUnauthorized)
	}
	if !hmac.Equal([]byte(got), []byte(jkt)) {
		s.auditEvent(c, "refused", "dpop_key_mismatch", attrs{client: stringClaim(claims, "client_id")})
		return dpopError("the DPoP proof's key is not the key the access token is bound to").WithStatus(http.StatusUnauthorized)
	}
	return nil
}

// dpopChallenge is the WWW-Authenticate value of a 401 at a resource
// endpoint whose request used DPoP or whose token is DPoP-bound (RFC 9449
// §7.1), or "" when it should be a Bearer challenge.
func dpopChallenge(c echo.Context, e *oauth.Error) string {
	if on, _ := c.Get(dpopChallengeKey).(bool); !on {
		return ""
	}
	v := `DPoP realm="realmgate", algs="` + strings.Join(dpopAlgNames(), " ") + `"`
	if e.Code != "" {
		v += `, error="` + e.Code + `"`
	}
	return v
}

// presentedWithKey reports whether a token presented as a grant (the
// subject or actor token of a token exchange) may be used by this request:
// a DPoP-bound one only with this request's proof by its key, so a stolen
// bound token cannot be exchanged for one that is not (RFC 9449 §7, §9).
func presentedWithKey(c echo.Context, claims jwt.MapClaims) bool {
	jkt := jktOf(claims)
	return jkt == "" || hmac.Equal([]byte(dpopJKT(c)), []byte(jkt))
}

// bindClaims binds the access token with claims, issued for this request,
// to the request's DPoP key (cnf.jkt) and returns its token_type.
func bindClaims(c echo.Context, claims jwt.MapClaims) string {
	cnf, tokenType := tokenBinding(c)
	if cnf != nil {
		claims["cnf"] = cnf
	}
	return tokenType
}
