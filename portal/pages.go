package portal

import (
	"cmp"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/realmgate/realmgate/admin"
	"github.com/realmgate/realmgate/locale"
	"github.com/realmgate/realmgate/ui"
)

//go:embed templates/*.html
var templateFS embed.FS

// pages are escaped by html/template: every value a tenant, an IdP or the
// person typing controls is contextually escaped (S54).
var pages = template.Must(ui.Templates(templateFS, "templates/*.html"))

// problem is a validation message shown beside a field (or the form).
type problem struct {
	// Field is the form field's id ("" for the whole form); ID the
	// message's element id (aria-describedby).
	Field, ID, Message string
}

// step is one entry of the overview.
type step struct {
	// Path is the step's page; Title a catalog message; Status one too.
	Path, Title, Status string
	// Done says the step is complete.
	Done bool
}

// roleRow is one row of the group-to-role table.
type roleRow struct {
	// N counts rows from 0 (ids); Row from 1 (labels).
	N, Row      int
	Group, Role string
}

// page is what every portal page reads.
type page struct {
	// Printer gives the page's messages in the reader's language (T, Tf, Lang).
	*locale.Printer
	// Title is a catalog message; Message and Detail too (or text from a peer).
	Title, Message, Detail string
	RequestID              string
	// Base is the portal's path (/setup/); CSRF the session's form token.
	Base, CSRF string
	// Tenant is the tenant's display name.
	Tenant string
	// Script adds portal.js (pages with copy buttons).
	Script bool
	// Brand is the tenant's look (package branding): the frame shows it.
	ui.Brand

	Steps    []step
	Kinds    []kind
	Kind     *kind
	Values   []value
	Form     map[string]string
	Problems []problem
	Provider string
	Pending  bool
	Domains  []admin.Domain
	Domain   string
	Verified string
	Tester   bool
	Test     *TestResult
	Rows     []roleRow
	DryRun   *admin.DryRunResult
	Token    string
	Endpoint string
	Allow    map[string]bool
}

// FieldProblem returns the problem of field, if any.
func (d *page) FieldProblem(field string) *problem {
	for i := range d.Problems {
		if d.Problems[i].Field == field {
			return &d.Problems[i]
		}
	}
	return nil
}

// FormProblems are the problems of no field.
func (d *page) FormProblems() []problem {
	var out []problem
	for _, p := range d.Problems {
		if p.Field == "" {
			out = append(out, p)
		}
	}
	return out
}

// Sorted returns m's keys sorted (attributes and claims in a stable order).
func (d *page) Sorted(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Show renders an attribute or claim value as text.
func (d *page) Show(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = d.Show(e)
		}
		return strings.Join(parts, ", ")
	case []string:
		return strings.Join(x, ", ")
	}
	return fmt.Sprint(v)
}

// page renders name with status.
func (h *Handler) page(w http.ResponseWriter, r *http.Request, p *locale.Printer, status int, name string, d *page) {
	if p == nil {
		p = h.printer(r, "")
	}
	d.Printer, d.Base = p, h.prefix
	d.RequestID = r.Header.Get("X-Request-Id") // set by ServeHTTP: the portal's own
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name, d); err != nil {
		h.opts.Logger.Error("portal: render", "page", name, "err", err)
	}
}

// show renders a page of the session.
func (rq *request) show(status int, name string, d *page) {
	d.CSRF = rq.sess.CSRF
	d.Tenant = rq.view.Tenant.Name
	if d.Tenant == "" {
		d.Tenant = rq.view.Tenant.ID
	}
	if rq.h.opts.Brand != nil {
		d.Brand = rq.h.opts.Brand(rq.view.Tenant.ID)
	}
	d.Allow = map[string]bool{}
	for _, a := range rq.view.Link.Allow {
		d.Allow[a] = true
	}
	rq.h.page(rq.w, rq.r, rq.p, status, name, d)
}

// problems turns a refusal of an admin Setup method into messages; false
// when it was not a validation problem (already answered).
func (rq *request) problems(err error, field func(string) string) ([]problem, bool) {
	ps := admin.SetupProblems(err)
	if ps == nil {
		rq.adminError(err)
		return nil, false
	}
	out := make([]problem, len(ps))
	for i, p := range ps {
		msg := p.Message
		if strings.HasSuffix(p.Field, ".id") {
			// An IdP id taken by another tenant: the validation message
			// names that tenant, which a link of this one must not learn.
			msg = rq.p.T("An identity provider of this name exists already. Ask the service that sent you the link for help.")
		}
		out[i] = problem{Field: field(p.Field), ID: fmt.Sprintf("err-%d", i), Message: msg}
	}
	return out, true
}

