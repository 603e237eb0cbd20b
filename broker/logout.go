package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/internal/outbound"
	"github.com/realmgate/realmgate/providers"
)

// backchannelEvent is the events member of a logout token (OIDC Back-Channel
// Logout 1.0 §2.4).
const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// sessionRevokedKey marks a session id as logged out: refresh grants and the
// broker's own endpoints refuse every token of that session afterwards.
func sessionRevokedKey(sid string) string { return "sx:" + sid }

// sessionMarkerKey is the same marker in the session's own place: hash tag
// "{<sid>}", the slot of the session's refresh-token families
// (SessionRotator), so the rotation checks it in the same step.
func sessionMarkerKey(sid string) string { return "sx:{" + sid + "}" }

// familyID returns the id of a new refresh-token family: "<sid>~<random>"
// when the grant has a session and the store checks a family's session
// marker as it rotates (SessionRotator), else a random id.
func (s *Server) familyID(sid string) string {
	if _, ok := s.store.(SessionRotator); ok && taggableSID(sid) {
		return sid + FamilySeparator + randomToken(16)
	}
	return randomToken(16)
}

// taggableSID reports whether sid can name a family's place: base64url
// text of a sane length (the broker's own session ids are).
func taggableSID(sid string) bool {
	if len(sid) < 16 || len(sid) > 64 {
		return false
	}
	for i := 0; i < len(sid); i++ {
		if !base64URLByte(sid[i]) {
			return false
		}
	}
	return true
}

// endSession is the RP-Initiated Logout endpoint (OIDC RP-Initiated Logout 1.0 §2).
func (s *Server) endSession(c echo.Context) error {
	v, err := formValues(c)
	if err == nil {
		err = checkSignInParams(v) // S72: the state is kept with the logout target
	}
	if err != nil {
		return s.formError(c, "Invalid sign-out request", err)
	}
	var cl *client
	var hintSID string
	if hint := v.Get("id_token_hint"); hint != "" {
		claims, err := s.verifyIDTokenHint(hint)
		if err != nil {
			s.log.Info("logout: bad id_token_hint", "request_id", requestID(c), "err", err)
			return s.renderError(c, http.StatusBadRequest, "Invalid sign-out request",
				"The application sent a sign-out request this service did not issue.")
		}
		aud, _ := claims["aud"].(string)
		cl = s.dir().clients[aud]
		hintSID, _ = claims["sid"].(string)
		if id := v.Get("client_id"); id != "" && id != aud {
			return s.renderError(c, http.StatusBadRequest, "Invalid sign-out request",
				"The application named in the request does not match the token it sent.")
		}
	} else if id := v.Get("client_id"); id != "" {
		cl = s.dir().clients[id]
	}
	redirect := v.Get("post_logout_redirect_uri")
	if redirect != "" && (cl == nil || !contains(cl.PostLogoutRedirectURIs, redirect)) {
		// S65: an unregistered post_logout_redirect_uri gets no redirect.
		s.auditEvent(c, "refused", "post_logout_redirect_uri_unregistered", attrs{client: v.Get("client_id")})
		return s.renderError(c, http.StatusBadRequest, "Invalid sign-out request",
			"The application asked to return you to an address it has not registered. You were not signed out.")
	}
	sess, err := s.currentSession(c)
	if err != nil {
		return err
	}
	// Without proof that the request comes from an application of this
	// session, ask the user (§2: the OP SHOULD ask for confirmation).
	confirmed := c.Request().Method == http.MethodPost && v.Get("confirm") == "yes"
	if sess != nil && !confirmed && (hintSID == "" || hintSID != sess.SID) {
		return s.render(c, http.StatusOK, "logout", pageData{Title: "Sign out", Action: s.path("/logout"),
			Client: v.Get("client_id"), Request: v.Get("state"), Email: redirect, Tenant: v.Get("id_token_hint")})
	}
	if sess != nil {
		if err := s.logoutSession(c.Request().Context(), sess); err != nil {
			return err
		}
		s.auditEvent(c, "logout", "rp_initiated", attrs{client: v.Get("client_id"), tenant: sess.Tenant, idp: sess.IdP, subject: sess.Subject})
	}
	s.setCookie(c, sessionCookie, "", -1)
	target := ""
	if redirect != "" {
		target = redirect
		if st := v.Get("state"); st != "" {
			target = appendQuery(redirect, url.Values{"state": {st}})
		}
	}
	if sess != nil {
		next := target
		if to, ok := s.upstreamLogout(c, sess, target); ok {
			next = to
		}
		// The session's SAML apps are told first, through the browser (samlidp_slo.go).
		if handled, err := s.samlAppsLogout(c, sess, next); handled {
			return err
		}
		if next != "" {
			return c.Redirect(redirectStatus(c), next)
		}
	}
	if target != "" {
		return c.Redirect(redirectStatus(c), target)
	}
	return s.signedOut(c)
}

