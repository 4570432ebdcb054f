package httpx

import (
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/onsite/onsite/internal/errs"
)

// CleanInput refuses, before anything reads them, a path, query or header
// holding a NUL or bytes that are not UTF-8: 400 malformed, naming where.
// PostgreSQL text cannot hold NUL, and what is not text is no input Onsite
// takes. (JSON bodies are checked by DecodeJSON.)
func CleanInput(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if where, field := unclean(c); where != "" {
			return errs.MalformedField(field, "the %s holds a NUL or bytes that are not UTF-8", where)
		}
		return next(c)
	}
}

// unclean names the part of a request that is not clean text ("" if none),
// and the field it is (a query parameter or header name; "path").
func unclean(c echo.Context) (where, field string) {
	r := c.Request()
	path := r.URL.Path
	if r.URL.RawPath != "" {
		if p, err := url.PathUnescape(r.URL.RawPath); err == nil {
			path = p
		}
	}
	if !cleanText(path) {
		return "path", "path"
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return "query", "query"
	}
	for k, vs := range q {
		if !cleanText(k) {
			return "query", "query"
		}
		for _, v := range vs {
			if !cleanText(v) {
				return "query parameter " + k, k
			}
		}
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			if !cleanText(v) {
				return "header " + k, k
			}
		}
	}
	return "", ""
}

// cleanText reports whether s is UTF-8 without NUL.
func cleanText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}
