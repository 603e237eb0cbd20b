package assemble

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"sort"
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
// (Builder) and the same validation as the file: each API tenant is
// checked by config.Validate beside the file's tenants, and what spans
// tenants (ids, domains, subdomains, IdP ids, members, clients'
// references) is checked over the whole set.
//
// It compiles incrementally: it keeps the last compilation that had no
// problem (its tenants by id and revision, an index of who claims which
// domain, subdomain and IdP id, and what it served) and compiles only the
// tenants whose revision changed, checking them against that index; the
// resolver, rules and IdPs of the result are the previous ones with those
// tenants replaced (realm.Resolver.Update). One more tenant among 100k
// costs about what it costs among ten, an unchanged IdP keeps its
// connector (and its fetched discovery document, never fetched again at a
// write), and an unchanged tenant keeps its compiled rules.
type Compiler struct {
	file   *config.Config
	logger *slog.Logger
	http   *http.Client // the file's outbound client: admin-set URLs reach only what the file allows (S70)

	mu      sync.Mutex
	boot    *Boot          // what BrokerConfig built of the file's tenants (WithBoot); dropped once last is set
	files   []*tenantEntry // the file's tenants, compiled here when there is no boot
	fileIDs map[string]bool
	last    *compiledSet // the last compilation without problems
	gen     uint64       // counts compilations

	fileCompiles int // file tenants compiled here (a test reads it)
}

// tenantEntry is one compiled tenant.
type tenantEntry struct {
	ct       config.Tenant // defaults applied
	rev      string        // the API tenant's revision
	seen     uint64        // the compilation that last found it in the state
	rt       realm.Tenant
	idps     []broker.IdP
	conns    []*cachedConn     // of idps, in order
	provs    []config.Provider // of idps, in order
	eng      *transform.Engine
	engKey   [32]byte
	policy   *broker.TenantPolicy
	members  []broker.Membership
	problems []admin.Problem // found in the tenant alone
}

type cachedConn struct {
	key    [32]byte // contentKey of its provider
	conn   providers.Connector
	probed bool
}

// compiledSet is one compilation: the API tenants, an index of what every
// tenant (file and API) claims, and what the broker serves. The index and
// the tenant map are the compiler's own and change in place from one
// compilation to the next; what is served is copied on change, never
// changed, since the broker may still serve it.
type compiledSet struct {
	api   map[string]*tenantEntry // API tenants by id
	owner map[string]string       // claimKey -> tenant id
	def   string                  // the default tenant

	res      *realm.Resolver
	rules    map[string]*transform.Engine
	policies map[string]broker.TenantPolicy
	idps     []broker.IdP
	members  []broker.Membership
}

// claim is one thing a tenant holds alone: a domain, a subdomain, an IdP id.
type claim struct {
	key   string // "d:" + domain, "s:" + subdomain, "i:" + IdP id
	field string // where, under tenants[<id>]
	msg   func(other, t string) string
}

// claims lists what e's tenant holds alone, as crossTenantProblems did.
func (e *tenantEntry) claims() []claim { return claimsOf(&e.ct) }

// claimsOf lists what t holds alone.
func claimsOf(t *config.Tenant) []claim {
	var out []claim
	for _, d := range t.Domains {
		nd := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
		out = append(out, claim{key: "d:" + nd, field: ".domains[" + nd + "]", msg: func(o, t string) string {
			return fmt.Sprintf("domain %q is claimed by two tenants: %q and %q", nd, o, t)
		}})
	}
	if t.Subdomain != "" {
		out = append(out, claim{key: "s:" + t.Subdomain, field: ".subdomain", msg: func(o, _ string) string {
			return fmt.Sprintf("subdomain %q is already used by tenant %q", t.Subdomain, o)
		}})
	}
	for j, p := range t.Providers {
		out = append(out, claim{key: "i:" + p.ID, field: fmt.Sprintf(".providers[%d].id", j), msg: func(o, _ string) string {
			return fmt.Sprintf("provider id %q is already used in tenant %q: provider ids are unique across tenants", p.ID, o)
		}})
	}
	return out
}

var _ admin.Compiler = (*Compiler)(nil)

