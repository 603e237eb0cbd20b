package broker

// The device authorization grant (RFC 8628) for CLIs and TVs: the device
// asks for a device code and a user code at /device_authorization, shows
// the user code and the verification URI, and polls /token. The person
// opens /device on another screen, types the user code (rate limited per
// client IP: user codes are short, guessing must stay bounded), signs in
// exactly as at /authorize (SSO session, home-realm discovery, the one
// authorization decision in finish), and confirms the device on a page that
// names the client, with a form bound to the browser (CSRF). The decision
// is written once; the poll that finds an approval takes it with a
// single-use Take, so a device code yields tokens once.
//
// Store records, each keyed by an HMAC of a secret (S17):
//   - dc:<device_code>   the request (client, scopes, user code), for its lifetime
//   - du:<user code>     the store key of the request, for its lifetime
//   - dd:<request key>   the decision: approved with its grant, or denied
//   - dp:<request key>   the last poll and the current interval (slow_down)
//   - dk:<form token>    a confirmation waiting on the page, bound to the browser

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/locale"
	"github.com/realmgate/realmgate/oauth"
	"github.com/realmgate/realmgate/realm"
	"github.com/realmgate/realmgate/ui"
)

// grantDeviceCode is the device flow's grant type (RFC 8628 §3.4).
const grantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"

// DeviceOptions configures the device authorization grant (RFC 8628).
type DeviceOptions struct {
	// CodeLifetime is how long a device code and its user code live
	// (expires_in); zero means DefaultDeviceCodeLifetime.
	CodeLifetime time.Duration
	// Interval is the minimum time between two polls of one device code;
	// zero means DefaultDeviceInterval. A faster poll gets slow_down and
	// the interval grows by 5 s (RFC 8628 §3.5).
	Interval time.Duration
	// UserCodeAttempts bounds the user codes one client IP may submit on
	// the verification page; the zero value means DefaultUserCodeAttempts.
	UserCodeAttempts RateLimit
}

// Defaults of the device flow.
const (
	DefaultDeviceCodeLifetime = 10 * time.Minute
	DefaultDeviceInterval     = 5 * time.Second
	deviceSlowDownStep        = 5 * time.Second // RFC 8628 §3.5
	deviceConfirmTTL          = 10 * time.Minute
	userCodeAlphabet          = "BCDFGHJKLMNPQRSTVWXZ" // RFC 8628 §6.1: no vowels, no look-alikes
	userCodeLength            = 8
	limitUserCodes            = "device_user_codes_per_ip"
)

// DefaultUserCodeAttempts is the default bound of user codes one client IP
// may submit: with 20^8 possible codes, guessing a live one stays hopeless.
var DefaultUserCodeAttempts = RateLimit{Limit: 10, Window: 15 * time.Minute}

func (o DeviceOptions) lifetime() time.Duration {
	if o.CodeLifetime > 0 {
		return o.CodeLifetime
	}
	return DefaultDeviceCodeLifetime
}

func (o DeviceOptions) interval() time.Duration {
	if o.Interval > 0 {
		return o.Interval
	}
	return DefaultDeviceInterval
}

func (o DeviceOptions) attempts() RateLimit {
	if o.UserCodeAttempts.on() {
		return o.UserCodeAttempts
	}
	return DefaultUserCodeAttempts
}

// deviceRequest is a pending device authorization (dc:).
type deviceRequest struct {
	ClientID string    `json:"cid"`
	Scopes   []string  `json:"sc"`
	UserCode string    `json:"uc"`
	Expires  time.Time `json:"e"`
}

// deviceDecision is the person's answer (dd:): approved with the grant to
// issue, or denied.
type deviceDecision struct {
	Approved bool   `json:"ok,omitempty"`
	Grant    *grant `json:"g,omitempty"`
	// Used marks an approval a poll has taken: a reused code is refused.
	Used bool `json:"used,omitempty"`
}

// devicePoll is the polling state of a device code (dp:).
type devicePoll struct {
	Last     time.Time     `json:"l"`
	Interval time.Duration `json:"i"`
}

// deviceConfirmation is a confirmation shown to a signed-in person (dk:).
type deviceConfirmation struct {
	Request string `json:"r"` // store key of the device request
	Binding []byte `json:"b"`
	Grant   grant  `json:"g"`
}

func (s *Server) deviceRoutes(e *echo.Echo) {
	e.POST(s.path("/device_authorization"), s.deviceAuthorization)
	e.GET(s.path("/device"), s.devicePage)
	e.POST(s.path("/device"), s.deviceSubmit)
	e.POST(s.path("/device/confirm"), s.deviceConfirmSubmit)
	e.GET(s.path("/device/done"), s.deviceDone)
}

