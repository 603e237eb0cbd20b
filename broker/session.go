package broker

// This file holds the browser side of a sign-in: the binding cookie that
// ties upstream state to one browser (S21), the SSO session and its cookie,
// and the pending authorization requests a page carries.

import (
	"context"
	"crypto/hmac"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/providers"
)

const (
	bindingCookie = "rg_bind"
	// bindingCookieCrossSite carries the same value with SameSite=None.
	bindingCookieCrossSite = "rg_bind_x"
	sessionCookie          = "rg_session"
)

// loadRequest reads the pending auth request named by the form and checks
// that this browser started it.
func (s *Server) loadRequest(c echo.Context, id string) (*authRequest, error) {
	if id == "" || len(id) > 128 {
		return nil, ErrNotFound
	}
	var ar authRequest
	if err := s.getRequest(c.Request().Context(), s.keyer.key("ar", id), &ar); err != nil { // requestcodec.go
		return nil, err
	}
	if !s.boundToBrowser(c, ar.Binding) {
		return nil, ErrNotFound
	}
	setPageClient(c, ar.ClientID) // its brand (brand.go)
	return &ar, nil
}

// boundToBrowser reports whether this request carries the binding cookie
// whose HMAC is binding (S21). The cross-site copy is what arrives on an
// IdP's cross-site POST (SAML HTTP-POST binding), which SameSite=Lax withholds.
func (s *Server) boundToBrowser(c echo.Context, binding []byte) bool {
	for _, name := range []string{bindingCookie, bindingCookieCrossSite} {
		if ck, err := c.Cookie(name); err == nil && hmac.Equal(s.keyer.mac("binding", ck.Value), binding) {
			return true
		}
	}
	return false
}

// ensureBinding returns this browser's binding secret, setting the cookie if absent.
func (s *Server) ensureBinding(c echo.Context) string {
	if ck, err := c.Cookie(bindingCookie); err == nil && len(ck.Value) >= 43 && len(ck.Value) <= 64 {
		return ck.Value
	}
	v := randomToken(tokenBytes)
	s.setCookie(c, bindingCookie, v, 0)
	if s.secure {
		// SameSite=None requires Secure; browsers send it on the IdP's
		// cross-site POST back to us. Only set on https issuers.
		c.SetCookie(&http.Cookie{Name: bindingCookieCrossSite, Value: v, Path: s.path("/"), Domain: s.cfg.CookieDomain,
			HttpOnly: true, Secure: true, SameSite: http.SameSiteNoneMode})
	}
	return v
}

func (s *Server) setCookie(c echo.Context, name, value string, maxAge int) {
	c.SetCookie(&http.Cookie{Name: name, Value: value, Path: s.path("/"), Domain: s.cfg.CookieDomain, MaxAge: maxAge,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
}

// currentSession returns the live SSO session of this browser, or nil.
func (s *Server) currentSession(c echo.Context) (*session, error) {
	ck, err := c.Cookie(sessionCookie)
	if err != nil || len(ck.Value) < 43 || len(ck.Value) > 64 {
		return nil, nil
	}
	ctx := c.Request().Context()
	key := s.keyer.key("ss", ck.Value)
	var sess session
	if err := s.getJSON(ctx, key, &sess); errors.Is(err, ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	sess.key = key
	// Sliding lifetime: every use extends the session.
	if err := s.store.Touch(ctx, key, s.cfg.SessionLifetime); err != nil && !errors.Is(err, ErrNotFound) {
		return nil, storeErr("touch session", err)
	}
	return &sess, nil
}

// newSession stores a session and sets its cookie.
func (s *Server) newSession(ctx context.Context, c echo.Context, sess *session) error {
	checkIdentityEmail(&sess.Identity) // S74: an ambiguous upstream email is not kept
	id := randomToken(tokenBytes)
	sess.SID = randomToken(16)
	sess.key = s.keyer.key("ss", id)
	b, err := s.encodeSession(sess) // sessioncodec.go
	if err != nil {
		return err
	}
	if err := s.putRecord(ctx, false, sess.key, b, s.cfg.SessionLifetime); err != nil { // the callback's batch
		return err
	}
	s.setCookie(c, sessionCookie, id, 0)
	return nil
}

// saveRequest stores ar under a new id bound to this browser and returns the id.
// Storing a pending request counts as a sign-in start from the client IP
// (S72; once per request, with the start that may follow upstream), so the
// pages that stop here (discovery, choice, tenant picker) are throttled too.
func (s *Server) saveRequest(c echo.Context, ar *authRequest) (string, error) {
	if err := s.limitStart(c, ar.ClientID, "", ""); err != nil {
		return "", err
	}
	ar.Binding = s.keyer.mac("binding", s.ensureBinding(c))
	id := randomToken(tokenBytes)
	b, err := s.encodeRequest(ar) // requestcodec.go
	if err != nil {
		return "", err
	}
	return id, s.putRecord(c.Request().Context(), true, s.keyer.key("ar", id), b, authRequestTTL)
}

func (s *Server) saveRequestKey(c echo.Context, ar *authRequest) (string, error) {
	id, err := s.saveRequest(c, ar)
	return s.keyer.key("ar", id), err
}

// identitySession is the SSO session of an identity idp just authenticated.
// The tenant is the IdP's (S50). Its auth time is the upstream's (S67); when
// the upstream stated none but was told to authenticate anew (prompt=login,
// ForceAuthn) at forcedAt, that instant bounds the authentication from
// below; otherwise the time stays unknown: tokens carry no auth_time and no
// max_age is satisfied by the session.
func (s *Server) identitySession(idp IdP, ident providers.Identity, forcedAt time.Time) *session {
	sess := &session{Tenant: idp.Tenant, IdP: idp.ID, Identity: ident,
		Subject: s.subject(idp.Tenant, idp.ID, ident.Subject), AuthTime: ident.AuthTime}
	if sess.AuthTime.IsZero() {
		sess.AuthTime = forcedAt
	}
	if !sess.AuthTime.IsZero() {
		sess.AuthTime = sess.AuthTime.Truncate(time.Second)
	}
	return sess
}
