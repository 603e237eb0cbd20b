package oidc

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/realmgate/realmgate/providers"
)

// maxCallbackForm bounds a form_post callback body.
const maxCallbackForm = 64 << 10

// maxUpstreamText bounds upstream error text quoted in our errors.
const maxUpstreamText = 200

// HandleCallback validates the OP's authorization response carried by r
// (query, or form_post body) for the login described by req, exchanges the
// code with the PKCE verifier, verifies the ID token, merges userinfo and
// returns the identity. data is ignored (LoginURL returns none).
func (c *Connector) HandleCallback(ctx context.Context, req providers.LoginRequest, data []byte, r *http.Request) (providers.Identity, error) {
	if r == nil {
		return providers.Identity{}, fmt.Errorf("%w: oidc: idp %q: no callback request", providers.ErrInvalidResponse, c.id)
	}
	params, err := callbackParams(r)
	if err != nil {
		return providers.Identity{}, fmt.Errorf("%w: oidc: idp %q: %v", providers.ErrInvalidResponse, c.id, err)
	}

	// RFC 6749 §10.12 / S21: the state must be the one stored for this browser.
	state := params.Get("state")
	if req.State == "" || subtle.ConstantTimeCompare([]byte(state), []byte(req.State)) != 1 {
		return providers.Identity{}, fmt.Errorf("%w: oidc: idp %q: state mismatch", providers.ErrInvalidResponse, c.id)
	}

	md, err := c.discover(ctx)
	if err != nil {
		return providers.Identity{}, err
	}

	// RFC 9207 §2.4 / S22 mix-up defence: iss, when present, names this OP; it
	// is required when the OP advertises it. Checked for error responses too.
	issParam, hasIss := params["iss"]
	if !hasIss && md.IssParameterSupported {
		return providers.Identity{}, fmt.Errorf("%w: oidc: idp %q: authorization response without iss", providers.ErrInvalidResponse, c.id)
	}
	if hasIss {
		iss := issParam[0]
		ok := iss == c.issuer
		if c.multiTenant {
			tid, isTenant := c.tenantOf(iss)
			ok = isTenant && c.tenantAllowed(tid)
		}
		if !ok {
			return providers.Identity{}, fmt.Errorf("%w: oidc: idp %q: authorization response iss %q does not match the issuer",
				providers.ErrInvalidResponse, c.id, clip(iss))
		}
	}

	// RFC 6749 §4.1.2.1: an error response.
	if code := params.Get("error"); code != "" {
		base := providers.ErrInvalidResponse
		if code == "access_denied" {
			base = providers.ErrAccessDenied
		}
		return providers.Identity{}, fmt.Errorf("%w: oidc: idp %q: upstream error %q: %q",
			base, c.id, clip(code), clip(params.Get("error_description")))
	}
	code := params.Get("code")
	if code == "" {
		return providers.Identity{}, fmt.Errorf("%w: oidc: idp %q: authorization response without code", providers.ErrInvalidResponse, c.id)
	}

	tok, err := c.exchange(ctx, md, code, req)
	if err != nil {
		return providers.Identity{}, err
	}
	claims, err := c.verifyIDToken(ctx, md, tok.IDToken, req.Nonce, tok.AccessToken)
	if err != nil {
		return providers.Identity{}, err
	}
	if c.hostedDomain != "" {
		// Google's guide: the hd claim of the verified ID token, not the hd
		// parameter of the request, says the account is in the domain.
		if hd, _ := claims["hd"].(string); !strings.EqualFold(hd, c.hostedDomain) {
			return providers.Identity{}, fmt.Errorf("%w: oidc: idp %q: account hosted domain %q is not %q",
				providers.ErrAccessDenied, c.id, clip(hd), c.hostedDomain)
		}
	}
	iss, _ := claims["iss"].(string)
	if iss == googleIssuerNoScheme {
		iss = googleIssuer
	}
	if hasIss && issParam[0] != iss {
		// Multi-tenant: the response's iss and the token's must name the same tenant.
		return providers.Identity{}, fmt.Errorf("%w: oidc: idp %q: authorization response iss differs from id token iss",
			providers.ErrInvalidResponse, c.id)
	}

	if md.UserinfoEndpoint != "" && tok.AccessToken != "" && c.wantUserinfo(claims) { // userinfo.go
		ui, err := c.userinfo(ctx, md, tok.AccessToken, iss)
		if err != nil {
			return providers.Identity{}, err
		}
		// OpenID Connect Core 1.0 §5.3.2 / S20: the userinfo sub must be the
		// ID token's, else the answer is not about this user.
		if sub, _ := ui["sub"].(string); sub != claims["sub"] {
			return providers.Identity{}, fmt.Errorf("%w: oidc: idp %q: userinfo sub differs from id token sub",
				providers.ErrInvalidResponse, c.id)
		}
		for k, v := range ui { // ID token claims win; userinfo fills the gaps
			if _, ok := claims[k]; !ok {
				claims[k] = v
			}
		}
	}
	return identityFrom(claims), nil
}

