package config_test

import (
	"github.com/realmgate/realmgate/idp/github"
	"github.com/realmgate/realmgate/idp/google"
	"github.com/realmgate/realmgate/idp/microsoft"
	"github.com/realmgate/realmgate/idp/oauth2"
	"github.com/realmgate/realmgate/idp/oidc"
	"github.com/realmgate/realmgate/idp/saml"
)

// The IdP types these tests validate providers of: their packages
// register them with package config (the tests are config's external
// tests, so they can import them).
const (
	ProviderOIDC      = oidc.Name
	ProviderSAML      = saml.Name
	ProviderGitHub    = github.Name
	ProviderGoogle    = google.Name
	ProviderMicrosoft = microsoft.Name
	ProviderOAuth2    = oauth2.Name

	AccountsAny             = microsoft.AccountsAny
	AccountsWork            = microsoft.AccountsWork
	AccountsPersonal        = microsoft.AccountsPersonal
	MicrosoftConsumerTenant = microsoft.ConsumerTenant

	BindingPOST = saml.BindingPOST
)
