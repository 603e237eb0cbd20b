package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// What the setup portal (package portal) does, on behalf of a setup link:
// each method checks that the link is open and allows the step, acts as
// the tenant's admin would (caller "setup-link:<id>", limited to the link's
// tenant), validates through the same code as the admin API, and is audited
// with the link's identity.

// Errors of the setup methods.
var (
	// ErrSetupLinkEnded means the link was activated, revoked or has expired.
	ErrSetupLinkEnded = errors.New("admin: setup link has ended")
	// ErrSetupNotAllowed means the link's allow list lacks the step.
	ErrSetupNotAllowed = errors.New("admin: setup link does not allow this step")
)

// SetupRolesRule names the rule the portal's group-to-role table compiles
// to in the tenant's rules.
const SetupRolesRule = "setup-portal-roles"

// SetupGroupsAttribute is where the role table reads group values first.
const SetupGroupsAttribute = "upstream.groups"

// SetupGroupAttributes are every attribute the role table reads group
// values from, each through a map rule of its own (SetupRolesRule, then
// SetupRolesRule-<attribute>): Entra ID, Okta and Google send groups; AD FS
// sends group membership as its role claim
// (http://schemas.microsoft.com/ws/2008/06/identity/claims/role, "role");
// OneLogin, PingFederate and LDAP-backed IdPs send memberOf or isMemberOf.
// A value found in two of them gives its role once.
var SetupGroupAttributes = []string{SetupGroupsAttribute, "upstream.role", "upstream.roles", "upstream.memberOf", "upstream.isMemberOf"}

// isSetupRolesRule reports whether name is one of the role table's rules.
func isSetupRolesRule(name string) bool {
	return name == SetupRolesRule || strings.HasPrefix(name, SetupRolesRule+"-")
}

// WithRequestInfo returns ctx carrying the caller's IP address and the
// request id, which the audit events of the Setup methods name (the admin
// API's own requests carry them already).
func WithRequestInfo(ctx context.Context, ip, requestID string) context.Context {
	if ip != "" {
		ctx = context.WithValue(ctx, remoteKey{}, ip)
	}
	if requestID != "" {
		ctx = context.WithValue(ctx, requestIDKey{}, requestID)
	}
	return ctx
}

// SetupActor is the audit actor of a setup link.
func SetupActor(linkID string) string { return "setup-link:" + linkID }

// setupCaller returns the open link id, allowing step (none: any open link),
// and the caller it acts as.
func (s *Service) setupCaller(ctx context.Context, id, step string) (SetupLink, *caller, error) {
	l, err := s.readSetupLink(ctx, id)
	if err != nil {
		return SetupLink{}, nil, err
	}
	if l.State != SetupOpen {
		return l, nil, ErrSetupLinkEnded
	}
	if step != "" && !l.Allows(step) {
		return l, nil, ErrSetupNotAllowed
	}
	return l, &caller{name: SetupActor(l.ID), tenant: l.Tenant}, nil
}

// SetupProblems turns a refusal of a setup method into problems to show
// beside the fields (Field empty: the whole form); nil for another error
// (the store, a link that ended), which the portal must not show.
func SetupProblems(err error) []Problem {
	var ve *ValidationError
	var ae *apiError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ve):
		return ve.Problems
	case errors.As(err, &ae) && ae.status < http.StatusInternalServerError:
		if len(ae.problems) > 0 {
			return ae.problems
		}
		return []Problem{{Message: ae.msg}}
	}
	return nil
}

// SetupView is what the portal shows of the link's tenant.
type SetupView struct {
	// Link is the link, open.
	Link SetupLink
	// Tenant is the tenant, its secrets redacted and its domains' TXT
	// records named.
	Tenant Tenant
	// SCIMEndpoint is the tenant's SCIM base URL; empty when SCIM is off.
	SCIMEndpoint string
}

