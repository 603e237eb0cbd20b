package assemble

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
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

// Compiler turns the admin API's state, merged with the configuration
// file, into the broker's directory, with the same assembly as boot
// (Builder) and the same
// validation as the file: each API tenant is checked by config.Validate
// beside the file's tenants, and what spans tenants (ids, domains,
// subdomains, IdP ids, members, clients' references) is checked over the
// whole set. Compiled tenants are cached by revision, connectors and rule
// engines by content, so a change recompiles only what changed (10k tenants
// stay well under the one-second budget) and an unchanged IdP keeps its
// fetched discovery document.
type Compiler struct {
	file   *config.Config
	logger *slog.Logger
	http   *http.Client // the file's outbound client: admin-set URLs reach only what the file allows (S70)

	mu      sync.Mutex
	gen     int
	files   []*tenantEntry // the file's tenants, compiled once
	tenants map[string]*tenantEntry
	conns   map[[32]byte]*cachedConn
	engines map[[32]byte]*cachedEngine
}

// tenantEntry is one compiled tenant.
type tenantEntry struct {
	ct       config.Tenant // defaults applied
	rt       realm.Tenant
	idps     []broker.IdP
	conns    []*cachedConn     // of idps, in order
	provs    []config.Provider // of idps, in order
	eng      *transform.Engine
	policy   *broker.TenantPolicy
	members  []broker.Membership
	problems []admin.Problem // found in the tenant alone
	used     int
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

var _ admin.Compiler = (*Compiler)(nil)

// NewCompiler returns a compiler over the validated file configuration,
// which it does not change; hc is the outbound client of every connector
// it builds (SECURITY S70).
func NewCompiler(file *config.Config, hc *http.Client, logger *slog.Logger) *Compiler {
	return &Compiler{file: file, logger: logger, http: hc, tenants: map[string]*tenantEntry{},
		conns: map[[32]byte]*cachedConn{}, engines: map[[32]byte]*cachedEngine{}}
}

var (
	tenantPath = regexp.MustCompile(`^tenants\[(\d+)\]`)
	clientPath = regexp.MustCompile(`^clients\[(\d+)\]`)
	domainPath = regexp.MustCompile(`^\.domains\[(\d+)\]`)
)

// fieldPath names an entry by id instead of its index in c:
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

// alone returns the file configuration with only the given tenants and
// clients beside the file's own tenants (whose providers are copied:
// ApplyDefaults writes into them), defaults applied.
func (ac *Compiler) alone(tenants []config.Tenant, clients []config.Client, withFileTenants bool) *config.Config {
	c := *ac.file
	c.Tenants = nil
	if withFileTenants {
		for _, t := range ac.file.Tenants {
			t.Providers = slices.Clone(t.Providers)
			c.Tenants = append(c.Tenants, t)
		}
	}
	c.Tenants = append(c.Tenants, tenants...)
	c.Clients = clients
	c.ApplyDefaults()
	return &c
}

// validationProblems runs config.Validate over c and returns the problems
// of fields under one of prefixes, named by id, except those skip says
// are checked elsewhere (references to other API tenants).
func validationProblems(c *config.Config, prefixes []string, skip func(field, msg string) bool) []admin.Problem {
	var ve *config.ValidationError
	if err := c.Validate(); !errors.As(err, &ve) {
		return nil
	}
	var out []admin.Problem
	for _, p := range ve.Problems {
		ok := false
		for _, pre := range prefixes {
			if p.Field == pre || strings.HasPrefix(p.Field, pre+".") || strings.HasPrefix(p.Field, pre+"[") {
				ok = true
			}
		}
		if ok && (skip == nil || !skip(p.Field, p.Message)) {
			out = append(out, admin.Problem{Field: fieldPath(c, p.Field), Message: p.Message})
		}
	}
	return out
}

var memberIdPField = regexp.MustCompile(`\.members\[\d+\]\.idp$`)

// compileTenant validates and compiles one tenant. File tenants are valid
// already; their unsupported providers are left out as buildBroker does.
func (ac *Compiler) compileTenant(t config.Tenant, fromAPI bool, pre []admin.Problem) *tenantEntry {
	e := &tenantEntry{problems: pre, used: ac.gen}
	if fromAPI {
		c := ac.alone([]config.Tenant{t}, nil, true)
		i := len(c.Tenants) - 1
		t = c.Tenants[i]
		e.problems = append(e.problems, validationProblems(c, []string{fmt.Sprintf("tenants[%d]", i)}, func(field, _ string) bool {
			return memberIdPField.MatchString(field) // another API tenant's IdP: checked over the whole set
		})...)
	}
	e.ct = t
	// The one assembly path (internal/assemble), with this compiler's
	// caches: connectors by content (an unchanged IdP keeps its fetched
	// discovery document) and engines by rules.
	b := Builder{Issuer: ac.file.Issuer, HTTP: ac.http, Logger: ac.logger, Global: ac.file.Rules, SkipUnsupported: !fromAPI,
		Connect: func(p *config.Provider) (providers.Connector, error) {
			cc, err := ac.connector(p, ac.file.Issuer)
			if err != nil {
				return nil, err
			}
			e.conns = append(e.conns, cc)
			return cc.conn, nil
		},
		Compile: ac.engine,
	}
	ct, probs := b.Tenant(t)
	for _, p := range probs {
		if strings.Contains(p.Field, ".ip_ranges[") {
			continue // reported by validation already
		}
		e.problems = append(e.problems, admin.Problem{Field: p.Field, Message: p.Message})
	}
	e.rt, e.idps, e.provs, e.eng, e.policy, e.members = ct.Realm, ct.IdPs, ct.Providers, ct.Engine, ct.Policy, ct.Members
	return e
}

// apiTenant returns the compiled API tenant, from the cache when its revision is known.
func (ac *Compiler) apiTenant(t admin.Tenant) *tenantEntry {
	rev := t.Revision
	if rev == "" {
		k := contentKey("tenant", t)
		rev = fmt.Sprintf("%x", k[:8])
	}
	key := t.ID + "\x00" + rev
	if e, ok := ac.tenants[key]; ok {
		e.used = ac.gen
		for _, cc := range e.conns {
			cc.used = ac.gen
		}
		return e
	}
	// Only verified domains route users; settings naming a server file are
	// refused here too, so the compiler never reads a file an API caller
	// named, whatever the stored state says.
	ct, probs := t.Config()
	e := ac.compileTenant(ct, true, probs)
	if t.Incarnation != "" {
		// S68: grants of an earlier tenant under the same id are refused.
		pol := broker.TenantPolicy{}
		if e.policy != nil {
			pol = *e.policy
		}
		pol.Incarnation = t.Incarnation
		e.policy = &pol
	}
	ac.tenants[key] = e
	return e
}

// Compile implements admin.Compiler.
func (ac *Compiler) Compile(ctx context.Context, st *admin.State, probe bool) (*admin.Compiled, error) {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	ac.gen++
	if ac.files == nil {
		for _, t := range ac.alone(nil, nil, true).Tenants {
			ac.files = append(ac.files, ac.compileTenant(t, false, nil))
		}
	}
	all := slices.Clone(ac.files)
	for _, e := range ac.files {
		for _, cc := range e.conns {
			cc.used = ac.gen
		}
	}
	var probs []admin.Problem
	for _, t := range st.Tenants {
		e := ac.apiTenant(t)
		probs = append(probs, e.problems...)
		all = append(all, e)
	}
	probs = append(probs, crossTenantProblems(all, len(ac.files))...)
	tenantIDs, idpIDs := map[string]bool{}, map[string]bool{}
	for _, e := range all {
		tenantIDs[e.ct.ID] = true
		for _, p := range e.idps {
			idpIDs[p.ID] = true
		}
	}
	probs = append(probs, ac.clientProblems(st.Clients, tenantIDs, idpIDs)...)
	if probe {
		var jobs []probeJob
		for _, e := range all[len(ac.files):] {
			for j, cc := range e.conns {
				if !cc.probed {
					jobs = append(jobs, probeJob{field: fmt.Sprintf("tenants[%s].providers[%d]", e.ct.ID, j), p: &e.provs[j], cc: cc})
				}
			}
		}
		probs = append(probs, ac.probe(ctx, jobs)...)
	}
	ac.sweep()
	if len(probs) > 0 {
		return nil, &admin.ValidationError{Problems: probs}
	}
	d := broker.Directory{Rules: make(map[string]*transform.Engine, len(all)), Policies: map[string]broker.TenantPolicy{},
		Actor: "configuration"}
	if st.UpdatedBy != "" {
		d.Actor = "admin:" + st.UpdatedBy // whose change ends the sessions of what it deleted
	}
	tenants := make([]realm.Tenant, 0, len(all))
	for _, e := range all {
		tenants = append(tenants, e.rt)
		d.IdPs = append(d.IdPs, e.idps...)
		d.Memberships = append(d.Memberships, e.members...)
		if e.eng != nil {
			d.Rules[e.ct.ID] = e.eng
		}
		if e.policy != nil {
			d.Policies[e.ct.ID] = *e.policy
		}
	}
	res, err := realm.New(tenants, realm.Options{BaseDomain: ac.file.BaseDomain})
	if err != nil {
		return nil, &admin.ValidationError{Problems: []admin.Problem{{Field: "tenants", Message: err.Error()}}}
	}
	d.Resolver = res
	clients := make([]broker.Client, 0, len(ac.file.Clients)+len(st.Clients))
	for _, cl := range ac.file.Clients {
		clients = append(clients, Client(cl))
	}
	for _, cl := range st.Clients {
		clients = append(clients, Client(cl.Client))
	}
	d.Clients = clients
	return &admin.Compiled{Directory: d, Clients: clients}, nil
}

// crossTenantProblems checks what config.Validate checks across tenants,
// over every tenant (the file's first): unique ids, domains, subdomains
// and IdP ids, one default tenant at most, and members naming an existing IdP.
func crossTenantProblems(all []*tenantEntry, apiFrom int) []admin.Problem {
	var probs []admin.Problem
	ids, domains, subs, idps := map[string]string{}, map[string]string{}, map[string]string{}, map[string]string{}
	deflt := ""
	for i, e := range all {
		t := e.ct
		api := i >= apiFrom
		path := "tenants[" + t.ID + "]"
		if t.Default {
			if deflt != "" && api {
				probs = append(probs, admin.Problem{Field: path + ".default",
					Message: fmt.Sprintf("tenants %q and %q are both default: at most one tenant may be", deflt, t.ID)})
			}
			deflt = cmp.Or(deflt, t.ID)
		}
		if _, dup := ids[t.ID]; dup && api {
			probs = append(probs, admin.Problem{Field: path + ".id", Message: fmt.Sprintf("tenant id %q is already used", t.ID)})
		}
		ids[t.ID] = t.ID
		for _, d := range t.Domains {
			nd := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
			if o, dup := domains[nd]; dup && o != t.ID && api {
				probs = append(probs, admin.Problem{Field: path + ".domains[" + nd + "]",
					Message: fmt.Sprintf("domain %q is claimed by two tenants: %q and %q", nd, o, t.ID)})
			}
			domains[nd] = t.ID
		}
		if t.Subdomain != "" {
			if o, dup := subs[t.Subdomain]; dup && o != t.ID && api {
				probs = append(probs, admin.Problem{Field: path + ".subdomain", Message: fmt.Sprintf("subdomain %q is already used by tenant %q", t.Subdomain, o)})
			}
			subs[t.Subdomain] = t.ID
		}
		for j, p := range t.Providers {
			if o, dup := idps[p.ID]; dup && o != t.ID && api {
				probs = append(probs, admin.Problem{Field: fmt.Sprintf("%s.providers[%d].id", path, j),
					Message: fmt.Sprintf("provider id %q is already used in tenant %q: provider ids are unique across tenants", p.ID, o)})
			}
			idps[p.ID] = t.ID
		}
	}
	for _, e := range all[apiFrom:] {
		for j, m := range e.ct.Members {
			if _, ok := idps[m.IdP]; !ok {
				probs = append(probs, admin.Problem{Field: fmt.Sprintf("tenants[%s].members[%d].idp", e.ct.ID, j),
					Message: fmt.Sprintf("unknown identity provider %q", m.IdP)})
			}
		}
	}
	return probs
}

var clientRefField = regexp.MustCompile(`\.(allowed_tenants|allowed_idps)\[\d+\]$`)

// clientProblems checks the API's clients like the file's, beside the
// file's clients; references to tenants and IdPs are checked against every
// tenant and IdP, the API's included.
func (ac *Compiler) clientProblems(api []admin.Client, tenants, idps map[string]bool) []admin.Problem {
	if len(api) == 0 {
		return nil
	}
	clients := slices.Clone(ac.file.Clients)
	for _, cl := range api {
		clients = append(clients, cl.Client)
	}
	c := ac.alone(nil, clients, false)
	var prefixes []string
	for i := len(ac.file.Clients); i < len(clients); i++ {
		prefixes = append(prefixes, fmt.Sprintf("clients[%d]", i))
	}
	probs := validationProblems(c, prefixes, func(field, _ string) bool { return clientRefField.MatchString(field) })
	for _, cl := range api {
		for j, t := range cl.AllowedTenants {
			if t != config.AllowAllTenants && !tenants[t] {
				probs = append(probs, admin.Problem{Field: fmt.Sprintf("clients[%s].allowed_tenants[%d]", cl.ID, j), Message: fmt.Sprintf("unknown tenant %q", t)})
			}
		}
		for j, p := range cl.AllowedIdPs {
			if !idps[p] {
				probs = append(probs, admin.Problem{Field: fmt.Sprintf("clients[%s].allowed_idps[%d]", cl.ID, j), Message: fmt.Sprintf("unknown identity provider %q", p)})
			}
		}
	}
	return probs
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
func (ac *Compiler) connector(p *config.Provider, issuer string) (*cachedConn, error) {
	k := contentKey("idp", p, issuer)
	if cc, ok := ac.conns[k]; ok {
		cc.used = ac.gen
		return cc, nil
	}
	conn, err := Connector(p, issuer, ac.http, ac.logger)
	if err != nil {
		return nil, err
	}
	cc := &cachedConn{conn: conn, used: ac.gen}
	ac.conns[k] = cc
	return cc, nil
}

// engine returns the tenant's compiled rules (global rules first), or nil
// when there are none at all (claims pass through unchanged).
func (ac *Compiler) engine(global []config.Rule, t config.Tenant) (*transform.Engine, error) {
	if len(global) == 0 && len(t.Rules) == 0 {
		return nil, nil
	}
	k := contentKey("rules", t.ID, global, t.Rules)
	if ce, ok := ac.engines[k]; ok {
		ce.used = ac.gen
		return ce.eng, nil
	}
	eng, err := Engine(global, t)
	if err != nil {
		return nil, err
	}
	ac.engines[k] = &cachedEngine{eng: eng, used: ac.gen}
	return eng, nil
}

// sweep drops cache entries unused by the last two compilations (the one
// applied and the one just made).
func (ac *Compiler) sweep() {
	for k, e := range ac.tenants {
		if e.used < ac.gen-1 {
			delete(ac.tenants, k)
		}
	}
	for k, cc := range ac.conns {
		if cc.used < ac.gen-1 {
			delete(ac.conns, k)
		}
	}
	for k, ce := range ac.engines {
		if ce.used < ac.gen-1 {
			delete(ac.engines, k) // a cached tenant keeps its engine; only a changed one compiles again
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
func (ac *Compiler) probe(ctx context.Context, jobs []probeJob) []admin.Problem {
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
func (ac *Compiler) Engine(tenant string, rules []admin.Rule) (*transform.Engine, error) {
	eng, err := transform.Compile(Rules(ac.file.Rules), Rules(rules), transform.Options{Tenant: tenant})
	if err != nil {
		return nil, &admin.ValidationError{Problems: []admin.Problem{{Field: "rules", Message: err.Error()}}}
	}
	return eng, nil
}
