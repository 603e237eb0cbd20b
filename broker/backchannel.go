package broker

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/providers"
)

// logoutTokenVerifier is a connector that can validate logout tokens its IdP
// sends to the broker (OIDC Back-Channel Logout 1.0 §2.6).
type logoutTokenVerifier interface {
	VerifyLogoutToken(ctx context.Context, raw string) (providers.LogoutClaims, error)
}

// upstreamIndexKeys are the store keys that point from an upstream subject
// and upstream session id to the broker session they started. Each keeps
// the latest session; logout by sid is exact, logout by sub ends the latest.
func (s *Server) upstreamIndexKeys(idp, sub, sid string) (bySub, bySID string) {
	if sub != "" {
		bySub = s.keyer.key("ux", idp+"\x00"+sub)
	}
	if sid != "" {
		bySID = s.keyer.key("uy", idp+"\x00"+sid)
	}
	return bySub, bySID
}

// indexSession records the upstream handles of a new session (best effort:
// a failure only means an upstream logout cannot find it).
func (s *Server) indexSession(ctx context.Context, sess *session) {
	sid, _ := sess.Identity.Claims["sid"].(string)
	bySub, bySID := s.upstreamIndexKeys(sess.IdP, sess.Identity.Subject, sid)
	for _, k := range []string{bySub, bySID} {
		if k != "" {
			if err := s.store.Put(ctx, k, []byte(sess.key), s.cfg.SessionLifetime); err != nil {
				s.log.Warn("index session for upstream logout", "err", err)
			}
		}
	}
}

// backchannel receives an upstream IdP's logout token at
// <issuer>/backchannel/<idp> and ends the sessions it names. A token whose
// jti was already used is refused (S64).
func (s *Server) backchannel(c echo.Context) error {
	ctx := c.Request().Context()
	c.Response().Header().Set("Cache-Control", "no-store")
	fail := func(status int, code, desc string) error {
		return c.JSON(status, map[string]string{"error": code, "error_description": desc})
	}
	idp, ok := s.dir().idps[c.Param("idp")]
	if !ok {
		return fail(http.StatusNotFound, "invalid_request", "unknown identity provider")
	}
	v, ok := connectorAs[logoutTokenVerifier](idp.Connector)
	if !ok {
		return fail(http.StatusBadRequest, "invalid_request", "this identity provider does not support back-channel logout")
	}
	form, err := formValues(c)
	if err != nil || form.Get("logout_token") == "" {
		return fail(http.StatusBadRequest, "invalid_request", "logout_token is required")
	}
	lc, err := v.VerifyLogoutToken(ctx, form.Get("logout_token"))
	if err != nil {
		s.log.Info("upstream logout token refused", "request_id", requestID(c), "idp", idp.ID, "err", err)
		if errors.Is(err, providers.ErrUnavailable) {
			return fail(http.StatusServiceUnavailable, "temporarily_unavailable", "the identity provider's keys could not be fetched")
		}
		return fail(http.StatusBadRequest, "invalid_request", "the logout token is invalid")
	}
	// S64: a jti is accepted once, remembered until the token expires.
	ttl := time.Until(lc.Expiry)
	if ttl < time.Minute {
		ttl = time.Minute
	}
	if ttl > time.Hour {
		ttl = time.Hour
	}
	switch err := s.store.Create(ctx, s.keyer.key("lj", idp.ID+"\x00"+lc.JTI), []byte("1"), ttl); {
	case errors.Is(err, ErrExists):
		s.auditEvent(c, "refused", "logout_token_replayed", attrs{tenant: idp.Tenant, idp: idp.ID})
		return fail(http.StatusBadRequest, "invalid_request", "the logout token was already used")
	case err != nil:
		s.log.Error("logout jti", "request_id", requestID(c), "err", storeErr("logout jti", err))
		return fail(http.StatusServiceUnavailable, "temporarily_unavailable", "try again")
	}
	bySub, bySID := s.upstreamIndexKeys(idp.ID, lc.Subject, lc.SID)
	found := false
	for _, k := range []string{bySID, bySub} {
		if k == "" || (found && k == bySub) {
			continue // a known sid names one session; sub is the fallback
		}
		key, err := s.store.Get(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue
		} else if err != nil {
			return fail(http.StatusServiceUnavailable, "temporarily_unavailable", "try again")
		}
		var sess session
		if err := s.getJSON(ctx, string(key), &sess); errors.Is(err, ErrNotFound) {
			continue
		} else if err != nil {
			return fail(http.StatusServiceUnavailable, "temporarily_unavailable", "try again")
		}
		sess.key = string(key)
		if err := s.logoutSession(ctx, &sess); err != nil {
			return fail(http.StatusServiceUnavailable, "temporarily_unavailable", "try again")
		}
		_ = s.store.Delete(ctx, k)
		found = true
		s.auditEvent(c, "logout", "upstream_backchannel", attrs{tenant: sess.Tenant, idp: idp.ID, subject: sess.Subject})
	}
	return c.NoContent(http.StatusOK)
}
