// Package admin is realmgate's admin API: a REST + JSON interface, on its
// own listener, that creates, reads, updates and deletes tenants, their
// domains, IdPs and rules, and clients, without a restart.
//
// Every change is validated exactly like the configuration file (through a
// Compiler that cmd/realmgate supplies), refused whole with every problem
// listed, and written to the shared store as one new versioned document
// (created only if that version does not exist yet: a compare-and-swap), so
// nothing is ever half-applied. Every instance polls the version and applies
// a new one within a second; after a store outage it reloads in full.
// Tenants and clients of the configuration file are listed read-only.
//
// Domains added here route no user until a DNS TXT record proves control
// (or an operator overrides), and every change is an audit event naming who
// changed what, with the before and after values, secrets redacted.
package admin

import (
	"context"
	"crypto/cipher"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/branding"
	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/registration"
	"github.com/realmgate/realmgate/risk"
	"github.com/realmgate/realmgate/scim"
	"github.com/realmgate/realmgate/store"
	"github.com/realmgate/realmgate/transform"
	"github.com/realmgate/realmgate/users"
)

// DefaultPollInterval is how often an instance checks the store for a new version.
const DefaultPollInterval = 200 * time.Millisecond

// Errors of the package.
var (
	// ErrInvalid is wrapped by *ValidationError: a change was refused whole.
	ErrInvalid = errors.New("admin: invalid change")
	// ErrConflict means concurrent writers kept winning the race for the next version.
	ErrConflict = errors.New("admin: concurrent change, try again")
)

// Problem is one thing wrong with a change.
type Problem struct {
	// Field is the path of the offending value, like tenants[acme].providers[0].issuer.
	Field string `json:"field,omitempty"`
	// Message says what is wrong.
	Message string `json:"message"`
}

// ValidationError lists every problem that made a change be refused.
type ValidationError struct {
	// Problems are every problem found.
	Problems []Problem
}

// Error lists the problems, one "field: message" per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		if p.Field != "" {
			lines[i] = p.Field + ": " + p.Message
		} else {
			lines[i] = p.Message
		}
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns ErrInvalid.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

// Compiled is what the broker serves for one version of the API state
// merged with the configuration file.
type Compiled struct {
	// Directory holds every tenant (file and API), IdP and rule engine.
	Directory broker.Directory
	// Clients are every client (file and API).
	Clients []broker.Client
	// Changes, set by the Service when it hands the compilation to
	// Options.Apply, says what differs from the compilation applied before
	// (nil: unknown, apply the whole directory).
	Changes *Changes
}

// Changes says which tenants and whether clients differ between two
// compilations, so that applying one tenant's change touches that tenant
// only (broker.Server.ReconfigureTenants).
type Changes struct {
	// Since is the compilation applied before.
	Since *Compiled
	// Tenants are the ids of the API tenants added, changed or removed.
	Tenants []string
	// Clients says whether any API client was added, changed or removed.
	Clients bool
}

// Compiler turns API state into what the broker serves. cmd/realmgate
// implements it with the same code that loads the configuration file.
type Compiler interface {
	// Compile checks s together with the configuration file, exactly as the
	// file itself is checked, and returns what to serve, or a
	// *ValidationError listing every problem. With probe set (a change),
	// every IdP whose settings are new has its discovery document or
	// metadata fetched and checked; without it (a state read from the
	// store, checked by the instance that wrote it) a compiler may skip the
	// checks of each tenant alone and keep only those across tenants.
	Compile(ctx context.Context, s *State, probe bool) (*Compiled, error)
	// Engine compiles rules as tenant's (after the global rules), for a dry
	// run of rules not saved yet; a *ValidationError lists their problems.
	Engine(tenant string, rules []Rule) (*transform.Engine, error)
}