// NewCompiler returns a compiler over the validated file configuration,
// which it does not change; hc is the outbound client of every connector
// it builds (SECURITY S70).
func NewCompiler(file *config.Config, hc *http.Client, logger *slog.Logger, opts ...CompilerOption) *Compiler {
	ac := &Compiler{file: file, logger: logger, http: hc}
	for _, o := range opts {
		o(ac)
	}
	return ac
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

// withDefaults returns t with the defaults ApplyDefaults gives a tenant
// none of whose fields the file gave (an API tenant), as alone does but
// without copying the file's tenants beside it: a restart reads every API
// tenant, and beside 100k file tenants each copy was a pass over them.
func withDefaults(t config.Tenant) config.Tenant {
	c := config.Config{Tenants: []config.Tenant{t}}
	c.ApplyDefaults()
	return c.Tenants[0]
}

// beside returns the file configuration with t after the file's tenants,
// to validate t beside them: t gets its defaults (withDefaults), the
// file's tenants are shared, not copied (validation only reads them, and
// they have theirs since Load), and the configuration outside the tenants
// gets its defaults as alone gives them.
func (ac *Compiler) beside(t config.Tenant) *config.Config {
	c := ac.alone(nil, nil, false)
	c.Tenants = append(slices.Clip(ac.file.Tenants), withDefaults(t))
	return c
}

// validationProblems runs config.Validate over c (with tenants set,
// config.ValidateTenants: the own checks of those tenants alone, every
// check across tenants) and returns the problems of fields under one of
// prefixes, named by id, except those skip says are checked elsewhere
// (references to other API tenants).
func validationProblems(c *config.Config, tenants []int, prefixes []string, skip func(field, msg string) bool) []admin.Problem {
	var err error
	if tenants != nil {
		err = c.ValidateTenants(tenants...)
	} else {
		err = c.Validate()
	}
	var ve *config.ValidationError
	if !errors.As(err, &ve) {
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
// prev is the tenant's previous compilation (nil: none): its connectors
// and rules are reused where their settings did not change. An API tenant
// is validated like the file's unless trusted is set: read from the store,
// it was validated by the instance that wrote it (validating 100k tenants
// again would make a restart take a minute).
func (ac *Compiler) compileTenant(t config.Tenant, fromAPI bool, pre []admin.Problem, prev *tenantEntry, trusted bool) *tenantEntry {
	e := &tenantEntry{problems: pre}
	if fromAPI && trusted {
		t = withDefaults(t) // not validated: the file's tenants are not needed beside it
	} else if fromAPI {
		c := ac.beside(t)
		i := len(c.Tenants) - 1
		t = c.Tenants[i]
		e.problems = append(e.problems, validationProblems(c, []int{i}, []string{fmt.Sprintf("tenants[%d]", i)}, func(field, _ string) bool {
			return memberIdPField.MatchString(field) // another API tenant's IdP: checked over the whole set
		})...)
	}
	e.ct = t
	// The one assembly path (internal/assemble), with this compiler's
	// caches: connectors by content (an unchanged IdP keeps its fetched
	// discovery document) and engines by rules.
	b := Builder{Issuer: ac.file.Issuer, HTTP: ac.http, Logger: ac.logger, Global: ac.file.Rules, GlobalPolicies: ac.file.ConditionalAccess.Policies, SkipUnsupported: !fromAPI,
		Connect: func(p *config.Provider) (providers.Connector, error) {
			cc, err := ac.connector(p, ac.file.Issuer, prev)
			if err != nil {
				return nil, err
			}
			e.conns = append(e.conns, cc)
			return cc.conn, nil
		},
		Compile: func(global []config.Rule, t config.Tenant) (*transform.Engine, error) {
			return ac.engine(global, t, prev, e)
		},
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

// revision is t's revision, or a hash of its content when it has none.
func revision(t *admin.Tenant) string {
	if t.Revision != "" {
		return t.Revision
	}
	k := contentKey("tenant", t)
	return fmt.Sprintf("~%x", k[:8])
}

// apiTenant compiles an API tenant; prev is its previous compilation;
// trusted skips validating it alone (compileTenant).
func (ac *Compiler) apiTenant(t admin.Tenant, prev *tenantEntry, trusted bool) *tenantEntry {
	// Only verified domains route users; settings naming a server file are
	// refused here too, so the compiler never reads a file an API caller
	// named, whatever the stored state says.
	ct, probs := t.Config()
	e := ac.compileTenant(ct, true, probs, prev, trusted)
	e.rev = revision(&t)
	if t.Incarnation != "" {
		// S68: grants of an earlier tenant under the same id are refused.
		pol := broker.TenantPolicy{}
		if e.policy != nil {
			pol = *e.policy
		}
		pol.Incarnation = t.Incarnation
		e.policy = &pol
	}
	return e
}

// fileSet is the compilation of the file's tenants alone: where the first
// compilation starts from.
func (ac *Compiler) fileSet() (*compiledSet, error) {
	if ac.boot.builtFrom(ac.file) {
		return ac.bootSet(), nil
	}
	set := &compiledSet{api: map[string]*tenantEntry{}, owner: map[string]string{},
		rules: map[string]*transform.Engine{}, policies: map[string]broker.TenantPolicy{}}
	var rts []realm.Tenant
	for _, e := range ac.files {
		for _, c := range e.claims() {
			set.owner[c.key] = e.ct.ID
		}
		if e.ct.Default && set.def == "" {
			set.def = e.ct.ID
		}
		rts = append(rts, e.rt)
		set.idps = append(set.idps, e.idps...)
		set.members = append(set.members, e.members...)
		if e.eng != nil {
			set.rules[e.ct.ID] = e.eng
		}
		if e.policy != nil {
			set.policies[e.ct.ID] = *e.policy
		}
	}
	res, err := realm.New(rts, realm.Options{BaseDomain: ac.file.BaseDomain})
	if err != nil {
		return nil, &admin.ValidationError{Problems: []admin.Problem{{Field: "tenants", Message: err.Error()}}}
	}
	set.res = res
	return set, nil
}

// bootSet is fileSet from what BrokerConfig built (ac.boot): the file's
// tenants are not compiled again; what is served is the broker's own, and
// only the index of claims is made here, from the file's tenants.
func (ac *Compiler) bootSet() *compiledSet {
	b := ac.boot
	set := &compiledSet{api: map[string]*tenantEntry{}, owner: make(map[string]string, 3*len(ac.file.Tenants)),
		res: b.res, idps: b.idps, rules: b.rules, policies: b.policies, members: b.members}
	for i := range ac.file.Tenants {
		t := &ac.file.Tenants[i]
		for _, c := range claimsOf(t) {
			set.owner[c.key] = t.ID
		}
		if t.Default && set.def == "" {
			set.def = t.ID
		}
	}
	if set.rules == nil {
		set.rules = map[string]*transform.Engine{}
	}
	if set.policies == nil {
		set.policies = map[string]broker.TenantPolicy{}
	}
	return set
}

// fileTenants compiles the file's tenants once, unless the compiler
// starts from what BrokerConfig built of them (WithBoot).
func (ac *Compiler) fileTenants() {
	if ac.fileIDs != nil {
		return
	}
	ac.fileIDs = make(map[string]bool, len(ac.file.Tenants))
	for i := range ac.file.Tenants {
		ac.fileIDs[ac.file.Tenants[i].ID] = true
	}
	if ac.boot.builtFrom(ac.file) {
		return
	}
	for _, t := range ac.alone(nil, nil, true).Tenants {
		ac.files = append(ac.files, ac.compileTenant(t, false, nil, nil, true))
		ac.fileCompiles++
	}
}

// Compile implements admin.Compiler, compiling only the API tenants whose
// revision differs from the last compilation without problems.
func (ac *Compiler) Compile(ctx context.Context, st *admin.State, probe bool) (*admin.Compiled, error) {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	ac.fileTenants()
	base := ac.last
	if base == nil {
		var err error
		if base, err = ac.fileSet(); err != nil {
			return nil, err
		}
	}
	// What changed: tenants whose revision differs, and those removed.
	var changed []*admin.Tenant
	kept := 0
	ac.gen++
	for i := range st.Tenants {
		t := st.Tenants[i]
		if e, ok := base.api[t.ID]; ok {
			kept++
			e.seen = ac.gen
			if e.rev == revision(t) {
				continue
			}
		}
		changed = append(changed, t)
	}
	gone := map[string]bool{} // tenants whose previous compilation no longer holds
	for _, t := range changed {
		if _, ok := base.api[t.ID]; ok {
			gone[t.ID] = true
		}
	}
	if kept < len(base.api) {
		for id, e := range base.api {
			if e.seen != ac.gen {
				gone[id] = true
			}
		}
	}
	entries := make([]*tenantEntry, len(changed))
	var probs []admin.Problem
	for i, t := range changed {
		entries[i] = ac.apiTenant(*t, base.api[t.ID], !probe)
		probs = append(probs, entries[i].problems...)
	}
	overlay := map[string]string{}
	owner := func(key string) (string, bool) {
		if o, ok := overlay[key]; ok {
			return o, true
		}
		o, ok := base.owner[key]
		if ok && gone[o] {
			return "", false
		}
		return o, ok
	}
	deflt := base.def
	if gone[deflt] {
		deflt = ""
	}
	for _, e := range entries {
		id := e.ct.ID
		path := "tenants[" + id + "]"
		if e.ct.Default {
			if deflt != "" && deflt != id {
				probs = append(probs, admin.Problem{Field: path + ".default",
					Message: fmt.Sprintf("tenants %q and %q are both default: at most one tenant may be", deflt, id)})
			}
			deflt = cmp.Or(deflt, id)
		}
		if ac.fileIDs[id] {
			probs = append(probs, admin.Problem{Field: path + ".id", Message: fmt.Sprintf("tenant id %q is already used", id)})
		}
		for _, c := range e.claims() {
			if o, ok := owner(c.key); ok && o != id {
				probs = append(probs, admin.Problem{Field: path + c.field, Message: c.msg(o, id)})
			}
			overlay[c.key] = id
		}
	}
	for _, e := range entries {
		for j, m := range e.ct.Members {
			if _, ok := owner("i:" + m.IdP); !ok {
				probs = append(probs, admin.Problem{Field: fmt.Sprintf("tenants[%s].members[%d].idp", e.ct.ID, j),
					Message: fmt.Sprintf("unknown identity provider %q", m.IdP)})
			}
		}
	}
	// An IdP that went away may be named by an unchanged tenant's members.
	lost := map[string]bool{}
	for id := range gone {
		for _, p := range base.api[id].ct.Providers {
			if _, ok := owner("i:" + p.ID); !ok {
				lost[p.ID] = true
			}
		}
	}
	if len(lost) > 0 {
		for id, e := range base.api {
			if gone[id] {
				continue
			}
			for j, m := range e.ct.Members {
				if lost[m.IdP] {
					probs = append(probs, admin.Problem{Field: fmt.Sprintf("tenants[%s].members[%d].idp", id, j),
						Message: fmt.Sprintf("unknown identity provider %q", m.IdP)})
				}
			}
		}
	}
	tenantExists := func(id string) bool {
		if ac.fileIDs[id] {
			return true
		}
		i := sort.Search(len(st.Tenants), func(i int) bool { return st.Tenants[i].ID >= id })
		return i < len(st.Tenants) && st.Tenants[i].ID == id
	}
	idpExists := func(id string) bool { _, ok := owner("i:" + id); return ok }
	probs = append(probs, ac.clientProblems(st.Clients, tenantExists, idpExists)...)
	if probe {
		var jobs []probeJob
		for _, e := range entries {
			for j, cc := range e.conns {
				if !cc.probed {
					jobs = append(jobs, probeJob{field: fmt.Sprintf("tenants[%s].providers[%d]", e.ct.ID, j), p: &e.provs[j], cc: cc})
				}
			}
		}
		probs = append(probs, ac.probe(ctx, jobs)...)
	} else {
		// Read from the store: checked by the instance that wrote it.
		for _, e := range entries {
			for _, cc := range e.conns {
				cc.probed = true
			}
		}
	}
	if len(probs) > 0 {
		return nil, &admin.ValidationError{Problems: probs}
	}
	// What is served: the previous, with the changed tenants replaced.
	drop := make([]string, 0, len(gone))
	for id := range gone {
		drop = append(drop, id)
	}
	rts := make([]realm.Tenant, len(entries))
	for i, e := range entries {
		rts[i] = e.rt
	}
	res, err := base.res.Update(drop, rts)
	if err != nil {
		return nil, &admin.ValidationError{Problems: []admin.Problem{{Field: "tenants", Message: err.Error()}}}
	}
	next := &compiledSet{api: base.api, owner: base.owner, def: deflt, res: res,
		rules: maps.Clone(base.rules), policies: maps.Clone(base.policies)}
	if len(gone) == 0 {
		// Appended to in place: what base serves is its length, which an
		// append beyond it does not touch; the broker gets clipped slices.
		next.idps, next.members = base.idps, base.members
	} else {
		next.idps = slices.DeleteFunc(slices.Clone(base.idps), func(p broker.IdP) bool { return gone[p.Tenant] })
		next.members = slices.DeleteFunc(slices.Clone(base.members), func(m broker.Membership) bool { return gone[m.Tenant] })
	}
	for id := range gone {
		for _, c := range base.api[id].claims() {
			if next.owner[c.key] == id {
				delete(next.owner, c.key)
			}
		}
		delete(next.api, id)
		delete(next.rules, id)
		delete(next.policies, id)
	}
	for _, e := range entries {
		id := e.ct.ID
		next.api[id] = e
		for _, c := range e.claims() {
			next.owner[c.key] = id
		}
		next.idps = append(next.idps, e.idps...)
		next.members = append(next.members, e.members...)
		if e.eng != nil {
			next.rules[id] = e.eng
		}
		if e.policy != nil {
			next.policies[id] = *e.policy
		}
	}
	ac.last = next
	ac.boot, ac.files = nil, nil // next holds what is served from now on
	d := broker.Directory{Resolver: res, IdPs: slices.Clip(next.idps), Rules: next.rules, Policies: next.policies,
		Memberships: slices.Clip(next.members), Actor: "configuration"}
	if st.UpdatedBy != "" {
		d.Actor = "admin:" + st.UpdatedBy // whose change ends the sessions of what it deleted (broker/deletion.go)
	}
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

var clientRefField = regexp.MustCompile(`\.((allowed_tenants|allowed_idps)\[\d+\]|tenant)$`)

// clientProblems checks the API's clients like the file's, beside the
// file's clients; references to tenants and IdPs are checked against every
// tenant and IdP, the API's included.
func (ac *Compiler) clientProblems(api []admin.Client, tenants, idps func(string) bool) []admin.Problem {
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
	probs := validationProblems(c, nil, prefixes, func(field, _ string) bool { return clientRefField.MatchString(field) })
	for _, cl := range api {
		for j, t := range cl.AllowedTenants {
			if t != config.AllowAllTenants && !tenants(t) {
				probs = append(probs, admin.Problem{Field: fmt.Sprintf("clients[%s].allowed_tenants[%d]", cl.ID, j), Message: fmt.Sprintf("unknown tenant %q", t)})
			}
		}
		if cl.Tenant != "" && !tenants(cl.Tenant) {
			probs = append(probs, admin.Problem{Field: fmt.Sprintf("clients[%s].tenant", cl.ID), Message: fmt.Sprintf("unknown tenant %q", cl.Tenant)})
		}
		for j, p := range cl.AllowedIdPs {
			if !idps(p) {
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

// connector returns prev's connector for p when p did not change (it
// keeps its fetched discovery document or metadata), else a new one.
func (ac *Compiler) connector(p *config.Provider, issuer string, prev *tenantEntry) (*cachedConn, error) {
	// Activating a pending IdP (setup portal) keeps its connector.
	unpended := *p
	unpended.Pending = false
	k := contentKey("idp", &unpended, issuer)
	if prev != nil {
		for _, cc := range prev.conns {
			if cc.key == k {
				return cc, nil
			}
		}
	}
	conn, err := Connector(p, issuer, ac.http, ac.logger)
	if err != nil {
		return nil, err
	}
	return &cachedConn{key: k, conn: conn}, nil
}

// engine returns the tenant's compiled rules (global rules first), prev's
// when they did not change, or nil when there are none at all (claims
// pass through unchanged); e remembers what they were compiled from.
func (ac *Compiler) engine(global []config.Rule, t config.Tenant, prev, e *tenantEntry) (*transform.Engine, error) {
	if len(global) == 0 && len(t.Rules) == 0 {
		return nil, nil
	}
	k := contentKey("rules", t.ID, global, t.Rules)
	e.engKey = k
	if prev != nil && prev.eng != nil && prev.engKey == k {
		return prev.eng, nil
	}
	return Engine(global, t)
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
