package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/onsite/onsite/internal/errs"
)

// Bind decodes the JSON body into v strictly: unknown fields, wrong types,
// trailing data and an empty body are malformed (400) and name the field.
func Bind(c echo.Context, v any) error {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return errs.E(errs.TooLarge, "request body is larger than %d bytes", maxErr.Limit)
		}
		var he *echo.HTTPError
		if errors.As(err, &he) {
			return err
		}
		return errs.E(errs.Malformed, "could not read the request body")
	}
	return DecodeJSON(body, v)
}

// DecodeJSON is Bind over bytes.
func DecodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errs.E(errs.Malformed, "request body is empty; a JSON object is expected")
	}
	// PostgreSQL text cannot hold NUL; refuse it here rather than fail late.
	if bytes.Contains(body, []byte(`\u0000`)) || bytes.IndexByte(body, 0) >= 0 {
		return errs.E(errs.Malformed, "text must not contain NUL characters")
	}
	// The decoder would quietly turn bytes that are not UTF-8 into U+FFFD.
	if !utf8.Valid(body) {
		return errs.E(errs.Malformed, "request body is not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if dec.More() {
		return errs.E(errs.Malformed, "request body has data after the JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errs.E(errs.Malformed, "request body has data after the JSON object")
	}
	return nil
}

func decodeError(err error) error {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return errs.E(errs.Malformed, "malformed JSON at byte %d: %v", syntax.Offset, syntax)
	case errors.As(err, &typeErr):
		field := typeErr.Field
		return errs.MalformedField(field, "field %q must be %s, not %s", field, kindName(typeErr.Type.Kind().String()), typeErr.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errs.E(errs.Malformed, "malformed JSON: unexpected end of body")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return errs.MalformedField(field, "unknown field %q", field)
	default:
		var fe *errs.Error
		if errors.As(err, &fe) {
			return fe
		}
		return errs.E(errs.Malformed, "malformed JSON: %v", err)
	}
}

func kindName(k string) string {
	switch k {
	case "float64", "float32", "int", "int64", "int32":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "struct", "map":
		return "an object"
	case "slice":
		return "an array"
	}
	return fmt.Sprintf("of type %s", k)
}