// SetupTenant returns the link's tenant for display.
func (s *Service) SetupTenant(ctx context.Context, linkID string) (SetupView, error) {
	l, _, err := s.setupCaller(ctx, linkID, "")
	if err != nil {
		return SetupView{}, err
	}
	t, file := s.lookupTenant(l.Tenant)
	if t == nil {
		return SetupView{}, ErrSetupLinkNotFound // the tenant was deleted: the link means nothing
	}
	v := SetupView{Link: l, Tenant: show(*t, srcOf(file))}
	if s.opts.SCIMTokens != nil {
		v.SCIMEndpoint = s.scimEndpoint(l.Tenant)
	}
	return v, nil
}

// SetupOnboarding returns what the IdP's admin registers for p (the
// admin API's onboarding values).
func (s *Service) SetupOnboarding(p Provider) Onboarding { return s.onboardingFor(p) }

// SetupSaveProvider creates the link's IdP p in the tenant, pending until
// activation, or replaces it while it is still pending (keeping stored
// secrets left out); an active IdP of the tenant is never replaced.
func (s *Service) SetupSaveProvider(ctx context.Context, linkID string, p Provider) error {
	l, w, err := s.setupCaller(ctx, linkID, AllowIdP)
	if err != nil {
		return err
	}
	p.Pending = true
	var genKey, genCert string
	if p.Type == "saml" && p.SPKey == "" && p.SPCert == "" {
		// Signed AuthnRequests (AD FS's default) need a key: one is made
		// here, unless the pending IdP being replaced has one (kept below).
		if genKey, genCert, err = newSPKeyPair(strings.TrimPrefix(strings.TrimPrefix(s.opts.Issuer, "https://"), "http://"), s.opts.Now()); err != nil {
			return err
		}
	}
	_, err = s.commit(ctx, w, "provider.setup", "tenants/"+l.Tenant+"/providers/"+p.ID, func(st *State) (any, any, error) {
		i, err := s.apiTenant(st, l.Tenant)
		if err != nil {
			return nil, nil, err
		}
		t := deepCopy(*st.Tenants[i])
		var before any
		if j := t.provider(p.ID); j >= 0 {
			if !t.Providers[j].Pending {
				return nil, nil, errorf(http.StatusConflict, "exists", "provider %q already exists in tenant %q", p.ID, t.ID)
			}
			before = t.Providers[j]
			ps := []Provider{p}
			if genKey != "" && t.Providers[j].SPCert != "" {
				ps[0].SPCert = t.Providers[j].SPCert // with its key, kept by keepSecrets
			} else if genKey != "" {
				ps[0].SPKey, ps[0].SPCert = genKey, genCert
			}
			keepSecrets(ps, t.Providers)
			t.Providers[j] = ps[0]
		} else {
			if genKey != "" {
				p.SPKey, p.SPCert = genKey, genCert
			}
			t.Providers = append(t.Providers, p)
		}
		st.putTenant(t)
		return before, p, nil
	})
	return err
}

// SetupAddDomain adds domain name to the link's tenant, unverified; the
// answer names its TXT record.
func (s *Service) SetupAddDomain(ctx context.Context, linkID, name string) (Domain, error) {
	l, w, err := s.setupCaller(ctx, linkID, AllowDomains)
	if err != nil {
		return Domain{}, err
	}
	var added Domain
	_, err = s.commit(ctx, w, "domain.add", "tenants/"+l.Tenant+"/domains/"+name, func(st *State) (any, any, error) {
		i, err := s.apiTenant(st, l.Tenant)
		if err != nil {
			return nil, nil, err
		}
		t := deepCopy(*st.Tenants[i])
		n, msg := normalizeDomain(name)
		if msg != "" {
			return nil, nil, &ValidationError{Problems: []Problem{{Field: "name", Message: msg}}}
		}
		if t.domain(n) >= 0 {
			return nil, nil, &ValidationError{Problems: []Problem{{Field: "name", Message: fmt.Sprintf("domain %q is already listed", n)}}}
		}
		ds, probs := s.mergeDomains(st, w, nil, t.ID, []Domain{{Name: n}})
		if len(probs) > 0 {
			for k := range probs {
				probs[k].Field = "name"
			}
			return nil, nil, &ValidationError{Problems: probs}
		}
		added = ds[0]
		t.Domains = append(t.Domains, added)
		st.putTenant(t)
		return nil, added, nil
	})
	return showDomain(added), err
}

