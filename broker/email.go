package broker

import (
	"strings"

	"github.com/realmgate/realmgate/providers"
	"github.com/realmgate/realmgate/realm"
)

// Emails (SECURITY S74). realm.ParseEmail is the one parser: an address it
// refuses is ambiguous (`ceo@acme.test@evil.test` reads as acme.test to
// some parsers), so it is dropped wherever it enters: from an upstream
// identity before the session keeps it (never verified, never a login hint
// upstream, never a membership), from the final claims (claims.GuardEmail), and
// from discovery (the resolver refuses it as a login hint).

// checkIdentityEmail drops an upstream identity's email, and its verified
// flag, unless realm.ParseEmail accepts it. Every connector's identity
// passes here before a session holds it, whatever the protocol.
func checkIdentityEmail(id *providers.Identity) {
	if id.Email == "" {
		id.EmailVerified = false
		return
	}
	if _, err := realm.ParseEmail(id.Email); err != nil {
		id.Email, id.EmailVerified = "", false
	}
}

// sameEmail reports whether a and b are one address: both parse, the
// domains are equal once normalized and the local parts equal ignoring case.
func sameEmail(a, b string) bool {
	ea, err := realm.ParseEmail(a)
	if err != nil {
		return false
	}
	eb, err := realm.ParseEmail(b)
	return err == nil && ea.Domain == eb.Domain && strings.EqualFold(ea.Local, eb.Local)
}
