// Package builtin registers every IdP type of this build: import it for
// its side effects. A new type is its own package under idp/ and one line
// here.
package builtin

import (
	_ "github.com/realmgate/realmgate/idp/github"    // GitHub OAuth 2.0
	_ "github.com/realmgate/realmgate/idp/google"    // Google OpenID Connect
	_ "github.com/realmgate/realmgate/idp/microsoft" // Microsoft Entra ID and personal accounts
	_ "github.com/realmgate/realmgate/idp/oauth2"    // generic OAuth 2.0 with userinfo
	_ "github.com/realmgate/realmgate/idp/oidc"      // any OpenID Connect provider
	_ "github.com/realmgate/realmgate/idp/saml"      // any SAML 2.0 IdP
)
