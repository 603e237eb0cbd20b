package broker

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/oauth"
	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/store"
)

// maxUpstreamSessions bounds the sessions indexed per upstream user: an
// upstream logout by subject ends at most this many (the newest).
const maxUpstreamSessions = 64

// upstreamIndexKeys are the store keys that point from an upstream subject
// and upstream session id to the broker sessions they started: bySub is
// the index of every session of the subject (IndexStore), legacySub the
// single-session pointer written before that index existed (and still by a
// store without IndexStore), bySID the one session of an upstream sid.
func (s *Server) upstreamIndexKeys(idp, sub, sid string) (bySub, legacySub, bySID string) {
	if sub != "" {
		bySub = s.keyer.key("uz", idp+"\x00"+sub)
		legacySub = s.keyer.key("ux", idp+"\x00"+sub)
	}
	if sid != "" {
		bySID = s.keyer.key("uy", idp+"\x00"+sid)
	}
	return bySub, legacySub, bySID
}

// indexSession records the upstream handles of a new session (best effort:
// a failure only means an upstream logout cannot find it).
func (s *Server) indexSession(ctx context.Context, sess *session) {
	sid, _ := sess.Identity.Claims["sid"].(string)
	bySub, legacySub, bySID := s.upstreamIndexKeys(sess.IdP, sess.Identity.Subject, sid)
	var err error
	// Under the upstream user, the IdP and the client in one round trip
	// where the store batches (the last two: deletion.go); at the callback
	// with the session's other writes (pending.go).
	adds := s.scopeAdds(sess, sess.Clients...)
	if _, ok := s.store.(IndexStore); ok && bySub != "" {
		adds = append(adds, store.IndexAdd{Key: bySub, Member: sess.key, Max: maxUpstreamSessions, TTL: s.cfg.SessionLifetime})
	}
	if !s.stageIndexes(ctx, adds) {
		err = s.addToIndexes(ctx, adds)
	}
	if _, ok := s.store.(IndexStore); !ok && legacySub != "" {
		err = s.putRecord(ctx, false, legacySub, []byte(sess.key), s.cfg.SessionLifetime)
	}
	if err == nil && bySID != "" {
		err = s.putRecord(ctx, false, bySID, []byte(sess.key), s.cfg.SessionLifetime)
	}
	if err != nil {
		s.log.Warn("index session for upstream logout", "err", err)
	}
}

// upstreamSessionKeys returns the broker sessions an upstream logout names
// and the index keys to delete after: the session of the upstream sid when
// it is known; otherwise every session of the upstream subject (OIDC
// Back-Channel Logout 1.0 §2.4: without sid, all of the End-User's
// sessions; SAML 2.0 Core §3.7.1 likewise without a SessionIndex).
func (s *Server) upstreamSessionKeys(ctx context.Context, idp, sub, sid string) (sessions, indexes []string, err error) {
	bySub, legacySub, bySID := s.upstreamIndexKeys(idp, sub, sid)
	if bySID != "" {
		key, err := s.store.Get(ctx, bySID)
		switch {
		case err == nil:
			return []string{string(key)}, []string{bySID}, nil
		case !errors.Is(err, ErrNotFound):
			return nil, nil, storeErr("upstream session index", err)
		}
	}
	if bySub == "" {
		return nil, nil, nil
	}
	if ix, ok := s.store.(IndexStore); ok {
		if sessions, err = ix.IndexMembers(ctx, bySub); err != nil {
			return nil, nil, storeErr("upstream session index", err)
		}
		indexes = append(indexes, bySub)
	}
	key, err := s.store.Get(ctx, legacySub)
	switch {
	case err == nil:
		if k := string(key); !slices.Contains(sessions, k) {
			sessions = append(sessions, k)
		}
		indexes = append(indexes, legacySub)
	case !errors.Is(err, ErrNotFound):
		return nil, nil, storeErr("upstream session index", err)
	}
	return sessions, indexes, nil
}

// limitBackchannel refuses a back-channel logout from a client IP over its
// failure limit (S60), with 429, Retry-After and JSON. Each invalid logout
// token counts as a failure of its IP (reason logout_token_invalid), so
// nobody can post made-up tokens at will (each may cost a verification,
// and one with an unknown kid may make the connector fetch the IdP's JWKS);
// the IdP's own valid tokens never count.
func (s *Server) limitBackchannel(c echo.Context, idp IdP) error {
	wait := s.over(c.Request().Context(), limitFailuresIP, s.ipSubject(c), s.cfg.RateLimits.FailuresPerIP)
	if wait == 0 {
		return nil
	}
	s.ops.metrics.throttle(limitFailuresIP)
	s.auditEvent(c, "throttled", limitFailuresIP, attrs{tenant: idp.Tenant, idp: idp.ID})
	c.Response().Header().Set("Retry-After", retryAfter(wait))
	return oauth.New(oauth.TemporarilyUnavailable, "too many invalid requests from this address; retry later").
		WithStatus(http.StatusTooManyRequests).Wrap(errThrottled)
}

// backchannel receives an upstream IdP's logout token at
// <issuer>/backchannel/<idp> and ends the sessions it names. A token whose
// jti was already used is refused (S64); a client IP that sent too many
// invalid tokens is refused before its token is looked at (S60).
func (s *Server) backchannel(c echo.Context) error {
	ctx := c.Request().Context()
	idp, ok := s.dir().idps[c.Param("idp")]
	if !ok {
		return oauth.New(oauth.InvalidRequest, "unknown identity provider").WithStatus(http.StatusNotFound)
	}
	v, ok := providers.As[providers.LogoutTokenVerifier](idp.Connector)
	if !ok {
		return oauth.New(oauth.InvalidRequest, "this identity provider does not support back-channel logout")
	}
	if err := s.limitBackchannel(c, idp); err != nil {
		return err
	}
	form, err := formValues(c)
	if err != nil || form.Get("logout_token") == "" {
		return oauth.New(oauth.InvalidRequest, "logout_token is required")
	}
	lc, err := v.VerifyLogoutToken(ctx, form.Get("logout_token"))
	if err != nil {
		s.log.Info("upstream logout token refused", "request_id", requestID(c), "idp", idp.ID, "err", err)
		if errors.Is(err, providers.ErrUnavailable) {
			return oauth.New(oauth.TemporarilyUnavailable, "the identity provider's keys could not be fetched")
		}
		s.auditEvent(c, "refused", "logout_token_invalid", attrs{tenant: idp.Tenant, idp: idp.ID}) // counts against the IP (S60)
		return oauth.New(oauth.InvalidRequest, "the logout token is invalid")
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
		return oauth.New(oauth.InvalidRequest, "the logout token was already used")
	case err != nil:
		s.log.Error("logout jti", "request_id", requestID(c), "err", storeErr("logout jti", err))
		return oauth.New(oauth.TemporarilyUnavailable, "try again")
	}
	if err := s.endUpstreamSessions(c, idp, lc.Subject, lc.SID, "upstream_backchannel"); err != nil {
		s.log.Error("upstream logout", "request_id", requestID(c), "idp", idp.ID, "err", err)
		return oauth.New(oauth.TemporarilyUnavailable, "try again")
	}
	return c.NoContent(http.StatusOK)
}
