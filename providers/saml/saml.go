// Package saml is realmgate's upstream SAML 2.0 connector: the broker acts as
// a service provider (SP) to a tenant's identity provider (AD FS, Microsoft
// Entra ID, Okta, Shibboleth, ...) with the Web Browser SSO profile
// (SAML 2.0 Profiles §4.1).
//
// The XML signature and encryption work is done by github.com/crewjam/saml
// over github.com/russellhaering/goxmldsig (go.mod requires >= v1.6.1,
// SECURITY S46). On top of the library the connector enforces, before any
// signature is checked:
//
//   - bounded request size, inflated size, XML depth, element and attribute
//     counts; no DTD, entity, comment or processing instruction (S45);
//   - a document shape with exactly one Assertion (or EncryptedAssertion),
//     a direct child of the Response; no other assertion hidden anywhere
//     (Extensions, ds:Object, Advice); Signature elements only directly under
//     the Response or the Assertion, each with one Reference to its parent's
//     ID; every ID unique (S40, the XML signature-wrapping variants);
//
// and after the library accepted the signature:
//
//   - Destination and every bearer SubjectConfirmationData Recipient equal
//     the ACS URL; Issuer equals the IdP's entityID; NotBefore, NotOnOrAfter
//     and IssueInstant hold within the IdP's bounded clock skew; an
//     AudienceRestriction naming our entityID is required (S41);
//   - InResponseTo equals the AuthnRequest ID kept server-side with the
//     login state, which the broker consumes once (S42);
//   - each assertion ID is recorded in the shared store until NotOnOrAfter,
//     a second presentation is refused (S43);
//   - unsolicited (IdP-initiated) responses are refused unless enabled; when
//     enabled they must carry no InResponseTo, be fresh (a short window),
//     pass the replay cache and name an allow-listed RelayState (S44).
package saml

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"
	crewjam "github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/realmgate/realmgate/providers"
)

// Bindings the connector can use to send the AuthnRequest (SAML Bindings §3.4, §3.5).
const (
	// BindingRedirect is the HTTP-Redirect binding.
	BindingRedirect = crewjam.HTTPRedirectBinding
	// BindingPOST is the HTTP-POST binding.
	BindingPOST = crewjam.HTTPPostBinding
)

// NameID formats (SAML Core §8.3).
const (
	// NameIDPersistent is a stable, opaque identifier per SP.
	NameIDPersistent = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
	// NameIDEmail is an email address.
	NameIDEmail = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
	// NameIDUnspecified lets the IdP choose.
	NameIDUnspecified = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
	// NameIDTransient is a one-time identifier; refused as a subject.
	NameIDTransient = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
)

// Defaults and bounds.
const (
	// DefaultClockSkew is the tolerated clock difference with the IdP.
	DefaultClockSkew = 2 * time.Minute
	// MaxClockSkew bounds Config.ClockSkew (crewjam/saml's own ceiling).
	MaxClockSkew = 3 * time.Minute
	// DefaultUnsolicitedWindow is how old an unsolicited response may be.
	DefaultUnsolicitedWindow = time.Minute
	// DefaultRefreshInterval is how often IdP metadata from a URL is fetched again.
	DefaultRefreshInterval = 12 * time.Hour
	// DefaultTimeout bounds each metadata fetch.
	DefaultTimeout = 10 * time.Second
)

// Sentinel errors.
var (
	// ErrConfig is returned (wrapped) by New for an invalid configuration.
	ErrConfig = errors.New("saml: invalid configuration")
	// ErrNoReplayCache means the broker attached no replay cache; the
	// connector refuses every response rather than skip S43.
	ErrNoReplayCache = errors.New("saml: no replay cache")
)

// ReplayCache remembers assertion ids (SECURITY S43); it is
// providers.ReplayCache, which the broker implements over its shared store
// so the cache holds across instances.
type ReplayCache = providers.ReplayCache

