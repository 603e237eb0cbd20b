package broker

import "time"

// Bounds of a client's own token lifetimes (config validates them; the
// broker clamps again so no setting can mint a token outside them).
const (
	// MaxAccessTokenLifetime bounds a client's access_token_lifetime.
	MaxAccessTokenLifetime = 24 * time.Hour
	// MaxIDTokenLifetime bounds a client's id_token_lifetime.
	MaxIDTokenLifetime = 24 * time.Hour
	// MaxRefreshTokenLifetime bounds a client's refresh_token_lifetime.
	MaxRefreshTokenLifetime = 365 * 24 * time.Hour
)

// ClientSettings are a client's own token lifetimes, subject identifier
// type and consent page (lifetimes.go, pairwise.go, consent.go).
type ClientSettings struct {
	// Name is shown on the consent and device pages; empty: the client id.
	Name string
	// AccessTokenLifetime, IDTokenLifetime and RefreshTokenLifetime
	// replace the server's lifetimes for this client when set; the refresh
	// lifetime is the absolute lifetime of a refresh-token family.
	AccessTokenLifetime, IDTokenLifetime, RefreshTokenLifetime time.Duration
	// SubjectType is "public" (or empty) or "pairwise" (OIDC Core §8).
	SubjectType string
	// SectorIdentifierURI names the pairwise sector (its host) and lists
	// the client's redirect URIs (OIDC Registration §5); empty: the sector
	// is the host of the redirect URIs.
	SectorIdentifierURI string
	// ThirdParty shows the consent page before the client gets a code,
	// and remembers the user's answer per client (consent.go).
	ThirdParty bool
}

// lifetime is own when set (clamped to max), else def.
func lifetime(own, def, maxLifetime time.Duration) time.Duration {
	switch {
	case own <= 0:
		return def
	case own > maxLifetime:
		return maxLifetime
	}
	return own
}

// accessLifetime is the access token lifetime of tokens issued to cl.
func (s *Server) accessLifetime(cl *client) time.Duration {
	if cl == nil {
		return s.cfg.AccessTokenLifetime
	}
	return lifetime(cl.AccessTokenLifetime, s.cfg.AccessTokenLifetime, MaxAccessTokenLifetime)
}

// idLifetime is the ID token lifetime of tokens issued to cl.
func (s *Server) idLifetime(cl *client) time.Duration {
	if cl == nil {
		return s.cfg.IDTokenLifetime
	}
	return lifetime(cl.IDTokenLifetime, s.cfg.IDTokenLifetime, MaxIDTokenLifetime)
}

// refreshLifetime is the absolute lifetime of cl's refresh-token families.
func (s *Server) refreshLifetime(cl *client) time.Duration {
	if cl == nil {
		return s.cfg.RefreshTokenLifetime
	}
	return lifetime(cl.RefreshTokenLifetime, s.cfg.RefreshTokenLifetime, MaxRefreshTokenLifetime)
}

// longestRefreshLifetime is the longest any refresh-token family can live:
// the marks that end a session's families (logout, deletion) and the
// session indexes must outlive every family, whichever client's.
func (s *Server) longestRefreshLifetime() time.Duration {
	return max(s.cfg.RefreshTokenLifetime, s.dir().longestRefresh)
}
