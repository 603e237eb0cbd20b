package oidc

import (
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
)

// authParams is the query of an authorization request (RFC 6749 §4.1.1),
// set in the order oauth2.Config.AuthCodeURL sets it (a later value of a
// name replaces the earlier one) and encoded as url.Values.Encode does
// (sorted by name), without the map and the option values:
// TestAuthURL_SameAsOAuth2 compares the two.
type authParams struct {
	list []authParam
	room [16]authParam
}

type authParam struct{ name, value string }

func (p *authParams) set(name, value string) {
	if p.list == nil {
		p.list = p.room[:0]
	}
	for i := range p.list {
		if p.list[i].name == name {
			p.list[i].value = value
			return
		}
	}
	p.list = append(p.list, authParam{name, value})
}

// url returns endpoint with the parameters as its query (after '&' when
// endpoint has a query already).
func (p *authParams) url(endpoint string) string {
	slices.SortFunc(p.list, func(a, b authParam) int { return strings.Compare(a.name, b.name) })
	size := len(endpoint) + 1
	for _, q := range p.list {
		size += len(q.name) + len(q.value) + 2
	}
	var b strings.Builder
	b.Grow(size + size/4) // room for some escapes
	b.WriteString(endpoint)
	if strings.Contains(endpoint, "?") {
		b.WriteByte('&')
	} else {
		b.WriteByte('?')
	}
	for i, q := range p.list {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(q.name))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(q.value))
	}
	return b.String()
}

// s256Challenge is RFC 7636 §4.2's S256 code challenge of verifier.
func s256Challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
