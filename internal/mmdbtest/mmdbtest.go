// Package mmdbtest writes small MaxMind DB files (the format of GeoLite2
// and DB-IP databases, https://maxmind.github.io/MaxMind-DB/) for tests, so
// that no test downloads a database: IPv4 prefixes mapped to records of
// strings, numbers, booleans, maps and lists.
package mmdbtest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"os"
	"slices"
	"sort"
)

// Network is one IPv4 prefix and its record, as a GeoLite2 database holds
// it: {"country": {"iso_code": "DE"}, "location": {"latitude": 52.5,
// "longitude": 13.4}} for a country or city database,
// {"autonomous_system_number": 3320, "autonomous_system_organization":
// "DTAG"} for an ASN database.
type Network struct {
	Prefix string
	Record map[string]any
}

type node struct {
	child [2]*node
	data  int // index into records + 1; 0: none
}

// Build returns the bytes of an IPv4 database of type dbType holding nets.
// More specific prefixes must come after the prefixes they refine.
func Build(dbType string, nets []Network) ([]byte, error) {
	root := &node{}
	var records [][]byte
	for _, n := range nets {
		p, err := netip.ParsePrefix(n.Prefix)
		if err != nil || !p.Addr().Is4() {
			return nil, fmt.Errorf("mmdbtest: prefix %q: want an IPv4 CIDR prefix", n.Prefix)
		}
		var rec bytes.Buffer
		if err := encode(&rec, n.Record); err != nil {
			return nil, err
		}
		records = append(records, rec.Bytes())
		a := p.Masked().Addr().As4()
		cur := root
		for i := 0; i < p.Bits(); i++ {
			bit := (a[i/8] >> (7 - i%8)) & 1
			if cur.child[bit] == nil {
				cur.child[bit] = &node{data: cur.data} // inherit the covering record
				cur.child[1-bit] = &node{data: cur.data}
			}
			cur = cur.child[bit]
		}
		setData(cur, len(records))
	}
	// Number the inner nodes depth first; leaves become records.
	var inner []*node
	var number func(*node)
	index := map[*node]int{}
	number = func(n *node) {
		if n.child[0] == nil {
			return
		}
		index[n] = len(inner)
		inner = append(inner, n)
		number(n.child[0])
		number(n.child[1])
	}
	if root.child[0] == nil {
		root.child[0], root.child[1] = &node{data: root.data}, &node{data: root.data}
	}
	number(root)
	count := uint32(len(inner))
	var data bytes.Buffer
	offsets := make([]uint32, len(records))
	for i, r := range records {
		offsets[i] = uint32(data.Len())
		data.Write(r)
	}
	var out bytes.Buffer
	for _, n := range inner {
		for _, c := range n.child {
			v := count // no data
			switch {
			case c.child[0] != nil:
				v = uint32(index[c])
			case c.data > 0:
				v = count + 16 + offsets[c.data-1]
			}
			_ = binary.Write(&out, binary.BigEndian, v) // record size 32
		}
	}
	out.Write(make([]byte, 16)) // data section separator
	out.Write(data.Bytes())
	out.WriteString("\xAB\xCD\xEFMaxMind.com")
	meta := map[string]any{
		"node_count": uint64(count), "record_size": uint64(32), "ip_version": uint64(4),
		"database_type": dbType, "languages": []any{"en"}, "binary_format_major_version": uint64(2),
		"binary_format_minor_version": uint64(0), "build_epoch": uint64(1_700_000_000),
		"description": map[string]any{"en": "realmgate test database"},
	}
	if err := encode(&out, meta); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func setData(n *node, d int) {
	n.data = d
	if n.child[0] != nil {
		setData(n.child[0], d)
		setData(n.child[1], d)
	}
}

// Write builds the database and writes it to path.
func Write(path, dbType string, nets []Network) error {
	b, err := Build(dbType, nets)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// MMDB data types (MaxMind DB spec, "Output Data Section").
const (
	typeString = 2
	typeDouble = 3
	typeUint32 = 6
	typeMap    = 7
	typeUint64 = 9
	typeArray  = 11
	typeBool   = 14
)

func control(w *bytes.Buffer, typ, size int) {
	var first byte
	var ext []byte
	if typ <= 7 {
		first = byte(typ << 5)
	} else {
		ext = []byte{byte(typ - 7)}
	}
	var sz []byte
	switch {
	case size < 29:
		first |= byte(size)
	case size < 285:
		first |= 29
		sz = []byte{byte(size - 29)}
	case size < 65821:
		first |= 30
		s := size - 285
		sz = []byte{byte(s >> 8), byte(s)}
	default:
		first |= 31
		s := size - 65821
		sz = []byte{byte(s >> 16), byte(s >> 8), byte(s)}
	}
	w.WriteByte(first)
	w.Write(ext)
	w.Write(sz)
}

func minimal(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	i := 0
	for i < 8 && b[i] == 0 {
		i++
	}
	return b[i:]
}

func encode(w *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case string:
		control(w, typeString, len(x))
		w.WriteString(x)
	case float64:
		control(w, typeDouble, 8)
		_ = binary.Write(w, binary.BigEndian, math.Float64bits(x))
	case int:
		if x < 0 {
			return fmt.Errorf("mmdbtest: negative integer %d", x)
		}
		return encode(w, uint64(x))
	case uint64:
		b := minimal(x)
		typ := typeUint64
		if x <= math.MaxUint32 {
			typ = typeUint32
		}
		control(w, typ, len(b))
		w.Write(b)
	case bool:
		n := 0
		if x {
			n = 1
		}
		control(w, typeBool, n)
	case []any:
		control(w, typeArray, len(x))
		for _, e := range x {
			if err := encode(w, e); err != nil {
				return err
			}
		}
	case []string:
		return encode(w, toAny(x))
	case map[string]any:
		control(w, typeMap, len(x))
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			_ = encode(w, k)
			if err := encode(w, x[k]); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("mmdbtest: cannot encode %T", v)
	}
	return nil
}

func toAny(s []string) []any {
	out := make([]any, 0, len(s))
	for _, e := range slices.Clone(s) {
		out = append(out, e)
	}
	return out
}

// TestCity is the test database of realmgate (testdata/geoip/test-city.mmdb):
// documentation prefixes (RFC 5737) placed in Berlin (DE, AS3320), Paris
// (FR, AS3215) and New York (US, AS7922), and an anonymous proxy network;
// country, location and network in one record.
var TestCity = []Network{
	{Prefix: "198.51.100.0/24", Record: city("DE", 52.52, 13.405, 3320, "Deutsche Telekom")},
	{Prefix: "203.0.113.0/25", Record: city("FR", 48.8566, 2.3522, 3215, "Orange")},
	{Prefix: "203.0.113.128/25", Record: city("US", 40.7128, -74.006, 7922, "Comcast")},
	{Prefix: "192.0.2.0/24", Record: map[string]any{"country": map[string]any{"iso_code": "NL"},
		"traits": map[string]any{"is_anonymous_proxy": true}}},
}

func city(cc string, lat, lon float64, asn uint64, org string) map[string]any {
	return map[string]any{"country": map[string]any{"iso_code": cc},
		"location":                 map[string]any{"latitude": lat, "longitude": lon},
		"autonomous_system_number": asn, "autonomous_system_organization": org}
}
