package admin

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/store"
)

// Setup links (docs/setup-portal.md): a SaaS's operator or the tenant's
// admin creates a one-time, expiring link that lets the customer's IT admin
// configure the tenant's IdP, prove its domains, map groups to roles and
// create a SCIM token in the setup portal (package portal), without an
// admin token. The secret in the link is shown once; the store keeps an
// HMAC of it under a key derived from the server secret (S16, S17).

// Setup link bounds and allow-list entries.
const (
	// DefaultSetupLinkTTL is a link's lifetime when none is asked for;
	// MaxSetupLinkTTL the longest one may ask for.
	DefaultSetupLinkTTL = 7 * 24 * time.Hour
	MaxSetupLinkTTL     = 30 * 24 * time.Hour
	minSetupLinkTTL     = 5 * time.Minute
	// SetupLinkPrefix starts every link secret, so a leaked one is
	// recognizable (secret scanners).
	SetupLinkPrefix = "rgsl_"
	// setupLinkKept is how long a link's record outlives its expiry, so
	// the portal can still say "expired" or "already used" (not "unknown").
	setupLinkKept = 30 * 24 * time.Hour
	// maxSetupLinks bounds the links listed per tenant (the newest kept).
	maxSetupLinks = 200
	// maxSetupNote bounds a link's note.
	maxSetupNote = 500
)

// What a setup link may configure (SetupLink.Allow).
const (
	AllowIdP     = "idp"
	AllowDomains = "domains"
	AllowSCIM    = "scim"
	AllowRoles   = "roles"
)

// SetupAllowAll is every step a setup link may allow, in the portal's order.
var SetupAllowAll = []string{AllowIdP, AllowDomains, AllowRoles, AllowSCIM}

// States of a setup link.
const (
	SetupOpen      = "open"
	SetupActivated = "activated"
	SetupRevoked   = "revoked"
	SetupExpired   = "expired"
)

// ErrSetupLinkNotFound is returned for an unknown setup link (or a secret
// that matches none).
var ErrSetupLinkNotFound = errors.New("admin: setup link not found")

// SetupLink describes a setup link; it never holds the secret.
type SetupLink struct {
	// ID names the link for listing and revocation: part of a digest, not the secret.
	ID string `json:"id"`
	// Tenant is the tenant the link configures.
	Tenant string `json:"tenant"`
	// Allow lists what the link may configure (idp, domains, scim, roles).
	Allow []string `json:"allow"`
	// Note is the creator's free text (whom the link was sent to).
	Note string `json:"note,omitempty"`
	// CreatedBy is the admin who created it.
	CreatedBy string `json:"created_by,omitempty"`
	// CreatedAt and ExpiresAt bound the link's life.
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// State is open, activated, revoked or expired (computed when read).
	State string `json:"state"`
	// EndedAt is when the link was activated or revoked.
	EndedAt *time.Time `json:"ended_at,omitempty"`

	digest string // hex HMAC of the secret (stored, never shown)
}

// Allows reports whether the link may configure step (AllowIdP...).
func (l SetupLink) Allows(step string) bool { return slices.Contains(l.Allow, step) }

// setupRecord is a link as stored.
type setupRecord struct {
	SetupLink
	Digest string `json:"digest"`
}

// setupEnd is a link's end as stored: written once (store.Create), so
// of an activation and a revocation racing, one wins.
type setupEnd struct {
	State string    `json:"state"`
	At    time.Time `json:"at"`
	By    string    `json:"by"`
}

func setupLinkKey(id string) string      { return "setup:link:" + id }
func setupEndKey(id string) string       { return "setup:link:" + id + ":end" }
func setupIndexKey(tenant string) string { return "setup:links:" + tenant }

// setupKey derives the key of the link digests from the server secret.
func (s *Service) setupKey() []byte {
	m := hmac.New(sha256.New, s.opts.Secret)
	m.Write([]byte("realmgate setup links"))
	return m.Sum(nil)
}

func (s *Service) setupDigest(secret string) string {
	m := hmac.New(sha256.New, s.setupKey())
	m.Write([]byte(secret))
	return hex.EncodeToString(m.Sum(nil))
}

// SetupLinkURL is where a link's secret is opened: <issuer>/setup/<secret>.
func SetupLinkURL(issuer, secret string) string {
	return strings.TrimSuffix(issuer, "/") + "/setup/" + secret
}

func (s *Service) setupLinkRoutes(g *echo.Group) {
	g.GET("/tenants/:tenant/setup-links", s.listSetupLinks)
	g.POST("/tenants/:tenant/setup-links", s.createSetupLink)
	g.DELETE("/tenants/:tenant/setup-links/:link", s.revokeSetupLink)
}

type setupLinkInput struct {
	Allow     []string `json:"allow,omitempty"`
	ExpiresIn string   `json:"expires_in,omitempty"`
	Note      string   `json:"note,omitempty"`
}

