package broker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"
)

// Subject types (OIDC Core §8).
const (
	SubjectPublic   = "public"
	SubjectPairwise = "pairwise"
)

const (
	sectorCacheTTL     = time.Hour
	sectorRetryAfter   = 30 * time.Second
	sectorFetchTimeout = 5 * time.Second
	maxSectorDocument  = 64 << 10
	maxSectorCache     = 1024
)

// errSectorRedirect: the sector_identifier_uri does not list the redirect URI.
var errSectorRedirect = errors.New("broker: the sector identifier document does not list the redirect URI")

// sectorOf is a client's pairwise sector (OIDC Core §8.1): the host of its
// sector_identifier_uri, else the host of its redirect URIs (config checks
// they share one; a private-use scheme without a host is its own sector).
// Empty for a public subject type.
func sectorOf(c Client) string {
	if c.SubjectType != SubjectPairwise {
		return ""
	}
	raw := c.SectorIdentifierURI
	if raw == "" && len(c.RedirectURIs) > 0 {
		raw = c.RedirectURIs[0]
	}
	u, err := url.Parse(raw)
	if err != nil || raw == "" {
		return "client:" + c.ID // never empty: a pairwise client never gets the public sub
	}
	if u.Host == "" {
		return u.Scheme
	}
	return u.Hostname()
}

// subjectFor is the sub client cl receives for the local subject sub: sub
// itself for a public client; for a pairwise one (OIDC Core §8.1)
// base64url(HMAC-SHA256(server secret, sector || 0 || sub)), the same for
// every client of the sector, on every instance sharing the server secret,
// across restarts.
func (s *Server) subjectFor(cl *client, sub string) string {
	if cl == nil || cl.sector == "" || sub == "" {
		return sub
	}
	return base64.RawURLEncoding.EncodeToString(s.keyer.mac("pairwise-sub", cl.sector+"\x00"+sub))
}

// sectorCache holds sector identifier documents fetched per instance.
type sectorCache struct {
	mu      sync.Mutex
	entries map[string]*sectorEntry // by sector_identifier_uri
	client  *http.Client
}

type sectorEntry struct {
	uris    []string
	fetched time.Time // zero: the last fetch failed
	tried   time.Time
}

// checkSector verifies, for a pairwise client with a
// sector_identifier_uri, that the document there lists redirectURI (OIDC
// Registration §5): a JSON array of URIs, fetched through the outbound
// policy (S70) and cached for an hour.
func (s *Server) checkSector(ctx context.Context, cl *client, redirectURI string) error {
	uri := cl.SectorIdentifierURI
	if cl.sector == "" || uri == "" {
		return nil
	}
	j := &s.sectors
	now := s.now()
	j.mu.Lock()
	if j.entries == nil {
		j.entries = map[string]*sectorEntry{}
		j.client = jwksClient(s.cfg.HTTPClient)
	}
	e := j.entries[uri]
	if e != nil && (!e.fetched.IsZero() && now.Sub(e.fetched) < sectorCacheTTL || e.fetched.IsZero() && now.Sub(e.tried) < sectorRetryAfter) {
		uris := e.uris
		j.mu.Unlock()
		return listed(uris, redirectURI, e.fetched.IsZero())
	}
	hc := j.client
	j.mu.Unlock()
	uris, err := fetchSector(ctx, hc, uri)
	j.mu.Lock()
	if len(j.entries) >= maxSectorCache {
		clear(j.entries)
	}
	if err != nil {
		j.entries[uri] = &sectorEntry{tried: now}
	} else {
		j.entries[uri] = &sectorEntry{uris: uris, fetched: now, tried: now}
	}
	j.mu.Unlock()
	if err != nil {
		return err
	}
	return listed(uris, redirectURI, false)
}

func listed(uris []string, redirectURI string, failed bool) error {
	if failed {
		return errors.New("broker: the sector identifier document could not be fetched")
	}
	if !slices.Contains(uris, redirectURI) {
		return errSectorRedirect
	}
	return nil
}

// fetchSector gets a sector identifier document: a JSON array of redirect URIs.
func fetchSector(ctx context.Context, hc *http.Client, uri string) ([]string, error) {
	body, err := fetchDocument(ctx, hc, uri, "application/json", sectorFetchTimeout, maxSectorDocument) // clientauth.go
	if err != nil {
		return nil, fmt.Errorf("broker: sector identifier: %w", err)
	}
	var uris []string
	if err := json.Unmarshal(body, &uris); err != nil {
		return nil, fmt.Errorf("broker: sector identifier: not a JSON array of URIs: %w", err)
	}
	return uris, nil
}
