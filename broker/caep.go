package broker

// This file makes realmgate an OpenID Shared Signals Framework transmitter:
// applications registered as receivers (Client.SSFPushURL) are pushed
// Continuous Access Evaluation Profile events as Security Event Tokens
// (RFC 8417) signed with the broker's signing keys, by push delivery
// (RFC 8935), retried with backoff through a bounded queue and the safe
// outbound client (SECURITY S70). The broker emits session-revoked when a
// session ends (logoutSession, so also RevokeUser) and token-claims-change
// when a time-bound role grant starts or ends (access.go); other parts of
// the broker call EmitSecurityEvent.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/users"
)

// CAEP 1.0 event types (OpenID Continuous Access Evaluation Profile 1.0 §3).
const (
	CAEPSessionRevoked    = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
	CAEPTokenClaimsChange = "https://schemas.openid.net/secevent/caep/event-type/token-claims-change"
	CAEPCredentialChange  = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
)

// PushDeliveryMethod names RFC 8935 push delivery in SSF metadata (SSF 1.0 §7.1).
const PushDeliveryMethod = "urn:ietf:rfc:8935"

// SecurityEvent is one CAEP event about a user, to be told to receivers.
type SecurityEvent struct {
	// Type is one of the CAEP* event types.
	Type string
	// Tenant is the tenant of the user; only receivers that may have users
	// of that tenant (allowed_tenants) are told.
	Tenant string
	// Subject is the user's sub as realmgate issued it; with it the event's
	// sub_id has format iss_sub (SSF 1.0 §3.2.2), else format email.
	Subject string
	// Email identifies the user when Subject is empty.
	Email string
	// Clients, when set, narrows the receivers to these clients (the
	// applications of a session); nil tells every receiver of the tenant.
	Clients []string
	// Initiator is CAEP's initiating_entity: admin, user, policy or system; empty: left out.
	Initiator string
	// Reason is CAEP's reason_admin (English); empty: left out.
	Reason string
	// Claims are the changed claims and their new values (token-claims-change).
	Claims map[string]any
	// CredentialType and ChangeType describe a credential-change
	// (credential_type, e.g. "password"; change_type create, revoke, update or delete).
	CredentialType, ChangeType string
	// Time is when the event happened; zero means now.
	Time time.Time
}

// SecurityEventEmitter is what emits CAEP events; *Server implements it.
type SecurityEventEmitter interface {
	EmitSecurityEvent(ctx context.Context, ev SecurityEvent)
}

var _ SecurityEventEmitter = (*Server)(nil)

// setJob is one SET on its way to one receiver.
type setJob struct {
	client, uri, token string
}

// setQueue delivers SETs off the request path with retries.
type setQueue struct {
	jobs   chan setJob
	client *http.Client
	wg     sync.WaitGroup
	once   sync.Once
}

const (
	setQueueSize    = 4096
	setWorkers      = 2
	setAttempts     = 4
	setFirstBackoff = 500 * time.Millisecond
	// maxSETResponse bounds what is read of a receiver's answer.
	maxSETResponse = 4 << 10
)

func (s *Server) startSETQueue() {
	s.sets = &setQueue{jobs: make(chan setJob, setQueueSize), client: logoutClient(s.cfg.HTTPClient)}
	for range setWorkers {
		s.sets.wg.Add(1)
		go s.setWorker()
	}
}

func (s *Server) closeSETQueue() {
	s.sets.once.Do(func() { close(s.sets.jobs) })
	s.sets.wg.Wait()
}

// EmitSecurityEvent signs one SET per receiver of ev and queues it for push
// delivery. It never blocks on the network: a full queue drops the event,
// logged. Receivers are the clients with an SSF push URL that may have
// users of ev.Tenant (narrowed to ev.Clients when set).
func (s *Server) EmitSecurityEvent(ctx context.Context, ev SecurityEvent) {
	if ev.Time.IsZero() {
		ev.Time = s.now()
	}
	txn := randomToken(16) // RFC 8417 §2.2: one txn for every SET of one event
	for _, cl := range s.receivers(ev) {
		tok, err := s.securityEventToken(cl.ID, txn, ev)
		if err != nil {
			s.log.ErrorContext(ctx, "security event token", "client", cl.ID, "err", err)
			continue
		}
		select {
		case s.sets.jobs <- setJob{client: cl.ID, uri: cl.SSFPushURL, token: tok}:
		default:
			s.log.Error("security event queue full; event dropped", "client", cl.ID, "event", ev.Type)
		}
	}
}

// receivers are the clients told of ev.
func (s *Server) receivers(ev SecurityEvent) []*client {
	d := s.dir()
	var out []*client
	if ev.Clients != nil {
		for _, id := range ev.Clients {
			if cl := d.clients[id]; cl != nil && cl.SSFPushURL != "" && cl.allowsTenant(ev.Tenant) {
				out = append(out, cl)
			}
		}
		return out
	}
	for _, cl := range d.clients {
		if cl.SSFPushURL != "" && cl.allowsTenant(ev.Tenant) {
			out = append(out, cl)
		}
	}
	return out
}

