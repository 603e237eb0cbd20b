package broker

// This file is conditional access (docs/conditional-access.md): at every
// sign-in that mints a code (finish: a fresh sign-in, SSO from a session,
// the tenant picker, a SAML app), the sign-in's signals are gathered
// (package risk), compared with the user's history in one store round trip,
// and the global and tenant policies decide. Their requirements (MFA,
// a fresh sign-in, a max age) are folded into the request before the one
// authorization decision, authorizeFor, so step-up reuses the upstream MFA
// and fresh-login paths; a deny, a shortened session and notifications are
// carried out here. Risk events go to the listeners other parts register
// (OnRisk: shared signals, webhooks).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/risk"
	"github.com/realmgate/realmgate/store"
	"github.com/realmgate/realmgate/users"
)

// ConditionalConfig is the file-wide conditional access setup.
type ConditionalConfig struct {
	// Sensor gathers the signals (GeoIP, named locations, IP lists); nil:
	// only the signals that need no configuration.
	Sensor *risk.Sensor
	// Global is the global policies alone: the set of a tenant without
	// policies of its own. Nil: none.
	Global *risk.Set
	// HistoryTTL is how long a user's sign-in history is kept; 0: 90 days.
	HistoryTTL time.Duration
}

// TenantConditional is a tenant's conditional access (TenantPolicy.Access).
type TenantConditional struct {
	// Set is the global and the tenant's policies and the tenant's
	// authentication contexts, compiled.
	Set *risk.Set
	// RiskClaim adds risk_level to the tenant's tokens.
	RiskClaim bool
	// Webhook receives a JSON POST of every notify RiskEvent (through
	// Config.HTTPClient, SECURITY S70); empty: none.
	Webhook string
	// CompromisedMFA makes the action for a confirmed compromised user
	// multi-factor authentication instead of a refusal.
	CompromisedMFA bool
}

// Risk event kinds (RiskEvent.Kind).
const (
	// RiskCompromised: an administrator confirmed a user compromised (the
	// user's sessions and refresh-token families were ended).
	RiskCompromised = "user_compromised"
	// RiskDismissed: an administrator dismissed a user's risk.
	RiskDismissed = "risk_dismissed"
	// RiskAtRisk: a high-risk sign-in marked the user at risk.
	RiskAtRisk = "user_at_risk"
	// RiskNotify: a policy with notify applied to a sign-in.
	RiskNotify = "policy_notify"
	// RiskDenied: a policy refused a sign-in.
	RiskDenied = "policy_denied"
)

// RiskEvent is one conditional-access event, as listeners and the
// tenant's webhook receive it.
type RiskEvent struct {
	Kind   string    `json:"kind"`
	Time   time.Time `json:"time"`
	Tenant string    `json:"tenant"`
	// Subject is the user's sub in tokens; UserID the directory id.
	Subject string `json:"sub,omitempty"`
	UserID  string `json:"user_id,omitempty"`
	IdP     string `json:"idp,omitempty"`
	Client  string `json:"client,omitempty"`
	// Level is the sign-in's risk level; Policies the policies that applied.
	Level    string   `json:"risk_level,omitempty"`
	Policies []string `json:"policies,omitempty"`
	// IP and Country are the sign-in's, when there is one.
	IP      string `json:"ip,omitempty"`
	Country string `json:"country,omitempty"`
	// Actor is the administrator of an admin action.
	Actor string `json:"actor,omitempty"`
}

// RiskListener receives risk events (shared signals / CAEP transmitters,
// SIEM forwarders). It is called synchronously after the event: it must
// return quickly and do slow work (HTTP) on its own goroutine.
type RiskListener interface {
	RiskEvent(ctx context.Context, ev RiskEvent)
}

// RiskListenerFunc adapts a function to RiskListener.
type RiskListenerFunc func(ctx context.Context, ev RiskEvent)

// RiskEvent calls f.
func (f RiskListenerFunc) RiskEvent(ctx context.Context, ev RiskEvent) { f(ctx, ev) }

// riskListeners are the registered listeners.
type riskListeners struct {
	mu sync.RWMutex
	ls []RiskListener
}

// OnRisk registers l for every risk event: a user confirmed compromised
// (after their access was revoked), a risk dismissed, a user marked at
// risk by a sign-in, a policy's notify and a policy's refusal.
func (s *Server) OnRisk(l RiskListener) {
	s.risk.mu.Lock()
	defer s.risk.mu.Unlock()
	s.risk.ls = append(s.risk.ls, l)
}

