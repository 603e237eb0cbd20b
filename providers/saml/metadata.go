package saml

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/beevik/etree"
	crewjam "github.com/crewjam/saml"

	"github.com/realmgate/realmgate/providers"
)

// maxMetadataBytes bounds an IdP metadata document (AD FS publishes ~60 KiB).
const maxMetadataBytes = 2 << 20

// idpMetadata is the parsed IdP metadata the connector uses.
type idpMetadata struct {
	entity      *crewjam.EntityDescriptor
	ssoRedirect string
	ssoPost     string
	wantsSigned bool
	// expires is the earliest validUntil of the EntityDescriptor and of the
	// EntitiesDescriptor around it, zero if none: the copy is not used from
	// then on (SAML Metadata §2.3.1, §2.3.2).
	expires time.Time
	// cacheFor is the shortest cacheDuration of the two, zero if none: how
	// long the copy may be used before it is fetched again. Past it the copy
	// is still used (until expires) while a fetch replaces it.
	cacheFor time.Duration
	fetched  time.Time
}

// usable reports whether md is a copy that may be used at now: present and
// not past its validUntil.
func (md *idpMetadata) usable(now time.Time) bool {
	return md != nil && (md.expires.IsZero() || now.Before(md.expires))
}

// ErrMetadataExpired means IdP metadata is past its validUntil (SAML
// Metadata §2.3.1, §2.3.2): it is refused when fetched or configured, and a
// copy that expires is no longer used.
var ErrMetadataExpired = errors.New("saml: idp metadata expired")

const (
	// metadataRetry is how long a failed fetch waits before the next one
	// while a usable copy is kept.
	metadataRetry = 5 * time.Minute
	// metadataColdRetry is how long a failed fetch waits before the next
	// one when there is no usable copy: requests meanwhile fail at once as
	// unavailable instead of each fetching again.
	metadataColdRetry = 30 * time.Second
)

// metadataSource holds the IdP metadata: parsed once when inline, fetched
// and refreshed when from a URL. It keeps the last good copy; at most one
// fetch is in flight at a time, and a request never waits on a fetch while
// a usable copy exists (stale-while-revalidate). So requests, however many
// and from whomever, make at most one fetch per refresh interval, or per
// retry interval after a failure.
type metadataSource struct {
	id, url, pin string
	client       *http.Client
	every        time.Duration
	now          func() time.Time
	log          *slog.Logger

	mu       sync.Mutex
	cur      *idpMetadata   // the last good copy; nil before the first
	inflight *metadataCall  // the fetch in flight, nil if none
	failedAt time.Time      // when the last fetch failed; zero after a success
	lastErr  error          // why it failed
	bg       sync.WaitGroup // fetches in flight (tests wait on it)
}

// metadataCall is one metadata fetch, shared by every request that waits
// on it.
type metadataCall struct {
	done chan struct{}
	md   *idpMetadata
	err  error
}

func newMetadataSource(cfg Config, now func() time.Time, log *slog.Logger) (*metadataSource, error) {
	s := &metadataSource{id: cfg.ID, url: cfg.IdPMetadataURL, pin: cfg.IdPEntityID, client: cfg.HTTPClient,
		every: cfg.RefreshInterval, now: now, log: log}
	switch {
	case len(cfg.IdPMetadata) > 0 && cfg.IdPMetadataURL != "":
		return nil, fmt.Errorf("%w: idp %s: give IdP metadata inline or by URL, not both", ErrConfig, cfg.ID)
	case len(cfg.IdPMetadata) > 0:
		md, err := parseIdPMetadata(cfg.IdPMetadata, cfg.IdPEntityID, now())
		if err != nil {
			return nil, fmt.Errorf("%w: idp %s: %w", ErrConfig, cfg.ID, err)
		}
		s.cur = md
	case cfg.IdPMetadataURL != "":
		if _, err := absURL(cfg.IdPMetadataURL); err != nil {
			return nil, fmt.Errorf("%w: idp %s: metadata url: %v", ErrConfig, cfg.ID, err)
		}
	default:
		return nil, fmt.Errorf("%w: idp %s: IdP metadata is required", ErrConfig, cfg.ID)
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: DefaultTimeout}
	}
	if s.every <= 0 {
		s.every = DefaultRefreshInterval
	}
	return s, nil
}

