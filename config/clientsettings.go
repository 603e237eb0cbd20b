package config

import (
	"fmt"
	"net/url"
	"time"
)

// Bounds of a client's own token lifetimes (broker.MaxAccessTokenLifetime
// and its siblings hold the same values).
const (
	MaxClientAccessTokenLifetime  = Duration(24 * time.Hour)
	MaxClientIDTokenLifetime      = Duration(24 * time.Hour)
	MaxClientRefreshTokenLifetime = Duration(365 * 24 * time.Hour)
	minClientTokenLifetime        = Duration(30 * time.Second)
)

// Subject types (OIDC Core §8).
const (
	SubjectPublic   = "public"
	SubjectPairwise = "pairwise"
)

// clientSettings checks a client's token lifetimes, subject type and consent.
func (k *checker) clientSettings(cl *Client, path string) {
	for _, d := range []struct {
		name   string
		v, max Duration
	}{
		{"access_token_lifetime", cl.AccessTokenLifetime, MaxClientAccessTokenLifetime},
		{"id_token_lifetime", cl.IDTokenLifetime, MaxClientIDTokenLifetime},
		{"refresh_token_lifetime", cl.RefreshTokenLifetime, MaxClientRefreshTokenLifetime},
	} {
		switch {
		case d.v == 0:
		case d.v < minClientTokenLifetime:
			k.add(path+"."+d.name, "must be at least %s, got %s", minClientTokenLifetime, d.v)
		case d.v > d.max:
			k.add(path+"."+d.name, "must be at most %s, got %s", d.max, d.v)
		}
	}
	if len(cl.ClientName) > 128 {
		k.add(path+".client_name", "is longer than 128 characters")
	}
	switch cl.SubjectType {
	case "", SubjectPublic:
		if cl.SectorIdentifierURI != "" {
			k.add(path+".sector_identifier_uri", "is used only with subject_type pairwise")
		}
		return
	case SubjectPairwise:
	default:
		k.add(path+".subject_type", "unknown subject type %q (want public or pairwise)", cl.SubjectType)
		return
	}
	if cl.SAML != nil {
		k.add(path+".subject_type", "a SAML app has no pairwise subject (its NameID is configured under saml)")
		return
	}
	if cl.SectorIdentifierURI != "" {
		// OIDC Registration §2: https; http only on loopback for development.
		if u, err := url.Parse(cl.SectorIdentifierURI); err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
			k.add(path+".sector_identifier_uri", "%q must be an https URL", cl.SectorIdentifierURI)
		} else if msg := checkRedirectURI(cl.SectorIdentifierURI); msg != "" {
			k.add(path+".sector_identifier_uri", "%s", msg)
		}
		return
	}
	// OIDC Core §8.1: without a sector_identifier_uri the redirect URIs
	// must share one host, which is the sector.
	host := ""
	for j, r := range cl.RedirectURIs {
		u, err := url.Parse(r)
		if err != nil {
			continue // reported with redirect_uris
		}
		h := u.Hostname()
		if h == "" {
			h = u.Scheme
		}
		if j == 0 {
			host = h
		} else if h != host {
			k.add(fmt.Sprintf("%s.redirect_uris[%d]", path, j),
				"a pairwise client without sector_identifier_uri needs every redirect URI on one host (%q, not %q)", host, h)
		}
	}
}