// route serves the session's pages.
func (h *Handler) route(rq *request, rest string) {
	get, post := rq.r.Method == http.MethodGet || rq.r.Method == http.MethodHead, rq.r.Method == http.MethodPost
	switch {
	case rest == "" && get:
		rq.home()
	case rest == "idp" && get && rq.allows(admin.AllowIdP):
		rq.show(http.StatusOK, "kinds", &page{Title: "Choose your identity provider", Kinds: kinds})
	case strings.HasPrefix(rest, "idp/") && rq.allows(admin.AllowIdP):
		k := kindByID(strings.TrimPrefix(rest, "idp/"))
		switch {
		case k == nil:
			h.fail(rq.w, rq.r, rq.p, http.StatusNotFound)
		case get:
			rq.kindPage(k, nil, nil)
		case post:
			rq.connect(k)
		default:
			h.fail(rq.w, rq.r, rq.p, http.StatusMethodNotAllowed)
		}
	case rest == "domains" && rq.allows(admin.AllowDomains) && (get || post):
		rq.domains(post)
	case rest == "domains/check" && post && rq.allows(admin.AllowDomains):
		rq.checkDomain()
	case rest == "test" && rq.allows(admin.AllowIdP) && h.opts.Tester != nil && (get || post):
		rq.test(post)
	case rest == "roles" && rq.allows(admin.AllowRoles) && (get || post):
		rq.roles(post)
	case rest == "scim" && rq.allows(admin.AllowSCIM) && (get || post):
		rq.scim(post)
	case rest == "activate" && get:
		rq.show(http.StatusOK, "activate", &page{Title: "Activate", Provider: rq.provider()})
	case rest == "activate" && post:
		rq.activate()
	default:
		h.fail(rq.w, rq.r, rq.p, http.StatusNotFound)
	}
}

// allows reports whether the link allows step: a step it lacks is not
// shown, and refused (404) when asked for.
func (rq *request) allows(step string) bool { return rq.view.Link.Allows(step) }

// provider is the IdP the session (or an earlier session of the link) set up.
func (rq *request) provider() string {
	t := rq.view.Tenant
	if rq.sess.Provider != "" && slices.ContainsFunc(t.Providers, func(p admin.Provider) bool { return p.ID == rq.sess.Provider }) {
		return rq.sess.Provider
	}
	for _, k := range kinds {
		id := providerID(t.ID, k.ID)
		if slices.ContainsFunc(t.Providers, func(p admin.Provider) bool { return p.ID == id }) {
			return id
		}
	}
	return ""
}

func (rq *request) home() {
	d := &page{Title: "Set up single sign-on", Provider: rq.provider(), Tester: rq.h.opts.Tester != nil}
	t := rq.view.Tenant
	if rq.allows(admin.AllowIdP) {
		s := step{Path: "idp", Title: "Connect your identity provider", Status: "Not connected yet"}
		if d.Provider != "" {
			s.Status, s.Done = "Connected; waiting for activation", true
		}
		d.Steps = append(d.Steps, s)
	}
	if rq.allows(admin.AllowDomains) {
		s := step{Path: "domains", Title: "Prove your domains", Status: "No domain yet"}
		n := 0
		for _, dm := range t.Domains {
			if dm.Verified {
				n++
			}
		}
		if len(t.Domains) > 0 {
			s.Status = "Waiting for the DNS record"
		}
		if n > 0 {
			s.Status, s.Done = "Verified", true
		}
		d.Steps = append(d.Steps, s)
	}
	if rq.allows(admin.AllowIdP) && d.Tester && d.Provider != "" {
		s := step{Path: "test", Title: "Test a sign-in", Status: "Not tested yet"}
		if rq.sess.Test != "" {
			s.Status, s.Done = "Tested", true
		}
		d.Steps = append(d.Steps, s)
	}
	if rq.allows(admin.AllowRoles) {
		s := step{Path: "roles", Title: "Map groups to roles", Status: "No mapping yet"}
		if len(admin.SetupRoleTable(t)) > 0 {
			s.Status, s.Done = "Saved", true
		}
		d.Steps = append(d.Steps, s)
	}
	if rq.allows(admin.AllowSCIM) && rq.view.SCIMEndpoint != "" {
		d.Steps = append(d.Steps, step{Path: "scim", Title: "Provision users with SCIM", Status: "Optional"})
	}
	rq.show(http.StatusOK, "home", d)
}

