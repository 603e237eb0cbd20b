package chrome

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/transform"
)

// Tenant acme's just-in-time access: db-admin with approval; members of
// the IT-Leads group (alice) approve.
var (
	accessPolicy = &broker.AccessPolicy{ApproverRoles: []string{"access-approver"},
		Roles: map[string]broker.AccessRole{"db-admin": {MaxDuration: 2 * time.Hour}}}
	accessRules = func() *transform.Engine {
		eng, err := transform.Compile(nil, []transform.Rule{{Name: "approvers", If: `has(upstream.groups) && "IT-Leads" in upstream.groups`,
			Add: []transform.Assignment{{Claim: "roles", Expr: `"access-approver"`}}}}, transform.Options{Tenant: "acme"})
		if err != nil {
			panic(err)
		}
		return eng
	}()
)

// hostileJustification would run script if the approval page did not escape it (S54).
const hostileJustification = `INC-7 <img src=x onerror="window.__pwned=3">`

// onAccessPage: realmgate's access page, signed in.
func (e *env) onAccessPage() string {
	return `location.href === ` + js(e.broker+"/access") + ` && !!document.querySelector("h1") && document.querySelector("h1").textContent === "Access requests"`
}

// TestChrome_AccessApproval: bob asks for db-admin on the access page
// (signed in through realmgate like any app), alice, an approver, sees the
// request (its justification inert) and approves it, and bob's page shows
// the role active; bob sees no approval list and cannot forge a decision.
func TestChrome_AccessApproval(t *testing.T) {
	e := need(t)
	// signIn opens the access page in a fresh tab and signs in through
	// realmgate's discovery page and the acme development IdP.
	signIn := func(email, sub string) context.Context {
		ctx := e.tab(t)
		do(t, ctx, "open the access page", chromedp.Navigate(e.broker+"/access"))
		waitFor(t, ctx, "discovery page", e.onDiscoveryPage())
		do(t, ctx, "type email",
			chromedp.SendKeys(chromedp.ID("email"), email),
			chromedp.Click(chromedp.CSS(`form:has(#email) button[type=submit]`)))
		waitFor(t, ctx, "acme picker", e.onPicker("acme"))
		do(t, ctx, "pick "+sub, chromedp.Click(chromedp.CSS(`button.user[value="`+sub+`"]`)))
		waitFor(t, ctx, "the access page", e.onAccessPage())
		return ctx
	}

	bob := signIn("bob@acme.test", bobSub)
	if eval[bool](t, bob, `!!document.querySelector("form.pending") || document.body.innerText.includes("Waiting for approval")`) {
		t.Errorf("bob, no approver, sees the approval list")
	}
	do(t, bob, "request db-admin",
		chromedp.SetValue(chromedp.ID("duration"), "45m"),
		chromedp.SendKeys(chromedp.ID("justification"), hostileJustification),
		chromedp.Click(chromedp.CSS(`#request button[type=submit]`)))
	waitFor(t, bob, "the request's confirmation", `document.getElementById("msg") && document.getElementById("msg").textContent.includes("waiting for an approver")`)
	if got := eval[string](t, bob, `document.getElementById("mine").innerText`); !strings.Contains(got, "db-admin: pending") {
		t.Errorf("bob's grants = %q, want db-admin pending", got)
	}
	// Bob forging an approval with his own (valid) form token is refused:
	// he is no approver.
	do(t, bob, "forge an approval", chromedp.Evaluate[chromedp.Void](`(() => {
		const f = document.getElementById("request");
		f.querySelector("input[name=op]").value = "approve";
		const id = document.createElement("input"); id.name = "id"; id.value = document.querySelector("#mine li").dataset.grant; f.appendChild(id);
		f.submit(); })()`))
	waitFor(t, bob, "the refusal", `document.getElementById("msg") && document.getElementById("msg").textContent.includes("not an approver")`)

	alice := signIn("alice@acme.test", aliceSub)
	waitFor(t, alice, "bob's pending request", `!!document.querySelector("form.pending")`)
	text := eval[string](t, alice, `document.querySelector("form.pending").innerText`)
	if !strings.Contains(text, "bob@acme.test") || !strings.Contains(text, "db-admin") || !strings.Contains(text, hostileJustification) {
		t.Errorf("pending request shows %q, want bob, db-admin and the justification as text", trim(text))
	}
	if eval[bool](t, alice, `window.__pwned !== undefined || !!document.querySelector("form.pending img")`) {
		t.Fatalf("the justification ran or became markup on the approver's page (S54)")
	}
	do(t, alice, "approve", chromedp.Click(chromedp.CSS(`form.pending button[value=approve]`)))
	waitFor(t, alice, "the approval", `document.getElementById("msg") && document.getElementById("msg").textContent.includes("now active")`)
	if eval[bool](t, alice, `!!document.querySelector("form.pending")`) {
		t.Errorf("the approved request is still listed as pending")
	}

	do(t, bob, "reload", chromedp.Navigate(e.broker+"/access"))
	waitFor(t, bob, "the access page", e.onAccessPage())
	if got := eval[string](t, bob, `document.getElementById("mine").innerText`); !strings.Contains(got, "db-admin: active until") {
		t.Errorf("bob's grants after approval = %q, want db-admin active", got)
	}
}
