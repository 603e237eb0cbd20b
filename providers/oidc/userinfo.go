package oidc

import (
	"fmt"
	"slices"
)

// Modes of Config.Userinfo: when HandleCallback calls the OP's userinfo
// endpoint (OpenID Connect Core 1.0 §5.3) after verifying the ID token.
const (
	// UserinfoAuto (the default) calls userinfo only when the verified ID
	// token lacks a claim the scopes requested upstream stand for
	// (ScopeClaims): an ID token that already carries them makes the call,
	// one upstream round trip of every sign-in, useless. A scope without an
	// entry in ScopeClaims (a custom scope, whose claims only the OP knows)
	// makes it call.
	UserinfoAuto = "auto"
	// UserinfoAlways calls userinfo at every sign-in (an OP that sends
	// some claims only there, in a form ScopeClaims does not name).
	UserinfoAlways = "always"
	// UserinfoNever never calls it: the ID token is the whole identity.
	UserinfoNever = "never"
)

// ScopeClaims are, per scope requested upstream, the claims realmgate
// expects the ID token to carry to skip userinfo in UserinfoAuto: the
// identity fields it maps for profile and email (OpenID Connect Core 1.0
// §5.4 lists more for profile; realmgate's identity uses these), and the
// claims of address, phone and the common groups scope. openid and
// offline_access ask for no claim.
var ScopeClaims = map[string][]string{
	"openid":         nil,
	"offline_access": nil,
	"profile":        {"name", "given_name", "family_name"},
	"email":          {"email", "email_verified"},
	"address":        {"address"},
	"phone":          {"phone_number", "phone_number_verified"},
	"groups":         {"groups"},
}

// checkUserinfoMode returns the mode of a Config.
func checkUserinfoMode(mode string, skip bool) (string, error) {
	switch {
	case skip:
		return UserinfoNever, nil
	case mode == "":
		return UserinfoAuto, nil
	case slices.Contains([]string{UserinfoAuto, UserinfoAlways, UserinfoNever}, mode):
		return mode, nil
	}
	return "", fmt.Errorf("userinfo %q: want auto, always or never", mode)
}

// wantUserinfo reports whether a sign-in whose verified ID token carries
// claims calls userinfo.
func (c *Connector) wantUserinfo(claims map[string]any) bool {
	switch c.userinfoMode {
	case UserinfoNever:
		return false
	case UserinfoAlways:
		return true
	}
	for _, sc := range c.scopes {
		need, known := ScopeClaims[sc]
		if !known {
			return true
		}
		for _, cl := range need {
			if _, ok := claims[cl]; !ok {
				return true
			}
		}
	}
	return false
}
