package config

import "bytes"

// CompactSources drops, once the configuration is loaded and checked, the
// line and "given" flag of every tenant field that validating this
// configuration again cannot use; at 100k tenants they are about 100 MB
// that a serving process kept for its whole life. serve calls it once it
// has started; the admin API then validates each change over a copy of
// this configuration (internal/assemble), reporting a problem's field and
// message, not its line, and what it reports stays the same: kept are
// every field outside the tenants list, the lines of the tenants'
// domains (a domain claimed twice names the line of the first claim), and
// the tenant fields given explicitly an empty value (a default must not
// replace them, and checks refuse an explicit zero), the only tenant
// fields whose flag defaults and checks read, and each tenant's own line.
// Problems found after it keep their lines for the fields outside the
// tenants list; a tenant field's line becomes its tenant's. A Config
// built in code has nothing to drop.
func (c *Config) CompactSources() {
	c.src = c.src.compact()
}

// compact returns s without what CompactSources drops.
func (s source) compact() source {
	if s.fields == nil {
		return s
	}
	tables := s.tenantParts
	if tables == nil {
		tables = []*fieldTable{s.fields}
	}
	out := &fieldTable{other: s.fields.other}
	for _, t := range tables {
		for k := range t.tenants() {
			out.beginTenant(t.first + k)
			for _, e := range t.entries[t.starts[k]:t.starts[k+1]] {
				rel := t.arena[e.off : e.off+e.n]
				if len(rel) == 0 || e.src.empty || isDomainEntry(rel) {
					out.addTenantField(rel, e.src)
				}
			}
		}
	}
	if len(out.starts) > 0 {
		out.endTenants()
	}
	return source{file: s.file, fields: out}
}

// isDomainEntry reports whether rel, a path relative to a tenant, is one
// of its domains: ".domains[j]".
func isDomainEntry(rel []byte) bool {
	rest, ok := bytes.CutPrefix(rel, []byte(".domains["))
	return ok && !bytes.ContainsAny(rest, ".[")
}
