package broker

// HasTenant reports whether tenant is configured now (file or admin API):
// what the SCIM endpoint asks before it serves a tenant's token.
func (s *Server) HasTenant(tenant string) bool {
	_, ok := s.dir().resolver.Tenant(tenant)
	return ok
}
