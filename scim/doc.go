// Package scim is realmgate's SCIM 2.0 service provider (RFC 7643 core
// schema, RFC 7644 protocol): one endpoint per tenant, under
// <issuer>/scim/v2/<tenant>/, through which a tenant's identity provider
// (Microsoft Entra ID, Okta, any SCIM client) creates, updates, deactivates
// and deletes the tenant's users and groups in realmgate's user directory.
//
// The package owns the protocol: the resource representations and their
// schemas (schema.go), filters (filter.go, on a kept parser library),
// PATCH (patch.go), pagination, the discovery endpoints and SCIM error
// bodies (handler.go), and the per-tenant bearer tokens that authenticate
// a provisioning client (tokens.go). Where users and groups are kept is
// the Directory's business (directory.go): the package only sees the
// small interface it declares.
package scim
