package admin

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"sort"
	"time"
)

// Where a tenant or client is defined.
const (
	// SourceAPI marks an entry created through the admin API (read-write).
	SourceAPI = "api"
	// SourceFile marks an entry of the configuration file (read-only here).
	SourceFile = "file"
)

// redacted replaces every secret in what the API returns and audits.
const redacted = "[redacted]"

// Tenant is one customer organisation managed through the API. Its JSON
// form mirrors the configuration file's tenants[] entries.
type Tenant struct {
	// ID is the tenant id carried as tid in tokens.
	ID string `json:"id"`
	// Name is the display name shown on discovery pages.
	Name string `json:"name,omitempty"`
	// Domains are the tenant's email domains; only verified ones route users.
	Domains []Domain `json:"domains,omitempty"`
	// Subdomain is the DNS label under the base domain that routes to this tenant.
	Subdomain string `json:"subdomain,omitempty"`
	// IPRanges are CIDR prefixes whose users are routed to this tenant.
	IPRanges []string `json:"ip_ranges,omitempty"`
	// Providers are the tenant's upstream identity providers, in the order offered.
	Providers []Provider `json:"providers,omitempty"`
	// Rules are the tenant's claims rules, run in order after the global rules.
	Rules []Rule `json:"rules,omitempty"`
	// RequireMFA refuses sign-ins whose upstream authentication was not multi-factor.
	RequireMFA bool `json:"require_mfa,omitempty"`
	// Members are identities of other tenants' IdPs allowed to act in this tenant.
	Members []Member `json:"members,omitempty"`
	// Source is SourceAPI or SourceFile (set by the server, ignored on input).
	Source string `json:"source,omitempty"`
	// Revision identifies this content of the tenant (set by the server,
	// ignored on input): compilers cache by it.
	Revision string `json:"revision,omitempty"`
	// Incarnation identifies the tenant from its creation to its deletion
	// (set by the server, ignored on input): a tenant deleted and created
	// again under the same id is another incarnation, and the refresh tokens
	// and grants of the earlier one are refused (SECURITY S68).
	Incarnation string `json:"incarnation,omitempty"`
}

// Member is an identity from another tenant's IdP allowed into a tenant
// (the configuration file's tenants[].members[]).
type Member struct {
	IdP     string `json:"idp"`
	Subject string `json:"subject,omitempty"`
	Email   string `json:"email,omitempty"`
	Reauth  bool   `json:"reauth,omitempty"`
}

// Domain is one email domain of a tenant. A domain added through the API is
// not used for discovery until it is verified by DNS or an operator.
type Domain struct {
	// Name is the domain, such as example.com or *.example.com.
	Name string `json:"name"`
	// Verified says whether the domain routes users and vouches for emails.
	Verified bool `json:"verified"`
	// VerifiedBy is "dns", "operator:<admin>" or "file".
	VerifiedBy string `json:"verified_by,omitempty"`
	// VerifiedAt is when the domain was verified.
	VerifiedAt *time.Time `json:"verified_at,omitempty"`
	// Token is the value the TXT record must carry.
	Token string `json:"verification_token,omitempty"`
	// TXTName is the DNS name of the TXT record to publish (output only).
	TXTName string `json:"txt_record_name,omitempty"`
	// TXTValue is the TXT record's value (output only).
	TXTValue string `json:"txt_record_value,omitempty"`
}

