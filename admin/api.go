package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/realm"
)

// Body limits: one resource, and a batch (10k tenants are a few MiB).
const (
	maxBody      = 1 << 20
	maxBatchBody = 32 << 20
)

// Listing pages.
const (
	defaultPage = 100
	maxPage     = 1000
)

// apiError is an error answered with its own status and code.
type apiError struct {
	status   int
	code     string
	msg      string
	problems []Problem
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

func forbidden(format string, args ...any) *apiError {
	return errorf(http.StatusForbidden, "forbidden", format, args...)
}

func notFound(format string, args ...any) *apiError {
	return errorf(http.StatusNotFound, "not_found", format, args...)
}

func readOnly(what string) *apiError {
	return errorf(http.StatusConflict, "read_only", "%s is defined in the configuration file and is read-only here", what)
}

// errorBody is every error answer.
type errorBody struct {
	Error    string    `json:"error"`
	Message  string    `json:"message"`
	Problems []Problem `json:"problems,omitempty"`
}

// Handler returns the admin API's HTTP handler.
func (s *Service) Handler() http.Handler { return s.echo }

// routes registers every endpoint; openapi.yaml documents the same set (a
// test compares them).
func (s *Service) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.JSONSerializer = jsonSerializer{} // jsonio.go: no HTML escaping
	// S73: the caller's IP in audit events is the peer's, or a trusted
	// proxy's X-Forwarded-For; echo's default would believe any client.
	e.IPExtractor = broker.IPExtractor(s.opts.TrustedProxies)
	e.HTTPErrorHandler = s.handleError
	e.GET("/v1/openapi.yaml", s.openAPI)

	g := e.Group("/v1", s.authenticate)
	g.GET("/status", s.status)
	g.GET("/tenants", s.listTenants)
	g.POST("/tenants", s.createTenant)
	g.GET("/tenants/:tenant", s.getTenant)
	g.PUT("/tenants/:tenant", s.replaceTenant)
	g.DELETE("/tenants/:tenant", s.deleteTenant)
	g.GET("/tenants/:tenant/domains", s.listDomains)
	g.POST("/tenants/:tenant/domains", s.addDomain)
	g.DELETE("/tenants/:tenant/domains/:domain", s.deleteDomain)
	g.POST("/tenants/:tenant/domains/:domain/verify", s.verifyDomain)
	g.GET("/tenants/:tenant/providers", s.listProviders)
	g.POST("/tenants/:tenant/providers", s.createProvider)
	g.GET("/tenants/:tenant/providers/:provider", s.getProvider)
	g.PUT("/tenants/:tenant/providers/:provider", s.replaceProvider)
	g.DELETE("/tenants/:tenant/providers/:provider", s.deleteProvider)
	g.GET("/tenants/:tenant/providers/:provider/onboarding", s.onboarding)
	g.GET("/tenants/:tenant/rules", s.getRules)
	g.PUT("/tenants/:tenant/rules", s.replaceRules)
	s.scimRoutes(g)         // scimtokens.go
	s.registrationRoutes(g) // registration.go: initial access tokens of RFC 7591
	s.setupLinkRoutes(g)    // setuplinks.go: links to the setup portal
	g.GET("/clients", s.listClients)
	g.POST("/clients", s.createClient)
	g.GET("/clients/:client", s.getClient)
	g.PUT("/clients/:client", s.replaceClient)
	g.DELETE("/clients/:client", s.deleteClient)
	g.POST("/batch", s.batch)
	g.POST("/dry-run", s.dryRun)
	s.userRoutes(g)     // users.go: the tenant user directory
	s.accessRoutes(g)   // access.go: time-bound role grants
	s.riskRoutes(g)     // risk.go: compromised and risky users
	s.consentRoutes(g)  // consents.go: consents to third-party clients
	s.brandingRoutes(g) // branding.go: logo uploads
	return e
}

