// Package clientkeys parses the public key sets OAuth clients register for
// private_key_jwt (RFC 7523): inline in the configuration or the admin
// API, or fetched from a client's jwks_uri by the broker.
package clientkeys

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// MaxKeys is how many keys a client's set may hold.
const MaxKeys = 16

// ErrInvalid is wrapped by every refusal of Parse.
var ErrInvalid = errors.New("clientkeys: invalid key set")

// Parse parses a JSON Web Key Set document (RFC 7517 §5) of public
// asymmetric signing keys. A private or symmetric key, a key for another
// use, or more than MaxKeys keys is refused: a symmetric key would let
// HS256 be verified with public material (SECURITY S30).
func Parse(raw []byte) (*jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("%w: no keys", ErrInvalid)
	}
	if len(set.Keys) > MaxKeys {
		return nil, fmt.Errorf("%w: at most %d keys", ErrInvalid, MaxKeys)
	}
	for i, k := range set.Keys {
		switch {
		case !k.Valid():
			return nil, fmt.Errorf("%w: keys[%d] is not a valid key", ErrInvalid, i)
		case !k.IsPublic():
			return nil, fmt.Errorf("%w: keys[%d] is a private or symmetric key; publish public keys only", ErrInvalid, i)
		case k.Use != "" && k.Use != "sig":
			return nil, fmt.Errorf("%w: keys[%d] has use %q, want sig", ErrInvalid, i, k.Use)
		}
	}
	return &set, nil
}
