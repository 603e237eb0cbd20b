package broker

// Pending IdPs (setup portal): an IdP a customer's admin added through the
// setup portal stays pending until activated. It serves only test sign-ins
// (testsignin.go), never an end user. Routing leaves it out in the resolver
// (realm.Tenant.Pending: idp_hint, the email's tenant, the subdomain, the
// remembered choice); the broker leaves it out of every list it shows or
// accepts a choice from (idpList: the choice page, the global buttons, the
// offered IdPs), ignores a remembered-choice cookie naming it, refuses to
// start a normal sign-in at it or to complete one that comes back from it,
// takes no IdP-initiated response from it, and the one authorization
// decision (authorizeFor) refuses every code and token of a subject it
// authenticated. Activation is the same IdP with Pending false through
// Reconfigure.

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/realmgate/realmgate/realm"
)

// pendingAgrees checks that the directory and the resolver agree on
// whether p is pending.
func pendingAgrees(res *realm.Resolver, p IdP) error {
	if p.Pending != res.IsPending(p.ID) {
		return fmt.Errorf("broker: idp %q: pending is %t in the directory but %t in the resolver", p.ID, p.Pending, res.IsPending(p.ID))
	}
	return nil
}

// pendingRefused answers a normal sign-in that reached a pending IdP: the
// organization has no sign-in method yet, as far as end users are concerned.
func (s *Server) pendingRefused(c echo.Context, client string, idp IdP) error {
	s.auditEvent(c, "refused", "idp_pending", attrs{client: client, tenant: idp.Tenant, idp: idp.ID})
	return s.renderError(c, http.StatusForbidden, "Not available", "Your organization has no sign-in method configured yet.")
}