// emitRisk sends ev to the listeners and, for notify, denied and at-risk
// events, to the tenant's webhook.
func (s *Server) emitRisk(ctx context.Context, ev RiskEvent) {
	if ev.Time.IsZero() {
		ev.Time = s.now().UTC()
	}
	s.risk.mu.RLock()
	ls := slices.Clone(s.risk.ls)
	s.risk.mu.RUnlock()
	for _, l := range ls {
		l.RiskEvent(ctx, ev)
	}
	ta := s.tenantConditional(ev.Tenant)
	if ta == nil || ta.Webhook == "" || s.cfg.HTTPClient == nil {
		return
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return
	}
	select {
	case webhookSlots <- struct{}{}:
		go func() {
			defer func() { <-webhookSlots }()
			s.postWebhook(ta.Webhook, body)
		}()
	default:
		s.log.Warn("risk webhook: too many deliveries in flight; event dropped", "tenant", ev.Tenant, "kind", ev.Kind)
	}
}

// webhookSlots bounds the webhook deliveries in flight on this instance:
// a slow receiver cannot pile up goroutines.
var webhookSlots = make(chan struct{}, 64)

// webhookTimeout bounds one webhook delivery.
const webhookTimeout = 5 * time.Second

// postWebhook delivers one event (best effort, logged) through the
// outbound client (S70: no private addresses unless the operator allows,
// no redirects to another host, bounded).
func (s *Server) postWebhook(url string, body []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), webhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		s.log.Warn("risk webhook", "err", err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		s.log.Warn("risk webhook", "err", err)
		return
	}
	_ = resp.Body.Close()
	if resp.StatusCode >= 300 {
		s.log.Warn("risk webhook", "status", resp.StatusCode)
	}
}

// tenantAccess is the tenant's conditional access; nil: none of its own.
func (s *Server) tenantConditional(tenant string) *TenantConditional {
	return s.dir().policies[tenant].Conditional
}

// accessSet is the policy set that decides tenant's sign-ins.
func (s *Server) conditionalSet(tenant string) *risk.Set {
	if ta := s.tenantConditional(tenant); ta != nil && ta.Set != nil {
		return ta.Set
	}
	return s.cfg.Conditional.Global
}

// defaultHistoryTTL is how long a user's sign-in history is kept.
const defaultHistoryTTL = 90 * 24 * time.Hour

// historyKey is the store key of a user's sign-in history.
func (s *Server) historyKey(tenant, sub string) string {
	return s.keyer.key("rk", tenant+"\x00"+sub)
}

// accessCheck is one sign-in's conditional access: the decision and what
// is needed to record its outcome.
type accessCheck struct {
	risk.Decision
	sig  risk.Signals
	key  string
	next risk.History
}

