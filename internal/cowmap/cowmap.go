// Package cowmap provides a map from strings to values whose copies share
// storage: Clone costs a fixed amount whatever the number of entries, and
// a change to the copy copies only the shard holding the changed key (one
// 512th of the map). It is for tables that are read by many goroutines,
// replaced as a whole on change, and changed a few entries at a time: the
// realm resolver's indexes and the broker's directory at 100k tenants,
// where copying every entry for each change was most of the change's cost
// and of the garbage collector's work.
//
// A Map is either being built (changed by one goroutine) or published
// (read by any number, never changed again); Clone a published Map to
// change it.
package cowmap

import (
	"hash/maphash"
	"iter"
	"maps"
)

// shards is how many maps a Map is split into: a change copies one.
const shards = 512

// Map is a string-keyed map with cheap copies. The zero Map is empty and
// ready to use.
type Map[V any] struct {
	seed  maphash.Seed
	part  *[shards]map[string]V
	owned *[shards]bool // shards this Map may change in place (not shared with a clone)
	n     int
}

// New returns an empty Map sized for about n entries.
func New[V any](n int) *Map[V] {
	m := &Map[V]{}
	m.init()
	if per := n / shards; per > 0 {
		for i := range m.part {
			m.part[i] = make(map[string]V, per+per/4)
			m.owned[i] = true
		}
	}
	return m
}

func (m *Map[V]) init() {
	if m.part == nil {
		m.seed, m.part, m.owned = maphash.MakeSeed(), new([shards]map[string]V), new([shards]bool)
	}
}

func (m *Map[V]) shard(k string) int {
	return int(maphash.String(m.seed, k) % shards)
}

// Len is the number of entries.
func (m *Map[V]) Len() int {
	if m == nil {
		return 0
	}
	return m.n
}

// Get returns the value for k.
func (m *Map[V]) Get(k string) (V, bool) {
	if m == nil || m.part == nil {
		var zero V
		return zero, false
	}
	v, ok := m.part[m.shard(k)][k]
	return v, ok
}

// Value returns the value for k, or the zero value.
func (m *Map[V]) Value(k string) V {
	v, _ := m.Get(k)
	return v
}

// writable returns k's shard, copied first when it is shared.
func (m *Map[V]) writable(k string) map[string]V {
	m.init()
	i := m.shard(k)
	if !m.owned[i] {
		m.part[i] = maps.Clone(m.part[i])
		if m.part[i] == nil {
			m.part[i] = map[string]V{}
		}
		m.owned[i] = true
	}
	return m.part[i]
}

// Set puts v under k.
func (m *Map[V]) Set(k string, v V) {
	p := m.writable(k)
	if _, ok := p[k]; !ok {
		m.n++
	}
	p[k] = v
}

// Delete removes k.
func (m *Map[V]) Delete(k string) {
	if _, ok := m.Get(k); !ok {
		return
	}
	delete(m.writable(k), k)
	m.n--
}

// Clone returns a copy of m that shares m's storage until one of them
// changes a shard: m must not be changed afterwards (it is published),
// only the copy. It costs the same whatever the number of entries.
func (m *Map[V]) Clone() *Map[V] {
	out := &Map[V]{}
	if m == nil || m.part == nil {
		out.init()
		return out
	}
	part := *m.part
	out.seed, out.part, out.owned, out.n = m.seed, &part, new([shards]bool), m.n
	return out
}

// All yields every entry, in no particular order.
func (m *Map[V]) All() iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		if m == nil || m.part == nil {
			return
		}
		for _, p := range m.part {
			for k, v := range p {
				if !yield(k, v) {
					return
				}
			}
		}
	}
}

// FromMap returns a Map holding src's entries (nil: empty).
func FromMap[V any](src map[string]V) *Map[V] {
	m := New[V](len(src))
	for k, v := range src {
		m.Set(k, v)
	}
	return m
}
