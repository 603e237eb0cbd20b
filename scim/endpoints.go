package scim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// resourceOps is what the handler does with one resource type.
type resourceOps struct {
	get     func(ctx context.Context, tenant, id string) (resource, error)
	create  func(ctx context.Context, tenant, actor string, m map[string]any) (resource, error)
	replace func(ctx context.Context, tenant, actor, id string, m map[string]any, version string) (resource, error)
	del     func(ctx context.Context, tenant, actor, id string) error
	find    func(ctx context.Context, tenant, attr, value string) ([]resource, error)
	list    func(ctx context.Context, tenant string, offset, limit int) ([]resource, int, error)
	indexed []string
}

// resource is a User or a Group with what the handler needs of it.
type resource interface {
	id() string
	meta() Meta
	// writable returns the attributes a client may set, normalized.
	writable() map[string]any
	render(h *Handler, tenant string) map[string]any
	label() string
}

func (u *User) id() string { return u.ID }
func (u *User) meta() Meta { return u.Meta }
func (u *User) writable() map[string]any {
	m := asMap(u)
	delete(m, "groups")
	delete(m, "id")
	return m
}
func (u *User) label() string             { return u.UserName }
func (g *Group) id() string               { return g.ID }
func (g *Group) meta() Meta               { return g.Meta }
func (g *Group) writable() map[string]any { m := asMap(g); delete(m, "id"); return m }
func (g *Group) label() string            { return g.DisplayName }

func (u *User) render(h *Handler, tenant string) map[string]any {
	m := asMap(u)
	schemas := []any{UserSchema}
	if u.Enterprise != nil {
		schemas = append(schemas, EnterpriseUserSchema)
	}
	m["schemas"] = schemas
	if gs, ok := m["groups"].([]any); ok {
		for _, g := range gs {
			if gm, ok := g.(map[string]any); ok {
				gm["$ref"] = h.Endpoint(tenant) + "/Groups/" + gm["value"].(string)
				if _, ok := gm["type"]; !ok {
					gm["type"] = "direct"
				}
			}
		}
	}
	m["meta"] = h.metaOf("User", h.Endpoint(tenant)+"/Users/"+u.ID, u.Meta)
	return m
}

func (g *Group) render(h *Handler, tenant string) map[string]any {
	m := asMap(g)
	m["schemas"] = []any{GroupSchema}
	if ms, ok := m["members"].([]any); ok {
		for _, mb := range ms {
			if mm, ok := mb.(map[string]any); ok {
				typ, _ := mm["type"].(string)
				if typ == "" {
					typ = "User"
					mm["type"] = typ
				}
				mm["$ref"] = h.Endpoint(tenant) + "/" + typ + "s/" + mm["value"].(string)
			}
		}
	} else {
		m["members"] = []any{}
	}
	m["meta"] = h.metaOf("Group", h.Endpoint(tenant)+"/Groups/"+g.ID, g.Meta)
	return m
}

func (h *Handler) metaOf(rtype, location string, m Meta) map[string]any {
	out := map[string]any{"resourceType": rtype, "location": location}
	if !m.Created.IsZero() {
		out["created"] = m.Created.UTC().Format(time.RFC3339)
	}
	if !m.LastModified.IsZero() {
		out["lastModified"] = m.LastModified.UTC().Format(time.RFC3339)
	}
	if m.Version != "" {
		out["version"] = etag(m.Version)
	}
	return out
}

// etag is a version as a weak entity tag (RFC 7644 §3.14).
func etag(version string) string { return `W/"` + version + `"` }