// TXTResolver looks up DNS TXT records; *net.Resolver is one.
type TXTResolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// Token is one admin credential.
type Token struct {
	// Name names the caller in audit events.
	Name string
	// Token is the bearer token.
	Token string
	// Tenant limits the token to one tenant; empty means an operator.
	Tenant string
}

// Options configure a Service.
type Options struct {
	// Store is the shared store holding the versioned state.
	Store broker.Store
	// Compiler validates and compiles a state.
	Compiler Compiler
	// Apply makes a compiled state live on this instance (broker Reconfigure).
	Apply func(*Compiled) error
	// Issuer is the broker's issuer; onboarding URLs derive from it.
	Issuer string
	// Onboarder gives the onboarding values of each IdP type; nil: those
	// of an OAuth 2.0 client (a redirect URI).
	Onboarder Onboarder
	// Tokens are the credentials the API accepts.
	Tokens []Token
	// FileTenants and FileClients are the configuration file's entries,
	// listed read-only (their secrets redacted). The service keeps
	// FileTenants without copying them (a copy was 244 MB at 100k file
	// tenants): they must not change once New is called.
	FileTenants []config.Tenant
	FileClients []config.Client
	// DNS answers domain verification lookups; nil means the system resolver.
	DNS TXTResolver
	// PollInterval is how often the store is checked; zero means
	// DefaultPollInterval. A store that tells of a commit as it happens
	// (store.RecordWaiter: Redis, memory) is also waited on between polls,
	// so a change applies without waiting for the next poll.
	PollInterval time.Duration
	// PollOnly turns the wait off: the store is only polled (tests that
	// step an instance by hand).
	PollOnly bool
	// Logger receives operational logs; Audit one event per admin change.
	Logger, Audit *slog.Logger
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed for the caller's IP in audit events and logs, by the broker's
	// rule (broker.IPExtractor, SECURITY S73); empty: the peer address.
	TrustedProxies []netip.Prefix
	// Secret is the server secret (keys.secret). The key that encrypts
	// provider and client secrets in the store is derived from it; empty
	// stores them in plaintext.
	Secret []byte
	// SCIMTokens keeps the tenants' SCIM provisioning tokens; nil turns
	// the token endpoints off (404).
	SCIMTokens *scim.Tokens
	// PreviousSecrets are server secrets Secret replaced
	// (keys.previous_secrets): secrets encrypted under one of them still
	// decrypt; every write encrypts under Secret.
	PreviousSecrets [][]byte
	// Users is the tenant user directory (the broker's Users()); nil: the
	// user endpoints answer 501.
	Users *users.Directory
	// Risk confirms users compromised, dismisses risk and lists risky
	// users (risk.go; *broker.Server); nil: those endpoints answer 501.
	Risk RiskAdmin
	// GlobalConditional is the file's global conditional access policies: a
	// dry run of a tenant without policies of its own uses them.
	GlobalConditional *risk.Set
	// Access keeps time-bound role grants (the broker); nil: the grant
	// endpoints answer 501.
	Access AccessGrants
	// Consents keeps users' consents to third-party clients (the broker);
	// nil: the consent endpoints answer 501.
	Consents Consents
	// RegistrationTokens keeps the initial access tokens of dynamic client
	// registration (registration.go); nil turns their endpoints off (404).
	RegistrationTokens *registration.Tokens
	// LogoGrace is how long a stored logo no branding names any more is
	// kept before it is deleted (logosweep.go); zero: branding.DefaultGrace.
	LogoGrace time.Duration
	// LogoSweepInterval is how often Run sweeps the stored logos; zero:
	// DefaultLogoSweepInterval; negative: never (tests call SweepLogos).
	LogoSweepInterval time.Duration
	// LogosInUse, when set, lists logos the sweep keeps besides those the
	// file and the API state name (the broker's: logos it fetched from a
	// logo_url).
	LogosInUse func() []string
}

// snapshot is one applied version.
type snapshot struct {
	state    *State
	compiled *Compiled
}

