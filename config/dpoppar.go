package config

import "time"

// PushedAuthorization configures pushed authorization requests (RFC 9126,
// docs/dpop-par.md): a client posts its authorization parameters to the
// pushed_authorization_request_endpoint, authenticated as at the token
// endpoint, and sends the browser to /authorize with only client_id and the
// request_uri it got back, which works once, for that client, for a short
// time.
type PushedAuthorization struct {
	// Required makes /authorize accept every client's requests only
	// through a request_uri from the PAR endpoint (discovery then says
	// require_pushed_authorization_requests: true). A client can require it
	// for itself with require_pushed_authorization_requests.
	Required bool `yaml:"required,omitempty"`
	// RequestURILifetime is how long a request_uri can be used: 5s to 10m.
	// Default 60s.
	RequestURILifetime Duration `yaml:"request_uri_lifetime,omitempty"`
}

// ProofOfPossession configures Demonstrating Proof of Possession (RFC 9449,
// docs/dpop-par.md): a client that sends a DPoP proof to the token endpoint
// gets access tokens bound to its key (token_type DPoP, cnf.jkt), usable
// only with a fresh proof by that key; a public client's refresh tokens are
// bound to the key too.
type ProofOfPossession struct {
	// RequireNonce makes every proof carry a nonce the server issued
	// (RFC 9449 §8, §9): a proof without a current one is refused with
	// use_dpop_nonce and a fresh nonce in the DPoP-Nonce header, which
	// clients such as openid-client retry with at once. This bounds the use
	// of a proof made in advance, whatever the client's clock says.
	RequireNonce bool `yaml:"require_nonce,omitempty"`
	// ProofLifetime is how old a proof (its iat) may be when it arrives: 5s
	// to 10m. Each proof's jti is remembered in the store that long, so a
	// proof is accepted once across every instance. Default 60s.
	ProofLifetime Duration `yaml:"proof_lifetime,omitempty"`
}

// Bounds of the PAR and DPoP lifetimes.
const (
	minPARDPoPLifetime = 5 * time.Second
	maxPARDPoPLifetime = 10 * time.Minute
)

// parDPoP checks the par and dpop sections.
func (k *checker) parDPoP() {
	for _, f := range []struct {
		path string
		d    Duration
	}{{"par.request_uri_lifetime", k.c.PushedAuthorization.RequestURILifetime}, {"dpop.proof_lifetime", k.c.ProofOfPossession.ProofLifetime}} {
		if d := f.d.Duration(); d != 0 && (d < minPARDPoPLifetime || d > maxPARDPoPLifetime) {
			k.add(f.path, "%s is out of range: want 5s to 10m, or unset for the default 60s", d)
		}
	}
}
