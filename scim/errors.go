package scim

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// Schema URIs of the protocol messages (RFC 7644 §3.1, §3.4.2, §3.5.2, §3.12).
const (
	ErrorSchema        = "urn:ietf:params:scim:api:messages:2.0:Error"
	ListResponseSchema = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	PatchOpSchema      = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
)

// SCIM error types (RFC 7644 §3.12, Table 9).
const (
	ScimTypeInvalidFilter = "invalidFilter"
	ScimTypeTooMany       = "tooMany"
	ScimTypeUniqueness    = "uniqueness"
	ScimTypeMutability    = "mutability"
	ScimTypeInvalidSyntax = "invalidSyntax"
	ScimTypeInvalidPath   = "invalidPath"
	ScimTypeNoTarget      = "noTarget"
	ScimTypeInvalidValue  = "invalidValue"
	ScimTypeInvalidVers   = "invalidVers"
	ScimTypeSensitive     = "sensitive"
)

// Errors a Directory returns (possibly wrapped); the handler maps them to
// SCIM error responses.
var (
	// ErrNotFound means no such user or group in the tenant.
	ErrNotFound = errors.New("scim: resource not found")
	// ErrConflict means a unique attribute (userName, externalId, a
	// group's displayName) is already taken in the tenant.
	ErrConflict = errors.New("scim: unique attribute already taken")
	// ErrVersion means the resource changed since the version the caller
	// named (If-Match, RFC 7644 §3.14), or concurrently with this change.
	ErrVersion = errors.New("scim: resource version changed")
	// ErrUnavailable means the directory's store could not be reached.
	ErrUnavailable = errors.New("scim: directory unavailable")
)

// Error is a SCIM error response (RFC 7644 §3.12): an HTTP status, an
// optional scimType and a human-readable detail.
type Error struct {
	Status   int
	ScimType string
	Detail   string
}

// Error returns the detail.
func (e *Error) Error() string { return e.Detail }

// errorBody is the JSON of an Error.
type errorBody struct {
	Schemas  []string `json:"schemas"`
	ScimType string   `json:"scimType,omitempty"`
	Detail   string   `json:"detail,omitempty"`
	// Status is the HTTP status as a string (RFC 7644 §3.12: "status ... REQUIRED").
	Status string `json:"status"`
}

func (e *Error) body() errorBody {
	return errorBody{Schemas: []string{ErrorSchema}, ScimType: e.ScimType, Detail: e.Detail, Status: strconv.Itoa(e.Status)}
}

func badRequest(scimType, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, ScimType: scimType, Detail: fmt.Sprintf(format, args...)}
}

func invalidSyntax(format string, args ...any) *Error {
	return badRequest(ScimTypeInvalidSyntax, format, args...)
}

func invalidValue(format string, args ...any) *Error {
	return badRequest(ScimTypeInvalidValue, format, args...)
}

func invalidPath(format string, args ...any) *Error {
	return badRequest(ScimTypeInvalidPath, format, args...)
}

func invalidFilter(format string, args ...any) *Error {
	return badRequest(ScimTypeInvalidFilter, format, args...)
}
