package chrome

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/risk"
)

// Client IPs in the test GeoIP database (testdata/geoip/test-city.mmdb).
const (
	ipBerlin  = "198.51.100.7"
	ipNewYork = "203.0.113.200"
)

type conditionalSetup struct {
	global  broker.ConditionalConfig
	tenants map[string]broker.TenantPolicy
}

// conditionalConfig gives tenant globex a policy that requires multi-factor
// authentication at the first sign-in from a country, with the test GeoIP
// database. Tests that send no X-Forwarded-For have no country: it never
// applies to them.
func conditionalConfig() (conditionalSetup, error) {
	geo, err := risk.OpenGeo("../../testdata/geoip/test-city.mmdb")
	if err != nil {
		return conditionalSetup{}, err
	}
	set, err := risk.Compile(nil, []risk.Policy{{Name: "step up on a new country", If: "signals.new_country", Action: risk.ActionMFA}}, nil)
	if err != nil {
		return conditionalSetup{}, err
	}
	return conditionalSetup{global: broker.ConditionalConfig{Sensor: &risk.Sensor{Geo: geo}},
		tenants: map[string]broker.TenantPolicy{"globex": {Conditional: &broker.TenantConditional{Set: set}}}}, nil
}

// from makes every request of the tab come, through the trusted proxy,
// from ip.
func from(t *testing.T, ctx context.Context, ip string) {
	t.Helper()
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("network.enable: %v", err)
	}
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders,
		network.SetExtraHTTPHeadersParams{Headers: network.Headers{"X-Forwarded-For": ip}}); err != nil {
		t.Fatalf("X-Forwarded-For %s: %v", ip, err)
	}
}

// signInCarol signs carol@globex.test in from the app's box up to the
// globex picker.
func (e *env) toGlobexPicker(t *testing.T, ctx context.Context) {
	t.Helper()
	do(t, ctx, "open app", chromedp.Navigate(e.app+"/"))
	do(t, ctx, "type email",
		chromedp.SendKeys(chromedp.CSS(`input[name=login_hint]`), "carol@globex.test"),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button`)))
	waitFor(t, ctx, "globex picker", e.onPicker("globex"))
}

// TestChrome_StepUpOnNewCountry: carol signs in from Berlin with a
// password; her next sign-in, from New York (a new country, through the
// trusted proxy's X-Forwarded-For and the test GeoIP database), is sent
// back to her IdP with acr_values for multi-factor authentication by the
// tenant's policy, and the app receives amr with mfa.
func TestChrome_StepUpOnNewCountry(t *testing.T) {
	e := need(t)
	ctx := e.tab(t)
	from(t, ctx, ipBerlin)
	e.toGlobexPicker(t, ctx)
	if got := e.pickUser(t, ctx, carolSub); got != "globex" {
		t.Fatalf("tid = %q, want globex", got)
	}
	if amr := claim(t, ctx, "amr"); strings.Contains(amr, "mfa") {
		t.Fatalf("first sign-in from Berlin: amr = %s, want a password only (no step-up)", amr)
	}

	ctx = e.tab(t) // a new private window: no SSO session
	from(t, ctx, ipNewYork)
	e.toGlobexPicker(t, ctx)
	if loc := location(t, ctx); strings.Contains(loc, "acr_values") {
		t.Fatalf("the first upstream request already asked for MFA: %s", loc)
	}
	do(t, ctx, "pick carol", chromedp.Click(chromedp.CSS(`button.user[value="`+carolSub+`"]`)))
	// The policy sends the browser back to the IdP, asking for MFA.
	waitFor(t, ctx, "the globex picker again, with acr_values", e.onPicker("globex")+` && location.href.includes("acr_values")`)
	got := e.pickUser(t, ctx, carolSub)
	if got != "globex" {
		t.Fatalf("after the step-up: tid = %q, want globex", got)
	}
	if amr := claim(t, ctx, "amr"); !strings.Contains(amr, "mfa") {
		t.Errorf("after the step-up: amr = %s, want mfa", amr)
	}
}

// with returns base with the conditional access of each tenant added.
func (c conditionalSetup) with(base map[string]broker.TenantPolicy) map[string]broker.TenantPolicy {
	out := map[string]broker.TenantPolicy{}
	for id, p := range base {
		out[id] = p
	}
	for id, p := range c.tenants {
		q := out[id]
		q.Conditional = p.Conditional
		out[id] = q
	}
	return out
}
