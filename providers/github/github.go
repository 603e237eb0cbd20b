// Package github is realmgate's upstream connector for "Sign in with
// GitHub": OAuth 2.0 (not OpenID Connect) with the authorization code flow
// and PKCE, then the REST API's /user and /user/emails. Only an address the
// emails API marks verified becomes the identity's email (GitHub's /user
// "email" is the public profile address, which nobody verified).
package github

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

	"golang.org/x/oauth2"

	"github.com/realmgate/realmgate/providers"
)

// Endpoints of github.com (GitHub docs: "Authorizing OAuth apps").
const (
	DefaultAuthURL  = "https://github.com/login/oauth/authorize"
	DefaultTokenURL = "https://github.com/login/oauth/access_token"
	DefaultAPIURL   = "https://api.github.com"
	// Issuer is the Identity.Issuer of GitHub users.
	Issuer = "https://github.com"
	// DefaultTimeout bounds each upstream call.
	DefaultTimeout = 10 * time.Second
	maxAPIBody     = 1 << 20
)

// ErrConfig is returned (wrapped) by New for an invalid configuration.
var ErrConfig = errors.New("github: invalid configuration")

// Config describes a GitHub OAuth app (or GitHub Enterprise Server, with
// its own URLs).
type Config struct {
	// ID is the IdP id (logs, errors).
	ID string
	// ClientID and ClientSecret are the OAuth app's credentials.
	ClientID, ClientSecret string
	// Scopes requested; default read:user and user:email (the emails API
	// needs user:email).
	Scopes []string
	// AuthURL, TokenURL and APIURL override github.com (tests, GHES).
	AuthURL, TokenURL, APIURL string
	// HTTPClient makes the back-channel calls; nil means one with Timeout.
	HTTPClient *http.Client
	// Timeout bounds each call; default DefaultTimeout.
	Timeout time.Duration
	// Logger receives diagnostics; nil means slog.Default().
	Logger *slog.Logger
}

// Connector is a providers.Connector for GitHub. Safe for concurrent use.
type Connector struct {
	cfg    Config
	client *http.Client
}

// The connector offers none of the optional capabilities (providers.As):
// OAuth 2.0 has no logout or session protocol to speak.
var _ providers.Connector = (*Connector)(nil)

// New checks cfg and returns a connector; it makes no network call.
func New(cfg Config) (*Connector, error) {
	if cfg.ID == "" || cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, fmt.Errorf("%w: id, client_id and client_secret are required", ErrConfig)
	}
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&cfg.AuthURL, DefaultAuthURL)
	def(&cfg.TokenURL, DefaultTokenURL)
	def(&cfg.APIURL, DefaultAPIURL)
	cfg.APIURL = strings.TrimSuffix(cfg.APIURL, "/")
	for _, u := range []string{cfg.AuthURL, cfg.TokenURL, cfg.APIURL} {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			return nil, fmt.Errorf("%w: %q is not an absolute URL", ErrConfig, u)
		}
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{"read:user", "user:email"}
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

func (c *Connector) oauth(redirect string) *oauth2.Config {
	return &oauth2.Config{ClientID: c.cfg.ClientID, ClientSecret: c.cfg.ClientSecret, RedirectURL: redirect, Scopes: c.cfg.Scopes,
		Endpoint: oauth2.Endpoint{AuthURL: c.cfg.AuthURL, TokenURL: c.cfg.TokenURL, AuthStyle: oauth2.AuthStyleInParams}}
}

// LoginURL returns GitHub's authorization URL with state and a PKCE S256
// challenge (RFC 7636 §4.3).
func (c *Connector) LoginURL(_ context.Context, req providers.LoginRequest) (string, []byte, error) {
	opts := []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("code_challenge", s256(req.CodeVerifier)),
		oauth2.SetAuthURLParam("code_challenge_method", "S256")}
	if req.LoginHint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login", req.LoginHint))
	}
	if req.ForceLogin {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "select_account"))
	}
	return c.oauth(req.CallbackURL).AuthCodeURL(req.State, opts...), nil, nil
}

