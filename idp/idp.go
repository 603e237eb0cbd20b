// Package idp is the registry of upstream IdP types. Each type is one
// package (idp/oidc, idp/saml, ...) whose init calls Register with
// everything realmgate knows of the type: its configuration settings and
// their checks (forwarded to package config, which validates every
// provider through them), its connector constructor and the values an
// IdP's admin registers (onboarding). Package idp/builtin imports every
// type of this build: adding a type is one package and one line there.
package idp

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/providers"
)

// ErrUnsupported marks a provider type no package of this build registered.
var ErrUnsupported = errors.New("idp: provider type not supported by this build")

// Env is what a connector is built with.
type Env struct {
	// Issuer is the broker's issuer: callback and SAML SP URLs derive from it.
	Issuer string
	// HTTP is the outbound client of every connector (SECURITY S70).
	HTTP *http.Client
	// Logger receives the connector's logs.
	Logger *slog.Logger
}

// Onboarding is what the admin of the upstream IdP registers there.
type Onboarding struct {
	// Provider and Type name the IdP.
	Provider string `json:"provider"`
	Type     string `json:"type"`
	// RedirectURI is the callback to register for OIDC and OAuth2 IdPs
	// (the client's "redirect URI" / "reply URL").
	RedirectURI string `json:"redirect_uri,omitempty"`
	// Scopes are what realmgate asks for (OIDC and OAuth2).
	Scopes []string `json:"scopes,omitempty"`
	// SAML service provider values: the entityID, the ACS URL with its
	// binding, and the SP metadata URL that IdPs can import instead.
	EntityID    string `json:"entity_id,omitempty"`
	ACSURL      string `json:"acs_url,omitempty"`
	ACSBinding  string `json:"acs_binding,omitempty"`
	MetadataURL string `json:"metadata_url,omitempty"`
	// NameIDFormat is the NameID format realmgate requests, when set.
	NameIDFormat string `json:"name_id_format,omitempty"`
	// Steps says in words what to do.
	Steps []string `json:"steps"`
}

// Type is one kind of upstream IdP.
type Type struct {
	// ProviderType is what validation knows: name, default display name,
	// settings used, OpenID, checks and warnings (package config).
	config.ProviderType
	// New builds the connector of one valid provider of this type. It must
	// not touch the network: discovery and metadata are fetched on first
	// use, through env.HTTP.
	New func(p *config.Provider, env Env) (providers.Connector, error)
	// Onboarding returns what the IdP's admin registers for p; nil means
	// RedirectOnboarding (an OAuth 2.0 client with a redirect URI).
	Onboarding func(issuer string, p *config.Provider) Onboarding
}

var (
	mu    sync.RWMutex
	types = map[string]Type{}
)

// Register makes a type known to validation, assembly and onboarding. A
// type's package calls it from init; it panics on a type without a name
// or constructor, or a name taken.
func Register(t Type) {
	if t.New == nil {
		panic(fmt.Sprintf("idp: type %q has no constructor", t.Name))
	}
	config.RegisterProviderType(t.ProviderType) // panics on an empty or taken name
	mu.Lock()
	defer mu.Unlock()
	types[t.Name] = t
}

// Lookup returns the type called name.
func Lookup(name string) (Type, bool) {
	mu.RLock()
	defer mu.RUnlock()
	t, ok := types[name]
	return t, ok
}

// Names returns the registered type names, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(types))
	for n := range types {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Connector builds the connector of a configured provider through its
// type; an unregistered type is ErrUnsupported.
func Connector(p *config.Provider, env Env) (providers.Connector, error) {
	t, ok := Lookup(p.Type)
	if !ok {
		return nil, fmt.Errorf("provider %q: type %q: %w", p.ID, p.Type, ErrUnsupported)
	}
	return t.New(p, env)
}

// OnboardingFor returns what the IdP's admin registers for p, and whether
// p's type is registered.
func OnboardingFor(issuer string, p *config.Provider) (Onboarding, bool) {
	t, ok := Lookup(p.Type)
	if !ok {
		return Onboarding{}, false
	}
	if t.Onboarding == nil {
		return RedirectOnboarding(issuer, p, t.OpenID), true
	}
	return t.Onboarding(issuer, p), true
}

// CallbackURL is where the upstream IdP sends the browser back for
// provider id: <issuer>/callback/<id> (DESIGN: stable per IdP id).
func CallbackURL(issuer, id string) string {
	return strings.TrimSuffix(issuer, "/") + "/callback/" + url.PathEscape(id)
}

// RedirectOnboarding is the onboarding of an OAuth 2.0 or OpenID Connect
// client: register a web application with the callback as redirect URI.
// openID adds the default scopes when p sets none.
func RedirectOnboarding(issuer string, p *config.Provider, openID bool) Onboarding {
	o := Onboarding{Provider: p.ID, Type: p.Type, RedirectURI: CallbackURL(issuer, p.ID), Scopes: p.Scopes}
	if len(o.Scopes) == 0 && openID {
		o.Scopes = slices.Clone(config.DefaultScopes)
	}
	o.Steps = []string{
		"Register a web application (confidential client, authorization code flow with PKCE) whose redirect URI is exactly " + o.RedirectURI + ".",
		"Entra ID: App registrations > New registration > Redirect URI (Web) " + o.RedirectURI + "; AD FS: Application Groups > Server application with that redirect URI.",
		"Give realmgate the issuer, client id and client secret in this provider.",
	}
	return o
}

// WarnPublicClient advises, for a type whose client secret is optional,
// when none is set.
func WarnPublicClient(c *config.ProviderCheck) {
	if c.P.ClientSecret == "" {
		c.Problem("client_secret", "not set: the provider must accept a public client with PKCE")
	}
}