// securityEventToken is the SET of ev for the receiver aud (RFC 8417 §2.2;
// SSF 1.0 §4: sub_id; CAEP 1.0 §2: event_timestamp, initiating_entity,
// reason_admin), typed secevent+jwt (RFC 8417 §2.3).
func (s *Server) securityEventToken(aud, txn string, ev SecurityEvent) (string, error) {
	// A pairwise receiver gets the sub of its sector (pairwise.go).
	subID := map[string]any{"format": "iss_sub", "iss": s.cfg.Issuer, "sub": s.subjectFor(s.dir().clients[aud], ev.Subject)}
	if ev.Subject == "" {
		subID = map[string]any{"format": "email", "email": ev.Email}
	}
	body := map[string]any{"event_timestamp": ev.Time.Unix()}
	if ev.Initiator != "" {
		body["initiating_entity"] = ev.Initiator
	}
	if ev.Reason != "" {
		body["reason_admin"] = map[string]string{"en": ev.Reason}
	}
	switch ev.Type {
	case CAEPTokenClaimsChange:
		cl := ev.Claims
		if cl == nil {
			cl = map[string]any{}
		}
		body["claims"] = cl
	case CAEPCredentialChange:
		body["credential_type"], body["change_type"] = ev.CredentialType, ev.ChangeType
	}
	claims := jwt.MapClaims{
		"iss": s.cfg.Issuer, "aud": aud, "iat": s.now().Unix(), "jti": randomToken(16), "txn": txn,
		"sub_id": subID, "events": map[string]any{ev.Type: body},
	}
	if ev.Tenant != "" {
		claims["tid"] = ev.Tenant
	}
	return s.keys.sign(claims, "secevent+jwt")
}

func (s *Server) setWorker() {
	defer s.sets.wg.Done()
	for job := range s.sets.jobs {
		backoff := setFirstBackoff
		for attempt := 1; ; attempt++ {
			retry, err := s.pushSET(job)
			if err == nil {
				break
			}
			if !retry || attempt == setAttempts {
				s.log.Warn("security event delivery failed", "client", job.client, "attempts", attempt, "err", err)
				break
			}
			time.Sleep(backoff)
			backoff *= 2
		}
	}
}

// pushSET POSTs one SET (RFC 8935 §2): 202 Accepted is success; a 400 with
// an error code (§2.3) is the receiver refusing this SET, not retried;
// anything else is retried.
func (s *Server) pushSET(job setJob) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), logoutTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, job.uri, strings.NewReader(job.token))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/secevent+jwt")
	req.Header.Set("Accept", "application/json")
	resp, err := s.sets.client.Do(req)
	if err != nil {
		return true, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNoContent:
		return false, nil
	case resp.StatusCode == http.StatusBadRequest:
		var e struct {
			Err         string `json:"err"`
			Description string `json:"description"`
		}
		_ = json.NewDecoder(io.LimitReader(resp.Body, maxSETResponse)).Decode(&e)
		return false, fmt.Errorf("receiver refused the SET: %q %q", e.Err, e.Description)
	}
	return true, fmt.Errorf("status %d", resp.StatusCode)
}

// ssfConfiguration is the SSF transmitter configuration metadata (SSF 1.0
// §7.1): realmgate pushes to the receivers registered in its client
// configuration, so it publishes no stream-management endpoints.
func (s *Server) ssfConfiguration(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=3600")
	return c.JSON(http.StatusOK, map[string]any{
		"spec_version":               "1_0",
		"issuer":                     s.cfg.Issuer,
		"jwks_uri":                   s.url("/jwks"),
		"delivery_methods_supported": []string{PushDeliveryMethod},
		"default_subjects":           "ALL",
	})
}

var _ users.GroupsObserver = (*Server)(nil)

// UserGroupsChanged tells the tenant's receivers that u's groups changed
// (users.GroupsObserver): token-claims-change with the groups as they are
// now; roles the tenant's rules derive from them change at the next refresh.
func (s *Server) UserGroupsChanged(ctx context.Context, u *users.User) {
	if u.Subject == "" && u.Email == "" {
		return // never signed in and no address: nobody to name
	}
	groups := make([]any, len(u.Groups))
	for i, g := range u.Groups {
		groups[i] = g.Display
	}
	s.EmitSecurityEvent(ctx, SecurityEvent{Type: CAEPTokenClaimsChange, Tenant: u.Tenant, Subject: u.Subject, Email: u.Email,
		Initiator: "admin", Claims: map[string]any{"groups": groups}})
}

// revokeCause is why sessions end, carried to session-revoked events;
// userWide: the caller tells every receiver once for the user instead.
type revokeCause struct {
	initiator, reason string
	userWide          bool
}

type revokeCauseKey struct{}

// withRevokeCause marks ctx with who ended a session and why.
func withRevokeCause(ctx context.Context, initiator, reason string, userWide bool) context.Context {
	return context.WithValue(ctx, revokeCauseKey{}, revokeCause{initiator, reason, userWide})
}

// sessionRevokedEvent tells the session's receiving applications it ended.
func (s *Server) sessionRevokedEvent(ctx context.Context, sess *session) {
	if len(sess.Clients) == 0 {
		return
	}
	cause, _ := ctx.Value(revokeCauseKey{}).(revokeCause)
	if cause.userWide {
		return
	}
	s.EmitSecurityEvent(ctx, SecurityEvent{Type: CAEPSessionRevoked, Tenant: sess.Tenant, Subject: sess.Subject,
		Clients: sess.Clients, Initiator: cause.initiator, Reason: cause.reason})
}

// CredentialChanged tells the tenant's receivers that a provisioning client
// (actor) set the password of directory user userID (CAEP 1.0 §3.3
// credential-change, credential_type password, change_type update).
// realmgate stores no password; the event is the news. It implements
// scim.CredentialObserver.
func (s *Server) CredentialChanged(ctx context.Context, tenant, userID, actor string) {
	if s.users == nil {
		return
	}
	u, err := s.users.GetUser(ctx, tenant, userID)
	if err != nil {
		s.log.Warn("caep: credential change of an unknown user", "tenant", tenant, "user", userID, "err", err)
		return
	}
	s.EmitSecurityEvent(ctx, SecurityEvent{Type: CAEPCredentialChange, Tenant: tenant, Subject: u.Subject, Email: u.Email,
		Initiator: "admin", Reason: "password set by " + actor, CredentialType: "password", ChangeType: "update"})
}