// SetupVerifyDomain runs the live DNS check of the link's tenant's domain
// name (the admin API's verify); a missing record is a problem naming it.
func (s *Service) SetupVerifyDomain(ctx context.Context, linkID, name string) (Domain, error) {
	l, w, err := s.setupCaller(ctx, linkID, AllowDomains)
	if err != nil {
		return Domain{}, err
	}
	name, _ = normalizeDomain(name)
	var token string
	if t, _ := s.lookupTenant(l.Tenant); t != nil {
		if i := t.domain(name); i >= 0 {
			token = t.Domains[i].Token
		}
	}
	if token == "" {
		return Domain{}, notFound("no domain %q", name)
	}
	dnsOK, dnsErr := s.checkTXT(ctx, name, token) // before the write lock: DNS may be slow
	var out Domain
	_, err = s.commit(ctx, w, "domain.verify", "tenants/"+l.Tenant+"/domains/"+name, func(st *State) (any, any, error) {
		i, err := s.apiTenant(st, l.Tenant)
		if err != nil {
			return nil, nil, err
		}
		t := deepCopy(*st.Tenants[i])
		j := t.domain(name)
		if j < 0 {
			return nil, nil, notFound("no domain %q", name)
		}
		d := t.Domains[j]
		if d.Verified {
			out = d
			return d, d, nil
		}
		if s.verifiedElsewhere(st, t.ID, name) {
			return d, nil, errorf(http.StatusConflict, "exists", "domain %q is already verified by another tenant", name)
		}
		if !dnsOK || d.Token != token {
			msg := fmt.Sprintf("no TXT record %q with value %q was found", txtLabel+strings.TrimPrefix(name, "*."), txtPrefix+d.Token)
			if dnsErr != nil {
				msg += ": the DNS lookup failed"
			}
			return d, nil, &apiError{status: http.StatusUnprocessableEntity, code: "not_verified", msg: msg}
		}
		out = s.markVerified(d, "dns")
		t.Domains[j] = out
		st.putTenant(t)
		return d, out, nil
	})
	return showDomain(out), err
}

// setupRules returns rules with the portal's role table rule replaced by
// one mapping table (none when the table is empty).
func setupRules(rules []Rule, table map[string]string) []Rule {
	out := slices.DeleteFunc(slices.Clone(rules), func(r Rule) bool { return isSetupRolesRule(r.Name) })
	if len(table) > 0 {
		for _, from := range SetupGroupAttributes {
			name := SetupRolesRule
			if from != SetupGroupsAttribute {
				name += "-" + strings.TrimPrefix(from, "upstream.")
			}
			out = append(out, Rule{Name: name, Map: &MapRule{From: from, To: "roles", Table: table}})
		}
	}
	if out == nil {
		out = []Rule{}
	}
	return out
}

// SetupRoleTable returns the table of the tenant's role mapping rule, if any.
func SetupRoleTable(t Tenant) map[string]string {
	for _, r := range t.Rules {
		if r.Name == SetupRolesRule && r.Map != nil {
			return r.Map.Table
		}
	}
	return nil
}

// SetupDryRun runs the tenant's rules with table as its role mapping over
// a test sign-in's identity from idp, without saving anything.
func (s *Service) SetupDryRun(ctx context.Context, linkID, idp string, id SampleIdentity, table map[string]string) (DryRunResult, error) {
	l, _, err := s.setupCaller(ctx, linkID, AllowRoles)
	if err != nil {
		return DryRunResult{}, err
	}
	t, _ := s.lookupTenant(l.Tenant)
	if t == nil {
		return DryRunResult{}, ErrSetupLinkNotFound
	}
	if idp != "" && t.provider(idp) < 0 {
		return DryRunResult{}, notFound("no provider %q", idp)
	}
	snap, err := s.compiled(ctx)
	if err != nil {
		return DryRunResult{}, err
	}
	out := DryRunResult{Tenant: l.Tenant, IdP: idp}
	err = s.runRules(ctx, snap, &out, "", setupRules(t.Rules, table), id)
	return out, err
}

