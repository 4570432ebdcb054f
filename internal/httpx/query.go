package httpx

import (
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/onsite/onsite/internal/errs"
)

// QueryInt reads an optional whole-number query parameter in [lo, hi].
func QueryInt(c echo.Context, name string, def, lo, hi int) (int, error) {
	s := c.QueryParam(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, errs.InvalidField(name, "%s must be a whole number from %d to %d", name, lo, hi)
	}
	return n, nil
}

// QueryPage reads the paging parameters of a list: limit (1–500, defLimit
// when absent) and offset (0–1,000,000).
func QueryPage(c echo.Context, defLimit int) (limit, offset int, err error) {
	if limit, err = QueryInt(c, "limit", defLimit, 1, 500); err != nil {
		return 0, 0, err
	}
	if offset, err = QueryInt(c, "offset", 0, 0, 1_000_000); err != nil {
		return 0, 0, err
	}
	return limit, offset, nil
}

// QueryTime reads an optional RFC 3339 time query parameter.
func QueryTime(c echo.Context, name string, def time.Time) (time.Time, error) {
	s := c.QueryParam(name)
	if s == "" {
		return def, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, errs.InvalidField(name, "%s must be an RFC 3339 time such as 2026-11-27T09:00:00Z", name)
	}
	return t, nil
}

// Page is a list answer.
type Page[T any] struct {
	Items []T `json:"items"`
}

// List wraps items for a list answer; nil becomes [].
func List[T any](items []T) Page[T] {
	if items == nil {
		items = []T{}
	}
	return Page[T]{Items: items}
}
