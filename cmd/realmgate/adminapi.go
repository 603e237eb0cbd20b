package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/providers/oidc"
	"github.com/realmgate/realmgate/realm"
	"github.com/realmgate/realmgate/transform"
)

// probeTimeout bounds fetching one new IdP's discovery document or metadata at write.
const probeTimeout = 10 * time.Second

// probeParallel is how many new IdPs are probed at once (a batch may add thousands).
const probeParallel = 8

// adminCompiler turns the admin API's state, merged with the configuration
// file, into the broker's directory, with the same conversions and the same
// validation as the file (wire.go's connector and convertRules, and
// config.Validate over the merged configuration). Connectors and rule
// engines are cached by content, so a change recompiles only what changed
// and an unchanged IdP keeps its fetched discovery document.
type adminCompiler struct {
	file   *config.Config
	logger *slog.Logger

	mu      sync.Mutex
	gen     int
	conns   map[[32]byte]*cachedConn
	engines map[[32]byte]*cachedEngine
}

type cachedConn struct {
	conn   providers.Connector
	probed bool
	used   int
}

type cachedEngine struct {
	eng  *transform.Engine
	used int
}

var _ admin.Compiler = (*adminCompiler)(nil)

// newAdminCompiler returns a compiler over the validated file configuration,
// which it does not change.
func newAdminCompiler(file *config.Config, logger *slog.Logger) *adminCompiler {
	return &adminCompiler{file: file, logger: logger, conns: map[[32]byte]*cachedConn{}, engines: map[[32]byte]*cachedEngine{}}
}

// merged returns the file configuration with the API's tenants (verified
// domains only) and clients appended, defaults applied. apiFrom is the
// index of the first API tenant; problems are decoding problems.
func (ac *adminCompiler) merged(st *admin.State) (*config.Config, int, []admin.Problem) {
	c := *ac.file
	c.Tenants = make([]config.Tenant, 0, len(ac.file.Tenants)+len(st.Tenants))
	for _, t := range ac.file.Tenants {
		t.Providers = slices.Clone(t.Providers) // ApplyDefaults writes into them
		c.Tenants = append(c.Tenants, t)
	}
	var probs []admin.Problem
	for _, t := range st.Tenants {
		ct, p := configTenant(t)
		probs = append(probs, p...)
		c.Tenants = append(c.Tenants, ct)
	}
	c.Clients = slices.Clone(ac.file.Clients)
	for _, cl := range st.Clients {
		c.Clients = append(c.Clients, config.Client{ID: cl.ID, Secret: cl.Secret, RedirectURIs: cl.RedirectURIs,
			PostLogoutRedirectURIs: cl.PostLogoutRedirectURIs, AllowedTenants: cl.AllowedTenants,
			BackchannelLogoutURI: cl.BackchannelLogoutURI, AllowedIdPs: cl.AllowedIdPs})
	}
	c.ApplyDefaults()
	return &c, len(ac.file.Tenants), probs
}

// configTenant converts an API tenant into the file's model; unverified
// domains are left out, so they route no one (and vouch for no email).
func configTenant(t admin.Tenant) (config.Tenant, []admin.Problem) {
	ct := config.Tenant{ID: t.ID, Name: t.Name, Domains: t.VerifiedDomains(), Subdomain: t.Subdomain, IPRanges: t.IPRanges}
	var probs []admin.Problem
	for i, p := range t.Providers {
		cp := config.Provider{ID: p.ID, Type: p.Type, Name: p.Name, Issuer: p.Issuer, ClientID: p.ClientID,
			ClientSecret: p.ClientSecret, Scopes: p.Scopes, AuthURL: p.AuthURL, TokenURL: p.TokenURL,
			UserInfoURL: p.UserInfoURL, HostedDomain: p.HostedDomain, AllowedTenants: p.AllowedTenants,
			Accounts: p.Accounts, MetadataURL: p.MetadataURL, Metadata: p.Metadata, EntityID: p.EntityID,
			Binding: p.Binding, NameIDFormat: p.NameIDFormat, SubjectAttribute: p.SubjectAttribute,
			IdPInitiated: p.IdPInitiated, RelayStateAllowlist: p.RelayStateAllowlist}
		if p.ClockSkew != "" {
			d, err := config.ParseDuration(p.ClockSkew)
			if err != nil {
				probs = append(probs, admin.Problem{Field: fmt.Sprintf("tenants[%s].providers[%d].clock_skew", t.ID, i), Message: err.Error()})
			}
			cp.ClockSkew = d
		}
		ct.Providers = append(ct.Providers, cp)
	}
	ct.Rules = configRules(t.Rules)
	return ct, probs
}

