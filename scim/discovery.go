package scim

import (
	"net/http"
	"strings"
)

// serviceProviderConfig is RFC 7643 §5: what this service provider supports.
func (h *Handler) serviceProviderConfig(q *request) (any, error) {
	type supported struct {
		Supported bool `json:"supported"`
	}
	return map[string]any{
		"schemas":          []string{spConfigSchema},
		"documentationUri": "https://github.com/realmgate/realmgate/blob/main/docs/scim.md",
		"patch":            supported{true},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           map[string]any{"supported": true, "maxResults": MaxCount},
		"changePassword":   supported{false},
		"sort":             supported{false},
		"etag":             supported{true},
		"authenticationSchemes": []map[string]any{{
			"type": "oauthbearertoken", "name": "Bearer token",
			"description": "A per-tenant token created with realmgate's admin API (POST /v1/tenants/{tenant}/scim/tokens), sent as Authorization: Bearer.",
		}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": h.Endpoint(q.tenant) + "/ServiceProviderConfig"},
	}, nil
}

func (h *Handler) schemaResource(q *request, s *Schema) map[string]any {
	return map[string]any{
		"schemas": []string{schemaSchema}, "id": s.ID, "name": s.Name, "description": s.Description, "attributes": s.Attributes,
		"meta": map[string]any{"resourceType": "Schema", "location": h.Endpoint(q.tenant) + "/Schemas/" + s.ID},
	}
}

// schemas serves /Schemas and /Schemas/<uri> (RFC 7644 §4).
func (h *Handler) schemas(q *request, id string) (any, error) {
	all := []*Schema{userSchema, enterpriseSchema, groupSchema}
	if id != "" {
		for _, s := range all {
			if strings.EqualFold(s.ID, id) {
				return h.schemaResource(q, s), nil
			}
		}
		return nil, &Error{Status: http.StatusNotFound, Detail: "no schema " + clip(id, 100)}
	}
	out := listResponse{Schemas: []string{ListResponseSchema}, StartIndex: 1}
	for _, s := range all {
		out.Resources = append(out.Resources, h.schemaResource(q, s))
	}
	out.TotalResults, out.ItemsPerPage = len(out.Resources), len(out.Resources)
	return out, nil
}

func (h *Handler) resourceTypeResource(q *request, rt *resourceType) map[string]any {
	m := map[string]any{
		"schemas": []string{resourceTypeSchema}, "id": rt.name, "name": rt.name, "endpoint": rt.endpoint,
		"description": rt.schema.Description, "schema": rt.schema.ID,
		"meta": map[string]any{"resourceType": "ResourceType", "location": h.Endpoint(q.tenant) + "/ResourceTypes/" + rt.name},
	}
	if len(rt.extensions) > 0 {
		var exts []map[string]any
		for _, e := range rt.extensions {
			exts = append(exts, map[string]any{"schema": e.ID, "required": false})
		}
		m["schemaExtensions"] = exts
	}
	return m
}

// resourceTypes serves /ResourceTypes and /ResourceTypes/<name> (RFC 7644 §4).
func (h *Handler) resourceTypes(q *request, id string) (any, error) {
	all := []*resourceType{userType, groupType}
	if id != "" {
		for _, rt := range all {
			if strings.EqualFold(rt.name, id) {
				return h.resourceTypeResource(q, rt), nil
			}
		}
		return nil, &Error{Status: http.StatusNotFound, Detail: "no resource type " + clip(id, 100)}
	}
	out := listResponse{Schemas: []string{ListResponseSchema}, StartIndex: 1}
	for _, rt := range all {
		out.Resources = append(out.Resources, h.resourceTypeResource(q, rt))
	}
	out.TotalResults, out.ItemsPerPage = len(out.Resources), len(out.Resources)
	return out, nil
}
