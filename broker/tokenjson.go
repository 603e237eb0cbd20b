package broker

import "strconv"

// appendJSON appends r as json.Marshal encodes it, without reflection:
// the token response is written on every code exchange and refresh
// (RFC 6749 §5.1). TestTokenResponseJSON_EveryField compares the two.
func (r *tokenResponse) appendJSON(b []byte) []byte {
	b = append(b, `{"access_token":`...)
	b = appendJSONString(b, r.AccessToken)
	b = append(b, `,"token_type":`...)
	b = appendJSONString(b, r.TokenType)
	b = append(b, `,"expires_in":`...)
	b = strconv.AppendInt(b, int64(r.ExpiresIn), 10)
	b = append(b, `,"id_token":`...)
	b = appendJSONString(b, r.IDToken)
	b = append(b, `,"refresh_token":`...)
	b = appendJSONString(b, r.RefreshToken)
	b = append(b, `,"scope":`...)
	b = appendJSONString(b, r.Scope)
	return append(b, '}')
}

// jsonLen is a capacity for appendJSON's output: the strings, the names and
// some room for escapes.
func (r *tokenResponse) jsonLen() int {
	return len(r.AccessToken) + len(r.TokenType) + len(r.IDToken) + len(r.RefreshToken) + len(r.Scope) + 128
}
