// Package e2e holds realmgate's end-to-end tests against real peers nobody on
// the team wrote: the realmgate binary built from cmd/realmgate, a real
// redis-server, panva's oidc-provider as the upstream OpenID Provider and
// panva's openid-client and coreos/go-oidc as downstream relying parties.
// The package has no code of its own beyond this comment; see README.md.
package e2e