func (s *Server) signedOut(c echo.Context) error {
	return s.render(c, http.StatusOK, "error", pageData{Title: "You are signed out",
		Message: "You have been signed out of every application that used this sign-in."})
}

// upstreamLogout returns the IdP's end-session URL when the IdP opted in
// (IdP.UpstreamLogout) and publishes one; the IdP sends the browser back to
// <issuer>/logout/upstream, which continues to target (already checked).
func (s *Server) upstreamLogout(c echo.Context, sess *session, target string) (string, bool) {
	idp, ok := s.dir().idps[sess.IdP]
	if !ok || !idp.UpstreamLogout {
		return "", false
	}
	if sl, ok := providers.As[providers.SingleLogout](idp.Connector); ok {
		return s.samlUpstreamLogout(c, idp, sl, sess, target) // SAML Single Logout (saml_slo.go)
	}
	es, ok := providers.As[providers.EndSessionURLer](idp.Connector)
	if !ok {
		return "", false
	}
	ctx := c.Request().Context()
	state := randomToken(tokenBytes)
	to, has, err := es.EndSessionURL(ctx, s.url("/logout/upstream"), state)
	if err != nil || !has {
		if err != nil {
			s.log.Warn("upstream logout unavailable", "request_id", requestID(c), "idp", idp.ID, "err", err)
		}
		return "", false
	}
	if err := s.store.Put(ctx, s.keyer.key("lo", state), []byte(target), upstreamLoginTTL); err != nil {
		return "", false
	}
	return to, true
}

// upstreamLoggedOut is where the IdP returns after ending its session.
func (s *Server) upstreamLoggedOut(c echo.Context) error {
	state := c.QueryParam("state")
	if state == "" || len(state) > 128 {
		return s.signedOut(c)
	}
	target, err := s.store.Take(c.Request().Context(), s.keyer.key("lo", state))
	if err != nil || len(target) == 0 {
		return s.signedOut(c)
	}
	return c.Redirect(http.StatusFound, string(target))
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v { // exact match, as for redirect_uri
			return true
		}
	}
	return false
}

// logoutSession ends a session everywhere: the record is deleted, its id is
// marked revoked (refresh grants and our endpoints refuse its tokens), and
// every client that signed in through it gets a back-channel logout token.
func (s *Server) logoutSession(ctx context.Context, sess *session) error {
	if err := s.store.Put(ctx, sessionRevokedKey(sess.SID), []byte("1"), s.longestRefreshLifetime()); err != nil {
		return storeErr("mark session revoked", err)
	}
	if _, ok := s.store.(SessionRotator); ok && taggableSID(sess.SID) {
		// The copy the session's families check in their rotation.
		if err := s.store.Put(ctx, sessionMarkerKey(sess.SID), []byte("1"), s.longestRefreshLifetime()); err != nil {
			return storeErr("mark session revoked", err)
		}
	}
	if sess.key != "" {
		if err := s.store.Delete(ctx, sess.key); err != nil {
			return storeErr("delete session", err)
		}
	}
	for _, id := range sess.Clients {
		if cl := s.dir().clients[id]; cl != nil && cl.BackchannelLogoutURI != "" {
			s.sendLogout(cl, sess)
		}
	}
	s.sessionRevokedEvent(ctx, sess) // CAEP (caep.go)
	return nil
}

// sessionRevoked reports whether sid was logged out.
func (s *Server) sessionRevoked(ctx context.Context, sid string) (bool, error) {
	if sid == "" {
		return false, nil
	}
	_, err := s.store.Get(ctx, sessionRevokedKey(sid))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotFound):
		return false, nil
	}
	return false, storeErr("session revoked", err)
}

// verifyIDTokenHint checks an ID token we issued; it may have expired
// (OIDC RP-Initiated Logout §2), but signature, alg and issuer must hold.
func (s *Server) verifyIDTokenHint(token string) (jwt.MapClaims, error) {
	if len(token) > maxJWTSize || !compactJWS(token) {
		return nil, errBadToken
	}
	claims := jwt.MapClaims{}
	_, err := jwt.NewParser(jwt.WithValidMethods([]string{"ES256", "RS256"}), jwt.WithoutClaimsValidation()).
		ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
			kid, _ := t.Header["kid"].(string)
			key := s.keys.byKid(kid)
			if key == nil || t.Method.Alg() != key.Alg {
				return nil, errors.New("unknown key or alg")
			}
			if typ, _ := t.Header["typ"].(string); typ != "JWT" {
				return nil, errors.New("not an ID token")
			}
			return key.priv.Public(), nil
		})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadToken, err)
	}
	if iss, _ := claims["iss"].(string); iss != s.cfg.Issuer {
		return nil, errBadToken
	}
	return claims, nil
}

