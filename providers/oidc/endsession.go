package oidc

import (
	"context"
	"net/url"
	"strings"
)

// EndSessionURL returns where to send the browser to end the user's session
// at the OP (OIDC RP-Initiated Logout 1.0 §2): its end_session_endpoint
// with client_id, post_logout_redirect_uri and state. ok is false when the
// OP publishes no end_session_endpoint.
func (c *Connector) EndSessionURL(ctx context.Context, postLogoutRedirectURI, state string) (string, bool, error) {
	md, err := c.discover(ctx)
	if err != nil {
		return "", false, err
	}
	if md.EndSessionEndpoint == "" {
		return "", false, nil
	}
	q := url.Values{"client_id": {c.clientID}, "post_logout_redirect_uri": {postLogoutRedirectURI}, "state": {state}}
	sep := "?"
	if strings.Contains(md.EndSessionEndpoint, "?") {
		sep = "&"
	}
	return md.EndSessionEndpoint + sep + q.Encode(), true, nil
}
