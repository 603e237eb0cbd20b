package broker

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/locale"
	"github.com/realmgate/realmgate/oauth"
	"github.com/realmgate/realmgate/ui"
)

// ConsentLifetime is how long a remembered consent lasts without use.
const ConsentLifetime = 365 * 24 * time.Hour

// Consent is what a user granted a third-party client: the scopes, and when.
type Consent struct {
	// Scopes are the scopes granted so far (a union of every approval).
	Scopes []string `json:"scopes"`
	// Granted is when the user last approved.
	Granted time.Time `json:"granted"`
	// Tenants are the user's home tenant and the tenants it signed in to
	// the client for: their admins may read and withdraw the consent.
	Tenants []string `json:"tenants,omitempty"`
}

// consentKey is the store key of the consent subject gave client.
func (s *Server) consentKey(subject, client string) string {
	return s.keyer.key("cn", subject+"\x00"+client)
}

// LoadConsent returns the consent the user with local subject sub gave
// client, or ErrNotFound.
func (s *Server) LoadConsent(ctx context.Context, sub, client string) (*Consent, error) {
	var cn Consent
	if err := s.getJSON(ctx, s.consentKey(sub, client), &cn); err != nil {
		return nil, err
	}
	return &cn, nil
}

// RevokeConsent forgets the consent the user with local subject sub gave
// client: the next sign-in to it shows the consent page again. Tokens
// already issued stay valid until they expire or are revoked.
func (s *Server) RevokeConsent(ctx context.Context, sub, client string) error {
	return s.store.Delete(ctx, s.consentKey(sub, client))
}

// consentGate shows a third-party client's consent page before the code is
// issued, unless the user already granted every scope asked for and the
// client did not send prompt=consent. handled means a response was
// written (the page, or consent_required for prompt=none, OIDC Core
// §3.1.2.6).
func (s *Server) consentGate(c echo.Context, ar *authRequest, sess *session, tenant string, at attrs) (bool, error) {
	cl := s.dir().clients[ar.ClientID]
	if cl == nil || !cl.ThirdParty || ar.consented || ar.SAML != nil {
		return false, nil
	}
	setPageClient(c, cl.ID)
	setPageTenant(c, tenant)
	cn, err := s.LoadConsent(c.Request().Context(), sess.Subject, cl.ID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return true, err
	}
	if !ar.PromptConsent && cn != nil && covers(cn.Scopes, ar.Scopes) {
		return false, nil
	}
	if ar.PromptNone {
		s.auditEvent(c, "refused", "consent_required", at)
		return true, s.authError(c, ar, oauth.New(oauth.ConsentRequired, "the user has not consented to this client"))
	}
	ar.Tenant = tenant // the answer completes this sign-in, for this tenant
	if ar.fresh {
		ar.FreshSID = sess.SID // only this session makes the answer fresh (S67)
	}
	id, err := s.saveRequest(c, ar)
	if err != nil {
		return true, err
	}
	// The step's batch (the callback's session and index, pending.go) is
	// written before the page that refers to it.
	if handled, err := s.flush(c); handled {
		return true, err
	}
	var before []string
	if cn != nil {
		before = cn.Scopes
	}
	name := cl.Name
	if name == "" {
		name = cl.ID
	}
	h := c.Response().Header()
	h.Set("X-Frame-Options", "DENY") // no clickjacking of the approve button (also set for every page)
	// Same-origin referrer: the form's post then carries the page's Origin
	// (no-referrer makes browsers send "null"), which sameOrigin checks.
	h.Set("Referrer-Policy", "same-origin")
	return true, s.renderConsent(c, consentPageData{Title: "Allow access", Client: name, User: sess.Identity.Email,
		Action: s.path("/consent"), Request: id, CSRF: s.consentCSRF(sess.SID, id),
		Items: consentItems(ar.Scopes, cl.Claims, before)})
}

