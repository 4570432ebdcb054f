// Package errs holds the one error type that Onsite's domain code returns and
// its closed list of codes. The HTTP layer maps each code to a status; nothing
// else chooses a status.
package errs

import (
	"errors"
	"fmt"
	"time"
)

// Code is one of the closed list of error kinds.
type Code string

// The error codes. Each maps to exactly one HTTP status in internal/httpx.
const (
	Malformed       Code = "malformed"          // 400: bad JSON, unknown field, wrong type
	Invalid         Code = "invalid"            // 422: a value out of range, naming the field
	Unauthenticated Code = "unauthenticated"    // 401
	Forbidden       Code = "forbidden"          // 403
	NotFound        Code = "not_found"          // 404
	NotAllowed      Code = "method_not_allowed" // 405: the path exists, not with this method
	Conflict        Code = "conflict"           // 409
	TooLarge        Code = "too_large"          // 413
	RateLimited     Code = "rate_limited"       // 429
	Unavailable     Code = "unavailable"        // 503
	Internal        Code = "internal"           // 500
)

// Error is a domain error: a code, a message meant for the client, and
// optionally the input field it is about. Reason refines a conflict for
// clients that branch on it (for example "offer_taken").
type Error struct {
	Code    Code
	Message string
	Field   string
	Reason  string
	// RetryAfter is, for a rate limit, how long until a call is allowed
	// again (the Retry-After header); zero when unknown.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s (field %s)", e.Code, e.Message, e.Field)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Limited is a rate limit's error: a call is allowed again after retry.
func Limited(retry time.Duration, format string, args ...any) *Error {
	return &Error{Code: RateLimited, Message: fmt.Sprintf(format, args...), RetryAfter: retry}
}

// E builds an error with a code and a formatted message.
func E(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// InvalidField reports an out-of-range or otherwise unacceptable value.
func InvalidField(field, format string, args ...any) *Error {
	return &Error{Code: Invalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// MalformedField reports input that could not be decoded at a field.
func MalformedField(field, format string, args ...any) *Error {
	return &Error{Code: Malformed, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ConflictReason reports a conflict with a machine-readable reason.
func ConflictReason(reason, format string, args ...any) *Error {
	return &Error{Code: Conflict, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// NotFoundf reports a missing resource.
func NotFoundf(format string, args ...any) *Error {
	return E(NotFound, format, args...)
}

// CodeOf returns the code of the first *Error in err's chain, or Internal.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// As returns the first *Error in err's chain.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