// Provider is one upstream IdP of a tenant; the fields mean what the
// configuration file's providers[] fields mean. File-based settings
// (metadata_file, sp_key_file, sp_cert_file) cannot be set through the API.
type Provider struct {
	ID                  string   `json:"id"`
	Type                string   `json:"type"`
	Name                string   `json:"name,omitempty"`
	Issuer              string   `json:"issuer,omitempty"`
	ClientID            string   `json:"client_id,omitempty"`
	ClientSecret        string   `json:"client_secret,omitempty"`
	Scopes              []string `json:"scopes,omitempty"`
	AuthURL             string   `json:"auth_url,omitempty"`
	TokenURL            string   `json:"token_url,omitempty"`
	UserInfoURL         string   `json:"userinfo_url,omitempty"`
	HostedDomain        string   `json:"hosted_domain,omitempty"`
	AllowedTenants      []string `json:"allowed_tenants,omitempty"`
	Accounts            string   `json:"accounts,omitempty"`
	MetadataURL         string   `json:"metadata_url,omitempty"`
	Metadata            string   `json:"metadata,omitempty"`
	EntityID            string   `json:"entity_id,omitempty"`
	Binding             string   `json:"binding,omitempty"`
	NameIDFormat        string   `json:"name_id_format,omitempty"`
	SubjectAttribute    string   `json:"subject_attribute,omitempty"`
	ClockSkew           string   `json:"clock_skew,omitempty"`
	IdPInitiated        bool     `json:"idp_initiated,omitempty"`
	RelayStateAllowlist []string `json:"relay_state_allowlist,omitempty"`
	MFAACRValues        []string `json:"mfa_acr_values,omitempty"`
}

// Rule is one claims rule, as in the configuration file's rules[].
type Rule struct {
	Name   string            `json:"name"`
	If     string            `json:"if,omitempty"`
	Set    map[string]string `json:"set,omitempty"`
	Add    map[string]string `json:"add,omitempty"`
	Remove []string          `json:"remove,omitempty"`
	Map    *MapRule          `json:"map,omitempty"`
	Deny   string            `json:"deny,omitempty"`
	Stop   bool              `json:"stop,omitempty"`
}

// MapRule translates values through a table (rules[].map).
type MapRule struct {
	From    string            `json:"from"`
	To      string            `json:"to"`
	Table   map[string]string `json:"table"`
	Default string            `json:"default,omitempty"`
}

// Client is a downstream application, as in the configuration file's clients[].
type Client struct {
	ID                     string   `json:"id"`
	Secret                 string   `json:"secret,omitempty"`
	RedirectURIs           []string `json:"redirect_uris"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`
	AllowedTenants         []string `json:"allowed_tenants,omitempty"`
	ExchangeAudiences      []string `json:"exchange_audiences,omitempty"`
	BackchannelLogoutURI   string   `json:"backchannel_logout_uri,omitempty"`
	AllowedIdPs            []string `json:"allowed_idps,omitempty"`
	Claims                 []string `json:"claims,omitempty"`
	// Source is SourceAPI or SourceFile (set by the server, ignored on input).
	Source string `json:"source,omitempty"`
}

// State is the whole API-managed configuration: one versioned document in
// the store, written atomically, so no reader ever sees half a change.
type State struct {
	// Version increases by one with every change.
	Version int64 `json:"version"`
	// Tenants are sorted by id.
	Tenants []Tenant `json:"tenants"`
	// Clients are sorted by id.
	Clients []Client `json:"clients"`
	// UpdatedAt and UpdatedBy describe the last change.
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `json:"updated_by,omitempty"`

	owners map[string]string // verified domain -> tenant; built on demand
	// revKey keys the tenant revisions (an HMAC of the tenant's JSON, which
	// holds its plaintext secrets); nil without a server secret.
	revKey []byte
}

// clone returns a copy of s whose slices may be changed; the tenants and
// clients themselves are shared and must be replaced, never changed in place.
func (s *State) clone() *State {
	c := *s
	c.Tenants = slices.Clone(s.Tenants)
	c.Clients = slices.Clone(s.Clients)
	c.owners = nil
	return &c
}

// owner returns the tenant that verified domain, indexing on first use.
func (s *State) owner(domain string) (string, bool) {
	if s.owners == nil {
		s.owners = make(map[string]string, len(s.Tenants))
		for _, t := range s.Tenants {
			for _, d := range t.Domains {
				if d.Verified {
					s.owners[d.Name] = t.ID
				}
			}
		}
	}
	t, ok := s.owners[domain]
	return t, ok
}

// deleteTenant removes the tenant at index i.
func (s *State) deleteTenant(i int) {
	s.Tenants = slices.Delete(s.Tenants, i, i+1)
	s.owners = nil
}