func configRules(in []admin.Rule) []config.Rule {
	out := make([]config.Rule, 0, len(in))
	for _, r := range in {
		cr := config.Rule{Name: r.Name, If: r.If, Set: r.Set, Add: r.Add, Remove: r.Remove, Deny: r.Deny, Stop: r.Stop}
		if r.Map != nil {
			cr.Map = &config.MapRule{From: r.Map.From, To: r.Map.To, Table: r.Map.Table, Default: r.Map.Default}
		}
		out = append(out, cr)
	}
	return out
}

var (
	tenantPath = regexp.MustCompile(`^tenants\[(\d+)\]`)
	clientPath = regexp.MustCompile(`^clients\[(\d+)\]`)
	domainPath = regexp.MustCompile(`^\.domains\[(\d+)\]`)
)

// fieldPath names an entry by id instead of its index in the merged file:
// tenants[3].domains[0] becomes tenants[acme].domains[acme.example].
func fieldPath(c *config.Config, field string) string {
	if m := tenantPath.FindStringSubmatch(field); m != nil {
		i, _ := strconv.Atoi(m[1])
		if i < len(c.Tenants) {
			t := c.Tenants[i]
			rest := field[len(m[0]):]
			if d := domainPath.FindStringSubmatch(rest); d != nil {
				if j, _ := strconv.Atoi(d[1]); j < len(t.Domains) {
					rest = ".domains[" + t.Domains[j] + "]" + rest[len(d[0]):]
				}
			}
			return "tenants[" + t.ID + "]" + rest
		}
	}
	if m := clientPath.FindStringSubmatch(field); m != nil {
		i, _ := strconv.Atoi(m[1])
		if i < len(c.Clients) {
			return "clients[" + c.Clients[i].ID + "]" + field[len(m[0]):]
		}
	}
	return field
}

// Compile implements admin.Compiler.
func (ac *adminCompiler) Compile(ctx context.Context, st *admin.State, probe bool) (*admin.Compiled, error) {
	c, apiFrom, probs := ac.merged(st)
	if err := c.Validate(); err != nil {
		var ve *config.ValidationError
		if !errors.As(err, &ve) {
			return nil, err
		}
		for _, p := range ve.Problems {
			probs = append(probs, admin.Problem{Field: fieldPath(c, p.Field), Message: p.Message})
		}
	}
	ac.mu.Lock()
	defer ac.mu.Unlock()
	ac.gen++
	var tenants []realm.Tenant
	var idps []broker.IdP
	var fresh []probeJob
	engines := make(map[string]*transform.Engine, len(c.Tenants))
	global := convertRules(c.Rules)
	for i, t := range c.Tenants {
		fromAPI := i >= apiFrom
		rt := realm.Tenant{ID: t.ID, Name: t.Name, Domains: t.Domains, Subdomain: t.Subdomain, Default: t.Default}
		for _, r := range t.IPRanges {
			if p, err := netip.ParsePrefix(r); err == nil {
				rt.IPRanges = append(rt.IPRanges, p) // a bad one is a validation problem already
			}
		}
		for j := range t.Providers {
			p := &t.Providers[j]
			cc, err := ac.connector(p, c.Issuer)
			if errors.Is(err, errUnsupportedProvider) && !fromAPI {
				continue // as buildBroker: logged there at start
			}
			if err != nil {
				probs = append(probs, admin.Problem{Field: fieldPath(c, fmt.Sprintf("tenants[%d].providers[%d]", i, j)), Message: err.Error()})
				continue
			}
			if probe && fromAPI && !cc.probed {
				fresh = append(fresh, probeJob{field: fieldPath(c, fmt.Sprintf("tenants[%d].providers[%d]", i, j)), p: p, cc: cc})
			}
			rt.IdPs = append(rt.IdPs, p.ID)
			idps = append(idps, broker.IdP{ID: p.ID, Tenant: t.ID, Name: p.Name, Connector: cc.conn})
		}
		if rt.Name == "" {
			rt.Name = t.ID
		}
		tenants = append(tenants, rt)
		eng, err := ac.engine(global, t)
		if err != nil {
			probs = append(probs, admin.Problem{Field: fieldPath(c, fmt.Sprintf("tenants[%d].rules", i)), Message: err.Error()})
		} else if eng != nil {
			engines[t.ID] = eng
		}
	}
	probs = append(probs, ac.probe(ctx, fresh)...)
	ac.sweep()
	if len(probs) > 0 {
		return nil, &admin.ValidationError{Problems: probs}
	}
	res, err := realm.New(tenants, realm.Options{BaseDomain: c.BaseDomain})
	if err != nil {
		return nil, &admin.ValidationError{Problems: []admin.Problem{{Message: err.Error()}}}
	}
	clients := make([]broker.Client, 0, len(c.Clients))
	for _, cl := range c.Clients {
		clients = append(clients, broker.Client{ID: cl.ID, Secret: cl.Secret, RedirectURIs: cl.RedirectURIs,
			PostLogoutRedirectURIs: cl.PostLogoutRedirectURIs, AllowedTenants: cl.AllowedTenants, AllowedIdPs: cl.AllowedIdPs,
			BackchannelLogoutURI: cl.BackchannelLogoutURI})
	}
	return &admin.Compiled{Directory: broker.Directory{Resolver: res, IdPs: idps, Rules: engines}, Clients: clients}, nil
}