// Config describes one upstream SAML IdP and realmgate's SP side of it.
type Config struct {
	// ID is the IdP id (logs, errors, replay keys).
	ID string
	// EntityID is realmgate's SP entityID for this IdP; default MetadataURL.
	EntityID string
	// ACSURL is the Assertion Consumer Service URL: <issuer>/saml/<id>/acs.
	ACSURL string
	// MetadataURL is where realmgate publishes this SP's metadata:
	// <issuer>/saml/<id>/metadata.
	MetadataURL string
	// PostURL is the broker route that renders the HTTP-POST form for an
	// AuthnRequest: <issuer>/saml/<id>/post. Needed only for BindingPOST.
	PostURL string

	// IdPMetadata is the IdP's metadata XML (inline or read from a file).
	// Metadata past its validUntil is refused (ErrMetadataExpired), at New
	// and once it passes.
	IdPMetadata []byte
	// IdPMetadataURL is where the IdP publishes its metadata (AD FS:
	// /FederationMetadata/2007-06/FederationMetadata.xml). It is fetched on
	// first use; then again in the background when a request finds the copy
	// older than RefreshInterval, its cacheDuration, or half the time to its
	// validUntil (the request does not wait). At most one fetch is in flight.
	// Metadata past its validUntil (on the EntityDescriptor or the
	// EntitiesDescriptor around it) is refused; a failed, invalid or expired
	// fetch keeps the last good copy until that copy's own validUntil, and
	// is retried after 5 minutes. Without a usable copy, requests wait for
	// the one fetch in flight; after it failed, they fail as unavailable for
	// 30 seconds without fetching.
	IdPMetadataURL string
	// IdPEntityID pins the IdP's entityID (the Issuer of every response).
	// Default: the metadata's. Required to pick one entity from an
	// EntitiesDescriptor.
	IdPEntityID string
	// RefreshInterval is how often IdPMetadataURL is fetched again.
	RefreshInterval time.Duration
	// HTTPClient fetches IdPMetadataURL; nil means a client with DefaultTimeout.
	HTTPClient *http.Client

	// Key signs AuthnRequests and decrypts encrypted assertions; an
	// *rsa.PrivateKey. Optional: without it requests are unsigned, and
	// encrypted assertions cannot be read.
	Key crypto.Signer
	// Certificate is Key's certificate, published in the SP metadata.
	Certificate *x509.Certificate
	// SignRequests signs every AuthnRequest even when the IdP's metadata
	// does not ask for it (WantAuthnRequestsSigned). Needs Key.
	SignRequests bool
	// Binding is how the AuthnRequest is sent: BindingRedirect (default when
	// the IdP offers it) or BindingPOST.
	Binding string
	// NameIDFormat is requested in the NameIDPolicy; default unspecified.
	NameIDFormat string
	// SubjectAttribute names the attribute (its Name or short alias, such as
	// "uid" or "objectidentifier") whose value is the user's subject instead
	// of the NameID. Required when the IdP sends transient NameIDs, which
	// are refused as subjects otherwise.
	SubjectAttribute string

	// ClockSkew is the tolerated clock difference; default DefaultClockSkew,
	// at most MaxClockSkew.
	ClockSkew time.Duration
	// IdPInitiated accepts unsolicited responses (S44). Off by default.
	IdPInitiated bool
	// RelayStateAllowList are the exact URLs an unsolicited response's
	// RelayState may name (where the browser goes after the sign-in). The
	// first is the default for an empty RelayState. Required with IdPInitiated.
	RelayStateAllowList []string
	// UnsolicitedWindow bounds the age of an unsolicited response; default
	// DefaultUnsolicitedWindow.
	UnsolicitedWindow time.Duration
	// Limits bound the response before it is parsed (S45); zero fields take
	// the defaults of DefaultLimits.
	Limits Limits

	// Logger receives diagnostics; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Connector is a providers.Connector for one SAML IdP. It is safe for
// concurrent use.
type Connector struct {
	cfg    Config
	acs    *url.URL
	meta   *url.URL
	limits Limits
	log    *slog.Logger
	now    func() time.Time
	idp    *metadataSource

	mu     sync.RWMutex
	replay ReplayCache
}

// The connector and the optional capabilities it offers (providers.As).
var (
	_ providers.Connector          = (*Connector)(nil)
	_ providers.MetadataPublisher  = (*Connector)(nil)
	_ providers.PostBinder         = (*Connector)(nil)
	_ providers.UnsolicitedHandler = (*Connector)(nil)
	_ providers.ReplayCacheUser    = (*Connector)(nil)
	_ providers.SingleLogout       = (*Connector)(nil)
)

// New checks cfg and returns a connector. Metadata given inline is parsed
// now; metadata from a URL is fetched on first use.
func New(cfg Config) (*Connector, error) {
	if strings.TrimSpace(cfg.ID) == "" {
		return nil, fmt.Errorf("%w: id is required", ErrConfig)
	}
	acs, err := absURL(cfg.ACSURL)
	if err != nil {
		return nil, fmt.Errorf("%w: idp %s: acs url: %v", ErrConfig, cfg.ID, err)
	}
	meta, err := absURL(cfg.MetadataURL)
	if err != nil {
		return nil, fmt.Errorf("%w: idp %s: metadata url: %v", ErrConfig, cfg.ID, err)
	}
	if cfg.EntityID == "" {
		cfg.EntityID = cfg.MetadataURL
	}
	if cfg.ClockSkew <= 0 {
		cfg.ClockSkew = DefaultClockSkew
	}
	if cfg.ClockSkew > MaxClockSkew {
		return nil, fmt.Errorf("%w: idp %s: clock skew %s exceeds %s", ErrConfig, cfg.ID, cfg.ClockSkew, MaxClockSkew)
	}
	if cfg.UnsolicitedWindow <= 0 {
		cfg.UnsolicitedWindow = DefaultUnsolicitedWindow
	}
	if cfg.IdPInitiated && len(cfg.RelayStateAllowList) == 0 {
		return nil, fmt.Errorf("%w: idp %s: idp-initiated login needs a RelayState allow-list", ErrConfig, cfg.ID)
	}
	for _, u := range cfg.RelayStateAllowList {
		if _, err := absURL(u); err != nil {
			return nil, fmt.Errorf("%w: idp %s: relay state %q: %v", ErrConfig, cfg.ID, u, err)
		}
	}
	if cfg.Key != nil {
		if _, ok := cfg.Key.(*rsa.PrivateKey); !ok {
			return nil, fmt.Errorf("%w: idp %s: SP key must be RSA (AD FS and Entra sign and encrypt with RSA)", ErrConfig, cfg.ID)
		}
		if cfg.Certificate == nil {
			return nil, fmt.Errorf("%w: idp %s: SP key without certificate", ErrConfig, cfg.ID)
		}
	} else if cfg.SignRequests {
		return nil, fmt.Errorf("%w: idp %s: signing requests needs an SP key", ErrConfig, cfg.ID)
	}
	switch cfg.Binding {
	case "", BindingRedirect:
	case BindingPOST:
		if _, err := absURL(cfg.PostURL); err != nil {
			return nil, fmt.Errorf("%w: idp %s: post url: %v", ErrConfig, cfg.ID, err)
		}
	default:
		return nil, fmt.Errorf("%w: idp %s: unknown binding %q", ErrConfig, cfg.ID, cfg.Binding)
	}
	switch cfg.NameIDFormat {
	case "":
		cfg.NameIDFormat = NameIDUnspecified
	case NameIDPersistent, NameIDEmail, NameIDUnspecified:
	default:
		return nil, fmt.Errorf("%w: idp %s: unsupported NameID format %q", ErrConfig, cfg.ID, cfg.NameIDFormat)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Connector{cfg: cfg, acs: acs, meta: meta, limits: cfg.Limits.withDefaults(), log: cfg.Logger, now: cfg.Now}
	c.idp, err = newMetadataSource(cfg, c.now, c.log)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func absURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	return u, nil
}

// SetReplayCache attaches the shared assertion-id cache (S43). The broker
// calls it once when it registers the SAML routes.
func (c *Connector) SetReplayCache(rc ReplayCache) {
	c.mu.Lock()
	c.replay = rc
	c.mu.Unlock()
}

func (c *Connector) replayCache() ReplayCache {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.replay
}

// EntityID returns realmgate's SP entityID for this IdP.
func (c *Connector) EntityID() string { return c.cfg.EntityID }

// Refresh fetches the IdP metadata URL now (for a scheduled refresh). With
// inline metadata it does nothing.
func (c *Connector) Refresh(ctx context.Context) error { return c.idp.refresh(ctx) }

// loginData is what LoginURL asks the broker to keep with the state.
type loginData struct {
	// RequestID is the AuthnRequest ID that InResponseTo must equal (S42).
	RequestID string `json:"id"`
	// Post holds the base64 AuthnRequest for the HTTP-POST binding.
	Post string `json:"p,omitempty"`
	// Dest is the IdP's SSO URL for the HTTP-POST binding.
	Dest string `json:"d,omitempty"`
}

// serviceProvider returns a crewjam SP for the current IdP metadata.
func (c *Connector) serviceProvider(ctx context.Context) (*crewjam.ServiceProvider, *idpMetadata, error) {
	md, err := c.idp.get(ctx)
	if err != nil {
		return nil, nil, err
	}
	sp := &crewjam.ServiceProvider{
		EntityID: c.cfg.EntityID, Key: c.cfg.Key, Certificate: c.cfg.Certificate,
		MetadataURL: *c.meta, AcsURL: *c.acs, IDPMetadata: md.entity,
		AuthnNameIDFormat: crewjam.NameIDFormat(c.cfg.NameIDFormat),
		// S41: an AudienceRestriction naming us is required; crewjam accepts none.
		ValidateAudienceRestriction: c.requireAudience,
	}
	if c.cfg.Key != nil && (c.cfg.SignRequests || md.wantsSigned) {
		sp.SignatureMethod = dsig.RSASHA256SignatureMethod
	}
	return sp, md, nil
}

// LoginURL builds an AuthnRequest (SAML Core §3.4.1) with RelayState set to
// req.State. With the HTTP-Redirect binding it returns the IdP URL; with the
// HTTP-POST binding it returns the broker's own form page (PostURL), and
// PostForm renders the form from the returned data.
func (c *Connector) LoginURL(ctx context.Context, req providers.LoginRequest) (string, []byte, error) {
	sp, md, err := c.serviceProvider(ctx)
	if err != nil {
		return "", nil, err
	}
	if md.wantsSigned && sp.SignatureMethod == "" {
		return "", nil, fmt.Errorf("saml: idp %s wants signed AuthnRequests and no SP key is configured: %w", c.cfg.ID, providers.ErrUnavailable)
	}
	if req.ForceLogin || req.MaxAge > 0 { // SAML cannot say max_age: ask for a fresh authentication
		t := true
		sp.ForceAuthn = &t
	}
	binding := c.cfg.Binding
	if binding == "" {
		binding = BindingRedirect
		if md.ssoRedirect == "" {
			binding = BindingPOST
		}
	}
	dest := md.ssoRedirect
	if binding == BindingPOST {
		dest = md.ssoPost
		if c.cfg.PostURL == "" {
			return "", nil, fmt.Errorf("saml: idp %s offers only the HTTP-POST binding and no post url is configured: %w", c.cfg.ID, providers.ErrUnavailable)
		}
	}
	if dest == "" {
		return "", nil, fmt.Errorf("saml: idp %s metadata has no SingleSignOnService for %s: %w", c.cfg.ID, binding, providers.ErrUnavailable)
	}
	ar, err := sp.MakeAuthenticationRequest(dest, binding, BindingPOST)
	if err != nil {
		return "", nil, fmt.Errorf("saml: idp %s: build AuthnRequest: %w", c.cfg.ID, err)
	}
	ld := loginData{RequestID: ar.ID}
	var target string
	if binding == BindingRedirect {
		// SAML Bindings §3.4.4.1: DEFLATE, base64, and a signature over the query.
		u, err := ar.Redirect(url.QueryEscape(req.State), sp)
		if err != nil {
			return "", nil, fmt.Errorf("saml: idp %s: encode AuthnRequest: %w", c.cfg.ID, err)
		}
		target = u.String()
	} else {
		var buf bytes.Buffer
		doc := ar.Element()
		b, err := xmlBytes(doc)
		if err != nil {
			return "", nil, fmt.Errorf("saml: idp %s: encode AuthnRequest: %w", c.cfg.ID, err)
		}
		buf.Write(b)
		ld.Post, ld.Dest = base64.StdEncoding.EncodeToString(buf.Bytes()), dest
		target = c.cfg.PostURL + "?" + url.Values{"s": {req.State}}.Encode()
	}
	data, err := json.Marshal(ld)
	if err != nil {
		return "", nil, err
	}
	return target, data, nil
}

// PostForm returns the IdP's SSO URL and the form fields of the HTTP-POST
// binding (SAML Bindings §3.5.4) for a login started by LoginURL with data.
func (c *Connector) PostForm(_ context.Context, data []byte, relayState string) (action string, fields map[string]string, err error) {
	var ld loginData
	if err := json.Unmarshal(data, &ld); err != nil || ld.Post == "" || ld.Dest == "" {
		return "", nil, fmt.Errorf("saml: idp %s: no HTTP-POST request in login data", c.cfg.ID)
	}
	return ld.Dest, map[string]string{"SAMLRequest": ld.Post, "RelayState": relayState}, nil
}

// Metadata returns this SP's metadata (SAML Metadata §2.4.4), the document
// an AD FS admin imports as a relying party trust and an Entra admin uploads.
// Its URLs and entityID depend only on the configuration, so they are stable.
func (c *Connector) Metadata(_ context.Context) ([]byte, error) {
	sp := &crewjam.ServiceProvider{
		EntityID: c.cfg.EntityID, Key: c.cfg.Key, Certificate: c.cfg.Certificate,
		MetadataURL: *c.meta, AcsURL: *c.acs, AuthnNameIDFormat: crewjam.NameIDFormat(c.cfg.NameIDFormat),
		MetadataValidDuration: 7 * 24 * time.Hour,
	}
	if c.cfg.Key != nil {
		// Publish the signing key whenever we have one: an IdP that wants
		// signed requests can then verify them.
		sp.SignatureMethod = dsig.RSASHA256SignatureMethod
	}
	ed := sp.Metadata()
	for i := range ed.SPSSODescriptors {
		d := &ed.SPSSODescriptors[i]
		// Only the HTTP-POST ACS: the artifact binding is not supported.
		d.AssertionConsumerServices = []crewjam.IndexedEndpoint{{Binding: BindingPOST, Location: c.acs.String(), Index: 1}}
		d.AuthnRequestsSigned = ptr(c.cfg.Key != nil && c.cfg.SignRequests)
		d.NameIDFormats = []crewjam.NameIDFormat{crewjam.NameIDFormat(c.cfg.NameIDFormat)}
		d.SingleLogoutServices = c.sloEndpoints() // SAML Profiles §4.4 (slo.go)
	}
	out, err := xml.MarshalIndent(ed, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("saml: idp %s: encode metadata: %w", c.cfg.ID, err)
	}
	return append([]byte(xml.Header), out...), nil
}

func ptr[T any](v T) *T { return &v }

// HandleCallback validates the HTTP-POST response (SAML Bindings §3.5) at
// the ACS for the login described by data, and returns the identity.
func (c *Connector) HandleCallback(ctx context.Context, _ providers.LoginRequest, data []byte, r *http.Request) (providers.Identity, error) {
	var ld loginData
	if err := json.Unmarshal(data, &ld); err != nil || ld.RequestID == "" {
		return providers.Identity{}, fmt.Errorf("saml: idp %s: no AuthnRequest id kept with the state: %w", c.cfg.ID, providers.ErrInvalidResponse)
	}
	raw, err := samlResponseParam(r)
	if err != nil {
		return providers.Identity{}, fmt.Errorf("saml: idp %s: %w: %w", c.cfg.ID, providers.ErrInvalidResponse, err)
	}
	return c.validate(ctx, raw, ld.RequestID)
}

// Unsolicited reports whether an ACS POST whose RelayState matched no login
// state may be handled as IdP-initiated, and where the browser then goes: the
// allow-listed RelayState, or the first allow-list entry for an empty one (S44).
func (c *Connector) Unsolicited(relayState string) (target string, ok bool) {
	if !c.cfg.IdPInitiated {
		return "", false
	}
	if relayState == "" {
		return c.cfg.RelayStateAllowList[0], true
	}
	if slices.Contains(c.cfg.RelayStateAllowList, relayState) {
		return relayState, true
	}
	return "", false
}

// HandleUnsolicited validates an IdP-initiated response (SAML Profiles
// §4.1.5: no InResponseTo) when Config.IdPInitiated is on; otherwise it
// refuses it.
func (c *Connector) HandleUnsolicited(ctx context.Context, r *http.Request) (providers.Identity, error) {
	if !c.cfg.IdPInitiated {
		return providers.Identity{}, fmt.Errorf("saml: idp %s: unsolicited response and idp-initiated login is off: %w", c.cfg.ID, providers.ErrInvalidResponse)
	}
	raw, err := samlResponseParam(r)
	if err != nil {
		return providers.Identity{}, fmt.Errorf("saml: idp %s: %w: %w", c.cfg.ID, providers.ErrInvalidResponse, err)
	}
	return c.validate(ctx, raw, "")
}

// samlResponseParam returns the single SAMLResponse form value of a POST.
func samlResponseParam(r *http.Request) (string, error) {
	if r.Method != http.MethodPost {
		return "", errors.New("the response must arrive by HTTP POST")
	}
	if err := r.ParseForm(); err != nil {
		return "", fmt.Errorf("read form: %w", err)
	}
	if r.PostForm.Has("SAMLart") {
		return "", errors.New("the artifact binding is not supported")
	}
	v := r.PostForm["SAMLResponse"]
	if len(v) != 1 || v[0] == "" {
		return "", errors.New("exactly one SAMLResponse is required")
	}
	return v[0], nil
}

// xmlBytes serializes an element as a document.
func xmlBytes(el *etree.Element) ([]byte, error) {
	doc := etree.NewDocument()
	doc.SetRoot(el)
	return doc.WriteToBytes()
}
