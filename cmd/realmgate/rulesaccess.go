package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/internal/assemble"
	"github.com/realmgate/realmgate/risk"
)

// accessTest is the conditional access part of `realmgate rules test
// --signals FILE`: the global and the tenant's policies decide the sample
// signals (a JSON object by signal name, risk.Sample), and the decision is
// printed. It reports whether the sign-in would be refused (deny).
func accessTest(cfg *config.Config, t *config.Tenant, client, path string, stdout, stderr io.Writer) (denied bool, ok bool) {
	raw, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return false, false
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		fmt.Fprintf(stderr, "realmgate: %s: the signals must be a JSON object by signal name: %v\n", path, err)
		return false, false
	}
	sig, err := risk.Sample(m)
	if err != nil {
		fmt.Fprintf(stderr, "realmgate: %s: %v\n", path, err)
		return false, false
	}
	var set *risk.Set
	if t.ConditionalAccess != nil {
		ta, err := assemble.TenantConditional(cfg.ConditionalAccess.Policies, t.ConditionalAccess)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return false, false
		}
		set = ta.Set
	} else if len(cfg.ConditionalAccess.Policies) > 0 {
		if set, err = risk.Compile(assemble.Policies(cfg.ConditionalAccess.Policies), nil, nil); err != nil {
			fmt.Fprintln(stderr, err)
			return false, false
		}
	}
	d, evalErr := set.Evaluate(&sig, nil, client, t.ID)
	fmt.Fprintf(stdout, "access: risk %s\n", d.Level)
	for _, p := range d.Applied {
		fmt.Fprintf(stdout, "    policy %q applies\n", p)
	}
	if evalErr != nil {
		fmt.Fprintf(stdout, "    error: %v\n", evalErr)
	}
	var needs []string
	if d.MFA {
		needs = append(needs, "multi-factor authentication")
	}
	if d.FreshLogin {
		needs = append(needs, "a fresh sign-in")
	}
	if d.MaxAge > 0 {
		needs = append(needs, "an authentication within "+d.MaxAge.String())
	}
	if d.SessionLifetime > 0 {
		needs = append(needs, "a session of at most "+d.SessionLifetime.String())
	}
	switch {
	case d.Deny:
		fmt.Fprintf(stdout, "result: DENIED by policy %q: %s\n", d.Policy, d.Message)
		return true, true
	case len(needs) > 0:
		fmt.Fprintf(stdout, "result: access requires %s\n", strings.Join(needs, ", "))
	default:
		fmt.Fprintln(stdout, "result: access allowed")
	}
	if len(d.Notify) > 0 {
		fmt.Fprintf(stdout, "    notify: %s\n", strings.Join(d.Notify, ", "))
	}
	return false, true
}

// checkAccess compiles the conditional access policies of the file (the
// global ones and each tenant's) and opens its GeoIP databases, as serve
// does: check-config reports what serve would refuse.
func checkAccess(cfg *config.Config) error {
	if _, err := assemble.ConditionalConfig(cfg); err != nil {
		return err
	}
	for i := range cfg.Tenants {
		t := &cfg.Tenants[i]
		if _, err := assemble.TenantConditional(cfg.ConditionalAccess.Policies, t.ConditionalAccess); err != nil {
			return fmt.Errorf("tenants[%d] (%s).conditional_access: %w", i, t.ID, err)
		}
	}
	return nil
}