// contentKey hashes v's JSON with a kind, as a cache key.
func contentKey(kind string, v ...any) [32]byte {
	h := sha256.New()
	h.Write([]byte(kind))
	for _, x := range v {
		b, _ := json.Marshal(x)
		h.Write(b)
		h.Write([]byte{0})
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// connector returns the cached connector for p, building it on a miss.
func (ac *adminCompiler) connector(p *config.Provider, issuer string) (*cachedConn, error) {
	k := contentKey("idp", p, issuer)
	if cc, ok := ac.conns[k]; ok {
		cc.used = ac.gen
		return cc, nil
	}
	conn, err := connector(p, issuer, ac.logger)
	if err != nil {
		return nil, err
	}
	cc := &cachedConn{conn: conn, used: ac.gen}
	ac.conns[k] = cc
	return cc, nil
}

// engine returns the tenant's compiled rules (global rules first), or nil
// when there are none at all (claims pass through unchanged).
func (ac *adminCompiler) engine(global []transform.Rule, t config.Tenant) (*transform.Engine, error) {
	if len(global) == 0 && len(t.Rules) == 0 {
		return nil, nil
	}
	k := contentKey("rules", t.ID, global, t.Rules)
	if ce, ok := ac.engines[k]; ok {
		ce.used = ac.gen
		return ce.eng, nil
	}
	eng, err := transform.Compile(global, convertRules(t.Rules), transform.Options{Tenant: t.ID})
	if err != nil {
		return nil, err
	}
	ac.engines[k] = &cachedEngine{eng: eng, used: ac.gen}
	return eng, nil
}

// sweep drops cache entries unused by the last two compilations (the one
// applied and the one just made).
func (ac *adminCompiler) sweep() {
	for k, cc := range ac.conns {
		if cc.used < ac.gen-1 {
			delete(ac.conns, k)
		}
	}
	for k, ce := range ac.engines {
		if ce.used < ac.gen-1 {
			delete(ac.engines, k)
		}
	}
}

type probeJob struct {
	field string
	p     *config.Provider
	cc    *cachedConn
}

// prober is a connector that can check its upstream now (SAML metadata).
type prober interface {
	Refresh(ctx context.Context) error
}

// probe fetches and checks each new IdP's discovery document (OIDC, with
// the connector's own issuer check, S23) or metadata (SAML metadata_url),
// a few at a time, and returns a problem per failure.
func (ac *adminCompiler) probe(ctx context.Context, jobs []probeJob) []admin.Problem {
	var mu sync.Mutex
	var probs []admin.Problem
	sem := make(chan struct{}, probeParallel)
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			var err error
			switch conn := j.cc.conn.(type) {
			case *oidc.Connector:
				// LoginURL runs discovery and its checks; the URL is thrown away.
				_, _, err = conn.LoginURL(pctx, providers.LoginRequest{State: "probe", Nonce: "probe",
					CodeVerifier: strings.Repeat("p", 43), CallbackURL: ac.file.Issuer + "/callback/" + j.p.ID})
				if err != nil {
					err = fmt.Errorf("discovery at %s failed: %w", j.p.Issuer, err)
				}
			case prober:
				if j.p.MetadataURL != "" {
					if err = conn.Refresh(pctx); err != nil {
						err = fmt.Errorf("metadata at %s failed: %w", j.p.MetadataURL, err)
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				probs = append(probs, admin.Problem{Field: j.field, Message: err.Error()})
			} else {
				j.cc.probed = true
			}
		}()
	}
	wg.Wait()
	slices.SortFunc(probs, func(a, b admin.Problem) int { return strings.Compare(a.Field, b.Field) })
	return probs
}

// Engine implements admin.Compiler: the tenant's candidate rules for a dry run.
func (ac *adminCompiler) Engine(tenant string, rules []admin.Rule) (*transform.Engine, error) {
	eng, err := transform.Compile(convertRules(ac.file.Rules), convertRules(configRules(rules)), transform.Options{Tenant: tenant})
	if err != nil {
		return nil, &admin.ValidationError{Problems: []admin.Problem{{Field: "rules", Message: err.Error()}}}
	}
	return eng, nil
}

// adminTenant converts a file tenant for read-only listing.
func adminTenant(t config.Tenant) admin.Tenant {
	at := admin.Tenant{ID: t.ID, Name: t.Name, Subdomain: t.Subdomain, IPRanges: t.IPRanges}
	for _, d := range t.Domains {
		at.Domains = append(at.Domains, admin.Domain{Name: d})
	}
	for _, p := range t.Providers {
		ap := admin.Provider{ID: p.ID, Type: p.Type, Name: p.Name, Issuer: p.Issuer, ClientID: p.ClientID,
			ClientSecret: p.ClientSecret, Scopes: p.Scopes, AuthURL: p.AuthURL, TokenURL: p.TokenURL,
			UserInfoURL: p.UserInfoURL, HostedDomain: p.HostedDomain, AllowedTenants: p.AllowedTenants,
			Accounts: p.Accounts, MetadataURL: p.MetadataURL, EntityID: p.EntityID, Binding: p.Binding,
			NameIDFormat: p.NameIDFormat, SubjectAttribute: p.SubjectAttribute, IdPInitiated: p.IdPInitiated,
			RelayStateAllowlist: p.RelayStateAllowlist}
		if p.ClockSkew != 0 {
			ap.ClockSkew = p.ClockSkew.String()
		}
		at.Providers = append(at.Providers, ap)
	}
	for _, r := range t.Rules {
		ar := admin.Rule{Name: r.Name, If: r.If, Set: r.Set, Add: r.Add, Remove: r.Remove, Deny: r.Deny, Stop: r.Stop}
		if r.Map != nil {
			ar.Map = &admin.MapRule{From: r.Map.From, To: r.Map.To, Table: r.Map.Table, Default: r.Map.Default}
		}
		at.Rules = append(at.Rules, ar)
	}
	return at
}

// newAdminService builds the admin API over a running broker; nil when the
// configuration turns it off (no tokens).
func newAdminService(cfg *config.Config, store broker.Store, srv *broker.Server, logger, audit *slog.Logger) (*admin.Service, error) {
	if len(cfg.AdminAPI.Tokens) == 0 {
		return nil, nil
	}
	opts := admin.Options{Store: store, Compiler: newAdminCompiler(cfg, logger), Issuer: cfg.Issuer,
		DNS: admin.NewDNSResolver(cfg.AdminAPI.DNSResolver), Logger: logger, Audit: audit}
	fileClients := map[string]bool{}
	for _, c := range cfg.Clients {
		fileClients[c.ID] = true
		opts.FileClients = append(opts.FileClients, admin.Client{ID: c.ID, Secret: c.Secret, RedirectURIs: c.RedirectURIs,
			PostLogoutRedirectURIs: c.PostLogoutRedirectURIs, AllowedTenants: c.AllowedTenants,
			BackchannelLogoutURI: c.BackchannelLogoutURI, AllowedIdPs: c.AllowedIdPs})
	}
	for _, t := range cfg.Tenants {
		opts.FileTenants = append(opts.FileTenants, adminTenant(t))
	}
	for _, t := range cfg.AdminAPI.Tokens {
		opts.Tokens = append(opts.Tokens, admin.Token{Name: t.Name, Token: t.Token, Tenant: t.Tenant})
	}
	var warned bool
	opts.Apply = func(c *admin.Compiled) error {
		if err := srv.Reconfigure(c.Directory); err != nil {
			return err
		}
		// The broker builds its client registry once, from the file: clients
		// added through the API are validated and stored, and served once
		// broker.Directory carries clients (not yet). Say so once.
		if !warned && slices.ContainsFunc(c.Clients, func(cl broker.Client) bool { return !fileClients[cl.ID] }) {
			warned = true
			logger.Warn("admin: clients stored through the admin API are not served yet: the broker's client registry comes from the configuration file")
		}
		return nil
	}
	return admin.New(opts)
}

// startAdminAPI starts the admin API on its own listener when configured:
// it loads the stored tenant state, applies it, keeps polling for changes
// and serves until ctx ends. It returns a channel closed when the listener
// has shut down (nil when the API is off).
func startAdminAPI(ctx context.Context, cfg *config.Config, store broker.Store, srv *broker.Server, logger, audit *slog.Logger) (<-chan struct{}, error) {
	svc, err := newAdminService(cfg, store, srv, logger, audit)
	if err != nil || svc == nil {
		return nil, err
	}
	if err := svc.Load(ctx); err != nil {
		logger.Error("admin: tenant state not loaded yet; retrying in the background", "err", err)
	}
	ln, err := net.Listen("tcp", cfg.AdminAPI.Listen)
	if err != nil {
		return nil, fmt.Errorf("admin api: listen %s: %w", cfg.AdminAPI.Listen, err)
	}
	logger.Info("admin API serving", "listen", ln.Addr().String(), "version", svc.Version())
	done := make(chan struct{})
	go svc.Run(ctx)
	go func() {
		defer close(done)
		if err := serveHTTP(ctx, ln, svc.Handler(), logger); err != nil {
			logger.Error("admin api", "err", err)
		}
	}()
	return done, nil
}
