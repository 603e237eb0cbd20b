package transform

// AlwaysKept lists the claims FilterClaims never drops: the protocol and
// tenancy claims the broker itself issues (OpenID Connect Core 1.0 §2,
// RFC 9068 §2.2), whatever the scopes. Read-only.
var AlwaysKept = []string{
	"iss", "sub", "aud", "exp", "iat", "nbf", "nonce", "auth_time", "azp",
	"jti", "sid", "at_hash", "c_hash", "s_hash", "cnf", "acr", "amr",
	"tid", "idp", "scope", "client_id",
}

// ScopeClaims maps each scope to the claims it releases (OpenID Connect
// Core 1.0 §5.4, plus realmgate's "roles" scope). Read-only.
var ScopeClaims = map[string][]string{
	"profile": {"name", "family_name", "given_name", "middle_name", "nickname",
		"preferred_username", "profile", "picture", "website", "gender",
		"birthdate", "zoneinfo", "locale", "updated_at"},
	"email":   {"email", "email_verified"},
	"address": {"address"},
	"phone":   {"phone_number", "phone_number_verified"},
	"roles":   {"roles"},
}

var alwaysKept = func() map[string]bool {
	m := make(map[string]bool, len(AlwaysKept))
	for _, c := range AlwaysKept {
		m[c] = true
	}
	return m
}()

// FilterClaims returns the claims a client may receive: the AlwaysKept
// claims, the claims of each scope it was granted in this request (see
// ScopeClaims), and the custom claims named in granted (the client's
// configured claim grants). Every other claim is dropped. claims is not
// modified; values are shared, not copied.
func FilterClaims(claims map[string]any, scopes []string, granted []string) map[string]any {
	return FilterClaimsRoom(claims, scopes, granted, 0)
}

// FilterClaimsRoom is FilterClaims with room for extra more entries in the
// map it returns, for a caller that adds them (the ID token's reserved
// claims): the map then never grows and copies itself while they go in.
func FilterClaimsRoom(claims map[string]any, scopes []string, granted []string, extra int) map[string]any {
	out := make(map[string]any, len(claims)+extra)
	keep := func(c string) {
		if v, ok := claims[c]; ok {
			out[c] = v
		}
	}
	for c, v := range claims {
		if alwaysKept[c] {
			out[c] = v
		}
	}
	for _, s := range scopes {
		for _, c := range ScopeClaims[s] {
			keep(c)
		}
	}
	for _, c := range granted {
		keep(c)
	}
	return out
}