// evaluateAccess gathers the signals of this sign-in for tenant and
// decides it. ok is false when the tenant has no policy, no
// authentication context was asked for and the user is not compromised:
// nothing was read or decided. It costs one store round trip (the user's
// history: Remember) and, for a high-risk sign-in of a user not yet at
// risk, a write of the user's record.
func (s *Server) evaluateAccess(c echo.Context, ar *authRequest, sess *session, tenant string) (*accessCheck, error) {
	set := s.conditionalSet(tenant)
	compromised := sess.user != nil && sess.user.Compromised()
	if set.Empty() && !compromised {
		return nil, nil
	}
	ctx := c.Request().Context()
	now := s.now().UTC()
	if set != nil && set.Zone != nil {
		now = now.In(set.Zone) // signals.hour and weekday in the tenant's zone
	}
	in := risk.Input{Now: now, IP: clientIP(c), Client: ar.ClientID, MFA: providers.MFA(sess.Identity.AMR),
		Compromised: compromised, ACRS: ar.ACRS}
	var user map[string]any
	if sess.user != nil {
		in.Groups = sess.user.GroupNames()
		user = sess.user.RuleView()
	}
	sensor := s.cfg.Conditional.Sensor
	if sensor == nil {
		sensor = &risk.Sensor{}
	}
	ac := &accessCheck{sig: sensor.Sense(in)}
	ac.next = ac.sig.Now()
	if hs, ok := s.store.(store.HistoryStore); ok && sess.Subject != "" {
		ttl := s.cfg.Conditional.HistoryTTL
		if ttl <= 0 {
			ttl = defaultHistoryTTL
		}
		ac.key = s.historyKey(sess.Tenant, sess.Subject)
		prev, seen, err := hs.Remember(ctx, ac.key, ac.next.Encode(), ac.sig.Members(), risk.MaxMembers, ttl)
		if err != nil {
			return nil, storeErr("sign-in history", err)
		}
		sensor.Compare(&ac.sig, risk.DecodeHistory(prev), seen)
	}
	sensor.Assess(&ac.sig)
	d, err := set.Evaluate(&ac.sig, user, ar.ClientID, tenant)
	if err != nil {
		s.log.Warn("conditional access policy", "request_id", requestID(c), "tenant", tenant, "err", err)
	}
	if compromised && !d.Deny {
		// A confirmed compromise forces the tenant's action: a refusal
		// unless the tenant chose multi-factor authentication.
		if ta := s.tenantConditional(tenant); ta != nil && ta.CompromisedMFA {
			d.MFA, d.FreshLogin = true, true
		} else {
			d.Deny, d.Policy = true, "compromised"
			d.Message = "Your organization has blocked sign-in to your account after a security event. Contact your administrator."
		}
	}
	ac.Decision = d
	if ac.sig.Level == risk.High && sess.user != nil && !sess.user.Risky() && s.users != nil {
		detail := riskDetail(&ac.sig)
		if _, err := s.users.SetRisk(ctx, "sign-in", sess.user.Tenant, sess.user.ID, users.RiskAtRisk, "high", detail); err != nil {
			s.log.Warn("mark user at risk", "request_id", requestID(c), "tenant", tenant, "err", err)
		} else {
			s.emitRisk(ctx, s.riskEvent(RiskAtRisk, ar, sess, tenant, ac))
		}
	}
	return ac, nil
}

// riskDetail names the signals that made a sign-in high risk.
func riskDetail(sig *risk.Signals) string {
	var why []string
	for _, f := range []struct {
		on   bool
		name string
	}{{sig.ImpossibleTravel, "impossible_travel"}, {sig.Anonymizer, "anonymizer"}, {sig.DeniedIP, "denied_ip"},
		{sig.NewCountry, "new_country"}, {sig.NewNetwork, "new_network"}} {
		if f.on {
			why = append(why, f.name)
		}
	}
	return fmt.Sprintf("%s from %s (%s)", strings.Join(why, ", "), sig.IP, sig.Country)
}

func (s *Server) riskEvent(kind string, ar *authRequest, sess *session, tenant string, ac *accessCheck) RiskEvent {
	ev := RiskEvent{Kind: kind, Tenant: tenant, Subject: sess.Subject, IdP: sess.IdP, Client: ar.ClientID}
	if sess.user != nil {
		ev.UserID = sess.user.ID
	}
	if ac != nil {
		ev.Level, ev.IP, ev.Country = ac.sig.Level.String(), ac.sig.IP, ac.sig.Country
		ev.Policies = ac.Applied
		if kind == RiskNotify {
			ev.Policies = ac.Notify
		}
	}
	return ev
}

// applyAccess folds the decision's requirements into the request before
// the authorization decision: multi-factor, a fresh sign-in, a max age.
func applyAccess(ar *authRequest, ac *accessCheck) {
	if ac == nil {
		return
	}
	if ac.MFA {
		ar.RequireMFA = true
	}
	if ac.FreshLogin && !ar.fresh {
		ar.ForceLogin = true
	}
	if ac.MaxAge > 0 {
		secs := int(ac.MaxAge / time.Second)
		if ar.MaxAge == nil || *ar.MaxAge > secs {
			ar.MaxAge = &secs
		}
	}
}

// accessDenied carries out a deny: audit, notify, the failure in the
// user's history, and the page.
func (s *Server) accessDenied(c echo.Context, ar *authRequest, sess *session, tenant string, ac *accessCheck, at attrs) error {
	ctx := c.Request().Context()
	at.risk = ac.sig.Level.String()
	s.auditEvent(c, "denied", "policy: "+ac.Policy, at)
	s.recordFailure(ctx, ac)
	s.emitRisk(ctx, s.riskEvent(RiskDenied, ar, sess, tenant, ac))
	return s.renderError(c, http.StatusForbidden, "Access denied", ac.Message)
}