// callbackParams returns the authorization response parameters from the
// query (response_mode=query) or the POST body (form_post). A parameter sent
// twice is refused (RFC 6749 §3.1).
func callbackParams(r *http.Request) (url.Values, error) {
	params := r.URL.Query()
	if r.Method == http.MethodPost {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(nil, r.Body, maxCallbackForm)
		}
		if err := r.ParseForm(); err != nil {
			return nil, errors.New("unreadable callback form")
		}
		params = r.Form
	}
	for k, v := range params {
		if len(v) > 1 {
			return nil, fmt.Errorf("callback parameter %q repeated", clip(k))
		}
	}
	return params, nil
}

// tokenResponse is the token endpoint's answer (RFC 6749 §5.1, §5.2;
// OpenID Connect Core 1.0 §3.1.3.3).
type tokenResponse struct {
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	IDToken          string `json:"id_token"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// tokenForm is the token request's body (RFC 6749 §4.1.3, RFC 7636 §4.5):
// byte for byte url.Values.Encode of the same fields (sorted by name, an
// client_id and client_secret as client holds them: none, the id, or both),
// without the map.
func tokenForm(code, redirectURI, verifier string, client []string) string {
	size := 80 + len(code) + len(redirectURI) + len(verifier)
	for _, v := range client {
		size += 16 + len(v)
	}
	var b strings.Builder
	b.Grow(size + size/4) // room for some escapes
	field := func(k, v string) {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(v))
	}
	if len(client) > 0 {
		field("client_id", client[0])
	}
	if len(client) > 1 {
		field("client_secret", client[1])
	}
	field("code", code)
	field("code_verifier", verifier)
	field("grant_type", "authorization_code")
	field("redirect_uri", redirectURI)
	return b.String()
}

// exchange redeems code at the token endpoint with the PKCE verifier
// (RFC 6749 §4.1.3, RFC 7636 §4.5).
func (c *Connector) exchange(ctx context.Context, md *metadata, code string, req providers.LoginRequest) (*tokenResponse, error) {
	var client []string // client_id, then client_secret, when sent in the form
	basic := false
	switch {
	case c.clientSecret == "": // public client: PKCE only
		client = []string{c.clientID}
	case len(md.TokenEndpointAuthMeths) == 0 || slices.Contains(md.TokenEndpointAuthMeths, "client_secret_basic"):
		basic = true // the default method (OpenID Connect Discovery 1.0 §3)
	case slices.Contains(md.TokenEndpointAuthMeths, "client_secret_post"):
		client = []string{c.clientID, c.clientSecret}
	default:
		basic = true
	}
	form := tokenForm(code, req.CallbackURL, req.CodeVerifier, client)
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, md.TokenEndpoint, strings.NewReader(form))
	if err != nil {
		return nil, fmt.Errorf("%w: oidc: idp %q: token request: %v", providers.ErrInvalidResponse, c.id, err)
	}
	hreq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hreq.Header.Set("Accept", "application/json")
	if basic {
		// RFC 6749 §2.3.1: both parts form-urlencoded before Basic encoding.
		hreq.SetBasicAuth(url.QueryEscape(c.clientID), url.QueryEscape(c.clientSecret))
	}
	body, resp, err := c.do(hreq, "token endpoint")
	if err != nil {
		if resp != nil && resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
			var e tokenResponse
			if decodeTokenResponse(body, &e) == nil && e.Error != "" {
				return nil, fmt.Errorf("%w: oidc: idp %q: token endpoint error %q: %q",
					providers.ErrInvalidResponse, c.id, clip(e.Error), clip(e.ErrorDescription))
			}
		}
		return nil, err
	}
	var tr tokenResponse
	if err := decodeTokenResponse(body, &tr); err != nil { // tokenjson.go: json.Unmarshal's result in one pass
		return nil, fmt.Errorf("%w: oidc: idp %q: token response is not json", providers.ErrInvalidResponse, c.id)
	}
	if tr.IDToken == "" {
		return nil, fmt.Errorf("%w: oidc: idp %q: token response without id_token", providers.ErrInvalidResponse, c.id)
	}
	if tr.AccessToken == "" {
		return nil, fmt.Errorf("%w: oidc: idp %q: token response without access_token", providers.ErrInvalidResponse, c.id)
	}
	return &tr, nil
}

// userinfo fetches the userinfo endpoint with the access token (OpenID
// Connect Core 1.0 §5.3). A signed answer (application/jwt) must verify with
// the OP's keys, and its iss / aud, when present, must be ours.
func (c *Connector) userinfo(ctx context.Context, md *metadata, accessToken, issuer string) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, md.UserinfoEndpoint, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: oidc: idp %q: userinfo request: %v", providers.ErrInvalidResponse, c.id, err)
	}
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set("Authorization", "Bearer "+accessToken) // RFC 6750 §2.1
	body, resp, err := c.do(hreq, "userinfo")
	if err != nil {
		return nil, err
	}
	signed := false
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err == nil && mt == "application/jwt" {
		raw := strings.TrimSpace(string(body))
		if err := checkCompact(raw); err != nil {
			return nil, fmt.Errorf("%w: oidc: idp %q: userinfo jwt: %v", providers.ErrInvalidResponse, c.id, err)
		}
		probe := &verifyProbe{}
		payload, err := md.keys.VerifySignature(context.WithValue(ctx, probeKey{}, probe), raw)
		if err != nil {
			if perr := probe.get(); perr != nil {
				return nil, fmt.Errorf("oidc: idp %q: userinfo jwt: %w", c.id, perr)
			}
			return nil, fmt.Errorf("%w: oidc: idp %q: userinfo jwt signature: %v", providers.ErrInvalidResponse, c.id, err)
		}
		body, signed = payload, true
	}
	var ui map[string]any
	if err := json.Unmarshal(body, &ui); err != nil || ui == nil {
		return nil, fmt.Errorf("%w: oidc: idp %q: userinfo is not a json object", providers.ErrInvalidResponse, c.id)
	}
	if signed {
		if v, ok := ui["iss"]; ok && v != issuer {
			return nil, fmt.Errorf("%w: oidc: idp %q: userinfo jwt issuer mismatch", providers.ErrInvalidResponse, c.id)
		}
		if v, ok := ui["aud"]; ok && !slices.Contains(audiences(v), c.clientID) {
			return nil, fmt.Errorf("%w: oidc: idp %q: userinfo jwt audience mismatch", providers.ErrInvalidResponse, c.id)
		}
	}
	return ui, nil
}

// clip shortens upstream text quoted in errors; the caller quotes it with %q
// and the broker escapes it before display.
func clip(s string) string {
	if len(s) > maxUpstreamText {
		return s[:maxUpstreamText] + "..."
	}
	return s
}

// b64 decodes one base64url segment of a compact JWS (RFC 7515 §2: no padding).
func b64(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
