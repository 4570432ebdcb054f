// Package httpx is what the HTTP packages share: the error handler with the
// one code → status table, strict JSON binding, and route tables with roles.
package httpx

import (
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/onsite/onsite/internal/errs"
)

// statusOf is the one table mapping an error code to an HTTP status.
var statusOf = map[errs.Code]int{
	errs.Malformed:       http.StatusBadRequest,
	errs.Invalid:         http.StatusUnprocessableEntity,
	errs.Unauthenticated: http.StatusUnauthorized,
	errs.Forbidden:       http.StatusForbidden,
	errs.NotFound:        http.StatusNotFound,
	errs.Conflict:        http.StatusConflict,
	errs.TooLarge:        http.StatusRequestEntityTooLarge,
	errs.RateLimited:     http.StatusTooManyRequests,
	errs.Unavailable:     http.StatusServiceUnavailable,
	errs.Internal:        http.StatusInternalServerError,
	errs.NotAllowed:      http.StatusMethodNotAllowed,
}

// codeOfStatus maps echo's own errors (404 route, 405, 413 body limit) back
// to codes.
var codeOfStatus = map[int]errs.Code{
	http.StatusBadRequest:            errs.Malformed,
	http.StatusUnauthorized:          errs.Unauthenticated,
	http.StatusForbidden:             errs.Forbidden,
	http.StatusNotFound:              errs.NotFound,
	http.StatusMethodNotAllowed:      errs.NotAllowed,
	http.StatusRequestEntityTooLarge: errs.TooLarge,
	http.StatusTooManyRequests:       errs.RateLimited,
	http.StatusServiceUnavailable:    errs.Unavailable,
	http.StatusUnsupportedMediaType:  errs.Malformed,
}

// ErrorBody is the JSON shape of every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody.
type ErrorDetail struct {
	Code    errs.Code `json:"code"`
	Message string    `json:"message"`
	Field   string    `json:"field,omitempty"`
	Reason  string    `json:"reason,omitempty"`
}

// ErrorHandler writes every error, domain or echo's own, in the shared shape.
// Internal errors are logged with the request id; the client sees only
// "internal error".
func ErrorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return ErrorHandlerWithOutages(log, nil)
}

// ErrorHandlerWithOutages is ErrorHandler that answers an error outage
// recognises (the database or Redis away) 503 unavailable with Retry-After,
// never a bare 500 or a 401.
func ErrorHandlerWithOutages(log *slog.Logger, outage func(error) bool) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		if _, domain := errs.As(err); !domain && outage != nil && outage(err) {
			log.WarnContext(c.Request().Context(), "dependency unavailable", "err", err,
				"request_id", c.Response().Header().Get(echo.HeaderXRequestID), "path", c.Path())
			err = errs.E(errs.Unavailable, "a service Onsite depends on is unavailable; try again shortly")
		}
		detail, status := toDetail(err)
		if detail.Code == errs.Unavailable && c.Response().Header().Get("Retry-After") == "" {
			c.Response().Header().Set("Retry-After", "5")
		}
		if status == http.StatusMethodNotAllowed {
			detail.Message = "method not allowed"
		}
		if detail.Code == errs.Internal {
			log.ErrorContext(c.Request().Context(), "internal error", "err", err,
				"request_id", c.Response().Header().Get(echo.HeaderXRequestID), "path", c.Path())
		}
		if e, ok := errs.As(err); ok && e.Code == errs.RateLimited && c.Response().Header().Get("Retry-After") == "" {
			// The time until the limit allows a call, when the limit knows it.
			c.Response().Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(e.RetryAfter.Seconds())))))
		}
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(status)
			return
		}
		_ = c.JSON(status, ErrorBody{Error: detail})
	}
}

func toDetail(err error) (ErrorDetail, int) {
	if e, ok := errs.As(err); ok {
		status, known := statusOf[e.Code]
		if !known {
			status = http.StatusInternalServerError
		}
		msg := e.Message
		if e.Code == errs.Internal {
			msg = "internal error"
		}
		return ErrorDetail{Code: e.Code, Message: msg, Field: e.Field, Reason: e.Reason}, status
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code, known := codeOfStatus[he.Code]
		if !known {
			return ErrorDetail{Code: errs.Internal, Message: "internal error"}, http.StatusInternalServerError
		}
		msg := http.StatusText(he.Code)
		if s, ok := he.Message.(string); ok && s != "" {
			msg = s
		}
		return ErrorDetail{Code: code, Message: msg}, he.Code
	}
	return ErrorDetail{Code: errs.Internal, Message: "internal error"}, http.StatusInternalServerError
}
