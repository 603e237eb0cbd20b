package config

import "path/filepath"

// resolvePaths makes the provider file paths relative to dir.
func (c *Config) resolvePaths(dir string) {
	if dir == "" || dir == "." {
		return
	}
	for i := range c.Tenants {
		for j := range c.Tenants[i].Providers {
			p := &c.Tenants[i].Providers[j]
			for _, f := range []*string{&p.MetadataFile, &p.SPKeyFile, &p.SPCertFile} {
				if *f != "" && !filepath.IsAbs(*f) {
					*f = filepath.Join(dir, *f)
				}
			}
		}
	}
}