func (h *Handler) ops(rt *resourceType) resourceOps {
	d := h.opts.Directory
	if rt == userType {
		return resourceOps{
			get: func(ctx context.Context, tenant, id string) (resource, error) {
				return nilable(d.GetUser(ctx, tenant, id))
			},
			create: func(ctx context.Context, tenant, actor string, m map[string]any) (resource, error) {
				u, err := userFrom(m)
				if err != nil {
					return nil, err
				}
				return nilable(d.CreateUser(ctx, tenant, actor, u))
			},
			replace: func(ctx context.Context, tenant, actor, id string, m map[string]any, version string) (resource, error) {
				u, err := userFrom(m)
				if err != nil {
					return nil, err
				}
				u.ID = id
				return nilable(d.ReplaceUser(ctx, tenant, actor, u, version))
			},
			del: d.DeleteUser,
			find: func(ctx context.Context, tenant, attr, value string) ([]resource, error) {
				us, err := d.FindUsers(ctx, tenant, attr, value)
				return asResources(us), err
			},
			list: func(ctx context.Context, tenant string, offset, limit int) ([]resource, int, error) {
				us, n, err := d.ListUsers(ctx, tenant, offset, limit)
				return asResources(us), n, err
			},
			indexed: []string{"userName", "externalId", "emails.value"},
		}
	}
	return resourceOps{
		get: func(ctx context.Context, tenant, id string) (resource, error) {
			return nilable(d.GetGroup(ctx, tenant, id))
		},
		create: func(ctx context.Context, tenant, actor string, m map[string]any) (resource, error) {
			g, err := groupFrom(m)
			if err != nil {
				return nil, err
			}
			return nilable(d.CreateGroup(ctx, tenant, actor, g))
		},
		replace: func(ctx context.Context, tenant, actor, id string, m map[string]any, version string) (resource, error) {
			g, err := groupFrom(m)
			if err != nil {
				return nil, err
			}
			g.ID = id
			return nilable(d.ReplaceGroup(ctx, tenant, actor, g, version))
		},
		del: d.DeleteGroup,
		find: func(ctx context.Context, tenant, attr, value string) ([]resource, error) {
			gs, err := d.FindGroups(ctx, tenant, attr, value)
			return asResources(gs), err
		},
		list: func(ctx context.Context, tenant string, offset, limit int) ([]resource, int, error) {
			gs, n, err := d.ListGroups(ctx, tenant, offset, limit)
			return asResources(gs), n, err
		},
		indexed: []string{"displayName", "externalId", "members.value"},
	}
}

// nilable turns a typed nil result into an untyped nil resource.
func nilable[T resource](v T, err error) (resource, error) {
	if err != nil {
		return nil, err
	}
	return v, nil
}

func asResources[T resource](list []T) []resource {
	out := make([]resource, len(list))
	for i, v := range list {
		out[i] = v
	}
	return out
}

// resources serves /Users and /Groups (RFC 7644 §3.2-§3.6).
func (h *Handler) resources(q *request, rt *resourceType, id string) {
	ops := h.ops(rt)
	var err error
	switch {
	case id == "" && q.r.Method == http.MethodGet:
		err = h.list(q, rt, ops)
	case id == "" && q.r.Method == http.MethodPost:
		err = h.create(q, rt, ops)
	case id == "":
		h.methodNotAllowed(q, "GET, POST")
		return
	case q.r.Method == http.MethodGet:
		err = h.read(q, rt, ops, id)
	case q.r.Method == http.MethodPut:
		err = h.update(q, rt, ops, id, nil)
	case q.r.Method == http.MethodPatch:
		body, rerr := readBody(q)
		if rerr != nil {
			err = rerr
			break
		}
		patch, perr := parsePatch(body)
		if perr != nil {
			err = perr
			break
		}
		err = h.update(q, rt, ops, id, patch)
	case q.r.Method == http.MethodDelete:
		err = h.remove(q, rt, ops, id)
	default:
		h.methodNotAllowed(q, "GET, PUT, PATCH, DELETE")
		return
	}
	if err != nil {
		h.writeError(q, err)
	}
}

func (h *Handler) read(q *request, rt *resourceType, ops resourceOps, id string) error {
	proj, err := parseProjection(rt, q.r)
	if err != nil {
		return err
	}
	res, err := ops.get(q.ctx(), q.tenant, id)
	if err != nil {
		return err
	}
	tag := etag(res.meta().Version)
	q.w.Header().Set("ETag", tag)
	if inm := q.r.Header.Get("If-None-Match"); inm != "" && etagMatches(inm, res.meta().Version) {
		q.w.WriteHeader(http.StatusNotModified)
		return nil
	}
	h.writeJSON(q, http.StatusOK, proj.apply(res.render(h, q.tenant)))
	return nil
}

func (h *Handler) create(q *request, rt *resourceType, ops resourceOps) error {
	body, err := readBody(q)
	if err != nil {
		return err
	}
	in, err := decodeBody(body)
	if err != nil {
		return err
	}
	m, err := normalize(rt, in)
	if err != nil {
		return err
	}
	res, err := ops.create(q.ctx(), q.tenant, actor(q.token), m)
	if err != nil {
		h.audit(q, "scim.change", "refused", errReason(err), rt.name, "")
		return err
	}
	h.audit(q, "scim.change", "created", "", rt.name, res.id(), labelAttr(res))
	out := res.render(h, q.tenant)
	q.w.Header().Set("Location", out["meta"].(map[string]any)["location"].(string))
	q.w.Header().Set("ETag", etag(res.meta().Version))
	h.writeJSON(q, http.StatusCreated, out)
	return nil
}