// kindPage shows kind k's instructions, values and connect form.
func (rq *request) kindPage(k *kind, form map[string]string, probs []problem) {
	pid := providerID(rq.view.Tenant.ID, k.ID)
	status := http.StatusOK
	if len(probs) > 0 {
		status = http.StatusUnprocessableEntity
	}
	rq.show(status, "kind", &page{Title: "Connect your identity provider", Kind: k, Values: values(rq.h.opts.Admin, k, pid),
		Form: form, Problems: probs, Script: true, Provider: rq.provider()})
}

// connect creates (or, while pending, replaces) the kind's IdP from the form.
func (rq *request) connect(k *kind) {
	f := rq.r.PostForm
	form := map[string]string{"issuer": strings.TrimSpace(f.Get("issuer")), "client_id": strings.TrimSpace(f.Get("client_id")),
		"metadata_url": strings.TrimSpace(f.Get("metadata_url"))}
	p := admin.Provider{ID: providerID(rq.view.Tenant.ID, k.ID), Type: k.Type, Name: k.Name}
	var local []problem
	switch k.Form {
	case formOIDC, formOAuth:
		p.Issuer, p.ClientID, p.ClientSecret = form["issuer"], form["client_id"], f.Get("client_secret")
		if k.Form == formOAuth {
			p.Issuer = ""
		}
		if k.Form == formOIDC && p.Issuer == "" {
			local = append(local, problem{Field: "issuer", Message: rq.p.T("Enter the issuer.")})
		}
		if p.ClientID == "" {
			local = append(local, problem{Field: "client_id", Message: rq.p.T("Enter the client ID.")})
		}
		if p.ClientSecret == "" && rq.provider() != p.ID {
			local = append(local, problem{Field: "client_secret", Message: rq.p.T("Enter the client secret.")})
		}
	case formSAML:
		p.MetadataURL = form["metadata_url"]
		if file, _, err := rq.r.FormFile("metadata_file"); err == nil {
			raw, rerr := io.ReadAll(io.LimitReader(file, rq.h.opts.MaxUpload+1))
			_ = file.Close()
			switch {
			case rerr != nil:
				rq.adminError(rerr)
				return
			case int64(len(raw)) > rq.h.opts.MaxUpload:
				rq.h.fail(rq.w, rq.r, rq.p, http.StatusRequestEntityTooLarge)
				return
			case len(raw) > 0:
				p.Metadata = string(raw)
			}
		}
		switch {
		case p.MetadataURL == "" && p.Metadata == "":
			local = append(local, problem{Field: "metadata_url", Message: rq.p.T("Enter the metadata URL or upload the metadata file.")})
		case p.MetadataURL != "" && p.Metadata != "":
			local = append(local, problem{Field: "metadata_url", Message: rq.p.T("Give the metadata URL or a file, not both.")})
		}
	}
	if len(local) > 0 {
		for i := range local {
			local[i].ID = "err-" + local[i].Field
		}
		rq.kindPage(k, form, local)
		return
	}
	err := rq.h.opts.Admin.SetupSaveProvider(rq.r.Context(), rq.sess.Link, p)
	if err != nil {
		main := "issuer" // a problem of the provider as a whole is about where it was found
		switch k.Form {
		case formSAML:
			main = "metadata_url"
		case formOAuth:
			main = "client_id"
		}
		probs, ok := rq.problems(err, func(path string) string { return cmp.Or(providerField(path), main) })
		if ok {
			rq.kindPage(k, form, probs)
		}
		return
	}
	rq.sess.Provider = p.ID
	if err := rq.saveSession(); err != nil {
		rq.adminError(err)
		return
	}
	rq.redirect("")
}

// providerField maps a validation problem's path to the form's field.
func providerField(path string) string {
	for _, f := range []string{"metadata_url", "metadata", "client_secret", "client_id", "issuer"} {
		if strings.HasSuffix(path, "."+f) || path == f {
			if f == "metadata" {
				return "metadata_url"
			}
			return f
		}
	}
	return ""
}