type setupLinkCreated struct {
	SetupLink
	// URL is the link to send, holding the secret: shown only here.
	URL string `json:"url"`
}

type setupLinkList struct {
	Links []SetupLink `json:"links"`
}

// parseSetupTTL reads "72h", "30m" or "7d"; empty is the default.
func parseSetupTTL(v string) (time.Duration, error) {
	if v == "" {
		return DefaultSetupLinkTTL, nil
	}
	var d time.Duration
	if n, ok := strings.CutSuffix(v, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil {
			return 0, fmt.Errorf("expires_in %q is not a duration like 72h or 7d", v)
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			return 0, fmt.Errorf("expires_in %q is not a duration like 72h or 7d", v)
		}
	}
	if d < minSetupLinkTTL || d > MaxSetupLinkTTL {
		return 0, fmt.Errorf("expires_in %q is out of range (5m to 30d)", v)
	}
	return d, nil
}

// setupTenant checks the caller may act on the tenant in the path and that
// it is an API tenant (a file tenant is read-only: nothing to set up).
func (s *Service) setupTenant(c echo.Context) (*caller, string, error) {
	id := param(c, "tenant")
	w, err := scoped(c, id)
	if err != nil {
		return nil, "", err
	}
	t, file := s.lookupTenant(id)
	if t == nil {
		return nil, "", notFound("no tenant %q", id)
	}
	if file {
		return nil, "", readOnly(fmt.Sprintf("tenant %q", id))
	}
	return w, id, nil
}

func (s *Service) createSetupLink(c echo.Context) error {
	w, id, err := s.setupTenant(c)
	if err != nil {
		return err
	}
	var in setupLinkInput
	if err := decode(c, &in, maxBody); err != nil {
		return err
	}
	ttl, err := parseSetupTTL(in.ExpiresIn)
	if err != nil {
		return errorf(http.StatusBadRequest, "invalid_request", "%s", err.Error())
	}
	allow := in.Allow
	if len(allow) == 0 {
		allow = slices.Clone(SetupAllowAll)
	}
	for _, a := range allow {
		if !slices.Contains(SetupAllowAll, a) {
			return errorf(http.StatusBadRequest, "invalid_request", "allow: %q is not one of idp, domains, scim, roles", a)
		}
	}
	slices.SortFunc(allow, func(a, b string) int { return slices.Index(SetupAllowAll, a) - slices.Index(SetupAllowAll, b) })
	allow = slices.Compact(allow)
	if len(in.Note) > maxSetupNote {
		return errorf(http.StatusBadRequest, "invalid_request", "note is longer than %d bytes", maxSetupNote)
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand documents it)
	secret := SetupLinkPrefix + base64.RawURLEncoding.EncodeToString(b)
	digest := s.setupDigest(secret)
	now := s.opts.Now().UTC().Truncate(time.Second)
	link := SetupLink{ID: digest[:32], Tenant: id, Allow: allow, Note: in.Note, CreatedBy: w.name,
		CreatedAt: now, ExpiresAt: now.Add(ttl), State: SetupOpen}
	err = s.putSetupLink(c.Request().Context(), link, digest, ttl)
	s.auditSetupLink(c.Request().Context(), w, "setup_link.create", link, err)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, setupLinkCreated{SetupLink: link, URL: SetupLinkURL(s.opts.Issuer, secret)})
}

func (s *Service) putSetupLink(ctx context.Context, link SetupLink, digest string, ttl time.Duration) error {
	rec, err := json.Marshal(setupRecord{SetupLink: link, Digest: digest})
	if err != nil {
		return fmt.Errorf("admin: setup link: %w", err)
	}
	if err := s.opts.Store.Create(ctx, setupLinkKey(link.ID), rec, ttl+setupLinkKept); err != nil {
		return fmt.Errorf("admin: store setup link: %w", err)
	}
	if is, ok := s.opts.Store.(store.IndexStore); ok {
		if err := is.AddToIndex(ctx, setupIndexKey(link.Tenant), link.ID, maxSetupLinks, MaxSetupLinkTTL+setupLinkKept); err != nil {
			return fmt.Errorf("admin: index setup link: %w", err)
		}
	}
	return nil
}

// readSetupLink returns link id with its state now.
func (s *Service) readSetupLink(ctx context.Context, id string) (SetupLink, error) {
	if id == "" || len(id) > 64 {
		return SetupLink{}, ErrSetupLinkNotFound
	}
	raw, err := s.opts.Store.Get(ctx, setupLinkKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return SetupLink{}, ErrSetupLinkNotFound
	}
	if err != nil {
		return SetupLink{}, fmt.Errorf("admin: read setup link: %w", err)
	}
	var rec setupRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return SetupLink{}, fmt.Errorf("admin: setup link %s: %w", id, err)
	}
	link := rec.SetupLink
	link.digest = rec.Digest
	link.State = SetupOpen
	end, err := s.opts.Store.Get(ctx, setupEndKey(id))
	switch {
	case err == nil:
		var e setupEnd
		if json.Unmarshal(end, &e) == nil {
			link.State, link.EndedAt = e.State, &e.At
		}
	case !errors.Is(err, store.ErrNotFound):
		return SetupLink{}, fmt.Errorf("admin: read setup link: %w", err)
	case !s.opts.Now().Before(link.ExpiresAt):
		link.State = SetupExpired
	}
	return link, nil
}

