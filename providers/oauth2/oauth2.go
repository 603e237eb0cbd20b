// Package oauth2 is realmgate's generic upstream OAuth 2.0 connector for
// providers that are not OpenID Connect: the authorization code flow with
// PKCE (RFC 6749 §4.1, RFC 7636) against configurable authorization and
// token endpoints, then a userinfo endpoint whose JSON answer is mapped to an
// identity by a configurable claim mapping (dotted paths into the JSON).
package oauth2

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	xoauth2 "golang.org/x/oauth2"

	"github.com/realmgate/realmgate/providers"
)

// DefaultTimeout bounds each upstream call.
const DefaultTimeout = 10 * time.Second

const maxBody = 1 << 20

// ErrConfig is returned (wrapped) by New for an invalid configuration.
var ErrConfig = errors.New("oauth2: invalid configuration")

// Mapping names, as dotted paths into the userinfo JSON, where each
// identity field comes from. Empty fields take DefaultMapping's.
type Mapping struct {
	Subject, Email, EmailVerified, Name, GivenName, FamilyName, PreferredUsername string
}

// DefaultMapping reads OIDC-style userinfo member names, with "id" as the
// subject fallback most OAuth APIs use.
var DefaultMapping = Mapping{Subject: "sub", Email: "email", EmailVerified: "email_verified", Name: "name",
	GivenName: "given_name", FamilyName: "family_name", PreferredUsername: "preferred_username"}

// Config describes one OAuth 2.0 provider.
type Config struct {
	// ID is the IdP id (logs, errors).
	ID string
	// Issuer is the Identity.Issuer; default the authorization URL's origin.
	Issuer string
	// ClientID and ClientSecret are realmgate's credentials.
	ClientID, ClientSecret string
	// Scopes requested.
	Scopes []string
	// AuthURL, TokenURL and UserInfoURL are the provider's endpoints.
	AuthURL, TokenURL, UserInfoURL string
	// Mapping maps userinfo members to identity fields.
	Mapping Mapping
	// TrustEmail treats the mapped email as verified when the provider has
	// no verified flag. Off: an email is verified only if EmailVerified maps
	// to true.
	TrustEmail bool
	// HTTPClient makes the back-channel calls; nil means one with Timeout.
	HTTPClient *http.Client
	// Timeout bounds each call; default DefaultTimeout.
	Timeout time.Duration
	// Logger receives diagnostics; nil means slog.Default().
	Logger *slog.Logger
}

// Connector is a providers.Connector for one OAuth 2.0 provider.
type Connector struct {
	cfg    Config
	client *http.Client
}

// The connector offers none of the optional capabilities (providers.As):
// OAuth 2.0 has no logout or session protocol to speak.
var _ providers.Connector = (*Connector)(nil)