func (rq *request) domains(post bool) {
	d := &page{Title: "Prove your domains", Domains: rq.view.Tenant.Domains, Script: true}
	if post {
		name := strings.TrimSpace(rq.r.PostFormValue("domain"))
		_, err := rq.h.opts.Admin.SetupAddDomain(rq.r.Context(), rq.sess.Link, name)
		if err != nil {
			probs, ok := rq.problems(err, func(string) string { return "domain" })
			if !ok {
				return
			}
			d.Problems, d.Domain = probs, name
			rq.show(http.StatusUnprocessableEntity, "domains", d)
			return
		}
		rq.redirect("domains")
		return
	}
	rq.show(http.StatusOK, "domains", d)
}

func (rq *request) checkDomain() {
	name := rq.r.PostFormValue("name")
	dm, err := rq.h.opts.Admin.SetupVerifyDomain(rq.r.Context(), rq.sess.Link, name)
	d := &page{Title: "Prove your domains", Domains: rq.view.Tenant.Domains, Script: true}
	if err != nil {
		probs, ok := rq.problems(err, func(string) string { return "" })
		if !ok {
			return
		}
		d.Problems = probs
		rq.show(http.StatusUnprocessableEntity, "domains", d)
		return
	}
	view, err := rq.h.opts.Admin.SetupTenant(rq.r.Context(), rq.sess.Link)
	if err == nil {
		d.Domains = view.Tenant.Domains
	}
	d.Verified = dm.Name
	rq.show(http.StatusOK, "domains", d)
}

// test starts a test sign-in (POST) or shows the result it came back with.
func (rq *request) test(post bool) {
	pid := rq.provider()
	if pid == "" {
		rq.redirect("idp")
		return
	}
	if post {
		err := rq.h.opts.Tester.StartTest(rq.w, rq.r, TestRequest{Tenant: rq.view.Tenant.ID, IdP: pid,
			Return: rq.h.origin + rq.url("test"), Actor: admin.SetupActor(rq.sess.Link)})
		rq.h.opts.Admin.SetupAudit(rq.r.Context(), rq.sess.Link, "test_signin.start", "providers/"+pid, err)
		if errors.Is(err, ErrTestRefused) {
			rq.h.opts.Logger.Info("portal: test sign-in refused", "link", rq.sess.Link, "idp", pid, "err", err)
			rq.show(http.StatusUnprocessableEntity, "test", &page{Title: "Test a sign-in", Provider: pid,
				Message: "A test sign-in cannot start with this identity provider yet. Check its settings and try again."})
			return
		}
		if err != nil {
			rq.adminError(err)
		}
		return
	}
	d := &page{Title: "Test a sign-in", Provider: pid}
	id := rq.r.URL.Query().Get("test")
	if id == "" {
		id = rq.sess.Test
	}
	if id != "" {
		res, err := rq.h.opts.Tester.TestResult(rq.r.Context(), id)
		if err == nil && rq.mine(res) {
			d.Test = res
			if rq.sess.Test != id {
				rq.sess.Test = id
				if err := rq.saveSession(); err != nil {
					rq.adminError(err)
					return
				}
			}
		} else {
			d.Message = "The test sign-in result is not available. Start a new test sign-in."
		}
	}
	rq.show(http.StatusOK, "test", d)
}

// mine reports whether a test result belongs to this link: its tenant,
// started by it.
func (rq *request) mine(res *TestResult) bool {
	return res != nil && res.Tenant == rq.view.Tenant.ID && res.Actor == admin.SetupActor(rq.sess.Link)
}

// maxRoleRows bounds the role table.
const maxRoleRows = 100

