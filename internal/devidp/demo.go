package devidp

import "strings"

// Demo client credentials that DefaultDemo registers in every realm. They are
// public on purpose: the development IdP never guards anything real.
const (
	DemoClientID     = "realmgate"
	DemoClientSecret = "dev-secret-do-not-use"
)

// DefaultDemo returns the realms of the README demo served at baseURL (such as
// http://127.0.0.1:8081): "acme" (alice@acme.test, bob@acme.test) and
// "globex" (carol@globex.test, dave@globex.test), each with the client
// DemoClientID whose redirect URIs are realmgate's callbacks on
// http://127.0.0.1:8080. DevMode is set; the algorithm is RS256, as most
// enterprise IdPs use (set Algorithm to "ES256" for load runs: RSA signing
// dominates the IdP's cost).
func DefaultDemo(baseURL string) Options {
	client := Client{
		ID:     DemoClientID,
		Secret: DemoClientSecret,
		RedirectURIs: []string{
			"http://127.0.0.1:8080/callback/acme-idp",
			"http://127.0.0.1:8080/callback/globex-idp",
		},
	}
	person := func(sub, first, last, domain string, groups ...string) User {
		return User{
			Subject:       sub,
			Email:         strings.ToLower(first) + "@" + domain,
			EmailVerified: true,
			Name:          first + " " + last,
			GivenName:     first,
			FamilyName:    last,
			Groups:        groups,
		}
	}
	return Options{
		BaseURL:   baseURL,
		DevMode:   true,
		Algorithm: "RS256",
		Realms: []Realm{
			{
				Name:        "acme",
				DisplayName: "ACME Corporation",
				Clients:     []Client{client},
				Users: []User{
					person("acme-u-1001", "Alice", "Anders", "acme.test", "Finance-Admins"),
					person("acme-u-1002", "Bob", "Berg", "acme.test", "Finance-Readers"),
				},
			},
			{
				Name:        "globex",
				DisplayName: "Globex Inc.",
				Clients:     []Client{client},
				Users: []User{
					person("globex-u-2001", "Carol", "Castro", "globex.test", "Engineering"),
					person("globex-u-2002", "Dave", "Dietrich", "globex.test", "Support"),
				},
			},
		},
	}
}
