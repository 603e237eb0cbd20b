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
	expires     time.Time // validUntil / cacheDuration, zero if none
	fetched     time.Time
}

// metadataRetry is how long a failed background refresh waits before the
// next attempt.
const metadataRetry = 5 * time.Minute

// metadataSource holds the IdP metadata: parsed once when inline, fetched
// and refreshed when from a URL.
type metadataSource struct {
	id, url, pin string
	client       *http.Client
	every        time.Duration
	now          func() time.Time
	log          *slog.Logger

	mu         sync.Mutex
	cur        *idpMetadata
	refreshing bool      // a background refresh is running
	failedAt   time.Time // when the last background refresh failed
	bg         sync.WaitGroup
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

// get returns current metadata. Absent or expired metadata (validUntil /
// cacheDuration) is fetched now, one fetch at a time, and a failure is
// ErrUnavailable. Metadata older than the refresh interval is served while a
// background fetch replaces it, so no login waits on the IdP's metadata host;
// a failed background fetch keeps the current copy and is tried again after
// metadataRetry.
func (s *metadataSource) get(ctx context.Context) (*idpMetadata, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	cur := s.cur
	if s.url == "" {
		return cur, nil
	}
	expired := cur == nil || (!cur.expires.IsZero() && !now.Before(cur.expires))
	if !expired {
		if now.Sub(cur.fetched) >= s.every && !s.refreshing && now.Sub(s.failedAt) >= metadataRetry {
			s.refreshing = true
			s.bg.Add(1)
			go s.background()
		}
		return cur, nil
	}
	md, err := s.fetch(ctx)
	if err != nil {
		return nil, fmt.Errorf("saml: idp %s: metadata: %w: %w", s.id, providers.ErrUnavailable, err)
	}
	s.cur = md
	return md, nil
}

// background refreshes the metadata outside any request, bounded by the
// client timeout.
func (s *metadataSource) background() {
	defer s.bg.Done()
	timeout := s.client.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	md, err := s.fetch(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshing = false
	if err != nil {
		s.failedAt = s.now()
		s.log.Warn("saml metadata refresh failed; keeping the previous copy", "idp", s.id, "err", err, "retry_in", metadataRetry)
		return
	}
	s.cur, s.failedAt = md, time.Time{}
}

// refresh fetches the metadata now.
func (s *metadataSource) refresh(ctx context.Context) error {
	if s.url == "" {
		return nil
	}
	md, err := s.fetch(ctx)
	if err != nil {
		return fmt.Errorf("saml: idp %s: metadata: %w", s.id, err)
	}
	s.mu.Lock()
	s.cur = md
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
	if !ed.ValidUntil.IsZero() {
		md.expires = ed.ValidUntil
	}
	if ed.CacheDuration > 0 {
		if e := now.Add(ed.CacheDuration); md.expires.IsZero() || e.Before(md.expires) {
			md.expires = e
		}
	}
	return md, nil
}