func (rq *request) roles(post bool) {
	d := &page{Title: "Map groups to roles"}
	table := admin.SetupRoleTable(rq.view.Tenant)
	if post {
		groups, roles := rq.r.PostForm["group"], rq.r.PostForm["role"]
		table = map[string]string{}
		var probs []problem
		for i := range min(len(groups), len(roles), maxRoleRows) {
			g, r := strings.TrimSpace(groups[i]), strings.TrimSpace(roles[i])
			switch {
			case g == "" && r == "":
				continue
			case g == "" || r == "":
				probs = append(probs, problem{Field: fmt.Sprintf("group-%d", i), ID: fmt.Sprintf("err-row-%d", i),
					Message: rq.p.T("Enter both the group and the role, or neither.")})
			}
			table[g] = r
		}
		d.Rows = rows(groups, roles)
		if len(probs) > 0 {
			d.Problems = probs
			rq.show(http.StatusUnprocessableEntity, "roles", d)
			return
		}
		if rq.r.PostFormValue("action") == "save" {
			if err := rq.h.opts.Admin.SetupSaveRoles(rq.r.Context(), rq.sess.Link, table); err != nil {
				probs, ok := rq.problems(err, func(string) string { return "" })
				if ok {
					d.Problems = probs
					rq.show(http.StatusUnprocessableEntity, "roles", d)
				}
				return
			}
			rq.redirect("")
			return
		}
		// A dry run over the last test sign-in's attributes.
		if rq.h.opts.Tester != nil && rq.sess.Test != "" {
			if res, err := rq.h.opts.Tester.TestResult(rq.r.Context(), rq.sess.Test); err == nil && rq.mine(res) {
				out, err := rq.h.opts.Admin.SetupDryRun(rq.r.Context(), rq.sess.Link, res.IdP, sample(res.Attributes), table)
				if err != nil {
					probs, ok := rq.problems(err, func(string) string { return "" })
					if !ok {
						return
					}
					d.Problems = probs
				} else {
					d.DryRun = &out
				}
			}
		}
		if d.DryRun == nil && len(d.Problems) == 0 {
			d.Message = "Run a test sign-in first: the dry run uses its attributes."
		}
		rq.show(http.StatusOK, "roles", d)
		return
	}
	var groups, roles []string
	keys := make([]string, 0, len(table))
	for g := range table {
		keys = append(keys, g)
	}
	sort.Strings(keys)
	for _, g := range keys {
		groups, roles = append(groups, g), append(roles, table[g])
	}
	d.Rows = rows(groups, roles)
	rq.show(http.StatusOK, "roles", d)
}

// rows are the table's rows plus three empty ones to add to.
func rows(groups, roles []string) []roleRow {
	var out []roleRow
	for i := range min(len(groups), len(roles), maxRoleRows) {
		if strings.TrimSpace(groups[i]) == "" && strings.TrimSpace(roles[i]) == "" {
			continue
		}
		out = append(out, roleRow{Group: groups[i], Role: roles[i]})
	}
	for range 3 {
		out = append(out, roleRow{})
	}
	for i := range out {
		out[i].N, out[i].Row = i, i+1
	}
	return out
}

// sample is a test sign-in's attributes as the dry run's identity.
func sample(attrs map[string]any) admin.SampleIdentity {
	s := admin.SampleIdentity{Claims: attrs}
	str := func(k string) string { v, _ := attrs[k].(string); return v }
	s.Subject, s.Email, s.Name = str("sub"), str("email"), str("name")
	s.EmailVerified, _ = attrs["email_verified"].(bool)
	return s
}

func (rq *request) scim(post bool) {
	d := &page{Title: "Provision users with SCIM", Endpoint: rq.view.SCIMEndpoint, Script: true}
	if post {
		name := "setup-portal-" + rq.h.opts.Now().UTC().Format("20060102-150405")
		tok, endpoint, err := rq.h.opts.Admin.SetupCreateSCIMToken(rq.r.Context(), rq.sess.Link, name)
		if err != nil {
			probs, ok := rq.problems(err, func(string) string { return "" })
			if ok {
				d.Problems = probs
				rq.show(http.StatusUnprocessableEntity, "scim", d)
			}
			return
		}
		d.Token, d.Endpoint = tok, endpoint
	}
	rq.show(http.StatusOK, "scim", d)
}

func (rq *request) activate() {
	pid := ""
	if rq.allows(admin.AllowIdP) {
		pid = rq.provider()
	}
	err := rq.h.opts.Admin.SetupActivate(rq.r.Context(), rq.sess.Link, pid)
	if err != nil {
		probs, ok := rq.problems(err, func(string) string { return "" })
		if ok {
			rq.show(http.StatusUnprocessableEntity, "activate", &page{Title: "Activate", Provider: pid, Problems: probs})
		}
		return
	}
	_ = rq.h.opts.Store.Delete(rq.r.Context(), rq.h.sessionKey(rq.sess.id))
	rq.h.setCookie(rq.w, "", -1)
	rq.show(http.StatusOK, "done", &page{Title: "Single sign-on is active", Provider: pid})
}