// deviceMetadata adds the device flow to the discovery document (RFC 8628 §4).
func (s *Server) deviceMetadata(m map[string]any) {
	m["device_authorization_endpoint"] = s.url("/device_authorization")
	if gts, ok := m["grant_types_supported"].([]string); ok && !slices.Contains(gts, grantDeviceCode) {
		m["grant_types_supported"] = append(slices.Clone(gts), grantDeviceCode)
	}
}

// newUserCode is 8 characters of userCodeAlphabet from crypto/rand,
// uniformly (RFC 8628 §6.1): 20^8 ≈ 2^34.6 values.
func newUserCode() string {
	b := make([]byte, userCodeLength)
	n := big.NewInt(int64(len(userCodeAlphabet)))
	for i := range b {
		x, err := rand.Int(rand.Reader, n)
		if err != nil {
			panic("broker: crypto/rand failed: " + err.Error())
		}
		b[i] = userCodeAlphabet[x.Int64()]
	}
	return string(b)
}

// formatUserCode shows a user code as XXXX-XXXX.
func formatUserCode(code string) string { return code[:4] + "-" + code[4:] }

// normalizeUserCode accepts what a person types: any case, with dashes or
// spaces (RFC 8628 §6.1); ok is false when it cannot be a user code.
func normalizeUserCode(in string) (string, bool) {
	if len(in) > 32 {
		return "", false
	}
	out := make([]byte, 0, userCodeLength)
	for _, r := range strings.ToUpper(in) {
		switch {
		case r == '-' || r == ' ':
		case r < 0x80 && strings.IndexByte(userCodeAlphabet, byte(r)) >= 0:
			out = append(out, byte(r))
		default:
			return "", false
		}
	}
	return string(out), len(out) == userCodeLength
}

// deviceAuthorization is the device authorization endpoint (RFC 8628 §3.1,
// §3.2): a confidential client authenticates as at /token, a public client
// names itself by client_id.
func (s *Server) deviceAuthorization(c echo.Context) error {
	v, err := formValues(c)
	if err != nil {
		return oauth.New(oauth.InvalidRequest, err.Error())
	}
	if err := s.limitToken(c); err != nil { // S60
		return err
	}
	cl, terr := s.authenticateClient(c, v)
	if terr != nil {
		s.auditEvent(c, "refused", "client_authentication", attrs{client: v.Get("client_id")})
		return terr
	}
	if !cl.grants(grantDeviceCode) {
		return oauth.New(oauth.UnauthorizedClient, "the client is not registered for the device authorization grant")
	}
	scopes := strings.Fields(v.Get("scope"))
	if len(scopes) == 0 {
		scopes = []string{"openid"}
	}
	if !slices.Contains(scopes, "openid") {
		return oauth.New(oauth.InvalidScope, "the openid scope is required")
	}
	if len(scopes) > 32 || len(v.Get("scope")) > 1024 {
		return oauth.New(oauth.InvalidScope, "too many scopes")
	}
	ctx := c.Request().Context()
	o := s.cfg.Device
	now := s.now()
	deviceCode := randomToken(tokenBytes)
	reqKey := s.keyer.key("dc", deviceCode)
	// A user code is short: pick another on the rare collision with a live one.
	var userCode string
	for range 5 {
		userCode = newUserCode()
		err = s.store.Create(ctx, s.keyer.key("du", userCode), []byte(reqKey), o.lifetime())
		if !errors.Is(err, ErrExists) {
			break
		}
	}
	if err != nil {
		return s.tokenUnavailable(c, err)
	}
	dr := deviceRequest{ClientID: cl.ID, Scopes: scopes, UserCode: userCode, Expires: now.Add(o.lifetime())}
	if err := s.putJSON(ctx, reqKey, dr, o.lifetime()); err != nil {
		return s.tokenUnavailable(c, err)
	}
	s.auditEvent(c, "started", "device_authorization", attrs{client: cl.ID})
	verify := s.url("/device")
	c.Response().Header().Set("Pragma", "no-cache")
	return c.JSON(http.StatusOK, map[string]any{ // RFC 8628 §3.2
		"device_code": deviceCode, "user_code": formatUserCode(userCode),
		"verification_uri":          verify,
		"verification_uri_complete": verify + "?" + url.Values{"user_code": {formatUserCode(userCode)}}.Encode(),
		"expires_in":                int(o.lifetime() / time.Second), "interval": int(o.interval() / time.Second),
	})
}

