package risk

import (
	"fmt"
	"net/netip"

	"github.com/oschwald/maxminddb-golang/v2"
)

// Place is what the GeoIP databases say about one address.
type Place struct {
	// Country is the ISO 3166-1 alpha-2 code ("" unknown).
	Country string
	// ASN is the autonomous system number (0 unknown) and Org its owner.
	ASN uint32
	Org string
	// Lat and Lon locate the address when Located.
	Lat, Lon float64
	Located  bool
	// Anonymous: the database marks the address an anonymous proxy, VPN,
	// hosting provider or Tor exit (GeoIP2 traits, GeoLite2
	// is_anonymous_proxy).
	Anonymous bool
}

// geoRecord is the part of a GeoLite2 / GeoIP2 / DB-IP country, city or
// ASN record realmgate reads; one struct serves every database type.
type geoRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	RegisteredCountry struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"registered_country"`
	Location struct {
		Latitude  *float64 `maxminddb:"latitude"`
		Longitude *float64 `maxminddb:"longitude"`
	} `maxminddb:"location"`
	Traits struct {
		IsAnonymousProxy bool `maxminddb:"is_anonymous_proxy"`
		IsAnonymous      bool `maxminddb:"is_anonymous"`
		IsAnonymousVPN   bool `maxminddb:"is_anonymous_vpn"`
		IsTorExitNode    bool `maxminddb:"is_tor_exit_node"`
	} `maxminddb:"traits"`
	ASN uint32 `maxminddb:"autonomous_system_number"`
	Org string `maxminddb:"autonomous_system_organization"`
}

// Geo reads MaxMind-format databases (GeoLite2-Country or -City,
// GeoLite2-ASN, DB-IP lite): any of them may be nil. It is safe for
// concurrent use; lookups read the memory-mapped file and do not allocate
// more than the record.
type Geo struct {
	dbs []*maxminddb.Reader
}

// OpenGeo opens the database files (country or city first, then ASN);
// empty paths are skipped.
func OpenGeo(paths ...string) (*Geo, error) {
	g := &Geo{}
	for _, p := range paths {
		if p == "" {
			continue
		}
		r, err := maxminddb.Open(p)
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("risk: open GeoIP database %s: %w", p, err)
		}
		g.dbs = append(g.dbs, r)
	}
	return g, nil
}

// GeoFromBytes reads databases held in memory (tests).
func GeoFromBytes(dbs ...[]byte) (*Geo, error) {
	g := &Geo{}
	for _, b := range dbs {
		r, err := maxminddb.OpenBytes(b)
		if err != nil {
			return nil, fmt.Errorf("risk: read GeoIP database: %w", err)
		}
		g.dbs = append(g.dbs, r)
	}
	return g, nil
}

// Close releases the databases.
func (g *Geo) Close() {
	if g == nil {
		return
	}
	for _, r := range g.dbs {
		_ = r.Close()
	}
}

// Lookup returns what the databases know of addr; the zero Place when
// nothing (or g is nil).
func (g *Geo) Lookup(addr netip.Addr) Place {
	var p Place
	if g == nil || !addr.IsValid() {
		return p
	}
	addr = addr.Unmap()
	for _, r := range g.dbs {
		var rec geoRecord
		if err := r.Lookup(addr).Decode(&rec); err != nil {
			continue // an IPv6 address in an IPv4 database, a bad record
		}
		if p.Country == "" {
			p.Country = rec.Country.ISOCode
			if p.Country == "" {
				p.Country = rec.RegisteredCountry.ISOCode
			}
		}
		if !p.Located && rec.Location.Latitude != nil && rec.Location.Longitude != nil {
			p.Lat, p.Lon, p.Located = *rec.Location.Latitude, *rec.Location.Longitude, true
		}
		if p.ASN == 0 && rec.ASN != 0 {
			p.ASN, p.Org = rec.ASN, rec.Org
		}
		t := rec.Traits
		p.Anonymous = p.Anonymous || t.IsAnonymousProxy || t.IsAnonymous || t.IsAnonymousVPN || t.IsTorExitNode
	}
	return p
}
