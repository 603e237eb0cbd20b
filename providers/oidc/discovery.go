package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"

	"github.com/realmgate/realmgate/providers"
)

// maxBody bounds every back-channel response body read by the connector.
const maxBody = 1 << 20

// asymmetricAlgs are the ID token algorithms the connector may accept:
// go-oidc's asymmetric set. none and HS* are never accepted (S30).
var asymmetricAlgs = []string{
	gooidc.RS256, gooidc.RS384, gooidc.RS512,
	gooidc.ES256, gooidc.ES384, gooidc.ES512,
	gooidc.PS256, gooidc.PS384, gooidc.PS512,
	gooidc.EdDSA,
}

// metadata is the subset of the OP's discovery document the connector uses
// (OpenID Connect Discovery 1.0 §3, RFC 9207 §3).
type metadata struct {
	Issuer                 string   `json:"issuer"`
	AuthorizationEndpoint  string   `json:"authorization_endpoint"`
	TokenEndpoint          string   `json:"token_endpoint"`
	UserinfoEndpoint       string   `json:"userinfo_endpoint"`
	JWKSURI                string   `json:"jwks_uri"`
	EndSessionEndpoint     string   `json:"end_session_endpoint"`
	SigningAlgs            []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMeths []string `json:"token_endpoint_auth_methods_supported"`
	// RFC 9207 §3: the OP sends iss in every authorization response.
	IssParameterSupported bool `json:"authorization_response_iss_parameter_supported"`

	algs []string // allowed ID token algorithms
	keys *keySet
}

// discoveryCall is one in-flight discovery shared by concurrent logins.
type discoveryCall struct {
	done chan struct{}
	md   *metadata
	err  error
}

// discover returns the cached provider metadata, fetching it when it is not
// cached yet. A failed fetch is not cached: the next login tries again.
// Concurrent callers share one fetch; each waits at most until its ctx ends.
func (c *Connector) discover(ctx context.Context) (*metadata, error) {
	c.mu.Lock()
	if c.meta != nil {
		md := c.meta
		c.mu.Unlock()
		return md, nil
	}
	call := c.inflight
	if call == nil {
		call = &discoveryCall{done: make(chan struct{})}
		c.inflight = call
		// The fetch must not die with the first caller's request, but is
		// bounded by the connector timeout.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
		go func() {
			defer cancel()
			md, err := c.fetchMetadata(fctx)
			c.mu.Lock()
			if err == nil {
				c.meta = md
			}
			c.inflight = nil
			c.mu.Unlock()
			if err != nil {
				c.log.Warn("oidc discovery failed", "issuer", c.issuer, "err", err)
			}
			call.md, call.err = md, err
			close(call.done)
		}()
	}
	c.mu.Unlock()
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: oidc: idp %q: discovery: %w", providers.ErrUnavailable, c.id, ctx.Err())
	case <-call.done:
		return call.md, call.err
	}
}

// discoveryURL returns where the discovery document is fetched and the
// issuer it must state (OpenID Connect Discovery 1.0 §4).
func (c *Connector) discoveryURL() (docURL, wantIssuer string) {
	base := c.issuer
	if c.multiTenant {
		form := "organizations"
		if c.commonEndpoint() {
			form = "common"
		}
		base = c.tenantIssuer(form)
	}
	return strings.TrimSuffix(base, "/") + "/.well-known/openid-configuration", c.issuer
}