// devicePageData is what the device pages show.
type devicePageData struct {
	*locale.Printer
	Title, RequestID, Action, Message string
	UserCode, Client, CSRF            string
	Scopes                            []string
	Failed                            bool
	ui.Brand                          // the client's or tenant's look (brand.go)
}

func (s *Server) renderDevice(c echo.Context, status int, name string, d devicePageData) error {
	d.RequestID = requestID(c)
	d.Printer = s.printer(c)
	d.Brand = s.pageBrand(c)
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	c.Response().WriteHeader(status)
	return pages.ExecuteTemplate(c.Response(), name, d)
}

// devicePage asks for the user code (RFC 8628 §3.3); verification_uri_complete
// fills it in, and the person still submits it (§5.4: no sign-in starts on
// a link alone).
func (s *Server) devicePage(c echo.Context) error {
	code := c.QueryParam("user_code")
	if _, ok := normalizeUserCode(code); !ok {
		code = ""
	}
	return s.renderDevice(c, http.StatusOK, "device", devicePageData{Title: "Connect a device", Action: s.path("/device"), UserCode: code})
}

// deviceSubmit takes the user code, bounded per client IP, and starts an
// ordinary sign-in for the device's client whose end is the confirmation.
func (s *Server) deviceSubmit(c echo.Context) error {
	v, err := formValues(c)
	if err != nil {
		return s.formError(c, "Invalid request", err)
	}
	ctx := c.Request().Context()
	ip := s.ipSubject(c)
	if wait := s.hit(ctx, limitUserCodes, ip, s.cfg.Device.attempts()); wait > 0 {
		return s.throttled(c, limitUserCodes, wait, attrs{})
	}
	retry := func(msg string) error {
		return s.renderDevice(c, http.StatusBadRequest, "device", devicePageData{Title: "Connect a device",
			Action: s.path("/device"), Message: msg, Failed: true})
	}
	code, ok := normalizeUserCode(v.Get("user_code"))
	if !ok {
		return retry("That is not a code: it has 8 letters, like BCDF-GHJK.")
	}
	reqKey, err := s.store.Get(ctx, s.keyer.key("du", code))
	if errors.Is(err, ErrNotFound) {
		s.countFailure(c, "device_user_code", "")
		s.auditEvent(c, "refused", "device_user_code_unknown", attrs{})
		return retry("That code is wrong or has expired. Check the code on your device.")
	} else if err != nil {
		return s.unavailable(c)
	}
	var dr deviceRequest
	if err := s.getJSON(ctx, string(reqKey), &dr); errors.Is(err, ErrNotFound) || err == nil && !s.now().Before(dr.Expires) {
		return retry("That code is wrong or has expired. Check the code on your device.")
	} else if err != nil {
		return s.unavailable(c)
	}
	cl := s.dir().clients[dr.ClientID]
	if cl == nil {
		return s.expired(c)
	}
	ar := &authRequest{ClientID: cl.ID, Scopes: dr.Scopes, Created: s.now(), Device: string(reqKey)}
	// SSO: a live session the one authorization decision allows is used.
	if sess, err := s.currentSession(c); err != nil {
		return err
	} else if sess != nil && s.dir().authorizeFor(s.now(), cl, sess.tenantFor(ar), sessionSubject(sess), strengthOf(ar, false)) == nil {
		return s.finish(c, ar, sess)
	}
	id, err := s.saveRequest(c, ar)
	if err != nil {
		return err
	}
	return s.route(c, id, ar, realm.Request{LoginHint: "", Host: c.Request().Host, ClientIP: clientIP(c),
		RememberedIdP: s.rememberedIdP(c)})
}

// deviceConfirm ends a device sign-in, once finish has made the
// authorization decision and run the claims pipeline: the person is asked
// to confirm the device, on a form bound to this browser.
func (s *Server) deviceConfirm(c echo.Context, ar *authRequest, g grant, at attrs) error {
	ctx := c.Request().Context()
	setPageClient(c, ar.ClientID) // its brand (brand.go)
	var dr deviceRequest
	if err := s.getJSON(ctx, ar.Device, &dr); errors.Is(err, ErrNotFound) {
		return s.renderError(c, http.StatusBadRequest, "The code has expired", "Start again on your device to get a new code.")
	} else if err != nil {
		return err
	}
	token := randomToken(tokenBytes)
	conf := deviceConfirmation{Request: ar.Device, Binding: s.keyer.mac("binding", s.ensureBinding(c)), Grant: g}
	if err := s.putJSON(ctx, s.keyer.key("dk", token), conf, deviceConfirmTTL); err != nil {
		return err
	}
	s.auditEvent(c, "success", "device_signed_in", at) // the sign-in; the approval is the next event
	// The application by its display name when it has one.
	name := g.ClientID
	if cl := s.dir().clients[g.ClientID]; cl != nil && cl.Name != "" {
		name = cl.Name
	}
	return s.renderDevice(c, http.StatusOK, "device_confirm", devicePageData{Title: "Connect a device",
		Action: s.path("/device/confirm"), Client: name, UserCode: formatUserCode(dr.UserCode), CSRF: token, Scopes: g.Scopes})
}

