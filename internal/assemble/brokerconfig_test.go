package assemble

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/realmgate/realmgate/config"
	_ "github.com/realmgate/realmgate/idp/builtin"
)

// TestBrokerConfig_PartsSameAsOneLoop: building a long tenants list in
// parts at once gives the broker configuration of one loop: the same IdPs
// in the same order, rules, policies, memberships, and the same errors.
func TestBrokerConfig_PartsSameAsOneLoop(t *testing.T) {
	build := func(min int, bad bool) (summary string, err error) {
		defer func(m int) { buildTenantsMin = m }(buildTenantsMin)
		buildTenantsMin = min
		cfg := &config.Config{Issuer: "https://login.example.com",
			Rules: []config.Rule{{Name: "g", Set: map[string]string{"g": `"1"`}}}}
		for i := range 700 {
			tn := config.Tenant{ID: fmt.Sprintf("t%d", i), Domains: []string{fmt.Sprintf("t%d.example", i)},
				Providers: []config.Provider{{ID: fmt.Sprintf("p%d", i), Type: "oidc", Issuer: "https://idp.example", ClientID: "c"}}}
			if i%7 == 0 {
				tn.RequireMFA = true
				tn.Rules = []config.Rule{{Name: "r", Set: map[string]string{"x": `"y"`}}}
			}
			if i%11 == 0 {
				tn.Members = []config.Member{{IdP: "p0", Email: fmt.Sprintf("m%d@example.com", i)}}
			}
			if bad && i%100 == 3 {
				tn.Rules = []config.Rule{{Name: "bad", Set: map[string]string{"x": "nope("}}}
			}
			cfg.Tenants = append(cfg.Tenants, tn)
		}
		bc, err := BrokerConfig(cfg, nil, nil, nil)
		if err != nil {
			return "", err
		}
		var idps []string
		for _, p := range bc.IdPs {
			idps = append(idps, p.Tenant+"/"+p.ID)
		}
		rules := map[string]bool{}
		for id, e := range bc.Rules {
			rules[id] = e != nil
		}
		return fmt.Sprint(idps, rules, bc.Policies, bc.Memberships), nil
	}
	for _, bad := range []bool{false, true} {
		one, oneErr := build(1<<30, bad)
		parts, partsErr := build(1, bad)
		if fmt.Sprint(partsErr) != fmt.Sprint(oneErr) || (oneErr != nil) != bad {
			t.Errorf("bad rules %v: BrokerConfig in parts error = %v, want (one loop) %v", bad, partsErr, oneErr)
		}
		if !reflect.DeepEqual(parts, one) || (!bad && len(one) < 700) {
			t.Errorf("bad rules %v: BrokerConfig in parts differs from one loop:\n%.300s\nwant\n%.300s", bad, parts, one)
		}
	}
}