// tenant returns the index of the tenant with id, or -1.
func (s *State) tenant(id string) int {
	i := sort.Search(len(s.Tenants), func(i int) bool { return s.Tenants[i].ID >= id })
	if i < len(s.Tenants) && s.Tenants[i].ID == id {
		return i
	}
	return -1
}

// client returns the index of the client with id, or -1.
func (s *State) client(id string) int {
	i := sort.Search(len(s.Clients), func(i int) bool { return s.Clients[i].ID >= id })
	if i < len(s.Clients) && s.Clients[i].ID == id {
		return i
	}
	return -1
}

// putTenant inserts or replaces t, keeping the order, and gives it a new revision.
func (s *State) putTenant(t Tenant) {
	t.Source, t.Revision, t.Incarnation = "", "", ""
	if i := s.tenant(t.ID); i >= 0 {
		// Kept, even empty (a tenant created before incarnations existed):
		// an update never ends the tenant's grants.
		t.Incarnation = s.Tenants[i].Incarnation
	} else {
		t.Incarnation = newIncarnation()
	}
	if b, err := json.Marshal(t); err == nil {
		// The JSON holds the plaintext secrets: with a server secret the
		// revision is keyed, so a stored revision cannot be used to test
		// guesses of a weak secret offline.
		var sum []byte
		if s.revKey != nil {
			m := hmac.New(sha256.New, s.revKey)
			m.Write(b)
			sum = m.Sum(nil)
		} else {
			h := sha256.Sum256(b)
			sum = h[:]
		}
		t.Revision = hex.EncodeToString(sum[:8])
	}
	i := sort.Search(len(s.Tenants), func(i int) bool { return s.Tenants[i].ID >= t.ID })
	if i < len(s.Tenants) && s.Tenants[i].ID == t.ID {
		if s.owners != nil {
			for _, d := range s.Tenants[i].Domains {
				if s.owners[d.Name] == t.ID {
					delete(s.owners, d.Name)
				}
			}
		}
		s.Tenants[i] = t
	} else {
		s.Tenants = slices.Insert(s.Tenants, i, t)
	}
	if s.owners != nil {
		for _, d := range t.Domains {
			if d.Verified {
				s.owners[d.Name] = t.ID
			}
		}
	}
}

// putClient inserts or replaces c, keeping the order.
func (s *State) putClient(c Client) {
	c.Source = ""
	i := sort.Search(len(s.Clients), func(i int) bool { return s.Clients[i].ID >= c.ID })
	if i < len(s.Clients) && s.Clients[i].ID == c.ID {
		s.Clients[i] = c
		return
	}
	s.Clients = slices.Insert(s.Clients, i, c)
}

// deepCopy returns an independent copy of v through JSON (the model is plain data).
func deepCopy[T any](v T) T {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		return v
	}
	return out
}

// redact returns t with every secret replaced by a marker.
func (t Tenant) redact() Tenant {
	t.Providers = slices.Clone(t.Providers)
	for i := range t.Providers {
		if t.Providers[i].ClientSecret != "" {
			t.Providers[i].ClientSecret = redacted
		}
	}
	return t
}

// redact returns c with its secret replaced by a marker.
func (c Client) redact() Client {
	if c.Secret != "" {
		c.Secret = redacted
	}
	return c
}

// VerifiedDomains returns the names of the tenant's verified domains.
func (t *Tenant) VerifiedDomains() []string {
	var out []string
	for _, d := range t.Domains {
		if d.Verified {
			out = append(out, d.Name)
		}
	}
	return out
}

// provider returns the index of the provider with id, or -1.
func (t *Tenant) provider(id string) int {
	return slices.IndexFunc(t.Providers, func(p Provider) bool { return p.ID == id })
}

// domain returns the index of the domain name (normalized), or -1.
func (t *Tenant) domain(name string) int {
	return slices.IndexFunc(t.Domains, func(d Domain) bool { return d.Name == name })
}

// newIncarnation is a fresh tenant incarnation: 128 bits from crypto/rand.
func newIncarnation() string { return rand.Text() }