// SetupSaveRoles compiles table into the tenant's role mapping rule and
// saves the tenant's rules, validated like the admin API's PUT rules.
func (s *Service) SetupSaveRoles(ctx context.Context, linkID string, table map[string]string) error {
	l, w, err := s.setupCaller(ctx, linkID, AllowRoles)
	if err != nil {
		return err
	}
	_, err = s.commit(ctx, w, "rules.setup", "tenants/"+l.Tenant+"/rules", func(st *State) (any, any, error) {
		i, err := s.apiTenant(st, l.Tenant)
		if err != nil {
			return nil, nil, err
		}
		t := deepCopy(*st.Tenants[i])
		before := ruleList{Rules: t.Rules}
		t.Rules = setupRules(t.Rules, table)
		st.putTenant(t)
		return before, ruleList{Rules: t.Rules}, nil
	})
	return err
}

// SetupCreateSCIMToken creates a SCIM token for the link's tenant and
// returns it (the only time it is shown) with the tenant's SCIM base URL.
func (s *Service) SetupCreateSCIMToken(ctx context.Context, linkID, name string) (token, endpoint string, err error) {
	l, w, err := s.setupCaller(ctx, linkID, AllowSCIM)
	if err != nil {
		return "", "", err
	}
	if s.opts.SCIMTokens == nil {
		return "", "", notFound("SCIM provisioning is not enabled on this server")
	}
	tok, info, err := s.opts.SCIMTokens.Create(ctx, l.Tenant, name, w.name)
	s.auditSetup(ctx, w, "scim_token.create", "tenants/"+l.Tenant+"/scim/tokens/"+info.ID, err)
	if err != nil {
		return "", "", scimTokenError(err)
	}
	return tok, s.scimEndpoint(l.Tenant), nil
}

// SetupActivate ends the link: the IdP providerID it set up (none: the
// link set up no IdP) stops being pending and serves the tenant's users,
// and the link and its portal sessions stop working.
func (s *Service) SetupActivate(ctx context.Context, linkID, providerID string) error {
	l, w, err := s.setupCaller(ctx, linkID, "")
	if err != nil {
		return err
	}
	if providerID != "" {
		if !l.Allows(AllowIdP) {
			return ErrSetupNotAllowed
		}
		_, err = s.commit(ctx, w, "provider.activate", "tenants/"+l.Tenant+"/providers/"+providerID, func(st *State) (any, any, error) {
			i, err := s.apiTenant(st, l.Tenant)
			if err != nil {
				return nil, nil, err
			}
			t := deepCopy(*st.Tenants[i])
			j := t.provider(providerID)
			if j < 0 {
				return nil, nil, notFound("no provider %q", providerID)
			}
			before := t.Providers[j]
			t.Providers[j].Pending = false
			st.putTenant(t)
			return before, t.Providers[j], nil
		})
		if err != nil {
			return err
		}
	}
	err = s.endSetupLink(ctx, l, SetupActivated, w.name)
	if errors.Is(err, ErrSetupLinkNotFound) {
		err = ErrSetupLinkEnded
	}
	s.auditSetupLink(ctx, w, "setup_link.activate", l, err)
	return err
}

// SetupAudit writes an audit event of a setup step done outside this
// package (a test sign-in started), with the link's identity.
func (s *Service) SetupAudit(ctx context.Context, linkID, action, resource string, err error) {
	l, rerr := s.readSetupLink(ctx, linkID)
	if rerr != nil {
		return
	}
	s.auditSetup(ctx, &caller{name: SetupActor(l.ID), tenant: l.Tenant}, action, "tenants/"+l.Tenant+"/"+resource, err)
}

func (s *Service) auditSetup(ctx context.Context, w *caller, action, resource string, err error) {
	s.auditChange(ctx, w, action, resource, nil, nil, &State{Version: s.Version()}, err)
}