// handleError answers every error as JSON.
func (s *Service) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	body := errorBody{Error: "internal_error", Message: "internal error"}
	status := http.StatusInternalServerError
	var ae *apiError
	var ve *ValidationError
	var he *echo.HTTPError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		status, body = ae.status, errorBody{Error: ae.code, Message: ae.msg, Problems: ae.problems}
	case errors.As(err, &ve):
		status = http.StatusUnprocessableEntity
		body = errorBody{Error: "invalid", Message: "the change was refused; nothing was applied", Problems: ve.Problems}
	case errors.Is(err, ErrConflict):
		status, body = http.StatusConflict, errorBody{Error: "conflict", Message: err.Error()}
	case errors.Is(err, broker.ErrUnavailable):
		status, body = http.StatusServiceUnavailable, errorBody{Error: "unavailable", Message: "the store is unreachable; nothing was changed"}
	case errors.Is(err, ErrSecret):
		// The stored state holds secrets this instance cannot decrypt (another
		// keys.secret): an operator must act; the tenant or client is logged.
		s.opts.Logger.Error("admin: request refused: stored state unreadable", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
		status, body = http.StatusServiceUnavailable, errorBody{Error: "unavailable",
			Message: "the stored state holds secrets this instance cannot decrypt (is keys.secret the one they were written with?); nothing was changed"}
	case errors.As(err, &mbe):
		status, body = http.StatusRequestEntityTooLarge, errorBody{Error: "too_large", Message: fmt.Sprintf("request body is larger than %d bytes", mbe.Limit)}
	case errors.As(err, &he):
		status = he.Code
		body = errorBody{Error: strings.ToLower(strings.ReplaceAll(http.StatusText(he.Code), " ", "_")), Message: fmt.Sprint(he.Message)}
	default:
		s.opts.Logger.Error("admin: request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
	}
	if status == http.StatusUnauthorized {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="realmgate-admin"`)
	}
	if w, ok := c.Get("caller").(*caller); ok && status == http.StatusForbidden {
		// A per-tenant admin reaching beyond its tenant is worth an audit event.
		s.opts.Audit.LogAttrs(c.Request().Context(), slog.LevelWarn, "admin request denied",
			slog.String("event", "admin.denied"), slog.String("actor", w.name), slog.String("actor_tenant", w.tenant),
			slog.String("method", c.Request().Method), slog.String("path", c.Request().URL.Path),
			slog.String("ip", c.RealIP()), slog.String("reason", body.Message))
	}
	_ = c.JSON(status, body)
}

// authenticate accepts a bearer token from Options.Tokens, comparing
// SHA-256 hashes in constant time against every credential.
func (s *Service) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		auth := c.Request().Header.Get(echo.HeaderAuthorization)
		scheme, tok, ok := strings.Cut(auth, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return errorf(http.StatusUnauthorized, "unauthorized", "a bearer token is required")
		}
		h := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		var found *credential
		for i := range s.tokens {
			if subtle.ConstantTimeCompare(h[:], s.tokens[i].hash[:]) == 1 {
				found = &s.tokens[i]
			}
		}
		if found == nil {
			s.opts.Logger.Warn("admin: bad bearer token", "ip", c.RealIP(), "path", c.Request().URL.Path)
			return errorf(http.StatusUnauthorized, "unauthorized", "unknown bearer token")
		}
		c.Set("caller", &caller{name: found.name, tenant: found.tenant})
		ctx := context.WithValue(c.Request().Context(), remoteKey{}, c.RealIP())
		if rid := c.Request().Header.Get(echo.HeaderXRequestID); rid != "" {
			ctx = context.WithValue(ctx, requestIDKey{}, rid)
		}
		c.SetRequest(c.Request().WithContext(ctx))
		return next(c)
	}
}

func who(c echo.Context) *caller { return c.Get("caller").(*caller) }

// scoped returns the caller when it may act on tenant, else 403 (before any
// lookup, so a per-tenant admin learns nothing of other tenants).
func scoped(c echo.Context, tenant string) (*caller, error) {
	w := who(c)
	if !w.can(tenant) {
		return nil, forbidden("this token is limited to tenant %q", w.tenant)
	}
	return w, nil
}

// operatorOnly refuses per-tenant admins.
func operatorOnly(c echo.Context) (*caller, error) {
	w := who(c)
	if !w.operator() {
		return nil, forbidden("only an operator token may do this; this token is limited to tenant %q", w.tenant)
	}
	return w, nil
}

// param returns a path parameter, unescaped.
func param(c echo.Context, name string) string {
	v := c.Param(name)
	if u, err := url.PathUnescape(v); err == nil {
		return u
	}
	return v
}

// decode reads one JSON value, refusing unknown fields and trailing data.
func decode(c echo.Context, v any, limit int64) error {
	r := http.MaxBytesReader(c.Response(), c.Request().Body, limit)
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return errorf(http.StatusBadRequest, "invalid_request", "%s", bodyProblem(err)) // jsonio.go: no Go type names
	}
	if _, err := dec.Token(); err != io.EOF {
		return errorf(http.StatusBadRequest, "invalid_request", "request body: more than one JSON value")
	}
	return nil
}

// randomToken returns 128 bits from crypto/rand, base64url.
func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand documents it)
	return base64.RawURLEncoding.EncodeToString(b)
}

// --- status --------------------------------------------------------------

type statusBody struct {
	Version     int64  `json:"version"`
	UpdatedAt   string `json:"updated_at,omitempty"`
	UpdatedBy   string `json:"updated_by,omitempty"`
	Tenants     int    `json:"api_tenants"`
	FileTenants int    `json:"file_tenants"`
	Clients     int    `json:"api_clients"`
}

func (s *Service) status(c echo.Context) error {
	st := s.cur.Load().state
	b := statusBody{Version: st.Version, UpdatedBy: st.UpdatedBy, Tenants: len(st.Tenants), FileTenants: len(s.files), Clients: len(st.Clients)}
	if !st.UpdatedAt.IsZero() {
		b.UpdatedAt = st.UpdatedAt.Format("2006-01-02T15:04:05Z07:00")
	}
	return c.JSON(http.StatusOK, b)
}

// --- tenants -------------------------------------------------------------

// show decorates a tenant for output: secrets redacted, TXT records named.
func show(t Tenant, src string) Tenant {
	t = t.redact()
	if t.Source == "" {
		t.Source = src
	}
	t.Domains = slices.Clone(t.Domains)
	for i := range t.Domains {
		t.Domains[i] = showDomain(t.Domains[i])
	}
	return t
}

// lookupTenant returns the tenant with id from the file or the applied state.
func (s *Service) lookupTenant(id string) (*Tenant, bool) {
	if ct, ok := s.files[id]; ok {
		t := fileTenant(*ct)
		return &t, true
	}
	st := s.cur.Load().state
	if i := st.tenant(id); i >= 0 {
		return st.Tenants[i], false
	}
	return nil, false
}

type tenantList struct {
	Tenants []Tenant `json:"tenants"`
	Next    string   `json:"next,omitempty"`
}

func (s *Service) listTenants(c echo.Context) error {
	w := who(c)
	limit := defaultPage
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPage {
			return errorf(http.StatusBadRequest, "invalid_request", "limit must be 1-%d", maxPage)
		}
		limit = n
	}
	after := c.QueryParam("after")
	out := tenantList{Tenants: []Tenant{}}
	if !w.operator() {
		if t, file := s.lookupTenant(w.tenant); t != nil && t.ID > after {
			out.Tenants = append(out.Tenants, show(*t, srcOf(file)))
		}
		return c.JSON(http.StatusOK, out)
	}
	// Both lists are sorted by id; merge them from after.
	st := s.cur.Load().state
	files := make([]string, 0, len(s.files))
	for id := range s.files {
		files = append(files, id)
	}
	slices.Sort(files)
	// The first index of each whose id sorts after the cursor.
	i := sort.SearchStrings(files, after)
	if i < len(files) && files[i] == after {
		i++
	}
	j := sort.Search(len(st.Tenants), func(k int) bool { return st.Tenants[k].ID > after })
	for len(out.Tenants) < limit && (i < len(files) || j < len(st.Tenants)) {
		if j >= len(st.Tenants) || (i < len(files) && files[i] < st.Tenants[j].ID) {
			out.Tenants = append(out.Tenants, show(fileTenant(*s.files[files[i]]), SourceFile))
			i++
		} else {
			out.Tenants = append(out.Tenants, show(*st.Tenants[j], SourceAPI))
			j++
		}
	}
	if (i < len(files) || j < len(st.Tenants)) && len(out.Tenants) > 0 {
		out.Next = out.Tenants[len(out.Tenants)-1].ID
	}
	return c.JSON(http.StatusOK, out)
}

func srcOf(file bool) string {
	if file {
		return SourceFile
	}
	return SourceAPI
}

func (s *Service) getTenant(c echo.Context) error {
	id := param(c, "tenant")
	if _, err := scoped(c, id); err != nil {
		return err
	}
	t, file := s.lookupTenant(id)
	if t == nil {
		return notFound("no tenant %q", id)
	}
	return c.JSON(http.StatusOK, show(*t, srcOf(file)))
}

func (s *Service) createTenant(c echo.Context) error {
	w, err := operatorOnly(c)
	if err != nil {
		return err
	}
	var in Tenant
	if err := decode(c, &in, maxBody); err != nil {
		return err
	}
	var out Tenant
	st, err := s.commit(c.Request().Context(), w, "tenant.create", "tenants/"+in.ID, func(st *State) (any, any, error) {
		t, err := s.upsertTenant(st, w, in, false)
		out = t
		return nil, t, err
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, show(s.fromState(st, out.ID), SourceAPI))
}

// fromState returns the tenant with id from st.
func (s *Service) fromState(st *State, id string) Tenant {
	if i := st.tenant(id); i >= 0 {
		return *st.Tenants[i]
	}
	return Tenant{Tenant: config.Tenant{ID: id}}
}

func (s *Service) replaceTenant(c echo.Context) error {
	id := param(c, "tenant")
	w, err := scoped(c, id)
	if err != nil {
		return err
	}
	var in Tenant
	if err := decode(c, &in, maxBody); err != nil {
		return err
	}
	if in.ID == "" {
		in.ID = id
	}
	if in.ID != id {
		return errorf(http.StatusBadRequest, "invalid_request", "id %q in the body differs from %q in the path", in.ID, id)
	}
	var before Tenant
	st, err := s.commit(c.Request().Context(), w, "tenant.replace", "tenants/"+id, func(st *State) (any, any, error) {
		i, err := s.apiTenant(st, id)
		if err != nil {
			return nil, nil, err
		}
		before = *st.Tenants[i]
		t, err := s.upsertTenant(st, w, in, true)
		return before, t, err
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, show(s.fromState(st, id), SourceAPI))
}

func (s *Service) deleteTenant(c echo.Context) error {
	id := param(c, "tenant")
	w, err := operatorOnly(c)
	if err != nil {
		return err
	}
	_, err = s.commit(c.Request().Context(), w, "tenant.delete", "tenants/"+id, func(st *State) (any, any, error) {
		i, err := s.apiTenant(st, id)
		if err != nil {
			return nil, nil, err
		}
		before := *st.Tenants[i]
		st.deleteTenant(i)
		return before, nil, nil
	})
	if err != nil {
		return err
	}
	if s.opts.SCIMTokens != nil { // a tenant created again later starts without them
		if err := s.opts.SCIMTokens.RevokeAll(c.Request().Context(), id); err != nil {
			s.opts.Logger.Error("admin: tenant deleted but its SCIM tokens not all revoked (they stay refused while the tenant is gone)", "tenant", id, "err", err)
		}
	}
	return c.NoContent(http.StatusNoContent)
}

// apiTenant returns the index in st of an API tenant, or why it cannot be changed.
func (s *Service) apiTenant(st *State, id string) (int, error) {
	if _, ok := s.files[id]; ok {
		return -1, readOnly(fmt.Sprintf("tenant %q", id))
	}
	i := st.tenant(id)
	if i < 0 {
		return -1, notFound("no tenant %q", id)
	}
	return i, nil
}

// upsertTenant checks in against what the caller may set, merges it with
// the stored tenant (domain verification and secrets are kept) and puts it
// in st. replace requires the tenant to exist; create requires it not to.
func (s *Service) upsertTenant(st *State, w *caller, in Tenant, replace bool) (Tenant, error) {
	if _, ok := s.files[in.ID]; ok {
		if replace {
			return Tenant{}, readOnly(fmt.Sprintf("tenant %q", in.ID))
		}
		return Tenant{}, errorf(http.StatusConflict, "exists", "tenant %q is defined in the configuration file", in.ID)
	}
	var old *Tenant
	if i := st.tenant(in.ID); i >= 0 {
		old = st.Tenants[i]
	}
	switch {
	case replace && old == nil:
		return Tenant{}, notFound("no tenant %q", in.ID)
	case !replace && old != nil:
		return Tenant{}, errorf(http.StatusConflict, "exists", "tenant %q already exists", in.ID)
	}
	t := deepCopy(in)
	t.Source = ""
	if !w.operator() {
		var prev Tenant
		if old != nil {
			prev = *old
		}
		if t.Subdomain != prev.Subdomain {
			return Tenant{}, forbidden("only an operator may set subdomain: it routes users by host name")
		}
		if !slices.Equal(t.IPRanges, prev.IPRanges) {
			return Tenant{}, forbidden("only an operator may set ip_ranges: they route users by address")
		}
		if t.Default != prev.Default {
			return Tenant{}, forbidden("only an operator may set default: it routes users of every unknown domain")
		}
		if !sameLimits(t.RateLimits, prev.RateLimits) {
			return Tenant{}, forbidden("only an operator may set rate_limits: they bound what the tenant may take of the shared broker")
		}
	}
	var probs []Problem
	t.Domains, probs = s.mergeDomains(st, w, old, t.ID, t.Domains)
	if old != nil {
		keepSecrets(t.Providers, old.Providers)
	}
	if len(probs) > 0 {
		return Tenant{}, &ValidationError{Problems: probs}
	}
	st.putTenant(t)
	return t, nil
}

// sameLimits reports whether a and b set the same per-tenant limits.
func sameLimits(a, b config.TenantRateLimits) bool {
	eq := func(x, y *config.Rate) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return eq(a.StartsPerTenant, b.StartsPerTenant) && eq(a.FailuresPerTenant, b.FailuresPerTenant)
}

// keepSecrets copies stored secrets (providerSecrets) into providers that
// left them out (or sent the redaction marker back), so a read-modify-write
// of a tenant does not erase them.
func keepSecrets(in, old []Provider) {
	for i := range in {
		var prev *Provider
		for j := range old {
			if old[j].ID == in[i].ID {
				prev = &old[j]
			}
		}
		var olds []secretField
		if prev != nil {
			olds = providerSecrets(prev)
		}
		for k, f := range providerSecrets(&in[i]) {
			if *f.v != "" && *f.v != redacted {
				continue
			}
			*f.v = ""
			if prev != nil {
				*f.v = *olds[k].v
			}
		}
	}
}

// --- domains -------------------------------------------------------------

// domainPrefix names the TXT record that proves control of a domain.
const (
	txtLabel  = "_realmgate."
	txtPrefix = "realmgate-verification="
)

// showDomain fills in the TXT record a tenant admin must publish.
func showDomain(d Domain) Domain {
	if d.Token != "" && !d.Verified {
		d.TXTName = txtLabel + strings.TrimPrefix(d.Name, "*.")
		d.TXTValue = txtPrefix + d.Token
	}
	return d
}

// normalizeDomain returns d lower-cased, without a trailing dot, IDN in
// punycode, keeping a leading "*.", or a problem.
func normalizeDomain(d string) (string, string) {
	d = strings.TrimSpace(d)
	wild := strings.HasPrefix(d, "*.")
	host, err := realm.NormalizeDomain(strings.TrimPrefix(d, "*."))
	if err != nil || !validHost(host) {
		return "", fmt.Sprintf("%q is not a domain name (want example.com or *.example.com)", d)
	}
	if wild {
		return "*." + host, ""
	}
	return host, ""
}

// validHost reports whether h is a DNS name of two or more labels.
func validHost(h string) bool {
	if len(h) > 253 || !strings.Contains(h, ".") {
		return false
	}
	for _, l := range strings.Split(h, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// verifiedElsewhere returns whether another tenant (file or API) owns the
// verified domain name.
func (s *Service) verifiedElsewhere(st *State, tenant, name string) bool {
	for id, t := range s.files {
		if id != tenant && slices.Contains(t.Domains, name) { // a file tenant's domains are verified (fileTenant)
			return true
		}
	}
	owner, ok := st.owner(name)
	return ok && owner != tenant
}

// mergeDomains builds a tenant's domain list from input names: a domain it
// already had keeps its verification; a new one starts unverified with a
// fresh token, unless an operator marks it verified (an override). A domain
// another tenant verified cannot be claimed.
func (s *Service) mergeDomains(st *State, w *caller, old *Tenant, tenant string, in []Domain) ([]Domain, []Problem) {
	var out []Domain
	var probs []Problem
	seen := map[string]bool{}
	for i, d := range in {
		field := fmt.Sprintf("tenants[%s].domains[%d]", tenant, i)
		name, msg := normalizeDomain(d.Name)
		if msg != "" {
			probs = append(probs, Problem{Field: field, Message: msg})
			continue
		}
		if seen[name] {
			probs = append(probs, Problem{Field: field, Message: fmt.Sprintf("domain %q is listed twice", name)})
			continue
		}
		seen[name] = true
		if old != nil {
			if j := old.domain(name); j >= 0 {
				od := old.Domains[j]
				if d.Verified && !od.Verified {
					if !w.operator() {
						probs = append(probs, Problem{Field: field, Message: "only an operator may mark a domain verified; publish the TXT record and call verify"})
						continue
					}
					od = s.markVerified(od, "operator:"+w.name)
				}
				out = append(out, od)
				continue
			}
		}
		if s.verifiedElsewhere(st, tenant, name) {
			probs = append(probs, Problem{Field: field, Message: fmt.Sprintf("domain %q is already verified by another tenant", name)})
			continue
		}
		nd := Domain{Name: name, Token: randomToken()}
		if d.Verified {
			if !w.operator() {
				probs = append(probs, Problem{Field: field, Message: "only an operator may mark a domain verified; publish the TXT record and call verify"})
				continue
			}
			nd = s.markVerified(nd, "operator:"+w.name)
		}
		out = append(out, nd)
	}
	return out, probs
}

func (s *Service) markVerified(d Domain, by string) Domain {
	now := s.opts.Now().UTC()
	d.Verified, d.VerifiedBy, d.VerifiedAt = true, by, &now
	return d
}

type domainList struct {
	Domains []Domain `json:"domains"`
}

func (s *Service) listDomains(c echo.Context) error {
	id := param(c, "tenant")
	if _, err := scoped(c, id); err != nil {
		return err
	}
	t, file := s.lookupTenant(id)
	if t == nil {
		return notFound("no tenant %q", id)
	}
	return c.JSON(http.StatusOK, domainList{Domains: show(*t, srcOf(file)).Domains})
}

type domainInput struct {
	Name     string `json:"name"`
	Verified bool   `json:"verified,omitempty"`
}

// editTenant commits a change to one API tenant's copy.
func (s *Service) editTenant(c echo.Context, action, resource string, edit func(st *State, t *Tenant) (before, after any, err error)) (*State, error) {
	id := param(c, "tenant")
	w, err := scoped(c, id)
	if err != nil {
		return nil, err
	}
	return s.commit(c.Request().Context(), w, action, resource, func(st *State) (any, any, error) {
		i, err := s.apiTenant(st, id)
		if err != nil {
			return nil, nil, err
		}
		t := deepCopy(*st.Tenants[i])
		before, after, err := edit(st, &t)
		if err != nil {
			return before, after, err
		}
		st.putTenant(t)
		return before, after, nil
	})
}

func (s *Service) addDomain(c echo.Context) error {
	var in domainInput
	if err := decode(c, &in, maxBody); err != nil {
		return err
	}
	w := who(c)
	var added Domain
	_, err := s.editTenant(c, "domain.add", "tenants/"+param(c, "tenant")+"/domains/"+in.Name, func(st *State, t *Tenant) (any, any, error) {
		name, msg := normalizeDomain(in.Name)
		if msg != "" {
			return nil, nil, &ValidationError{Problems: []Problem{{Field: "name", Message: msg}}}
		}
		if t.domain(name) >= 0 {
			return nil, nil, errorf(http.StatusConflict, "exists", "domain %q is already listed", name)
		}
		ds, probs := s.mergeDomains(st, w, nil, t.ID, []Domain{{Name: name, Verified: in.Verified}})
		if len(probs) > 0 {
			return nil, nil, &ValidationError{Problems: probs}
		}
		added = ds[0]
		t.Domains = append(t.Domains, added)
		return nil, added, nil
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, showDomain(added))
}

func (s *Service) deleteDomain(c echo.Context) error {
	name, _ := normalizeDomain(param(c, "domain"))
	_, err := s.editTenant(c, "domain.delete", "tenants/"+param(c, "tenant")+"/domains/"+name, func(_ *State, t *Tenant) (any, any, error) {
		i := t.domain(name)
		if i < 0 {
			return nil, nil, notFound("no domain %q", param(c, "domain"))
		}
		before := t.Domains[i]
		t.Domains = slices.Delete(t.Domains, i, i+1)
		return before, nil, nil
	})
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

type verifyInput struct {
	// Override marks the domain verified without DNS (operators only).
	Override bool `json:"override,omitempty"`
}

func (s *Service) verifyDomain(c echo.Context) error {
	var in verifyInput
	if c.Request().ContentLength != 0 {
		if err := decode(c, &in, maxBody); err != nil {
			return err
		}
	}
	w := who(c)
	if in.Override && !w.operator() {
		return forbidden("only an operator may override domain verification")
	}
	name, _ := normalizeDomain(param(c, "domain"))
	tenantID := param(c, "tenant")
	if _, err := scoped(c, tenantID); err != nil {
		return err
	}
	// Look the record up before taking the write lock: DNS may be slow.
	var token string
	if t, _ := s.lookupTenant(tenantID); t != nil {
		if i := t.domain(name); i >= 0 {
			token = t.Domains[i].Token
		}
	}
	dnsOK := false
	var dnsErr error
	if !in.Override && token != "" {
		dnsOK, dnsErr = s.checkTXT(c.Request().Context(), name, token)
	}
	var out Domain
	_, err := s.editTenant(c, "domain.verify", "tenants/"+tenantID+"/domains/"+name, func(st *State, t *Tenant) (any, any, error) {
		i := t.domain(name)
		if i < 0 {
			return nil, nil, notFound("no domain %q", param(c, "domain"))
		}
		d := t.Domains[i]
		if d.Verified {
			out = d
			return d, d, nil
		}
		if s.verifiedElsewhere(st, t.ID, name) {
			return d, nil, errorf(http.StatusConflict, "exists", "domain %q is already verified by another tenant", name)
		}
		switch {
		case in.Override:
			out = s.markVerified(d, "operator:"+w.name)
		case dnsOK && d.Token == token:
			out = s.markVerified(d, "dns")
		default:
			msg := fmt.Sprintf("no TXT record %q with value %q was found", txtLabel+strings.TrimPrefix(name, "*."), txtPrefix+d.Token)
			if dnsErr != nil {
				msg += ": " + dnsErr.Error()
			}
			return d, nil, &apiError{status: http.StatusUnprocessableEntity, code: "not_verified", msg: msg}
		}
		t.Domains[i] = out
		return d, out, nil
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, showDomain(out))
}

// --- providers -----------------------------------------------------------

type providerList struct {
	Providers []Provider `json:"providers"`
}

func (s *Service) listProviders(c echo.Context) error {
	id := param(c, "tenant")
	if _, err := scoped(c, id); err != nil {
		return err
	}
	t, file := s.lookupTenant(id)
	if t == nil {
		return notFound("no tenant %q", id)
	}
	return c.JSON(http.StatusOK, providerList{Providers: show(*t, srcOf(file)).Providers})
}

// findProvider returns the tenant's provider, redacted.
func (s *Service) findProvider(c echo.Context) (*Tenant, Provider, error) {
	id, pid := param(c, "tenant"), param(c, "provider")
	if _, err := scoped(c, id); err != nil {
		return nil, Provider{}, err
	}
	t, file := s.lookupTenant(id)
	if t == nil {
		return nil, Provider{}, notFound("no tenant %q", id)
	}
	shown := show(*t, srcOf(file))
	i := shown.provider(pid)
	if i < 0 {
		return nil, Provider{}, notFound("no provider %q in tenant %q", pid, id)
	}
	return t, shown.Providers[i], nil
}

func (s *Service) getProvider(c echo.Context) error {
	_, p, err := s.findProvider(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

func (s *Service) createProvider(c echo.Context) error {
	var in Provider
	if err := decode(c, &in, maxBody); err != nil {
		return err
	}
	_, err := s.editTenant(c, "provider.create", "tenants/"+param(c, "tenant")+"/providers/"+in.ID, func(_ *State, t *Tenant) (any, any, error) {
		if t.provider(in.ID) >= 0 {
			return nil, nil, errorf(http.StatusConflict, "exists", "provider %q already exists in tenant %q", in.ID, t.ID)
		}
		t.Providers = append(t.Providers, in)
		return nil, in, nil
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, redactProvider(in))
}

func (s *Service) replaceProvider(c echo.Context) error {
	pid := param(c, "provider")
	var in Provider
	if err := decode(c, &in, maxBody); err != nil {
		return err
	}
	if in.ID == "" {
		in.ID = pid
	}
	if in.ID != pid {
		return errorf(http.StatusBadRequest, "invalid_request", "id %q in the body differs from %q in the path", in.ID, pid)
	}
	_, err := s.editTenant(c, "provider.replace", "tenants/"+param(c, "tenant")+"/providers/"+pid, func(_ *State, t *Tenant) (any, any, error) {
		i := t.provider(pid)
		if i < 0 {
			return nil, nil, notFound("no provider %q in tenant %q", pid, t.ID)
		}
		before := t.Providers[i]
		ps := []Provider{in}
		keepSecrets(ps, t.Providers)
		t.Providers[i] = ps[0]
		return before, ps[0], nil
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, redactProvider(in))
}

func (s *Service) deleteProvider(c echo.Context) error {
	pid := param(c, "provider")
	_, err := s.editTenant(c, "provider.delete", "tenants/"+param(c, "tenant")+"/providers/"+pid, func(_ *State, t *Tenant) (any, any, error) {
		i := t.provider(pid)
		if i < 0 {
			return nil, nil, notFound("no provider %q in tenant %q", pid, t.ID)
		}
		before := t.Providers[i]
		t.Providers = slices.Delete(t.Providers, i, i+1)
		return before, nil, nil
	})
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// --- rules ---------------------------------------------------------------

type ruleList struct {
	Rules []Rule `json:"rules"`
}

func (s *Service) getRules(c echo.Context) error {
	id := param(c, "tenant")
	if _, err := scoped(c, id); err != nil {
		return err
	}
	t, _ := s.lookupTenant(id)
	if t == nil {
		return notFound("no tenant %q", id)
	}
	out := ruleList{Rules: t.Rules}
	if out.Rules == nil {
		out.Rules = []Rule{}
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Service) replaceRules(c echo.Context) error {
	var in ruleList
	if err := decode(c, &in, maxBody); err != nil {
		return err
	}
	_, err := s.editTenant(c, "rules.replace", "tenants/"+param(c, "tenant")+"/rules", func(_ *State, t *Tenant) (any, any, error) {
		before := ruleList{Rules: t.Rules}
		t.Rules = in.Rules
		return before, in, nil
	})
	if err != nil {
		return err
	}
	if in.Rules == nil {
		in.Rules = []Rule{}
	}
	return c.JSON(http.StatusOK, in)
}

// --- clients -------------------------------------------------------------

type clientList struct {
	Clients []Client `json:"clients"`
}

func (s *Service) listClients(c echo.Context) error {
	w := clientCaller(c) // tenantclients.go: a tenant admin sees its tenant's clients
	out := clientList{Clients: []Client{}}
	for _, cl := range s.fileCl {
		if visibleClient(w, cl) {
			out.Clients = append(out.Clients, *cl)
		}
	}
	for _, cl := range s.cur.Load().state.Clients {
		if !visibleClient(w, &cl) {
			continue
		}
		cl = cl.redact()
		cl.Source = SourceAPI
		out.Clients = append(out.Clients, cl)
	}
	slices.SortFunc(out.Clients, func(a, b Client) int { return strings.Compare(a.ID, b.ID) })
	return c.JSON(http.StatusOK, out)
}

func (s *Service) getClient(c echo.Context) error {
	w := clientCaller(c)
	id := param(c, "client")
	if cl, ok := s.fileCl[id]; ok {
		if err := clientScoped(w, cl); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, cl)
	}
	st := s.cur.Load().state
	i := st.client(id)
	if i < 0 && !w.operator() {
		return clientScoped(w, nil)
	}
	if i < 0 {
		return notFound("no client %q", id)
	}
	if err := clientScoped(w, &st.Clients[i]); err != nil {
		return err
	}
	cl := st.Clients[i].redact()
	cl.Source = SourceAPI
	return c.JSON(http.StatusOK, cl)
}

// upsertClient puts in into st, keeping a stored secret the input left out.
// A per-tenant admin w writes only its tenant's clients (tenantclients.go).
func (s *Service) upsertClient(st *State, w *caller, in Client, replace bool) (before *Client, err error) {
	if fc, ok := s.fileCl[in.ID]; ok {
		if err := clientScoped(w, fc); err != nil {
			return nil, err
		}
		return nil, readOnly(fmt.Sprintf("client %q", in.ID))
	}
	i := st.client(in.ID)
	if i >= 0 {
		if err := clientScoped(w, &st.Clients[i]); err != nil {
			return nil, err
		}
	}
	if err := s.tenantClientProblems(w, st, &in); err != nil {
		return nil, err
	}
	switch {
	case replace && i < 0:
		return nil, notFound("no client %q", in.ID)
	case !replace && i >= 0:
		return nil, errorf(http.StatusConflict, "exists", "client %q already exists", in.ID)
	}
	cl := deepCopy(in)
	if i >= 0 {
		before = &st.Clients[i]
		if cl.Secret == "" || cl.Secret == redacted {
			cl.Secret = before.Secret
		}
	} else if cl.Secret == redacted {
		cl.Secret = ""
	}
	st.putClient(cl)
	return before, nil
}

func (s *Service) createClient(c echo.Context) error {
	w := clientCaller(c)
	var in Client
	if err := decode(c, &in, maxBody); err != nil {
		return err
	}
	_, err := s.commit(c.Request().Context(), w, "client.create", "clients/"+in.ID, func(st *State) (any, any, error) {
		_, err := s.upsertClient(st, w, in, false)
		return nil, in, err
	})
	if err != nil {
		return err
	}
	in.Source = SourceAPI
	return c.JSON(http.StatusCreated, in.redact())
}

func (s *Service) replaceClient(c echo.Context) error {
	w := clientCaller(c)
	id := param(c, "client")
	var in Client
	if err := decode(c, &in, maxBody); err != nil {
		return err
	}
	if in.ID == "" {
		in.ID = id
	}
	if in.ID != id {
		return errorf(http.StatusBadRequest, "invalid_request", "id %q in the body differs from %q in the path", in.ID, id)
	}
	_, err := s.commit(c.Request().Context(), w, "client.replace", "clients/"+id, func(st *State) (any, any, error) {
		before, err := s.upsertClient(st, w, in, true)
		return before, in, err
	})
	if err != nil {
		return err
	}
	in.Source = SourceAPI
	return c.JSON(http.StatusOK, in.redact())
}

func (s *Service) deleteClient(c echo.Context) error {
	w := clientCaller(c)
	id := param(c, "client")
	_, err := s.commit(c.Request().Context(), w, "client.delete", "clients/"+id, func(st *State) (any, any, error) {
		if fc, ok := s.fileCl[id]; ok {
			if err := clientScoped(w, fc); err != nil {
				return nil, nil, err
			}
			return nil, nil, readOnly(fmt.Sprintf("client %q", id))
		}
		i := st.client(id)
		if i < 0 && !w.operator() {
			return nil, nil, clientScoped(w, nil)
		}
		if i < 0 {
			return nil, nil, notFound("no client %q", id)
		}
		if err := clientScoped(w, &st.Clients[i]); err != nil {
			return nil, nil, err
		}
		before := st.Clients[i]
		st.Clients = slices.Delete(st.Clients, i, i+1)
		return before, nil, nil
	})
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// --- batch ---------------------------------------------------------------

// BatchRequest creates or replaces many tenants and clients in one version.
type BatchRequest struct {
	// Tenants are created or replaced whole.
	Tenants []Tenant `json:"tenants,omitempty"`
	// Clients are created or replaced whole.
	Clients []Client `json:"clients,omitempty"`
}

type batchResult struct {
	Version int64 `json:"version"`
	Tenants int   `json:"tenants"`
	Clients int   `json:"clients"`
}

func (s *Service) batch(c echo.Context) error {
	w, err := operatorOnly(c)
	if err != nil {
		return err
	}
	var in BatchRequest
	if err := decode(c, &in, maxBatchBody); err != nil {
		return err
	}
	// In id order each new tenant lands at the end of the sorted state.
	slices.SortStableFunc(in.Tenants, func(a, b Tenant) int { return strings.Compare(a.ID, b.ID) })
	st, err := s.commit(c.Request().Context(), w, "batch", "batch("+count(len(in.Tenants), "tenant")+", "+count(len(in.Clients), "client")+")",
		func(st *State) (any, any, error) {
			var probs []Problem
			for _, t := range in.Tenants {
				replace := st.tenant(t.ID) >= 0
				if _, err := s.upsertTenant(st, w, t, replace); err != nil {
					probs = append(probs, asProblems(fmt.Sprintf("tenants[%s]", t.ID), err)...)
				}
			}
			for _, cl := range in.Clients {
				if _, err := s.upsertClient(st, w, cl, st.client(cl.ID) >= 0); err != nil {
					probs = append(probs, asProblems(fmt.Sprintf("clients[%s]", cl.ID), err)...)
				}
			}
			if len(probs) > 0 {
				return nil, nil, &ValidationError{Problems: probs}
			}
			ids := make([]string, 0, len(in.Tenants)+len(in.Clients))
			for _, t := range in.Tenants {
				ids = append(ids, "tenants/"+t.ID)
			}
			for _, cl := range in.Clients {
				ids = append(ids, "clients/"+cl.ID)
			}
			return nil, ids, nil
		})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, batchResult{Version: st.Version, Tenants: len(in.Tenants), Clients: len(in.Clients)})
}

// asProblems turns an error of one batch entry into problems.
func asProblems(field string, err error) []Problem {
	var ve *ValidationError
	if errors.As(err, &ve) {
		return ve.Problems
	}
	return []Problem{{Field: field, Message: err.Error()}}
}