// refreshAt is when a copy is fetched again: after the refresh interval or
// its cacheDuration, whichever is shorter, and at the latest halfway to its
// validUntil, so a working IdP replaces a copy well before it expires.
func (s *metadataSource) refreshAt(md *idpMetadata) time.Time {
	at := md.fetched.Add(s.every)
	if md.cacheFor > 0 {
		if t := md.fetched.Add(md.cacheFor); t.Before(at) {
			at = t
		}
	}
	if !md.expires.IsZero() {
		if t := md.fetched.Add(md.expires.Sub(md.fetched) / 2); t.Before(at) {
			at = t
		}
	}
	return at
}

// get returns the metadata to use now. A usable copy (not past its
// validUntil) is returned at once; when it is due for a refresh, one fetch
// starts in the background and the copy stays in use until a good one
// replaces it. Without a usable copy the request waits for the one fetch in
// flight, or starts it; after a failed fetch, requests within
// metadataColdRetry fail at once without fetching. Every failure is
// providers.ErrUnavailable.
func (s *metadataSource) get(ctx context.Context) (*idpMetadata, error) {
	s.mu.Lock()
	now := s.now()
	cur := s.cur
	if s.url == "" {
		s.mu.Unlock()
		if !cur.usable(now) {
			return nil, fmt.Errorf("saml: idp %s: metadata: %w: %w: validUntil %s has passed; configure current metadata",
				s.id, providers.ErrUnavailable, ErrMetadataExpired, cur.expires.UTC().Format(time.RFC3339))
		}
		return cur, nil
	}
	if cur.usable(now) {
		if !now.Before(s.refreshAt(cur)) && s.inflight == nil && (s.failedAt.IsZero() || now.Sub(s.failedAt) >= metadataRetry) {
			s.start()
		}
		s.mu.Unlock()
		return cur, nil
	}
	call := s.inflight
	if call == nil {
		if since := now.Sub(s.failedAt); !s.failedAt.IsZero() && since >= 0 && since < metadataColdRetry {
			err := s.lastErr
			s.mu.Unlock()
			return nil, fmt.Errorf("saml: idp %s: metadata: %w: %w (not fetched again before %s)",
				s.id, providers.ErrUnavailable, err, s.failedAt.Add(metadataColdRetry).UTC().Format(time.RFC3339))
		}
		call = s.start()
	}
	s.mu.Unlock()
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("saml: idp %s: metadata: %w: %w", s.id, providers.ErrUnavailable, ctx.Err())
	case <-call.done:
	}
	if call.err != nil {
		return nil, fmt.Errorf("saml: idp %s: metadata: %w: %w", s.id, providers.ErrUnavailable, call.err)
	}
	return call.md, nil
}

// start begins a fetch outside any request, bounded by the client timeout;
// s.mu is held and no fetch is in flight. A failed fetch, or one that
// returns metadata that is invalid or expired, keeps the current copy.
func (s *metadataSource) start() *metadataCall {
	call := &metadataCall{done: make(chan struct{})}
	s.inflight = call
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		timeout := s.client.Timeout
		if timeout <= 0 {
			timeout = DefaultTimeout
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		md, err := s.fetch(ctx)
		s.mu.Lock()
		s.inflight = nil
		if err != nil {
			s.failedAt, s.lastErr = s.now(), err
			if s.cur.usable(s.now()) {
				s.log.Warn("saml metadata refresh failed; keeping the previous copy", "idp", s.id, "err", err, "retry_in", metadataRetry)
			} else {
				s.log.Warn("saml metadata fetch failed", "idp", s.id, "err", err, "retry_in", metadataColdRetry)
			}
		} else {
			s.cur, s.failedAt, s.lastErr = md, time.Time{}, nil
		}
		s.mu.Unlock()
		call.md, call.err = md, err
		close(call.done)
	}()
	return call
}

// refresh fetches the metadata now (an operator's check); a good copy
// replaces the current one.
func (s *metadataSource) refresh(ctx context.Context) error {
	if s.url == "" {
		return nil
	}
	md, err := s.fetch(ctx)
	if err != nil {
		return fmt.Errorf("saml: idp %s: metadata: %w", s.id, err)
	}
	s.mu.Lock()
	s.cur, s.failedAt, s.lastErr = md, time.Time{}, nil
	s.mu.Unlock()
	return nil
}

