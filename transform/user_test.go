package transform

import (
	"reflect"
	"testing"
)

// TestApply_UserRecord: rules see the directory record as `user`, in CEL
// and as a map source, and see an empty map when there is none.
func TestApply_UserRecord(t *testing.T) {
	rules := []Rule{
		{Name: "groups to roles", If: `!has(upstream.groups)`, Map: &Map{From: "user.groups", To: "roles", Table: map[string]string{"Engineers": "dev"}}},
		{Name: "plan", If: `has(user.attributes) && has(user.attributes.plan)`, Set: set("plan", `user.attributes.plan`)},
	}
	e := mustCompile(t, nil, rules, Options{})
	for _, tc := range []struct {
		name     string
		user     map[string]any
		upstream map[string]any
		want     map[string]any
	}{
		{"provisioned groups and attributes",
			map[string]any{"groups": []any{"Engineers", "Other"}, "attributes": map[string]any{"plan": "gold"}}, nil,
			map[string]any{"roles": []any{"dev"}, "plan": "gold"}},
		{"the IdP sends groups: the rule does not apply",
			map[string]any{"groups": []any{"Engineers"}}, map[string]any{"groups": []any{"x"}},
			map[string]any{}},
		{"no record", nil, nil, map[string]any{}},
		{"values not in normal form are normalized",
			map[string]any{"groups": []string{"Engineers"}, "attributes": map[string]any{"plan": "gold", "seats": 3}}, nil,
			map[string]any{"roles": []any{"dev"}, "plan": "gold"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.Apply(t.Context(), Input{Upstream: tc.upstream, Claims: map[string]any{}, User: tc.user})
			if err != nil {
				t.Fatalf("Apply = %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Apply(user %v) = %v, want %v", tc.user, got, tc.want)
			}
		})
	}
}
