package admin

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/labstack/echo/v4"
)

// jsonSerializer writes the API's JSON answers without HTML escaping: the
// API is read by programs and people at a terminal, not embedded in HTML, so
// a problem message quoting `<b>` shows `<b>`, not `\u003cb\u003e` (echo's
// default serializer escapes).
type jsonSerializer struct{}

// Serialize implements echo.JSONSerializer.
func (jsonSerializer) Serialize(c echo.Context, v any, indent string) error {
	enc := json.NewEncoder(c.Response())
	enc.SetEscapeHTML(false)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	return enc.Encode(v)
}

// Deserialize implements echo.JSONSerializer (echo's Bind; the handlers use
// decode), with the same messages as decode.
func (jsonSerializer) Deserialize(c echo.Context, v any) error {
	if err := json.NewDecoder(c.Request().Body).Decode(v); err != nil {
		return errorf(http.StatusBadRequest, "invalid_request", "%s", bodyProblem(err))
	}
	return nil
}

// bodyProblem describes why a request body did not decode, naming the JSON
// field and the JSON types wanted and found: never a Go type or struct name
// (encoding/json's own messages name both).
func bodyProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return "request body is empty: want a JSON value"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "request body: the JSON ends early"
	case errors.As(err, &se):
		return fmt.Sprintf("request body is not valid JSON (at byte %d): %s", se.Offset, se.Error())
	case errors.As(err, &te):
		got := jsonValueName(te.Value)
		if te.Field == "" {
			return fmt.Sprintf("request body: want %s, got %s", jsonTypeName(te.Type), got)
		}
		return fmt.Sprintf("request body: field %q: want %s, got %s", te.Field, jsonTypeName(te.Type), got)
	}
	// Unknown fields ("json: unknown field \"x\"") and errors of values that
	// parse themselves: drop the package prefix.
	return "request body: " + strings.TrimPrefix(err.Error(), "json: ")
}

// jsonValueName names what encoding/json found ("string", "number 1.5", ...).
func jsonValueName(v string) string {
	switch {
	case v == "array", v == "object":
		return "an " + v
	case v == "bool":
		return "a boolean"
	case strings.HasPrefix(v, "number "):
		return "the number " + strings.TrimPrefix(v, "number ")
	case v == "":
		return "a value of another type"
	}
	return "a " + v
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// jsonTypeName is the JSON type that decodes into t.
func jsonTypeName(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		return "a string"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "an integer in range"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a base64 string"
		}
		return "an array"
	case reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "another type"
}