func (s *metadataSource) fetch(ctx context.Context) (*idpMetadata, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/samlmetadata+xml, application/xml, text/xml")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", s.url, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxMetadataBytes {
		return nil, fmt.Errorf("GET %s: metadata larger than %d bytes", s.url, maxMetadataBytes)
	}
	return parseIdPMetadata(b, s.pin, s.now())
}

// parseIdPMetadata reads an EntityDescriptor, or picks the entity pin from
// an EntitiesDescriptor (SAML Metadata §2.3), and checks it describes an IdP
// with a signing certificate. Every signing certificate listed is trusted,
// so during a rollover the old and the new one both verify.
func parseIdPMetadata(b []byte, pin string, now time.Time) (*idpMetadata, error) {
	lim := DefaultLimits()
	lim.MaxBytes, lim.MaxElements, lim.lenient = maxMetadataBytes, 20000, true
	if err := scanXML(b, lim); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(b); err != nil || doc.Root() == nil {
		return nil, fmt.Errorf("metadata: not XML: %v", err)
	}
	var ed *crewjam.EntityDescriptor
	var outerUntil time.Time     // the EntitiesDescriptor's validUntil
	var outerCache time.Duration // and cacheDuration
	switch doc.Root().Tag {
	case "EntityDescriptor":
		ed = new(crewjam.EntityDescriptor)
		if err := xml.Unmarshal(b, ed); err != nil {
			return nil, fmt.Errorf("metadata: %w", err)
		}
	case "EntitiesDescriptor":
		var eds crewjam.EntitiesDescriptor
		if err := xml.Unmarshal(b, &eds); err != nil {
			return nil, fmt.Errorf("metadata: %w", err)
		}
		if pin == "" {
			return nil, errors.New("metadata: an EntitiesDescriptor needs entity_id to pick the IdP")
		}
		if eds.ValidUntil != nil {
			outerUntil = *eds.ValidUntil
		}
		if eds.CacheDuration != nil {
			outerCache = *eds.CacheDuration
		}
		for i := range eds.EntityDescriptors {
			if eds.EntityDescriptors[i].EntityID == pin {
				ed = &eds.EntityDescriptors[i]
			}
		}
		if ed == nil {
			return nil, fmt.Errorf("metadata: no entity %q", pin)
		}
	default:
		return nil, fmt.Errorf("metadata: root element %s is not an EntityDescriptor", doc.Root().Tag)
	}
	if ed.EntityID == "" {
		return nil, errors.New("metadata: no entityID")
	}
	if pin != "" && ed.EntityID != pin {
		return nil, fmt.Errorf("metadata: entityID %q is not the configured %q", ed.EntityID, pin)
	}
	if len(ed.IDPSSODescriptors) == 0 {
		return nil, errors.New("metadata: no IDPSSODescriptor")
	}
	md := &idpMetadata{entity: ed, fetched: now}
	certs := 0
	for _, d := range ed.IDPSSODescriptors {
		if d.WantAuthnRequestsSigned != nil && *d.WantAuthnRequestsSigned {
			md.wantsSigned = true
		}
		for _, s := range d.SingleSignOnServices {
			switch {
			case s.Binding == BindingRedirect && md.ssoRedirect == "":
				md.ssoRedirect = s.Location
			case s.Binding == BindingPOST && md.ssoPost == "":
				md.ssoPost = s.Location
			}
		}
		for _, k := range d.KeyDescriptors {
			if k.Use == "" || k.Use == "signing" {
				certs += len(k.KeyInfo.X509Data.X509Certificates)
			}
		}
	}
	if certs == 0 {
		return nil, errors.New("metadata: no signing certificate")
	}
	// SAML Metadata §2.3.1, §2.3.2: validUntil ends the validity of the
	// element and of everything in it; cacheDuration bounds how long a
	// consumer caches it. The earliest of each applies.
	for _, t := range []time.Time{ed.ValidUntil, outerUntil} {
		if !t.IsZero() && (md.expires.IsZero() || t.Before(md.expires)) {
			md.expires = t
		}
	}
	for _, d := range []time.Duration{ed.CacheDuration, outerCache} {
		if d > 0 && (md.cacheFor == 0 || d < md.cacheFor) {
			md.cacheFor = d
		}
	}
	if !md.expires.IsZero() && !now.Before(md.expires) {
		return nil, fmt.Errorf("metadata: %w: validUntil %s is not after now (%s)", ErrMetadataExpired,
			md.expires.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return md, nil
}