// consentAnswer takes the consent page's answer: approve stores the grant
// and issues the code; deny sends access_denied to the client (RFC 6749
// §4.1.2.1).
func (s *Server) consentAnswer(c echo.Context) error {
	v, err := signInForm(c) // S72: bounded request
	if err == nil {
		err = checkSignInParams(v)
	}
	if err != nil {
		return s.formError(c, "Invalid form", err)
	}
	id := v.Get("r")
	ar, err := s.loadRequest(c, id)
	if err != nil {
		if isNotFound(err) {
			return s.expired(c)
		}
		return err
	}
	sess, err := s.currentSession(c)
	if err != nil {
		return err
	}
	if sess == nil {
		return s.expired(c)
	}
	at := attrs{client: ar.ClientID, tenant: ar.Tenant, idp: sess.IdP, subject: sess.Subject}
	// CSRF: the form token is bound to the session and this request, and a
	// cross-origin post is refused.
	if !s.sameOrigin(c) || !hmac.Equal([]byte(v.Get("csrf")), []byte(s.consentCSRF(sess.SID, id))) {
		s.auditEvent(c, "refused", "consent_csrf", at)
		return s.renderError(c, http.StatusForbidden, "Request refused",
			"This form did not come from this sign-in page. Start again from the application.")
	}
	ctx := c.Request().Context()
	_ = s.store.Delete(ctx, s.keyer.key("ar", id)) // single use
	switch v.Get("decision") {
	case "deny":
		s.auditEvent(c, "denied", "consent_denied", at)
		return s.authError(c, ar, oauth.New(oauth.AccessDenied, "the user denied the request"))
	case "allow":
	default:
		return s.renderError(c, http.StatusBadRequest, "Invalid form", "Choose Allow or Deny.")
	}
	cn, err := s.LoadConsent(ctx, sess.Subject, ar.ClientID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if cn == nil {
		cn = &Consent{}
	}
	for _, sc := range ar.Scopes {
		if !slices.Contains(cn.Scopes, sc) {
			cn.Scopes = append(cn.Scopes, sc)
		}
	}
	sort.Strings(cn.Scopes)
	for _, t := range []string{sess.Tenant, ar.Tenant} {
		if t != "" && !slices.Contains(cn.Tenants, t) {
			cn.Tenants = append(cn.Tenants, t)
		}
	}
	cn.Granted = s.now()
	if err := s.putJSON(ctx, s.consentKey(sess.Subject, ar.ClientID), cn, ConsentLifetime); err != nil {
		return err
	}
	s.auditEvent(c, "consented", "", at)
	ar.consented = true
	ar.fresh = ar.FreshSID != "" && ar.FreshSID == sess.SID
	return s.finish(c, ar, sess)
}

// consentCSRF is the consent form's token for session sid and request id.
func (s *Server) consentCSRF(sid, id string) string {
	return base64.RawURLEncoding.EncodeToString(s.keyer.mac("consent-csrf", sid+"\x00"+id))
}

// covers reports whether granted holds every scope in asked.
func covers(granted, asked []string) bool {
	for _, x := range asked {
		if !slices.Contains(granted, x) {
			return false
		}
	}
	return true
}

// consentItem is one line of the consent page.
type consentItem struct {
	// Text is a catalog message (package locale), translated when rendered;
	// Arg fills its verb.
	Text, Arg string
	New       bool // not granted before: asked for the first time
}

type consentPageData struct {
	*locale.Printer
	Title, RequestID, Client, User string
	Action, Request, CSRF          string
	Items                          []consentItem
	ui.Brand                       // the client's look (brand.go)
}

func (s *Server) renderConsent(c echo.Context, d consentPageData) error {
	d.RequestID = requestID(c)
	d.Printer = s.printer(c)
	d.Brand = s.pageBrand(c)
	for i, it := range d.Items {
		if it.Arg != "" {
			d.Items[i].Text = d.Tf(it.Text, it.Arg)
		} else {
			d.Items[i].Text = d.T(it.Text)
		}
	}
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	c.Response().WriteHeader(http.StatusOK)
	return pages.ExecuteTemplate(c.Response(), "consent", d)
}

// scopeText describes the standard scopes in words (OIDC Core §5.4).
var scopeText = map[string]string{
	"openid":         "Know who you are (a user identifier for this application)",
	"profile":        "Your name and basic profile",
	"email":          "Your email address",
	"roles":          "Your roles in your organization",
	"groups":         "The groups you belong to",
	"offline_access": "Stay signed in when you are not using it",
	"address":        "Your postal address",
	"phone":          "Your phone number",
}

// consentItems lists what the client asks for: each scope in words, then
// the extra claims it is registered to receive; New marks what was not
// granted before.
func consentItems(scopes, claimNames, before []string) []consentItem {
	var out []consentItem
	for _, sc := range scopes {
		text := scopeText[sc]
		arg := ""
		if text == "" {
			text, arg = "Access: %s", sc
		}
		out = append(out, consentItem{Text: text, Arg: arg, New: before != nil && !slices.Contains(before, sc)})
	}
	for _, n := range claimNames {
		if n == "roles" && slices.Contains(scopes, "roles") {
			continue
		}
		out = append(out, consentItem{Text: "Your organization's %s attribute", Arg: n})
	}
	return out
}

// ConsentOf returns the consent the user with local subject sub gave
// client, when it concerns tenant (the user's home tenant or one it signed
// in to the client for); ErrNotFound otherwise. The admin API reads
// consents through it (scoped to a tenant).
func (s *Server) ConsentOf(ctx context.Context, tenant, sub, client string) (*Consent, error) {
	cn, err := s.LoadConsent(ctx, sub, client)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(cn.Tenants, tenant) {
		return nil, ErrNotFound
	}
	return cn, nil
}

// RevokeConsentOf forgets the consent the user with local subject sub gave
// client, when it concerns tenant (ErrNotFound otherwise).
func (s *Server) RevokeConsentOf(ctx context.Context, tenant, sub, client string) error {
	if _, err := s.ConsentOf(ctx, tenant, sub, client); err != nil {
		return err
	}
	return s.RevokeConsent(ctx, sub, client)
}