// Service is the admin API of one instance. Create it with New, call Load,
// run Run in a goroutine and serve Handler.
type Service struct {
	opts   Options
	tokens []credential
	files  map[string]*config.Tenant // Options.FileTenants by id, shown through fileTenant
	fileCl map[string]*Client
	echo   *echo.Echo
	aead   cipher.AEAD // encrypts secrets at rest; nil: plaintext (no Options.Secret)
	revKey []byte      // keys tenant revisions (State.revKey); nil without Options.Secret

	// previous decrypt secrets encrypted under Options.PreviousSecrets.
	previous []cipher.AEAD
	// staleLogged: a secret under a previous server secret was logged (guarded by mu).
	staleLogged bool

	rs     store.RecordStore // Options.Store's record sets (store.go)
	loaded atomic.Bool       // a state was read from the store and applied (Ready)

	mu       sync.Mutex // serializes writes and applies on this instance
	cur      atomic.Pointer[snapshot]
	outage   bool             // the last poll failed: reload in full once the store answers
	failed   int64            // a version that did not compile here; not retried until a newer one
	versions map[string]int64 // each applied record's version (store.go)
	stale    map[string]bool  // records with a secret under a previous server secret, or in plaintext
	sawStale bool             // open met such a secret (decodeRecord)

	logos        *branding.Sweeper // deletes logos no branding names (logosweep.go)
	sweepFailing bool              // the last sweep failed (logged once; Run only)
}

type credential struct {
	name, tenant string
	hash         [32]byte
}