// update serves PUT (patch nil) and PATCH: read, check If-Match, change,
// store if the version is still the one read. Without If-Match, a
// concurrent change makes it start over (a few times); with it, 412.
func (h *Handler) update(q *request, rt *resourceType, ops resourceOps, id string, patch []patchOperation) error {
	var in map[string]any
	if patch == nil {
		body, err := readBody(q)
		if err != nil {
			return err
		}
		if in, err = decodeBody(body); err != nil {
			return err
		}
	}
	ifMatch := q.r.Header.Get("If-Match")
	var res resource
	var before resource
	for attempt := 0; ; attempt++ {
		cur, err := ops.get(q.ctx(), q.tenant, id)
		if err != nil {
			return err
		}
		if ifMatch != "" && !etagMatches(ifMatch, cur.meta().Version) {
			h.audit(q, "scim.change", "refused", "version_mismatch", rt.name, id)
			return &Error{Status: http.StatusPreconditionFailed, Detail: "the resource changed since the version named in If-Match; read it again"}
		}
		var m map[string]any
		if patch == nil {
			if m, err = normalize(rt, in); err != nil {
				return err
			}
		} else {
			doc := cur.writable()
			if err := applyPatch(rt, doc, id, patch); err != nil {
				return err
			}
			if m, err = normalize(rt, doc); err != nil {
				return err
			}
		}
		res, err = ops.replace(q.ctx(), q.tenant, actor(q.token), id, m, cur.meta().Version)
		if errors.Is(err, ErrVersion) && ifMatch == "" && attempt < 3 {
			continue
		}
		if err != nil {
			h.audit(q, "scim.change", "refused", errReason(err), rt.name, id)
			return err
		}
		before = cur
		break
	}
	action := "replaced"
	if patch != nil {
		action = "patched"
	}
	h.audit(q, "scim.change", action, "", rt.name, id, labelAttr(res))
	if rt == userType && h.opts.Credentials != nil && setsPassword(in, patch) {
		h.opts.Credentials.CredentialChanged(q.ctx(), q.tenant, id, actor(q.token))
	}
	if u, ok := res.(*User); ok && !u.Active {
		wasActive := before.(*User).Active
		if err := h.deprovision(q, u.ID, "scim_active_false"); err != nil {
			return err
		}
		if wasActive {
			h.audit(q, "scim.deprovision", "deactivated", "active_false", rt.name, id, labelAttr(res))
		}
	}
	q.w.Header().Set("ETag", etag(res.meta().Version))
	if patch != nil && rt == groupType && q.r.URL.Query().Get("attributes") == "" {
		// RFC 7644 §3.5.2: 204 is allowed; Entra asks for it (a body
		// with every member is large and unused).
		q.w.WriteHeader(http.StatusNoContent)
		return nil
	}
	proj, err := parseProjection(rt, q.r)
	if err != nil {
		proj = projection{}
	}
	h.writeJSON(q, http.StatusOK, proj.apply(res.render(h, q.tenant)))
	return nil
}

func (h *Handler) remove(q *request, rt *resourceType, ops resourceOps, id string) error {
	if im := q.r.Header.Get("If-Match"); im != "" {
		cur, err := ops.get(q.ctx(), q.tenant, id)
		if err != nil {
			return err
		}
		if !etagMatches(im, cur.meta().Version) {
			h.audit(q, "scim.change", "refused", "version_mismatch", rt.name, id)
			return &Error{Status: http.StatusPreconditionFailed, Detail: "the resource changed since the version named in If-Match; read it again"}
		}
	}
	if err := ops.del(q.ctx(), q.tenant, actor(q.token), id); err != nil {
		if !errors.Is(err, ErrNotFound) {
			h.audit(q, "scim.change", "refused", errReason(err), rt.name, id)
		}
		return err
	}
	h.audit(q, "scim.change", "deleted", "", rt.name, id)
	if rt == userType {
		if err := h.deprovision(q, id, "scim_delete"); err != nil {
			return err
		}
	}
	q.w.WriteHeader(http.StatusNoContent)
	return nil
}

// deprovision ends a user's access; a failure is a 503 so that the client
// retries (the directory already says inactive, so refresh refuses anyway).
func (h *Handler) deprovision(q *request, userID, reason string) error {
	if h.opts.Deprovisioner == nil {
		return nil
	}
	if err := h.opts.Deprovisioner.Deprovision(q.ctx(), q.tenant, userID, actor(q.token), reason); err != nil {
		h.opts.Logger.Error("scim: deprovisioning failed", "request_id", q.rid, "tenant", q.tenant, "user", userID, "err", err)
		return &Error{Status: http.StatusServiceUnavailable, Detail: "the change is stored but the user's sessions could not all be ended yet; retry the request"}
	}
	return nil
}

func labelAttr(r resource) slogAttr { return slogString("name", clip(r.label(), 200)) }

func errReason(err error) string {
	var e *Error
	switch {
	case errors.As(err, &e):
		if e.ScimType != "" {
			return e.ScimType
		}
		return strconv.Itoa(e.Status)
	case errors.Is(err, ErrConflict):
		return "uniqueness"
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrVersion):
		return "version"
	}
	return "error"
}