// deviceConfirmSubmit records the person's answer, once per device code.
func (s *Server) deviceConfirmSubmit(c echo.Context) error {
	v, err := formValues(c)
	if err != nil {
		return s.formError(c, "Invalid request", err)
	}
	ctx := c.Request().Context()
	token := v.Get("csrf")
	var conf deviceConfirmation
	if token == "" || len(token) > 128 || !s.sameOrigin(c) {
		return s.deviceFormRefused(c)
	}
	if err := s.getJSON(ctx, s.keyer.key("dk", token), &conf); errors.Is(err, ErrNotFound) {
		return s.deviceFormRefused(c)
	} else if err != nil {
		return s.unavailable(c)
	}
	if !s.boundToBrowser(c, conf.Binding) { // CSRF: the form belongs to the browser that signed in
		return s.deviceFormRefused(c)
	}
	if _, err := s.store.Take(ctx, s.keyer.key("dk", token)); errors.Is(err, ErrNotFound) {
		return s.deviceFormRefused(c) // answered already, concurrently
	} else if err != nil {
		return s.unavailable(c)
	}
	var dr deviceRequest
	if err := s.getJSON(ctx, conf.Request, &dr); errors.Is(err, ErrNotFound) {
		return s.renderError(c, http.StatusBadRequest, "The code has expired", "Start again on your device to get a new code.")
	} else if err != nil {
		return s.unavailable(c)
	}
	g := conf.Grant
	at := attrs{client: g.ClientID, tenant: g.Tenant, idp: g.IdP, subject: g.Subject}
	approved := v.Get("op") == "approve"
	dec := deviceDecision{Approved: approved}
	if approved {
		dec.Grant = &g
	}
	blob, err := json.Marshal(dec)
	if err != nil {
		return err
	}
	ttl := dr.Expires.Sub(s.now())
	if ttl <= 0 {
		return s.renderError(c, http.StatusBadRequest, "The code has expired", "Start again on your device to get a new code.")
	}
	// One decision per device code: a second person's answer is refused.
	if err := s.store.Create(ctx, s.keyer.key("dd", conf.Request), blob, ttl); errors.Is(err, ErrExists) {
		return s.renderError(c, http.StatusConflict, "Already answered", "This device was already approved or denied.")
	} else if err != nil {
		return s.unavailable(c)
	}
	// The user code has done its work.
	_ = s.store.Delete(ctx, s.keyer.key("du", dr.UserCode))
	result := "approved"
	if approved {
		s.auditEvent(c, "success", "device_approved", at)
	} else {
		result = "denied"
		s.auditEvent(c, "abort", "device_denied_by_user", at)
	}
	// Post/Redirect/Get: reloading the result page posts nothing again.
	return c.Redirect(http.StatusSeeOther, s.path("/device/done")+"?result="+result)
}

// deviceDone shows the result of a confirmation.
func (s *Server) deviceDone(c echo.Context) error {
	if c.QueryParam("result") == "approved" {
		return s.renderDevice(c, http.StatusOK, "device_done", devicePageData{Title: "Device connected",
			Message: "Your device is connected. Return to it; you can close this page."})
	}
	return s.renderDevice(c, http.StatusOK, "device_done", devicePageData{Title: "Device not connected",
		Message: "The device was not connected. You can close this page."})
}

func (s *Server) deviceFormRefused(c echo.Context) error {
	s.auditEvent(c, "refused", "device_csrf", attrs{})
	return s.renderError(c, http.StatusForbidden, "Request refused",
		"This form has expired or did not come from this site. Enter the code from your device again.")
}