func s256(v string) string {
	h := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// user is GitHub's GET /user answer (the fields used).
type user struct {
	ID        int64   `json:"id"`
	Login     string  `json:"login"`
	Name      *string `json:"name"`
	Email     *string `json:"email"`
	AvatarURL string  `json:"avatar_url"`
	HTMLURL   string  `json:"html_url"`
	Company   *string `json:"company"`
}

// email is one entry of GET /user/emails.
type email struct {
	Email    string `json:"email"`
	Primary  bool   `json:"primary"`
	Verified bool   `json:"verified"`
}

// HandleCallback exchanges the code (with the PKCE verifier) and reads the
// user and their verified emails.
func (c *Connector) HandleCallback(ctx context.Context, req providers.LoginRequest, _ []byte, r *http.Request) (providers.Identity, error) {
	q := r.URL.Query()
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			return providers.Identity{}, fmt.Errorf("github: idp %s: %w: unreadable form", c.cfg.ID, providers.ErrInvalidResponse)
		}
		q = r.Form
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(req.State)) != 1 || req.State == "" {
		return providers.Identity{}, fmt.Errorf("github: idp %s: %w: state mismatch", c.cfg.ID, providers.ErrInvalidResponse)
	}
	if e := q.Get("error"); e != "" {
		base := providers.ErrInvalidResponse
		if e == "access_denied" {
			base = providers.ErrAccessDenied
		}
		return providers.Identity{}, fmt.Errorf("github: idp %s: %w: upstream error %q", c.cfg.ID, base, clip(e))
	}
	code := q.Get("code")
	if code == "" {
		return providers.Identity{}, fmt.Errorf("github: idp %s: %w: no code", c.cfg.ID, providers.ErrInvalidResponse)
	}
	ctx, cancel := context.WithTimeout(context.WithValue(ctx, oauth2.HTTPClient, c.client), c.cfg.Timeout)
	defer cancel()
	// GitHub answers a bad code with 200 and {"error": "bad_verification_code"}:
	// x/oauth2 reports the missing access_token.
	tok, err := c.oauth(req.CallbackURL).Exchange(ctx, code, oauth2.VerifierOption(req.CodeVerifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode >= 500 {
			return providers.Identity{}, fmt.Errorf("github: idp %s: %w: token: %v", c.cfg.ID, providers.ErrUnavailable, err)
		}
		var ue *url.Error
		if !errors.As(err, &re) && (errors.As(err, &ue) || ctx.Err() != nil) {
			return providers.Identity{}, fmt.Errorf("github: idp %s: %w: token: %v", c.cfg.ID, providers.ErrUnavailable, err)
		}
		return providers.Identity{}, fmt.Errorf("github: idp %s: %w: token: %v", c.cfg.ID, providers.ErrInvalidResponse, err)
	}
	var u user
	if err := c.api(ctx, tok.AccessToken, "/user", &u); errors.Is(err, errForbidden) {
		return providers.Identity{}, fmt.Errorf("github: idp %s: %w: %w", c.cfg.ID, providers.ErrInvalidResponse, err)
	} else if err != nil {
		return providers.Identity{}, err
	}
	if u.ID <= 0 || u.Login == "" {
		return providers.Identity{}, fmt.Errorf("github: idp %s: %w: /user without id or login", c.cfg.ID, providers.ErrInvalidResponse)
	}
	var emails []email
	if err := c.api(ctx, tok.AccessToken, "/user/emails", &emails); err != nil {
		if !errors.Is(err, errForbidden) {
			return providers.Identity{}, err
		}
		// Without the user:email scope there is no verified email; sign in without one.
		c.cfg.Logger.Warn("github emails API refused; no verified email", "idp", c.cfg.ID)
	}
	id := providers.Identity{Issuer: Issuer, Subject: strconv.FormatInt(u.ID, 10), PreferredUsername: u.Login,
		Claims: map[string]any{"id": u.ID, "login": u.Login, "avatar_url": u.AvatarURL, "html_url": u.HTMLURL}}
	if u.Name != nil {
		id.Name = *u.Name
		id.Claims["name"] = *u.Name
	}
	if u.Company != nil {
		id.Claims["company"] = *u.Company
	}
	var verified []any
	for _, e := range emails {
		if !e.Verified || e.Email == "" {
			continue
		}
		verified = append(verified, e.Email)
		if e.Primary || id.Email == "" {
			id.Email = e.Email
		}
	}
	id.EmailVerified = id.Email != ""
	id.Claims["emails"] = verified
	if id.Email != "" {
		id.Claims["email"] = id.Email
	}
	return id, nil
}

var errForbidden = errors.New("github: forbidden")

// api GETs a REST API path (GitHub REST API, version 2022-11-28).
func (c *Connector) api(ctx context.Context, token, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.APIURL+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("github: idp %s: %w: GET %s: %v", c.cfg.ID, providers.ErrUnavailable, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIBody))
	if err != nil {
		return fmt.Errorf("github: idp %s: %w: GET %s: %v", c.cfg.ID, providers.ErrUnavailable, path, err)
	}
	switch {
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return fmt.Errorf("github: idp %s: %w: GET %s: status %d", c.cfg.ID, providers.ErrUnavailable, path, resp.StatusCode)
	case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%w: GET %s: status %d", errForbidden, path, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("github: idp %s: %w: GET %s: status %d", c.cfg.ID, providers.ErrInvalidResponse, path, resp.StatusCode)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("github: idp %s: %w: GET %s: %v", c.cfg.ID, providers.ErrInvalidResponse, path, err)
	}
	return nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}