// etagMatches reports whether an If-Match / If-None-Match header names
// version (weak comparison, RFC 7232 §2.3.2; "*" matches any).
func etagMatches(header, version string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" {
			return true
		}
		t = strings.TrimPrefix(t, "W/")
		if strings.Trim(t, `"`) == version && version != "" {
			return true
		}
	}
	return false
}

// listResponse is a ListResponse (RFC 7644 §3.4.2).
type listResponse struct {
	Schemas      []string `json:"schemas"`
	TotalResults int      `json:"totalResults"`
	StartIndex   int      `json:"startIndex"`
	ItemsPerPage int      `json:"itemsPerPage"`
	Resources    []any    `json:"Resources"`
}

// list serves GET /Users and /Groups: filter, startIndex, count,
// attributes and excludedAttributes (RFC 7644 §3.4.2).
func (h *Handler) list(q *request, rt *resourceType, ops resourceOps) error {
	qs := q.r.URL.Query()
	start, err := intParam(qs.Get("startIndex"), 1, "startIndex")
	if err != nil {
		return err
	}
	count, err := intParam(qs.Get("count"), DefaultCount, "count")
	if err != nil {
		return err
	}
	start = max(start, 1)                // RFC 7644 §3.4.2.4: less than 1 is 1
	count = min(max(count, 0), MaxCount) // negative is 0; above the maximum is the maximum
	proj, err := parseProjection(rt, q.r)
	if err != nil {
		return err
	}
	out := listResponse{Schemas: []string{ListResponseSchema}, StartIndex: start, Resources: []any{}}
	var page []resource
	if fs := qs.Get("filter"); fs != "" {
		f, err := parseFilter(rt, fs)
		if err != nil {
			return err
		}
		page, out.TotalResults, err = h.filtered(q, ops, f, start-1, count)
		if err != nil {
			return err
		}
	} else {
		if page, out.TotalResults, err = ops.list(q.ctx(), q.tenant, start-1, count); err != nil {
			return err
		}
	}
	for _, r := range page {
		out.Resources = append(out.Resources, proj.apply(r.render(h, q.tenant)))
	}
	out.ItemsPerPage = len(out.Resources)
	h.writeJSON(q, http.StatusOK, out)
	return nil
}

// filtered returns one page of the resources matching f: through an index
// when f pins an indexed attribute, else by a bounded scan.
func (h *Handler) filtered(q *request, ops resourceOps, f *Filter, offset, count int) ([]resource, int, error) {
	var matches []resource
	if attr, value, ok := f.equality(ops.indexed...); ok {
		cands, err := ops.find(q.ctx(), q.tenant, attr, value)
		if err != nil {
			return nil, 0, err
		}
		for _, c := range cands {
			if f.Match(c.render(h, q.tenant)) {
				matches = append(matches, c)
			}
		}
	} else {
		total := 0
		for off := 0; ; off += scanPage {
			batch, n, err := ops.list(q.ctx(), q.tenant, off, scanPage)
			if err != nil {
				return nil, 0, err
			}
			if n > MaxScan {
				return nil, 0, badRequest(ScimTypeTooMany, "this filter needs a scan of %d resources (at most %d); filter by %s with eq", n, MaxScan, strings.Join(ops.indexed, ", "))
			}
			for _, c := range batch {
				if f.Match(c.render(h, q.tenant)) {
					total++
					if total > offset && len(matches) < count {
						matches = append(matches, c)
					}
				}
			}
			if len(batch) < scanPage || off+scanPage >= n {
				return matches, total, nil
			}
		}
	}
	total := len(matches)
	if offset >= total {
		return nil, total, nil
	}
	return matches[offset:min(offset+count, total)], total, nil
}

func intParam(s string, def int, name string) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, invalidValue("%s must be an integer", name)
	}
	return n, nil
}

// setsPassword reports whether a PUT body (in) or PATCH operations set the
// user's password (RFC 7643 §4.1.1): a top-level "password" in the body, an
// operation on path "password", or a path-less add or replace whose value
// holds one. Attribute names are case-insensitive (RFC 7643 §2.1).
func setsPassword(in map[string]any, patch []patchOperation) bool {
	hasPassword := func(m map[string]any) bool {
		for k, v := range m {
			if strings.EqualFold(k, "password") && v != nil && v != "" {
				return true
			}
		}
		return false
	}
	if patch == nil {
		return hasPassword(in)
	}
	for _, op := range patch {
		if strings.EqualFold(op.Op, "remove") {
			continue
		}
		if strings.EqualFold(strings.TrimSpace(op.Path), "password") {
			return true
		}
		var m map[string]any
		if op.Path == "" && json.Unmarshal(op.Value, &m) == nil && hasPassword(m) {
			return true
		}
	}
	return false
}