// endSetupLink marks link id activated or revoked, once: ErrSetupLinkNotFound
// when it has ended already.
func (s *Service) endSetupLink(ctx context.Context, link SetupLink, state, by string) error {
	e, _ := json.Marshal(setupEnd{State: state, At: s.opts.Now().UTC(), By: by})
	ttl := time.Until(link.ExpiresAt) + setupLinkKept
	if ttl <= 0 {
		ttl = time.Minute
	}
	err := s.opts.Store.Create(ctx, setupEndKey(link.ID), e, ttl)
	if errors.Is(err, store.ErrExists) {
		return ErrSetupLinkNotFound
	}
	if err != nil {
		return fmt.Errorf("admin: end setup link: %w", err)
	}
	return nil
}

func (s *Service) listSetupLinks(c echo.Context) error {
	_, id, err := s.setupTenant(c)
	if err != nil {
		return err
	}
	out := setupLinkList{Links: []SetupLink{}}
	is, ok := s.opts.Store.(store.IndexStore)
	if !ok {
		return c.JSON(http.StatusOK, out)
	}
	ids, err := is.IndexMembers(c.Request().Context(), setupIndexKey(id))
	if err != nil {
		return fmt.Errorf("admin: list setup links: %w", err)
	}
	for _, lid := range ids {
		l, err := s.readSetupLink(c.Request().Context(), lid)
		if errors.Is(err, ErrSetupLinkNotFound) {
			continue // its record outlived its keeping time
		}
		if err != nil {
			return err
		}
		if l.Tenant == id {
			out.Links = append(out.Links, l)
		}
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Service) revokeSetupLink(c echo.Context) error {
	w, id, err := s.setupTenant(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	l, err := s.readSetupLink(ctx, param(c, "link"))
	if errors.Is(err, ErrSetupLinkNotFound) || err == nil && l.Tenant != id {
		return notFound("no such setup link")
	}
	if err != nil {
		return err
	}
	if l.State != SetupOpen && l.State != SetupExpired {
		err = errorf(http.StatusConflict, "ended", "the setup link was %s already", l.State)
	} else if err = s.endSetupLink(ctx, l, SetupRevoked, w.name); errors.Is(err, ErrSetupLinkNotFound) {
		err = errorf(http.StatusConflict, "ended", "the setup link has ended already")
	}
	s.auditSetupLink(ctx, w, "setup_link.revoke", l, err)
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// auditSetupLink writes one admin audit event for a link's life; the secret
// never appears, only the link's id.
func (s *Service) auditSetupLink(ctx context.Context, w *caller, action string, l SetupLink, err error) {
	attrs := []slog.Attr{
		slog.String("event", "admin.change"), slog.String("actor", w.name), slog.String("actor_tenant", w.tenant),
		slog.String("action", action), slog.String("resource", "tenants/"+l.Tenant+"/setup-links/"+l.ID),
		slog.Any("allow", l.Allow), slog.Time("expires_at", l.ExpiresAt),
	}
	if ip, ok := ctx.Value(remoteKey{}).(string); ok {
		attrs = append(attrs, slog.String("ip", ip))
	}
	if err != nil {
		attrs = append(attrs, slog.String("outcome", "refused"), slog.String("reason", err.Error()))
	} else {
		attrs = append(attrs, slog.String("outcome", "applied"))
	}
	s.opts.Audit.LogAttrs(ctx, slog.LevelInfo, "admin change", attrs...)
}

// OpenSetupLink returns the link whose secret is secret, in whatever state
// it is (the portal explains an expired or used link), comparing the
// secret's digest in constant time; ErrSetupLinkNotFound for none.
func (s *Service) OpenSetupLink(ctx context.Context, secret string) (SetupLink, error) {
	if !strings.HasPrefix(secret, SetupLinkPrefix) || len(secret) > 128 {
		return SetupLink{}, ErrSetupLinkNotFound
	}
	digest := s.setupDigest(secret)
	l, err := s.readSetupLink(ctx, digest[:32])
	if err != nil {
		return SetupLink{}, err
	}
	if subtle.ConstantTimeCompare([]byte(l.digest), []byte(digest)) != 1 {
		return SetupLink{}, ErrSetupLinkNotFound
	}
	return l, nil
}

// SetupLinkByID returns link id in its current state (the portal checks
// it on every request: an ended link ends its sessions).
func (s *Service) SetupLinkByID(ctx context.Context, id string) (SetupLink, error) {
	return s.readSetupLink(ctx, id)
}