// deviceGrant is the token request of a polling device (RFC 8628 §3.4, §3.5).
func (s *Server) deviceGrant(c echo.Context, cl *client, v url.Values) error {
	ctx := c.Request().Context()
	dc := v.Get("device_code")
	if dc == "" || len(dc) > 128 {
		return oauth.New(oauth.InvalidRequest, "device_code is required")
	}
	reqKey := s.keyer.key("dc", dc)
	var dr deviceRequest
	err := s.getJSON(ctx, reqKey, &dr)
	if errors.Is(err, ErrNotFound) {
		return oauth.New(oauth.ExpiredToken, "the device code has expired or was never issued")
	} else if err != nil {
		return s.tokenUnavailable(c, err)
	}
	if dr.ClientID != cl.ID { // §3.4: issued to this client
		s.auditEvent(c, "refused", "device_code_client_mismatch", attrs{client: cl.ID})
		return oauth.New(oauth.InvalidGrant, "the device code was not issued to this client")
	}
	now := s.now()
	if !now.Before(dr.Expires) {
		return oauth.New(oauth.ExpiredToken, "the device code has expired")
	}
	// §3.5: a poll sooner than the interval after the last one gets
	// slow_down, and the interval grows by 5 s for every later poll.
	pollKey := s.keyer.key("dp", reqKey)
	var p devicePoll
	if err := s.getJSON(ctx, pollKey, &p); err != nil && !errors.Is(err, ErrNotFound) {
		return s.tokenUnavailable(c, err)
	}
	if p.Interval == 0 {
		p.Interval = s.cfg.Device.interval()
	}
	slow := !p.Last.IsZero() && now.Sub(p.Last) < p.Interval
	if slow {
		p.Interval += deviceSlowDownStep
	}
	p.Last = now
	if err := s.putJSON(ctx, pollKey, p, dr.Expires.Sub(now)); err != nil {
		return s.tokenUnavailable(c, err)
	}
	if slow {
		return oauth.New(oauth.SlowDown, "polling too fast: wait the interval, now 5 seconds longer")
	}
	decKey := s.keyer.key("dd", reqKey)
	b, err := s.store.Get(ctx, decKey)
	if errors.Is(err, ErrNotFound) {
		return oauth.New(oauth.AuthorizationPending, "the user has not answered yet")
	} else if err != nil {
		return s.tokenUnavailable(c, err)
	}
	var dec deviceDecision
	if err := decodeRecord(b, &dec); err != nil {
		return oauth.New(oauth.InvalidGrant, "the device code is invalid")
	}
	switch {
	case dec.Used:
		s.auditEvent(c, "refused", "device_code_reused", attrs{client: cl.ID})
		return oauth.New(oauth.InvalidGrant, "the device code was already used")
	case !dec.Approved || dec.Grant == nil:
		return oauth.New(oauth.AccessDenied, "the user denied the device")
	}
	// Single use: of two polls, concurrent or not, one takes the approval.
	// The tombstone keeps a reused code answered invalid_grant.
	if _, err := s.store.Take(ctx, decKey); errors.Is(err, ErrNotFound) {
		return oauth.New(oauth.InvalidGrant, "the device code was already used")
	} else if err != nil {
		return s.tokenUnavailable(c, err)
	}
	_ = s.store.Put(ctx, decKey, []byte(`{"used":true}`), max(dr.Expires.Sub(now), time.Second))
	g := *dec.Grant
	if g.ClientID != cl.ID {
		return oauth.New(oauth.InvalidGrant, "the device code was not issued to this client")
	}
	// The decision is taken again now: the user or client may have changed
	// since the confirmation (S66, S68).
	if g.Origin != nil && g.Origin.UID != "" {
		u, err := s.loadUser(ctx, g.Origin)
		if err != nil {
			return s.tokenUnavailable(c, err)
		}
		g.Origin.user, g.Origin.userRead = u, true
	}
	at := attrs{client: cl.ID, tenant: g.Tenant, idp: g.IdP, subject: g.Subject}
	if err := s.dir().authorizeFor(now, cl, g.Tenant, grantSubject(&g), strength{maxAge: -1}); err != nil {
		s.auditEvent(c, "refused", "device_"+refusal(err), at)
		return oauth.New(oauth.AccessDenied, "the user can no longer sign in to this application")
	}
	g.JKT = ""
	if cl.public() {
		g.JKT = dpopJKT(c) // RFC 9449 §5: a public client's refresh tokens bind to its key
	}
	s.auditEvent(c, "success", "device_code", at)
	return s.issue(c, cl, &g, s.familyID(g.SID), false, g.Scopes)
}

// deviceAuthError answers a device sign-in refused on the way (finish):
// there is no redirect URI, so the person reads it on a page.
func (s *Server) deviceAuthError(c echo.Context, e *oauth.Error) error {
	return s.renderError(c, http.StatusForbidden, "The device cannot be connected", e.Description)
}
