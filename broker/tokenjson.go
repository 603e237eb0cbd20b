package broker

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/labstack/echo/v4"
)

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

// tokenBodies holds the buffers writeTokenResponse encodes into: the
// response writer copies the body, so a buffer is free again on return.
var tokenBodies = sync.Pool{New: func() any { return new([]byte) }}

// writeTokenResponse writes r as the 200 response, with the newline c.JSON
// wrote after it.
func writeTokenResponse(c echo.Context, r *tokenResponse) error {
	bp := tokenBodies.Get().(*[]byte)
	b := r.appendJSON((*bp)[:0])
	err := c.JSONBlob(http.StatusOK, append(b, '\n'))
	if cap(b) <= 16<<10 {
		*bp = b[:0]
		tokenBodies.Put(bp)
	}
	return err
}
