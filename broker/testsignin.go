package broker

// Test sign-in (setup portal): a customer's admin signs in through the IdP
// they are configuring, pending or active, and sees what it sent, the
// claims realmgate would issue and what each of the tenant's rules did.
// The upstream leg is a normal sign-in's (state bound to the browser,
// nonce, PKCE, the connector's every check: S21, S22, S23, S41..S44); the
// answer is explained instead of issued: no session, no code, no SSO or
// remembered-choice cookie, no directory record. Only StartTestSignIn,
// called by the portal for an admin it has authenticated with a setup
// link, starts one: no public endpoint does.

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/claims"
	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/transform"
)

// Errors of the test sign-in API.
var (
	// ErrTestSignInNotFound means no test sign-in result has this id: it
	// never existed or has expired (TestSignInTTL).
	ErrTestSignInNotFound = errors.New("broker: test sign-in result not found or expired")
	// ErrTestSignInRequest means StartTestSignIn was asked something it
	// refuses: an unknown IdP or one of another tenant, a Return that is
	// not an absolute URL on the issuer's origin, no actor.
	ErrTestSignInRequest = errors.New("broker: invalid test sign-in request")
)

// TestSignInTTL is how long a test sign-in's result can be read.
const TestSignInTTL = 15 * time.Minute

// Outcomes of a test sign-in (TestSignInResult.Outcome).
const (
	// TestSignedIn: the IdP's answer passed every check and the rules
	// produced the claims in Claims.
	TestSignedIn = "signed_in"
	// TestDenied: a rule denied the sign-in; Denied holds its message.
	TestDenied = "denied"
	// TestRuleError: a rule failed at run time (a sign-in would fail
	// closed); Error says which.
	TestRuleError = "rule_error"
	// TestUpstreamError: the IdP's answer was an error or failed
	// verification; Error says why in words an admin can act on.
	TestUpstreamError = "upstream_error"
)

// Audit outcomes of the test sign-in events (S61).
const (
	auditTestStarted  = "test_sign_in_started"
	auditTestFinished = "test_sign_in_finished"
)

// maxReturnURL bounds TestSignIn.Return.
const maxReturnURL = 2048

// TestSignIn asks for a test sign-in at one IdP of a tenant.
type TestSignIn struct {
	// Tenant is the tenant whose IdP is tested (the setup link's tenant).
	Tenant string
	// IdP is the id of the IdP to sign in at, pending or active.
	IdP string
	// Return is where the browser goes once the IdP answered, with
	// test=<result id> added to its query: an absolute URL on the issuer's
	// own origin (the portal's page), never anywhere else.
	Return string
	// Actor names who started the test for the audit, such as
	// "setup-link:<id>".
	Actor string
}

// testSignIn is what an auth request of a test sign-in carries.
type testSignIn struct {
	Tenant string `json:"t"`
	Return string `json:"r"`
	Actor  string `json:"a"`
}

// TestSignInResult is what one test sign-in found. It holds the user's
// attributes: the portal shows it only to the admin that started it (the
// setup link's holder, for its tenant: compare Tenant) and keeps the id to
// itself.
type TestSignInResult struct {
	// ID is the result's id, the test parameter added to Return.
	ID string `json:"id"`
	// Tenant and IdP are the tenant and IdP tested.
	Tenant string `json:"tenant"`
	IdP    string `json:"idp"`
	// Actor is who started the test (TestSignIn.Actor).
	Actor string `json:"actor"`
	// Time is when the IdP's answer arrived.
	Time time.Time `json:"time"`
	// Outcome is TestSignedIn, TestDenied, TestRuleError or TestUpstreamError.
	Outcome string `json:"outcome"`
	// Upstream is the identity as the IdP sent it, once verified: the
	// identity fields and, in Claims, every raw claim (OIDC) or attribute
	// (SAML). Empty on TestUpstreamError.
	Upstream providers.Identity `json:"upstream"`
	// Subject is the sub realmgate would issue for this user.
	Subject string `json:"subject,omitempty"`
	// Claims are the claims realmgate would issue, before each
	// application's release of the claims it may receive: the standard
	// mapping, the global and tenant rules, the email guard (S52), and
	// sub, tid and idp. Nil unless Outcome is TestSignedIn.
	Claims map[string]any `json:"claims,omitempty"`
	// Trace says what each rule did, in order (global rules first).
	Trace []transform.Step `json:"trace,omitempty"`
	// Denied is the deny message of the rule that denied the sign-in.
	Denied string `json:"denied,omitempty"`
	// Error says, on TestUpstreamError or TestRuleError, what went wrong.
	Error string `json:"error,omitempty"`
	// MFARequired says the tenant requires multi-factor authentication and
	// the IdP did not report performing it: an end user would be asked
	// again and then refused.
	MFARequired bool `json:"mfa_required,omitempty"`
}