// New checks cfg and returns a connector; it makes no network call.
func New(cfg Config) (*Connector, error) {
	if cfg.ID == "" || cfg.ClientID == "" {
		return nil, fmt.Errorf("%w: id and client_id are required", ErrConfig)
	}
	for _, u := range []string{cfg.AuthURL, cfg.TokenURL, cfg.UserInfoURL} {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			return nil, fmt.Errorf("%w: idp %s: %q is not an absolute URL", ErrConfig, cfg.ID, u)
		}
	}
	if cfg.Issuer == "" {
		p, _ := url.Parse(cfg.AuthURL)
		cfg.Issuer = p.Scheme + "://" + p.Host
	}
	d := DefaultMapping
	m := &cfg.Mapping
	for _, f := range []struct {
		v   *string
		def string
	}{{&m.Subject, d.Subject}, {&m.Email, d.Email},
		{&m.EmailVerified, d.EmailVerified}, {&m.Name, d.Name}, {&m.GivenName, d.GivenName},
		{&m.FamilyName, d.FamilyName}, {&m.PreferredUsername, d.PreferredUsername}} {
		if *f.v == "" {
			*f.v = f.def
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Connector{cfg: cfg, client: cfg.HTTPClient}
	if c.client == nil {
		c.client = &http.Client{Timeout: cfg.Timeout}
	}
	return c, nil
}

func (c *Connector) oauth(redirect string) *xoauth2.Config {
	return &xoauth2.Config{ClientID: c.cfg.ClientID, ClientSecret: c.cfg.ClientSecret, RedirectURL: redirect, Scopes: c.cfg.Scopes,
		Endpoint: xoauth2.Endpoint{AuthURL: c.cfg.AuthURL, TokenURL: c.cfg.TokenURL}}
}

// LoginURL returns the authorization request URL (RFC 6749 §4.1.1) with
// state and a PKCE S256 challenge (RFC 7636 §4.3).
func (c *Connector) LoginURL(_ context.Context, req providers.LoginRequest) (string, []byte, error) {
	h := sha256.Sum256([]byte(req.CodeVerifier))
	opts := []xoauth2.AuthCodeOption{xoauth2.SetAuthURLParam("code_challenge", base64.RawURLEncoding.EncodeToString(h[:])),
		xoauth2.SetAuthURLParam("code_challenge_method", "S256")}
	if req.ForceLogin {
		opts = append(opts, xoauth2.SetAuthURLParam("prompt", "login"))
	}
	return c.oauth(req.CallbackURL).AuthCodeURL(req.State, opts...), nil, nil
}

// HandleCallback checks state, handles an error response (RFC 6749
// §4.1.2.1), exchanges the code (§4.1.3) and maps the userinfo answer.
func (c *Connector) HandleCallback(ctx context.Context, req providers.LoginRequest, _ []byte, r *http.Request) (providers.Identity, error) {
	q := r.URL.Query()
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			return providers.Identity{}, c.fail(providers.ErrInvalidResponse, "unreadable form")
		}
		q = r.Form
	}
	if req.State == "" || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(req.State)) != 1 {
		return providers.Identity{}, c.fail(providers.ErrInvalidResponse, "state mismatch")
	}
	if e := q.Get("error"); e != "" {
		if e == "access_denied" {
			return providers.Identity{}, c.fail(providers.ErrAccessDenied, "upstream error access_denied")
		}
		return providers.Identity{}, c.fail(providers.ErrInvalidResponse, "upstream error "+strconv.Quote(clip(e)))
	}
	code := q.Get("code")
	if code == "" {
		return providers.Identity{}, c.fail(providers.ErrInvalidResponse, "no code")
	}
	ctx, cancel := context.WithTimeout(context.WithValue(ctx, xoauth2.HTTPClient, c.client), c.cfg.Timeout)
	defer cancel()
	tok, err := c.oauth(req.CallbackURL).Exchange(ctx, code, xoauth2.VerifierOption(req.CodeVerifier))
	if err != nil {
		var re *xoauth2.RetrieveError
		var ue *url.Error
		switch {
		case errors.As(err, &re) && re.Response != nil && re.Response.StatusCode >= 500:
			return providers.Identity{}, c.fail(providers.ErrUnavailable, "token: "+err.Error())
		case !errors.As(err, &re) && errors.As(err, &ue):
			return providers.Identity{}, c.fail(providers.ErrUnavailable, "token: "+err.Error())
		}
		return providers.Identity{}, c.fail(providers.ErrInvalidResponse, "token: "+err.Error())
	}
	info, err := c.userinfo(ctx, tok.AccessToken)
	if err != nil {
		return providers.Identity{}, err
	}
	return c.identity(info)
}

func (c *Connector) fail(kind error, msg string) error {
	return fmt.Errorf("oauth2: idp %s: %w: %s", c.cfg.ID, kind, msg)
}

func (c *Connector) userinfo(ctx context.Context, token string) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.UserInfoURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, c.fail(providers.ErrUnavailable, "userinfo: "+err.Error())
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, c.fail(providers.ErrUnavailable, "userinfo: "+err.Error())
	}
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		return nil, c.fail(providers.ErrUnavailable, fmt.Sprintf("userinfo: status %d", resp.StatusCode))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, c.fail(providers.ErrInvalidResponse, fmt.Sprintf("userinfo: status %d", resp.StatusCode))
	}
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(string(body)))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		return nil, c.fail(providers.ErrInvalidResponse, "userinfo: not a JSON object")
	}
	return m, nil
}

// lookup follows a dotted path into the JSON object.
func lookup(m map[string]any, path string) (any, bool) {
	var cur any = m
	for _, p := range strings.Split(path, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[p]; !ok {
			return nil, false
		}
	}
	return cur, cur != nil
}

func str(m map[string]any, path string) string {
	v, ok := lookup(m, path)
	if !ok {
		return ""
	}
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

func (c *Connector) identity(info map[string]any) (providers.Identity, error) {
	mp := c.cfg.Mapping
	sub := str(info, mp.Subject)
	if sub == "" && mp.Subject == DefaultMapping.Subject {
		sub = str(info, "id")
	}
	if sub == "" {
		return providers.Identity{}, c.fail(providers.ErrInvalidResponse, "userinfo has no subject at "+strconv.Quote(mp.Subject))
	}
	id := providers.Identity{Issuer: c.cfg.Issuer, Subject: sub, Email: str(info, mp.Email), Name: str(info, mp.Name),
		GivenName: str(info, mp.GivenName), FamilyName: str(info, mp.FamilyName),
		PreferredUsername: str(info, mp.PreferredUsername), Claims: info}
	if id.Email != "" {
		v, _ := lookup(info, mp.EmailVerified)
		id.EmailVerified = v == true || c.cfg.TrustEmail
	}
	return id, nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}
