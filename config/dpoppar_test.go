package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	. "github.com/realmgate/realmgate/config"
)

func TestDPoPPAR_Parse(t *testing.T) {
	c, err := Parse("dp.yaml", []byte(opsBase+`par:
  required: true
  request_uri_lifetime: 90s
dpop:
  require_nonce: true
  proof_lifetime: 2m
clients:
  - id: app
    secret: s3cret
    redirect_uris: [https://app.example/cb]
    allowed_tenants: ["*"]
    require_pushed_authorization_requests: true
    dpop_bound_access_tokens: true
`), lookupMap(nil))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if p := c.PushedAuthorization; !p.Required || p.RequestURILifetime.Duration() != 90*time.Second {
		t.Errorf("par = %+v, want required with a 90s request_uri lifetime", p)
	}
	if d := c.ProofOfPossession; !d.RequireNonce || d.ProofLifetime.Duration() != 2*time.Minute {
		t.Errorf("dpop = %+v, want require_nonce and a 2m proof lifetime", d)
	}
	if cl := c.Clients[0]; !cl.RequirePushedAuthorizationRequests || !cl.DPoPBoundAccessTokens {
		t.Errorf("client = %+v, want both PAR and DPoP required", cl)
	}
}

func TestDPoPPAR_Problems(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, field, msg string
	}{
		{"request_uri too short", "par:\n  request_uri_lifetime: 1s\n", "par.request_uri_lifetime", "out of range"},
		{"request_uri too long", "par:\n  request_uri_lifetime: 1h\n", "par.request_uri_lifetime", "out of range"},
		{"proof too long", "dpop:\n  proof_lifetime: 11m\n", "dpop.proof_lifetime", "out of range"},
		{"unknown key", "dpop:\n  nonce: true\n", "dpop.nonce", ""},
		{"SAML app with DPoP", `clients:
  - id: sp
    dpop_bound_access_tokens: true
    saml:
      entity_id: https://sp.example
      acs: [{url: "https://sp.example/acs"}]
`, "clients[0].dpop_bound_access_tokens", "SAML app"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("dp.yaml", []byte(opsBase+tc.yaml), lookupMap(nil))
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Parse = %v, want a ValidationError", err)
			}
			for _, p := range ve.Problems {
				if p.Field == tc.field && strings.Contains(p.Message, tc.msg) {
					return
				}
			}
			t.Errorf("Parse problems = %v, want %s: ...%s...", err, tc.field, tc.msg)
		})
	}
}
