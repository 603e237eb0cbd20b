package broker

// This file holds the brands of pages (package ui, docs/branding.md):
// which brand a page shows (the client's over the tenant's over none),
// the logos behind them (fetched once when a configuration is applied,
// sanitized by package branding, stored in its record set) and the route
// that serves them.

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/branding"
	"github.com/realmgate/realmgate/internal/outbound"
	"github.com/realmgate/realmgate/store"
	"github.com/realmgate/realmgate/ui"
)

// Branding is how a tenant's or a client's pages look (config.Branding,
// validated by the configuration).
type Branding struct {
	// DisplayName is the name shown and the logo's alternative text;
	// empty: the tenant's name or the client's name.
	DisplayName string
	// Logo is the hash of an uploaded logo (branding.Hash); it wins over
	// LogoURL.
	Logo string
	// LogoURL is fetched once, when the configuration is applied, through
	// Config.HTTPClient (the outbound policy, S70).
	LogoURL string
	// PrimaryColor and AccentColor are "#rrggbb" (buttons, links).
	PrimaryColor, AccentColor string
	// SupportURL is the support link: https or mailto.
	SupportURL string
}

// logoLoadTimeout bounds reading logos from the store.
const logoLoadTimeout = 5 * time.Second

// logoCache holds the logos the current directory's brands show.
type logoCache struct {
	mu    sync.Mutex
	byURL map[string]string // logo_url -> hash, fetched once per process
	png   map[string][]byte // hash -> sanitized PNG
	// inUse are the hashes the directory's brands name: only they are
	// served, so a request for any other name never reaches the store.
	inUse map[string]bool
	wg    sync.WaitGroup // fetches in flight
}

// pageClientKey holds, in the echo context, the client a page is for.
const pageClientKey = "rg.page.client"

// setPageClient says which client the pages of this request are for: its
// brand wins over its tenant's.
func setPageClient(c echo.Context, client string) { c.Set(pageClientKey, client) }

// pageBrand is the brand of the pages of this request.
func (s *Server) pageBrand(c echo.Context) ui.Brand {
	t, _ := c.Get(pageTenantKey).(string)
	cl, _ := c.Get(pageClientKey).(string)
	return s.Brand(t, cl)
}

// Brand is the look of a page for tenant and client (either may be
// empty): the client's branding when it has one, else the tenant's, else
// realmgate's own (the zero Brand). The setup portal shows it too.
func (s *Server) Brand(tenant, client string) ui.Brand {
	d := s.dir()
	if cl, ok := d.clients[client]; ok && cl.Branding != nil {
		name := cl.Name
		if name == "" {
			name = cl.ID
		}
		return s.brand(cl.Branding, name)
	}
	if pol, ok := d.policies[tenant]; ok && pol.Branding != nil {
		t, _ := d.resolver.Tenant(tenant)
		return s.brand(pol.Branding, t.Name)
	}
	return ui.Brand{}
}

// brand is b as a page shows it; name is the default display name.
func (s *Server) brand(b *Branding, name string) ui.Brand {
	out := ui.Brand{Name: b.DisplayName, PrimaryColor: b.PrimaryColor, AccentColor: b.AccentColor, SupportURL: b.SupportURL}
	if out.Name == "" {
		out.Name = name
	}
	hash := b.Logo
	if hash == "" && b.LogoURL != "" {
		s.logos.mu.Lock()
		hash = s.logos.byURL[b.LogoURL] // empty until fetched
		s.logos.mu.Unlock()
	}
	if hash != "" {
		out.Logo = s.path(branding.Path(hash))
	}
	return out
}

// brandings lists the brandings of d's tenants (all when tenants is nil)
// and, with clients set, of its clients.
func brandings(d *directory, tenants []string, clients bool) []*Branding {
	var out []*Branding
	if tenants == nil {
		for _, p := range d.policies {
			if p.Branding != nil {
				out = append(out, p.Branding)
			}
		}
	}
	for _, t := range tenants {
		if p, ok := d.policies[t]; ok && p.Branding != nil {
			out = append(out, p.Branding)
		}
	}
	if clients {
		for _, c := range d.clients {
			if c.Branding != nil {
				out = append(out, c.Branding)
			}
		}
	}
	return out
}