// StartTestSignIn sends the browser of c to the IdP req names, like a
// normal sign-in (state bound to this browser, nonce, PKCE, the tenant's
// MFA request, the start rate limits), for a test whose answer is
// explained, never issued. The IdP may be pending. An unknown IdP, an IdP
// of another tenant, a missing actor or a Return that is not an absolute
// URL on the issuer's origin is refused with an error wrapping
// ErrTestSignInRequest, before anything is written or sent.
func (s *Server) StartTestSignIn(c echo.Context, req TestSignIn) error {
	if strings.TrimSpace(req.Actor) == "" {
		return fmt.Errorf("%w: no actor", ErrTestSignInRequest)
	}
	idp, ok := s.dir().idps[req.IdP]
	if !ok || idp.Tenant != req.Tenant {
		return fmt.Errorf("%w: %q is not an identity provider of tenant %q", ErrTestSignInRequest, req.IdP, req.Tenant)
	}
	ret, err := s.testReturn(req.Return)
	if err != nil {
		return err
	}
	ar := &authRequest{Binding: s.keyer.mac("binding", s.ensureBinding(c)), Created: s.now(),
		Test: &testSignIn{Tenant: req.Tenant, Return: ret, Actor: clip(req.Actor, maxAuditField)}}
	// The upstream login state carries the request (ul.AR): no auth
	// request record, nothing /login or /authorize could continue.
	return s.startUpstreamMFA(c, "", ar, idp, "", s.needsMFA(idp.Tenant, ar))
}