// New checks opts and returns a Service holding an empty state; Load reads the store.
func New(opts Options) (*Service, error) {
	if opts.Store == nil || opts.Compiler == nil || opts.Apply == nil {
		return nil, errors.New("admin: store, compiler and apply are required")
	}
	if len(opts.Tokens) == 0 {
		return nil, errors.New("admin: no tokens: the API would accept no caller")
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Audit == nil {
		opts.Audit = opts.Logger.With("stream", "audit")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LogoSweepInterval == 0 {
		opts.LogoSweepInterval = DefaultLogoSweepInterval
	}
	aead, err := newSecretsAEAD(opts.Secret)
	if err != nil {
		return nil, err
	}
	revKey, err := newRevisionKey(opts.Secret)
	if err != nil {
		return nil, err
	}
	var previous []cipher.AEAD
	for _, p := range opts.PreviousSecrets {
		if aead == nil {
			break // previous secrets only with a current one
		}
		a, err := newSecretsAEAD(p)
		if err != nil {
			return nil, err
		}
		previous = append(previous, a)
	}
	rs, ok := opts.Store.(store.RecordStore)
	if !ok {
		return nil, fmt.Errorf("admin: the store (%T) keeps no record sets (store.RecordStore)", opts.Store)
	}
	s := &Service{opts: opts, files: make(map[string]*config.Tenant, len(opts.FileTenants)), fileCl: map[string]*Client{}, aead: aead, previous: previous, revKey: revKey,
		rs: rs, versions: map[string]int64{}, stale: map[string]bool{},
		logos: branding.NewSweeper(rs, branding.SweepOptions{Grace: opts.LogoGrace, Now: opts.Now})}
	for _, t := range opts.Tokens {
		if t.Name == "" || len(t.Token) < 32 {
			return nil, fmt.Errorf("admin: token %q: a name and at least 32 characters are required", t.Name)
		}
		s.tokens = append(s.tokens, credential{name: t.Name, tenant: t.Tenant, hash: sha256.Sum256([]byte(t.Token))})
	}
	for i := range opts.FileTenants {
		s.files[opts.FileTenants[i].ID] = &opts.FileTenants[i] // made into a Tenant when asked for (fileTenant)
	}
	for i := range opts.FileClients {
		c := Client{Client: opts.FileClients[i], Source: SourceFile}.redact()
		s.fileCl[c.ID] = &c
	}
	s.cur.Store(&snapshot{state: &State{}})
	s.echo = s.routes()
	return s, nil
}

// fileTenant is a file tenant as the API shows it: read-only, domains
// verified, secrets redacted.
func fileTenant(ct config.Tenant) Tenant {
	t := Tenant{Tenant: deepCopy(ct), Source: SourceFile}
	t.Tenant.Domains = nil // shown as Domains
	for _, d := range ct.Domains {
		t.Domains = append(t.Domains, Domain{Name: d, Verified: true, VerifiedBy: SourceFile})
	}
	return t.redact()
}

// Version returns the version of the API state applied on this instance.
func (s *Service) Version() int64 { return s.cur.Load().state.Version }

// Applied returns the API state applied on this instance and its
// compilation (nil before the first Load). Neither may be changed.
func (s *Service) Applied() (*State, *Compiled) {
	cur := s.cur.Load()
	return cur.state, cur.compiled
}

// Ready reports whether the stored tenant state has been read and applied
// on this instance (readiness: an instance routes API tenants only then).
func (s *Service) Ready() bool { return s.loaded.Load() }

// Load reads the newest state from the store and applies it. It fails when
// the store cannot be read or the state does not compile; Run retries.
func (s *Service) Load(ctx context.Context) error {
	return s.reload(ctx, true)
}

// Run reads the store every PollInterval until ctx ends, and at once at
// a commit when the store can tell of one (store.RecordWaiter), applying
// each new version; it reloads in full after the store was unreachable.
func (s *Service) Run(ctx context.Context) {
	w, canWait := s.opts.Store.(store.RecordWaiter)
	canWait = canWait && !s.opts.PollOnly && s.rs != nil
	t := time.NewTicker(s.opts.PollInterval)
	defer t.Stop()
	wait := canWait
	var lastSweep time.Time
	for {
		t0 := time.Now()
		if !wait || s.waitForCommit(ctx, w) != nil {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			return
		}
		before := s.Version()
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_ = s.reload(pctx, false)
		cancel()
		s.sweepLogosDue(ctx, &lastSweep) // logosweep.go
		// A wake-up that applied nothing (a migration under way, say) is
		// not waited for again at once: the next round waits for the ticker.
		wait = canWait && (s.Version() != before || time.Since(t0) >= s.opts.PollInterval/2)
	}
}

// waitForCommit waits until the store has a commit after the applied
// version (or one that failed here), at most PollInterval: the store is
// still read every PollInterval (a store that lost its state has no
// newer commit to wake anyone). An error (store unreachable, or not
// loaded yet) sends Run back to the ticker.
func (s *Service) waitForCommit(ctx context.Context, w store.RecordWaiter) error {
	if !s.loaded.Load() {
		return errors.New("admin: not loaded yet")
	}
	s.mu.Lock()
	after := max(s.cur.Load().state.Version, s.failed)
	outage := s.outage
	s.mu.Unlock()
	if outage {
		return errors.New("admin: store unreachable")
	}
	return w.WaitRecords(ctx, stateSet, after, s.opts.PollInterval)
}

// compiled returns the applied compilation, compiling the empty state on
// first use when nothing was applied yet.
func (s *Service) compiled(ctx context.Context) (*snapshot, error) {
	cur := s.cur.Load()
	if cur.compiled != nil {
		return cur, nil
	}
	c, err := s.opts.Compiler.Compile(ctx, cur.state, false)
	if err != nil {
		return nil, err
	}
	return &snapshot{state: cur.state, compiled: c}, nil
}

// caller is the authenticated admin.
type caller struct {
	name   string
	tenant string // "" for an operator
}

func (c *caller) operator() bool { return c.tenant == "" }

func (c *caller) can(tenant string) bool { return c.tenant == "" || c.tenant == tenant }

// mutation changes a copy of the state; it returns the audit's before and
// after values (nil when absent) or an error refusing the change.
type mutation func(st *State) (before, after any, err error)
