package admin

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
)

// A per-tenant admin manages its own tenant's API clients (clients whose
// tenant is its tenant, for client_credentials and its own users); every
// other client is the operator's. Such a client never reaches another
// tenant: allowed_tenants may name only its tenant (config validation),
// and its URLs may not be the issuer's host or another tenant's subdomain
// beside it.

// clientCaller returns the caller of a client endpoint: an operator, or a
// per-tenant admin (whose reach clientScoped checks on each client).
func clientCaller(c echo.Context) *caller { return who(c) }

// clientScoped refuses a per-tenant admin a client of another tenant or of
// none. The refusal is the same whether the client exists or not.
func clientScoped(w *caller, cl *Client) error {
	if w.operator() {
		return nil
	}
	if cl == nil || cl.Tenant != w.tenant {
		return forbidden("this token may manage only clients whose tenant is %q", w.tenant)
	}
	return nil
}

// tenantClientProblems checks what a per-tenant admin may write into a
// client: its tenant, and URLs that do not reach other tenants.
func (s *Service) tenantClientProblems(w *caller, st *State, in *Client) error {
	if w.operator() {
		return nil
	}
	if in.Tenant != w.tenant {
		return forbidden("a client created with this token must have tenant %q", w.tenant)
	}
	if slices.ContainsFunc(in.AllowedTenants, func(t string) bool { return t != w.tenant }) {
		return forbidden("a client of tenant %q may allow only that tenant", w.tenant)
	}
	urls := slices.Concat(in.RedirectURIs, in.PostLogoutRedirectURIs, []string{in.BackchannelLogoutURI, in.JWKSURI})
	for _, u := range urls {
		if u == "" {
			continue
		}
		if other := s.otherTenantHost(st, w.tenant, u); other != "" {
			return forbidden("%q reaches %s; a tenant's client may not", u, other)
		}
	}
	return nil
}

// otherTenantHost names what URL u reaches beyond tenant: the issuer's own
// host, or the subdomain another tenant owns beside it; "" when nothing.
func (s *Service) otherTenantHost(st *State, tenant, u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return "" // config validation reports it
	}
	iu, err := url.Parse(s.opts.Issuer)
	if err != nil {
		return ""
	}
	host, issuer := strings.ToLower(pu.Hostname()), strings.ToLower(iu.Hostname())
	if host == "" || issuer == "" {
		return ""
	}
	if host == issuer {
		return "the issuer's host"
	}
	label, rest, ok := strings.Cut(host, ".")
	_, parent, _ := strings.Cut(issuer, ".")
	if !ok || (rest != issuer && rest != parent) {
		return ""
	}
	for _, t := range st.Tenants {
		if t.ID != tenant && t.Subdomain != "" && strings.EqualFold(t.Subdomain, label) {
			return fmt.Sprintf("tenant %q's subdomain", t.ID)
		}
	}
	for _, t := range s.files {
		if t.ID != tenant && t.Subdomain != "" && strings.EqualFold(t.Subdomain, label) {
			return fmt.Sprintf("tenant %q's subdomain", t.ID)
		}
	}
	return ""
}

// visibleClient reports whether w may see client cl in a listing.
func visibleClient(w *caller, cl *Client) bool { return w.operator() || cl.Tenant == w.tenant }
