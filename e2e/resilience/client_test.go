package resilience

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// transport is shared by every simulated browser (keep-alive pools).
var transport = &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 128, IdleConnTimeout: 30 * time.Second}

// browser is one user's browser: its own cookie jar and client address
// (sent as X-Forwarded-For; realmgate trusts 127.0.0.1 as its proxy, so
// throttles count per simulated user as they would in production).
type browser struct {
	c  *http.Client
	ip string
}

func newBrowser() *browser {
	jar, _ := cookiejar.New(nil)
	n, _ := rand.Int(rand.Reader, big.NewInt(1<<24))
	v := n.Int64()
	return &browser{ip: fmt.Sprintf("10.%d.%d.%d", v>>16&255, v>>8&255, v&255),
		c: &http.Client{Transport: transport, Jar: jar, Timeout: 20 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// stepError is a step of a flow that did not answer as expected.
type stepError struct {
	step   string // authorize, upstream, callback, token, refresh, userinfo, sso
	status int    // 0: the request failed (connection refused, timeout)
	detail string
}

func (e *stepError) Error() string {
	return fmt.Sprintf("%s: status %d: %.300s", e.step, e.status, e.detail)
}

// errKind classifies a flow error as "<step> <status>[ <reason>]".
func errKind(err error) string {
	var se *stepError
	if !errors.As(err, &se) {
		return "other"
	}
	kind := se.step + " " + strconv.Itoa(se.status)
	switch {
	case strings.Contains(se.detail, "invalid_grant"):
		kind += " invalid_grant"
	case strings.Contains(se.detail, "has expired"):
		kind += " expired"
	case se.status == 0:
		kind += " transport"
	}
	return kind
}

// send does one request from the browser and reads the answer.
func (b *browser) send(req *http.Request) (*http.Response, []byte, error) {
	req.Header.Set("X-Forwarded-For", b.ip)
	resp, err := b.c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, body, err
}

func (b *browser) get(step, u string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, &stepError{step: step, detail: err.Error()}
	}
	req.Header.Set("Accept", "text/html")
	resp, body, err := b.send(req)
	if err != nil {
		return nil, nil, &stepError{step: step, detail: err.Error()}
	}
	return resp, body, nil
}

// redirect expects a 302 or 303 and returns its Location.
func redirect(step string, resp *http.Response, body []byte) (string, error) {
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		return "", &stepError{step: step, status: resp.StatusCode, detail: pageText(body)}
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", &stepError{step: step, status: resp.StatusCode, detail: "no Location"}
	}
	return loc, nil
}

// pageText keeps the readable part of an error page for messages.
func pageText(body []byte) string {
	s := string(body)
	if i := strings.Index(s, "<h1"); i >= 0 {
		s = s[i:]
	}
	return strings.Join(strings.Fields(stripTags(s)), " ")
}

func stripTags(s string) string {
	var b strings.Builder
	in := false
	for _, r := range s {
		switch {
		case r == '<':
			in = true
		case r == '>':
			in = false
			b.WriteByte(' ')
		case !in:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// tokens is a token response and the ID token's claims.
type tokens struct {
	access, id, refresh string
	claims              map[string]any
}

// route names the process (index into deployment.addrs) of each step.
type route struct{ authorize, callback, token int }

func (d *deployment) at(i int, path string) string { return "http://" + d.addrs[i] + path }

// authorizeRequest is a fresh authorization request's URL on process i.
func (d *deployment) authorizeRequest(i int, email string) (u, state, verifier string) {
	state, verifier = rand.Text(), rand.Text()+rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"client_id": {appClientID}, "redirect_uri": {appRedirectURI}, "response_type": {"code"},
		"scope": {"openid email profile"}, "state": {state}, "nonce": {rand.Text()},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	if email != "" {
		q.Set("login_hint", email)
	}
	return d.at(i, "/authorize?"+q.Encode()), state, verifier
}

// login runs a whole brokered sign-in in b: the authorization request on
// one process, the upstream, the upstream's callback delivered to another
// process, and the code exchange at a third.
func (d *deployment) login(b *browser, email string, r route) (*tokens, error) {
	start, state, verifier := d.authorizeRequest(r.authorize, email)
	resp, body, err := b.get("authorize", start)
	if err != nil {
		return nil, err
	}
	loc, err := redirect("authorize", resp, body)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(loc, appRedirectURI) {
		if !strings.HasPrefix(loc, d.up.base+"/") {
			return nil, &stepError{step: "authorize", status: resp.StatusCode, detail: "sent to " + loc}
		}
		if resp, body, err = b.get("upstream", loc); err != nil {
			return nil, err
		}
		if loc, err = redirect("upstream", resp, body); err != nil {
			return nil, err
		}
		if !strings.HasPrefix(loc, d.issuer+"/callback/") {
			return nil, &stepError{step: "upstream", status: resp.StatusCode, detail: "sent to " + loc}
		}
		loc = d.at(r.callback, strings.TrimPrefix(loc, d.issuer))
		if resp, body, err = b.get("callback", loc); err != nil {
			return nil, err
		}
		if loc, err = redirect("callback", resp, body); err != nil {
			return nil, err
		}
	}
	back, err := url.Parse(loc)
	if err != nil || !strings.HasPrefix(loc, appRedirectURI+"?") {
		return nil, &stepError{step: "callback", status: resp.StatusCode, detail: "sent to " + loc}
	}
	q := back.Query()
	if q.Get("error") != "" || q.Get("state") != state || q.Get("code") == "" {
		return nil, &stepError{step: "callback", status: resp.StatusCode, detail: "error response " + back.RawQuery}
	}
	return d.tokenRequest(b, "token", r.token, url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
		"redirect_uri": {appRedirectURI}, "code_verifier": {verifier}})
}

// refresh redeems a refresh token on process i.
func (d *deployment) refresh(b *browser, i int, rt string) (*tokens, error) {
	return d.tokenRequest(b, "refresh", i, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

func (d *deployment) tokenRequest(b *browser, step string, i int, form url.Values) (*tokens, error) {
	req, err := http.NewRequest(http.MethodPost, d.at(i, "/token"), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &stepError{step: step, detail: err.Error()}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(appClientID, d.clientSecret)
	resp, body, err := b.send(req)
	if err != nil {
		return nil, &stepError{step: step, detail: err.Error()}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &stepError{step: step, status: resp.StatusCode, detail: string(body)}
	}
	var tr struct {
		AccessToken  string `json:"access_token"`
		IDToken      string `json:"id_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" || tr.IDToken == "" || tr.RefreshToken == "" {
		return nil, &stepError{step: step, status: resp.StatusCode, detail: "incomplete token response " + string(body)}
	}
	claims, err := jwtClaims(tr.IDToken)
	if err != nil {
		return nil, &stepError{step: step, status: resp.StatusCode, detail: err.Error()}
	}
	return &tokens{access: tr.AccessToken, id: tr.IDToken, refresh: tr.RefreshToken, claims: claims}, nil
}

// userinfo calls /userinfo on process i with an access token.
func (d *deployment) userinfo(b *browser, i int, at string) (map[string]any, error) {
	req, err := http.NewRequest(http.MethodGet, d.at(i, "/userinfo"), nil)
	if err != nil {
		return nil, &stepError{step: "userinfo", detail: err.Error()}
	}
	req.Header.Set("Authorization", "Bearer "+at)
	resp, body, err := b.send(req)
	if err != nil {
		return nil, &stepError{step: "userinfo", detail: err.Error()}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &stepError{step: "userinfo", status: resp.StatusCode, detail: string(body)}
	}
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, &stepError{step: "userinfo", status: resp.StatusCode, detail: "not JSON: " + string(body)}
	}
	return out, nil
}

// jwtClaims decodes a JWT's payload (the signature is checked by realmgate
// itself when the token comes back; the tests compare claims).
func jwtClaims(tok string) (map[string]any, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("token %.40q is not a JWS", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("token payload: %w", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		return nil, fmt.Errorf("token payload: %w", err)
	}
	return claims, nil
}

// checkClaims verifies an ID token is about tenant's user.
func checkClaims(claims map[string]any, tenant string) error {
	if claims["tid"] != tenant || claims["email"] != "alice@"+tenant+".test" || claims["sub"] == "" {
		return &stepError{step: "claims", status: 200, detail: fmt.Sprintf("claims %v, want tid %s and alice@%s.test", claims, tenant, tenant)}
	}
	return nil
}