// fetchMetadata fetches and validates the discovery document.
func (c *Connector) fetchMetadata(ctx context.Context) (*metadata, error) {
	docURL, wantIssuer := c.discoveryURL()
	body, err := c.get(ctx, docURL, "", "discovery")
	if err != nil {
		return nil, err
	}
	var md metadata
	if err := json.Unmarshal(body, &md); err != nil {
		return nil, fmt.Errorf("%w: oidc: idp %q: discovery document is not json: %v", providers.ErrInvalidResponse, c.id, err)
	}
	// S23 / OpenID Connect Discovery 1.0 §4.3: the issuer in the document must
	// be identical to the configured one (for a multi-tenant connector: the
	// template itself).
	if md.Issuer != wantIssuer {
		return nil, fmt.Errorf("%w: oidc: idp %q: discovery issuer %q differs from configured issuer %q",
			providers.ErrInvalidResponse, c.id, md.Issuer, wantIssuer)
	}
	for name, v := range map[string]string{
		"authorization_endpoint": md.AuthorizationEndpoint,
		"token_endpoint":         md.TokenEndpoint,
		"jwks_uri":               md.JWKSURI,
	} {
		if !endpointOK(v) {
			return nil, fmt.Errorf("%w: oidc: idp %q: discovery %s %q is missing or not https",
				providers.ErrInvalidResponse, c.id, name, v)
		}
	}
	if md.EndSessionEndpoint != "" && !endpointOK(md.EndSessionEndpoint) {
		md.EndSessionEndpoint = "" // not usable: upstream logout is skipped
	}
	if md.UserinfoEndpoint != "" && !endpointOK(md.UserinfoEndpoint) {
		return nil, fmt.Errorf("%w: oidc: idp %q: discovery userinfo_endpoint %q is not https",
			providers.ErrInvalidResponse, c.id, md.UserinfoEndpoint)
	}
	// S30: the allow-list is what the OP advertises minus none and HS*;
	// RS256 (the mandatory algorithm) when it advertises nothing.
	for _, a := range md.SigningAlgs {
		if slices.Contains(asymmetricAlgs, a) && !slices.Contains(md.algs, a) {
			md.algs = append(md.algs, a)
		}
	}
	if len(md.SigningAlgs) == 0 {
		md.algs = []string{gooidc.RS256}
	}
	if len(md.algs) == 0 {
		return nil, fmt.Errorf("%w: oidc: idp %q: discovery offers no acceptable id token algorithm %q",
			providers.ErrInvalidResponse, c.id, md.SigningAlgs)
	}
	md.keys = newKeySet(md.JWKSURI, c.client, c.timeout, md.algs, func() time.Time { return c.now() })
	return &md, nil
}

// endpointOK reports whether s is an absolute https (or loopback http) URL.
func endpointOK(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.IsAbs() && u.Host != "" && secureURL(u)
}

// get performs a GET on the back channel, bounded by the connector timeout,
// and returns the body of a 200 answer. Transport failures, timeouts, 429 and
// 5xx map to providers.ErrUnavailable; other statuses to ErrInvalidResponse.
func (c *Connector) get(ctx context.Context, target, bearer, what string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: oidc: idp %q: %s request: %v", providers.ErrInvalidResponse, c.id, what, err)
	}
	req.Header.Set("Accept", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer) // RFC 6750 §2.1
	}
	body, _, err := c.do(req, what)
	return body, err
}

// do sends req and reads a bounded body, classifying failures.
func (c *Connector) do(req *http.Request, what string) ([]byte, *http.Response, error) {
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: oidc: idp %q: %s: %w", providers.ErrUnavailable, c.id, what, err)
	}
	defer resp.Body.Close()
	body, err := readBody(resp.Body, resp.ContentLength)
	if err != nil {
		return nil, resp, fmt.Errorf("%w: oidc: idp %q: %s: reading body: %w", providers.ErrUnavailable, c.id, what, err)
	}
	if len(body) > maxBody {
		return nil, resp, fmt.Errorf("%w: oidc: idp %q: %s: response larger than %d bytes", providers.ErrInvalidResponse, c.id, what, maxBody)
	}
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		return body, resp, fmt.Errorf("%w: oidc: idp %q: %s: http status %d", providers.ErrUnavailable, c.id, what, resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK {
		return body, resp, fmt.Errorf("%w: oidc: idp %q: %s: http status %d", providers.ErrInvalidResponse, c.id, what, resp.StatusCode)
	}
	return body, resp, nil
}

// readBody reads at most maxBody+1 bytes of r. A stated length (the
// Content-Length, -1 when unknown) sizes the buffer at once: io.ReadAll
// starts at 512 bytes and grew through three buffers for a token response.
// The length is only a hint: a body longer than it is still read (up to
// the bound) and a shorter one ends where it ends.
func readBody(r io.Reader, length int64) ([]byte, error) {
	if length < 0 || length > maxBody {
		return io.ReadAll(io.LimitReader(r, maxBody+1))
	}
	// One byte more, so a body that is as long as stated ends in a read
	// of EOF without a copy to a larger buffer.
	b := make([]byte, 0, length+1)
	lr := io.LimitReader(r, maxBody+1)
	for {
		n, err := lr.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // grow: a body longer than its stated length
		}
	}
}

// isUnavailable reports whether err is an ErrUnavailable (helper for tests
// and for classification of wrapped errors).
func isUnavailable(err error) bool { return errors.Is(err, providers.ErrUnavailable) }