// logoutToken builds a back-channel logout token (OIDC Back-Channel Logout
// 1.0 §2.4; S64): iss, aud, iat, exp, jti, events, sub and sid; never a nonce;
// typ logout+jwt (§2.4 and RFC 8725 §3.11).
func (s *Server) logoutToken(clientID string, sess *session) (string, error) {
	now := s.now()
	return s.keys.sign(jwt.MapClaims{
		"iss": s.cfg.Issuer, "aud": clientID, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
		"jti": randomToken(16), "events": map[string]any{backchannelEvent: map[string]any{}},
		"sub": s.subjectFor(s.dir().clients[clientID], sess.Subject), "sid": sess.SID, "tid": sess.Tenant, // pairwise.go
	}, "logout+jwt")
}

// logoutJob is one back-channel notification.
type logoutJob struct {
	client, uri, token string
	// send, when set, delivers instead of the logout token POST (a SAML
	// SOAP LogoutRequest, samlidp_soap.go).
	send func(ctx context.Context, hc *http.Client) error
}

// logoutQueue delivers back-channel logout tokens with retries, off the
// request path, through a bounded queue.
type logoutQueue struct {
	jobs   chan logoutJob
	client *http.Client
	wg     sync.WaitGroup
	once   sync.Once
}

const (
	logoutQueueSize    = 1024
	logoutWorkers      = 2
	logoutAttempts     = 3
	logoutFirstBackoff = 500 * time.Millisecond
	logoutTimeout      = 5 * time.Second
)

func (s *Server) startLogoutQueue() {
	s.logouts = &logoutQueue{jobs: make(chan logoutJob, logoutQueueSize), client: logoutClient(s.cfg.HTTPClient)}
	for range logoutWorkers {
		s.logouts.wg.Add(1)
		go s.logoutWorker()
	}
}

// logoutClient is hc, or the default outbound client, that follows no
// redirect and gives up after logoutTimeout.
func logoutClient(hc *http.Client) *http.Client {
	if hc == nil {
		hc = outbound.New(outbound.Policy{Timeout: logoutTimeout})
	}
	c := *hc // shallow copy: the same transport, our own redirect rule and timeout
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if c.Timeout == 0 || c.Timeout > logoutTimeout {
		c.Timeout = logoutTimeout
	}
	return &c
}

func (s *Server) sendLogout(cl *client, sess *session) {
	tok, err := s.logoutToken(cl.ID, sess)
	if err != nil {
		s.log.Error("logout token", "client", cl.ID, "err", err)
		return
	}
	select {
	case s.logouts.jobs <- logoutJob{client: cl.ID, uri: cl.BackchannelLogoutURI, token: tok}:
	default:
		s.log.Error("back-channel logout queue full; notification dropped", "client", cl.ID)
	}
}

func (s *Server) logoutWorker() {
	defer s.logouts.wg.Done()
	for job := range s.logouts.jobs {
		backoff := logoutFirstBackoff
		for attempt := 1; ; attempt++ {
			err := s.deliverLogout(job)
			if err == nil {
				break
			}
			if attempt == logoutAttempts {
				s.log.Warn("back-channel logout failed", "client", job.client, "attempts", attempt, "err", err)
				break
			}
			time.Sleep(backoff)
			backoff *= 2
		}
	}
}

// deliverLogout POSTs the token (Back-Channel Logout §2.5); 200 or 204 is success.
func (s *Server) deliverLogout(job logoutJob) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if job.send != nil {
		return job.send(ctx, s.logouts.client)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, job.uri, strings.NewReader(url.Values{"logout_token": {job.token}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.logouts.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// Close stops the background work (back-channel logout delivery), letting
// queued notifications finish their current attempt.
func (s *Server) Close() error {
	s.logos.wg.Wait() // logo fetches (brand.go), bounded by their timeouts
	s.revoking.Wait() // sessions a deletion is ending (deletion.go) queue their logout tokens first
	s.logouts.once.Do(func() { close(s.logouts.jobs) })
	s.logouts.wg.Wait()
	s.closeSETQueue()
	s.stopOps() // write the queued audit events
	return nil
}
