package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/portal"
)

// brokerTester is the broker's test sign-in (broker/testsignin.go) as the
// setup portal's Tester.
type brokerTester struct {
	srv *broker.Server
	e   *echo.Echo // makes the echo context StartTestSignIn answers through
}

var _ portal.Tester = brokerTester{}

// setupTester is the broker's test sign-in as the portal's Tester; nil
// without a broker (the portal then hides the test step).
func setupTester(srv *broker.Server) portal.Tester {
	if srv == nil {
		return nil
	}
	return brokerTester{srv: srv, e: echo.New()}
}

// StartTest implements portal.Tester.
func (b brokerTester) StartTest(w http.ResponseWriter, r *http.Request, req portal.TestRequest) error {
	c := b.e.NewContext(r, w)
	err := b.srv.StartTestSignIn(c, broker.TestSignIn{Tenant: req.Tenant, IdP: req.IdP, Return: req.Return, Actor: req.Actor})
	if errors.Is(err, broker.ErrTestSignInRequest) {
		return fmt.Errorf("%w: %w", portal.ErrTestRefused, err)
	}
	return err
}

// TestResult implements portal.Tester: the upstream identity's fields and
// raw claims as the attributes received.
func (b brokerTester) TestResult(ctx context.Context, id string) (*portal.TestResult, error) {
	r, err := b.srv.TestSignInResult(ctx, id)
	if err != nil {
		return nil, err
	}
	attrs := map[string]any{}
	for k, v := range r.Upstream.Claims {
		attrs[k] = v
	}
	for k, v := range map[string]string{"sub": r.Upstream.Subject, "email": r.Upstream.Email, "name": r.Upstream.Name,
		"given_name": r.Upstream.GivenName, "family_name": r.Upstream.FamilyName, "preferred_username": r.Upstream.PreferredUsername} {
		if _, ok := attrs[k]; !ok && v != "" {
			attrs[k] = v
		}
	}
	if _, ok := attrs["email_verified"]; !ok && r.Upstream.Email != "" {
		attrs["email_verified"] = r.Upstream.EmailVerified
	}
	out := &portal.TestResult{Tenant: r.Tenant, IdP: r.IdP, Actor: r.Actor, Attributes: attrs, Claims: r.Claims,
		Denied: r.Denied, Error: r.Error}
	for _, st := range r.Trace {
		ts := portal.TraceStep{Rule: st.Rule, Matched: st.Matched, Denied: st.Denied, Error: st.Err}
		for _, ch := range st.Changes {
			ts.Changes = append(ts.Changes, fmt.Sprintf("%s %s: %v → %v", ch.Action, ch.Claim, ch.Before, ch.After))
		}
		out.Trace = append(out.Trace, ts)
	}
	return out, nil
}