// prepareLogos makes the logos that list's brandings name ready, in the
// background: each logo_url not fetched before is fetched once, sanitized
// and stored (a failure is logged, and the pages show the name instead);
// uploaded logos are read from the store. Pages never wait for it. With
// replace, list is every branding of the directory and only its logos
// are served from now on; without, list adds to those served (a change of
// some tenants: a logo it stopped naming is served until the next whole
// reconfiguration, which is harmless).
func (s *Server) prepareLogos(list []*Branding, replace bool) {
	var fetch []string
	s.logos.mu.Lock()
	if s.logos.byURL == nil {
		s.logos.byURL, s.logos.png = map[string]string{}, map[string][]byte{}
	}
	inUse := s.logos.inUse
	if replace || inUse == nil {
		inUse = map[string]bool{}
	}
	var missing map[string]bool
	for _, b := range list {
		h := b.Logo
		if h == "" && b.LogoURL != "" {
			var ok bool
			if h, ok = s.logos.byURL[b.LogoURL]; !ok {
				fetch = append(fetch, b.LogoURL)
				s.logos.byURL[b.LogoURL] = "" // fetched once, even while in flight
				continue
			}
		}
		if h == "" {
			continue
		}
		inUse[h] = true
		if s.logos.png[h] == nil {
			if missing == nil {
				missing = map[string]bool{}
			}
			missing[h] = true
		}
	}
	s.logos.inUse = inUse
	if replace {
		for h := range s.logos.png {
			if !inUse[h] {
				delete(s.logos.png, h) // no longer named: not kept in memory
			}
		}
		for u, h := range s.logos.byURL {
			if h != "" && !inUse[h] {
				delete(s.logos.byURL, u) // fetched again if named again
			}
		}
	}
	s.logos.mu.Unlock()
	for _, u := range fetch {
		s.logos.wg.Add(1)
		go func() {
			defer s.logos.wg.Done()
			s.fetchLogo(u)
		}()
	}
	if len(missing) > 0 {
		s.logos.wg.Add(1)
		go func() {
			defer s.logos.wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), logoLoadTimeout)
			defer cancel()
			s.loadLogos(ctx, missing)
		}()
	}
}

// fetchLogo fetches, sanitizes and stores the logo at u.
func (s *Server) fetchLogo(u string) {
	hc := s.cfg.HTTPClient
	if hc == nil {
		hc = outbound.New(outbound.Policy{Timeout: branding.FetchTimeout, MaxBodyBytes: branding.MaxLogoBytes + 1})
	}
	ctx, cancel := context.WithTimeout(context.Background(), branding.FetchTimeout+logoLoadTimeout)
	defer cancel()
	png, err := branding.Fetch(ctx, hc, u)
	if err != nil {
		// The error names an address class or a format, never the body.
		s.log.Warn("branding: logo_url not shown", "url", u, "err", err)
		s.logos.mu.Lock()
		delete(s.logos.byURL, u) // the next configuration applied tries again
		s.logos.mu.Unlock()
		return
	}
	h := branding.Hash(png)
	if rs, ok := s.store.(store.RecordStore); ok {
		if _, err := branding.Save(ctx, rs, png); err != nil {
			s.log.Warn("branding: logo not stored (served by this instance only)", "url", u, "err", err)
		}
	}
	s.logos.mu.Lock()
	s.logos.png[h] = png
	s.logos.byURL[u] = h
	if s.logos.inUse != nil {
		s.logos.inUse[h] = true
	}
	s.logos.mu.Unlock()
}

// LogosInUse lists the stored logos this instance fetched from a current
// logo_url: no branding names them by hash, so the admin API's sweep of
// unnamed logos (admin.Options.LogosInUse) learns of them here.
func (s *Server) LogosInUse() []string {
	s.logos.mu.Lock()
	defer s.logos.mu.Unlock()
	out := make([]string, 0, len(s.logos.byURL))
	for _, h := range s.logos.byURL {
		if h != "" {
			out = append(out, h)
		}
	}
	return out
}

// loadLogos reads the logos want names from the store into the cache.
func (s *Server) loadLogos(ctx context.Context, want map[string]bool) {
	rs, ok := s.store.(store.RecordStore)
	if !ok {
		return
	}
	got, err := branding.Load(ctx, rs, want)
	if err != nil {
		s.log.Warn("branding: logos not read", "err", err)
	}
	s.logos.mu.Lock()
	for h, png := range got {
		s.logos.png[h] = png
	}
	s.logos.mu.Unlock()
}

// logo serves a stored logo, <issuer>/branding/<hash>.png: a PNG the
// broker encoded itself, named by its hash, so it never changes.
func (s *Server) logo(c echo.Context) error {
	h, ok := strings.CutSuffix(c.Param("file"), ".png")
	if !ok || !branding.ValidHash(h) {
		return echo.ErrNotFound
	}
	s.logos.mu.Lock()
	png, inUse := s.logos.png[h], s.logos.inUse[h]
	s.logos.mu.Unlock()
	if png == nil && inUse {
		// Uploaded through another instance a moment ago.
		ctx, cancel := context.WithTimeout(c.Request().Context(), logoLoadTimeout)
		defer cancel()
		s.loadLogos(ctx, map[string]bool{h: true})
		s.logos.mu.Lock()
		png = s.logos.png[h]
		s.logos.mu.Unlock()
	}
	if png == nil || !inUse {
		return echo.ErrNotFound
	}
	hd := c.Response().Header()
	hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	return c.Blob(http.StatusOK, "image/png", png)
}
