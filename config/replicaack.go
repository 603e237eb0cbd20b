package config

import "time"

// Values of store.redis.replica_ack.
const (
	ReplicaAckAuto   = "auto"
	ReplicaAckAlways = "always"
	ReplicaAckOff    = "off"
)

// Bounds of store.redis.replica_ack_timeout: the acknowledgement is read
// under the store's read timeout (store.redis.read_timeout), so it must end
// replicaAckMargin before that does.
const (
	minReplicaAckTimeout = time.Millisecond
	replicaAckMargin     = 50 * time.Millisecond
)

// replicaAck checks the replica acknowledgement settings (issue 22).
func (k *checker) replicaAck(r Redis) {
	switch r.ReplicaAck {
	case "", ReplicaAckAuto, ReplicaAckAlways, ReplicaAckOff:
	default:
		k.add("store.redis.replica_ack", "unknown value %q: want auto, always or off", r.ReplicaAck)
	}
	if r.ReplicaAckCount < 0 {
		k.add("store.redis.replica_ack_count", "must not be negative")
	}
	read := r.ReadTimeout.Duration()
	if read == 0 {
		read = DefaultRedisReadTimeout.Duration()
	}
	if d, max := r.ReplicaAckTimeout.Duration(), read-replicaAckMargin; d != 0 && (d < minReplicaAckTimeout || d > max) {
		k.add("store.redis.replica_ack_timeout", "%s is out of range: want 1ms to %s (store.redis.read_timeout %s less %s)",
			r.ReplicaAckTimeout, Duration(max), Duration(read), Duration(replicaAckMargin))
	}
}
