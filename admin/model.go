package admin

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/realmgate/realmgate/internal/cowmap"

	"github.com/realmgate/realmgate/config"
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

// Tenant is one customer organisation managed through the API: the
// configuration file's tenants[] entry (config.Tenant, whose JSON names are
// its YAML names, so every setting of the file is settable here), with
// domains that carry their verification and the fields the server sets.
// Settings that name a file on the server (metadata_file, sp_key_file,
// sp_cert_file) are refused: give them inline (metadata, sp_key, sp_cert).
type Tenant struct {
	config.Tenant
	// Domains are the tenant's email domains; only verified ones route
	// users. In JSON it replaces the embedded config.Tenant's list of names
	// (encoding/json takes the shallower of two fields of one name); Config
	// turns the verified ones back into that list.
	Domains []Domain `json:"domains,omitempty"`
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
// (tenants[].members[] of the file).
type Member = config.Member

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

// Provider is one upstream IdP of a tenant (tenants[].providers[] of the
// file). Its secrets (providerSecrets) are encrypted at rest and redacted
// on every read.
type Provider = config.Provider

// Rule is one claims rule (rules[] of the file).
type Rule = config.Rule

// MapRule translates values through a table (rules[].map).
type MapRule = config.MapRule

// Client is a downstream application: the file's clients[] entry and
// where it is defined.
type Client struct {
	config.Client
	// Source is SourceAPI or SourceFile (set by the server, ignored on input).
	Source string `json:"source,omitempty"`
}

// secretField is one secret setting of a provider.
type secretField struct {
	// name is the JSON (and YAML) name.
	name string
	v    *string
}

// providerSecrets are p's secret settings: encrypted at rest (secrets.go),
// redacted on every read and in the audit, kept by a write that leaves them
// out or sends the redaction marker back. A new secret setting of
// config.Provider is added here, and only here.
func providerSecrets(p *Provider) []secretField {
	return []secretField{{"client_secret", &p.ClientSecret}, {"sp_key", &p.SPKey}}
}

// fileSettings are p's settings that name a file on the server, with what
// to give over the API instead.
func fileSettings(p *Provider) []struct{ name, value, instead string } {
	return []struct{ name, value, instead string }{
		{"metadata_file", p.MetadataFile, "the metadata XML inline (metadata) or its metadata_url"},
		{"sp_key_file", p.SPKeyFile, "the PEM key inline (sp_key; stored encrypted, never shown)"},
		{"sp_cert_file", p.SPCertFile, "the PEM certificate inline (sp_cert)"},
	}
}

// fileSettingProblems refuses, in every API tenant of st, the settings
// that name a file on the server.
func fileSettingProblems(st *State) []Problem {
	var probs []Problem
	for i := range st.Tenants {
		probs = append(probs, st.Tenants[i].fileSettingProblems()...)
	}
	return probs
}

// fileSettingProblems refuses the tenant's settings that name a file on
// the server: the API must not make the server read its own files (a key,
// a password file) into a connector or an error message.
func (t *Tenant) fileSettingProblems() []Problem {
	var probs []Problem
	for i := range t.Providers {
		for _, f := range fileSettings(&t.Providers[i]) {
			if f.value != "" {
				probs = append(probs, Problem{Field: fmt.Sprintf("tenants[%s].providers[%d].%s", t.ID, i, f.name),
					Message: "names a file on the server, which the admin API cannot set: give " + f.instead})
			}
		}
	}
	return probs
}

// Config returns an API tenant as the configuration model, with a problem
// for each setting the API refuses (a file on the server, left out of the
// result): its verified
// domains only (an unverified domain routes no one and vouches for no
// email), in a copy whose providers may be changed (defaults applied).
func (t *Tenant) Config() (config.Tenant, []Problem) {
	ct := t.Tenant
	ct.Domains = t.VerifiedDomains()
	ct.Providers = slices.Clone(ct.Providers)
	for i := range ct.Providers {
		// Refused, and left out so that nothing downstream reads the file.
		p := &ct.Providers[i]
		p.MetadataFile, p.SPKeyFile, p.SPCertFile = "", "", ""
	}
	return ct, t.fileSettingProblems()
}

// State is the whole API-managed configuration: one versioned document in
// the store, written atomically, so no reader ever sees half a change.
type State struct {
	// Version increases by one with every change.
	Version int64 `json:"version"`
	// Tenants are sorted by id.
	// They are pointers so that a new version copies 100k pointers, not
	// 100k tenants; a tenant is never changed in place once in a State
	// (putTenant replaces it).
	Tenants []*Tenant `json:"tenants"`
	// Clients are sorted by id.
	Clients []Client `json:"clients"`
	// UpdatedAt and UpdatedBy describe the last change.
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `json:"updated_by,omitempty"`

	// owners maps a verified domain to its tenant, built on first use and
	// then carried from one version to the next (copy-on-write: a change
	// copies the shards it touches, not the index of every tenant).
	owners *cowmap.Map[string]
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
	if s.owners != nil {
		c.owners = s.owners.Clone() // s is published: only the copy changes
	}
	return &c
}

// owner returns the tenant that verified domain, indexing on first use.
func (s *State) owner(domain string) (string, bool) {
	if s.owners == nil {
		s.owners = cowmap.New[string](2 * len(s.Tenants))
		for _, t := range s.Tenants {
			for _, d := range t.Domains {
				if d.Verified {
					s.owners.Set(d.Name, t.ID)
				}
			}
		}
	}
	return s.owners.Get(domain)
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
				if s.owners.Value(d.Name) == t.ID {
					s.owners.Delete(d.Name)
				}
			}
		}
		s.Tenants[i] = &t
	} else {
		s.Tenants = slices.Insert(s.Tenants, i, &t)
	}
	if s.owners != nil {
		for _, d := range t.Domains {
			if d.Verified {
				s.owners.Set(d.Name, t.ID)
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
		t.Providers[i] = redactProvider(t.Providers[i])
	}
	return t
}

// redactProvider returns p with every secret replaced by a marker.
func redactProvider(p Provider) Provider {
	for _, f := range providerSecrets(&p) {
		if *f.v != "" {
			*f.v = redacted
		}
	}
	return p
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
