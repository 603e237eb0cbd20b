package config

import "time"

// Values of store.redis.replica_ack.
const (
	ReplicaAckAuto   = "auto"
	ReplicaAckAlways = "always"
	ReplicaAckOff    = "off"
)

// Bounds of store.redis.replica_ack_timeout: the acknowledgement is read
// under the store's 500 ms read timeout.
const (
	minReplicaAckTimeout = time.Millisecond
	maxReplicaAckTimeout = 450 * time.Millisecond
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
	if d := r.ReplicaAckTimeout.Duration(); d != 0 && (d < minReplicaAckTimeout || d > maxReplicaAckTimeout) {
		k.add("store.redis.replica_ack_timeout", "%s is out of range: want 1ms to 450ms", r.ReplicaAckTimeout)
	}
}