// testReturn checks a test sign-in's Return: an absolute http(s) URL on
// the issuer's origin (scheme, host and port), without user information
// or fragment (S01: the test never redirects anywhere else).
func (s *Server) testReturn(raw string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w: return %q: %s", ErrTestSignInRequest, clip(raw, 100), why)
	}
	if raw == "" || len(raw) > maxReturnURL || strings.ContainsFunc(raw, func(r rune) bool { return r == '\\' || unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return bad("not a URL")
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Opaque != "" {
		return bad("not an absolute URL")
	}
	if u.User != nil || u.Fragment != "" || u.RawFragment != "" || strings.Contains(raw, "#") {
		return bad("user information and fragments are not allowed")
	}
	iss, err := url.Parse(s.cfg.Issuer)
	if err != nil {
		return bad("the issuer is not a URL")
	}
	if !sameOrigin(u, iss) {
		return bad("not on the issuer's origin " + iss.Scheme + "://" + iss.Host)
	}
	return u.String(), nil
}

// sameOrigin compares the origins (RFC 6454 §4) of two absolute URLs.
func sameOrigin(a, b *url.URL) bool {
	port := func(u *url.URL) string {
		if p := u.Port(); p != "" {
			return p
		}
		switch strings.ToLower(u.Scheme) {
		case "https":
			return "443"
		case "http":
			return "80"
		}
		return ""
	}
	scheme := strings.ToLower(a.Scheme)
	return (scheme == "https" || scheme == "http") && scheme == strings.ToLower(b.Scheme) &&
		a.Hostname() != "" && strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

// testSignInReturn completes a test sign-in at the IdP's callback (or
// ACS): the connector verifies the answer as for any sign-in, the tenant's
// claims pipeline runs in explain mode, the result is stored and the
// browser goes back to the portal. Nothing is issued.
func (s *Server) testSignInReturn(c echo.Context, idp IdP, ar *authRequest, ul *upstreamLogin, state string) error {
	ctx := c.Request().Context()
	ts := ar.Test
	res := &TestSignInResult{ID: randomToken(tokenBytes), Tenant: ts.Tenant, IdP: idp.ID, Actor: ts.Actor, Time: s.now().UTC()}
	lr := providers.LoginRequest{State: state, Nonce: ul.Nonce, CodeVerifier: ul.Verifier,
		CallbackURL: s.CallbackURL(idp.ID), LoginHint: ul.Hint, ForceLogin: ul.Force}
	ident, err := idp.Connector.HandleCallback(ctx, lr, ul.Data, c.Request())
	switch {
	case err != nil:
		s.log.Warn("test sign-in: upstream callback", "request_id", requestID(c), "idp", idp.ID, "err", err)
		res.Outcome, res.Error = TestUpstreamError, upstreamReason(c, idp, err)
	case idp.Tenant != ts.Tenant: // moved meanwhile: the tenant is the IdP's (S50)
		res.Outcome, res.Error = TestUpstreamError, "The identity provider no longer belongs to this organization."
	default:
		s.explainTest(ctx, idp, ident, res)
	}
	if err := s.putJSON(ctx, s.keyer.key("tsr", res.ID), res, TestSignInTTL); err != nil {
		return err
	}
	s.auditEvent(c, auditTestFinished, res.Outcome, attrs{tenant: res.Tenant, idp: idp.ID, actor: ts.Actor, subject: res.Subject})
	u, err := url.Parse(ts.Return) // checked at the start (testReturn)
	if err != nil {
		return s.expired(c)
	}
	q := u.Query()
	q.Set("test", res.ID)
	u.RawQuery = q.Encode()
	return c.Redirect(redirectStatus(c), u.String())
}

// explainTest runs the tenant's claims pipeline over ident the way a
// sign-in would (claimsFor without a client or directory record), with
// the trace, into res.
func (s *Server) explainTest(ctx context.Context, idp IdP, ident providers.Identity, res *TestSignInResult) {
	d := s.dir()
	res.Upstream = ident
	res.Subject = s.subject(idp.Tenant, idp.ID, ident.Subject)
	res.MFARequired = d.policies[idp.Tenant].RequireMFA && !providers.MFA(ident.AMR)
	r, err := claims.Pipeline{Rules: d.rules[idp.Tenant], Domains: d.resolver}.Explain(ctx,
		claims.Request{Identity: ident, Tenant: idp.Tenant, IdP: idp.ID})
	res.Trace = r.Trace
	var denied *transform.DeniedError
	switch {
	case errors.As(err, &denied):
		res.Outcome, res.Denied = TestDenied, denied.Message
	case err != nil:
		res.Outcome, res.Error = TestRuleError, ruleReason(err)
	default:
		res.Outcome, res.Claims = TestSignedIn, r.Claims
		res.Claims["sub"], res.Claims["tid"], res.Claims["idp"] = res.Subject, idp.Tenant, idp.ID
	}
}

// ruleReason says which rule failed; the rule's own error text (CEL) is
// the admin's to read, without anything internal.
func ruleReason(err error) string {
	var re *transform.RuleError
	if errors.As(err, &re) {
		return clip(re.Error(), 500)
	}
	if errors.Is(err, transform.ErrLimit) {
		return "A rule exceeds the evaluation limits: a sign-in would fail."
	}
	return "The rules could not be evaluated: a sign-in would fail."
}

// upstreamReason is a readable reason for an upstream answer that failed,
// with the OAuth error code and description the IdP sent, if any (RFC 6749
// §4.1.2.1), never the internal error.
func upstreamReason(c echo.Context, idp IdP, err error) string {
	var why string
	switch {
	case errors.Is(err, providers.ErrAccessDenied):
		why = idp.Name + " did not sign the user in (access denied or cancelled)."
	case errors.Is(err, providers.ErrUnavailable):
		why = idp.Name + " did not answer in time."
	default:
		why = "The response from " + idp.Name + " failed verification (signature, issuer, audience, lifetime, nonce or " +
			"replay check): check the values entered at the identity provider and its metadata or issuer here."
	}
	if code := printable(c.FormValue("error"), 100); code != "" {
		why += " The identity provider answered " + code
		if desc := printable(c.FormValue("error_description"), 300); desc != "" {
			why += ": " + desc
		}
		why += "."
	}
	return why
}

// printable keeps s's printable ASCII (the OAuth error syntax, RFC 6749
// §4.1.2.1), clipped to n bytes.
func printable(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return -1
		}
		return r
	}, s)
	if len(s) > n {
		s = s[:n]
	}
	return s
}

// TestSignInResult returns the result of a finished test sign-in while it
// lasts (TestSignInTTL; it may be read more than once), or an error
// wrapping ErrTestSignInNotFound. The caller checks that its Tenant is the
// one the reader may see.
func (s *Server) TestSignInResult(ctx context.Context, id string) (*TestSignInResult, error) {
	if id == "" || len(id) > 128 {
		return nil, ErrTestSignInNotFound
	}
	var res TestSignInResult
	if err := s.getJSON(ctx, s.keyer.key("tsr", id), &res); errors.Is(err, ErrNotFound) {
		return nil, ErrTestSignInNotFound
	} else if err != nil {
		return nil, err
	}
	return &res, nil
}