// recordFailure counts a refused sign-in in the user's history (one
// write, on the refusal path only).
func (s *Server) recordFailure(ctx context.Context, ac *accessCheck) {
	hs, ok := s.store.(store.HistoryStore)
	if !ok || ac == nil || ac.key == "" {
		return
	}
	h := ac.next
	h.Failures = ac.sig.Failures + 1
	ttl := s.cfg.Conditional.HistoryTTL
	if ttl <= 0 {
		ttl = defaultHistoryTTL
	}
	if _, _, err := hs.Remember(ctx, ac.key, h.Encode(), nil, risk.MaxMembers, ttl); err != nil {
		s.log.Warn("sign-in history", "err", err)
	}
}

// accessAdmitted carries out what an admitted sign-in's decision asks:
// notifications (audit and listeners) and a shortened session. It returns
// the session cap (0: none).
func (s *Server) accessAdmitted(c echo.Context, ar *authRequest, sess *session, tenant string, ac *accessCheck, at attrs) time.Duration {
	if ac == nil {
		return 0
	}
	ctx := c.Request().Context()
	if len(ac.Notify) > 0 {
		// One audit event (log and the tenant's stream), then the listeners
		// and the webhook.
		ev := AuditEvent{Time: s.now().UTC(), Outcome: "notify", Reason: clip("policy: "+strings.Join(ac.Notify, ", "), maxAuditField),
			Tenant: tenant, IdP: sess.IdP, Subject: sess.Subject, Client: ar.ClientID, IP: ac.sig.IP,
			RequestID: requestID(c), Risk: ac.sig.Level.String()}
		logEvent(ctx, s.audit, slog.LevelInfo, "signin", slog.String("outcome", ev.Outcome), slog.String("reason", ev.Reason),
			slog.String("tenant", ev.Tenant), slog.String("idp", ev.IdP), slog.String("subject", ev.Subject),
			slog.String("client", ev.Client), slog.String("ip", ev.IP), slog.String("country", ac.sig.Country),
			slog.String("request_id", ev.RequestID), slog.String("risk", ev.Risk))
		s.ops.audit.push(s, tenant, ev)
		s.emitRisk(ctx, s.riskEvent(RiskNotify, ar, sess, tenant, ac))
	}
	capTTL := ac.SessionLifetime
	if capTTL > 0 && capTTL < s.cfg.SessionLifetime && sess.key != "" {
		// The SSO session ends at the cap (one write, only when a policy
		// shortens it).
		if err := s.putJSON(ctx, sess.key, sess, capTTL); err != nil {
			s.log.Warn("shorten session", "request_id", requestID(c), "err", err)
		}
	}
	return capTTL
}

// errBadClaims is a claims request parameter realmgate cannot read.
var errBadClaims = errors.New("broker: the claims parameter is not a valid JSON object")

// maxACRS bounds the authentication contexts one request may ask for.
const maxACRS = 25

// claimsACRS reads the authentication contexts an app asks for with the
// claims parameter (OIDC Core §5.5.1): {"id_token": {"acrs": {"essential":
// true, "value": "c1"}}} or "values": ["c1", "c2"], in id_token or
// userinfo. Unknown members are ignored; only ids c1 to c25 are kept.
func claimsACRS(param string) ([]string, error) {
	if param == "" {
		return nil, nil
	}
	type request struct {
		Value  *string  `json:"value"`
		Values []string `json:"values"`
	}
	var cr map[string]map[string]json.RawMessage
	if err := json.Unmarshal([]byte(param), &cr); err != nil {
		return nil, errBadClaims
	}
	var out []string
	for _, member := range []string{"id_token", "userinfo"} {
		raw, ok := cr[member]["acrs"]
		if !ok || string(raw) == "null" {
			continue
		}
		var r request
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, errBadClaims
		}
		vals := r.Values
		if r.Value != nil {
			vals = append(vals, *r.Value)
		}
		for _, v := range vals {
			if risk.ValidContext(v) && !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	if len(out) > maxACRS {
		out = out[:maxACRS]
	}
	return out, nil
}

// GlobalConditional returns the global conditional access policies (nil:
// none): the admin API's dry run decides with them for a tenant without
// policies of its own.
func (s *Server) GlobalConditional() *risk.Set { return s.cfg.Conditional.Global }
