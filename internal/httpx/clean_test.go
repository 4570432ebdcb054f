package httpx_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/onsite/onsite/internal/httpx"
)

func TestCleanInput(t *testing.T) {
	t.Parallel()
	e := echo.New()
	e.HTTPErrorHandler = httpx.ErrorHandler(nil)
	e.Pre(httpx.CleanInput)
	e.GET("/v1/requests/:id", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	for _, tt := range []struct {
		name   string
		target string
		header [2]string
		want   int
	}{
		{"clean", "/v1/requests/r1?state=open", [2]string{}, 200},
		{"NUL in the path", "/v1/requests/r%001", [2]string{}, 400},
		{"not UTF-8 in the path", "/v1/requests/r%ff1", [2]string{}, 400},
		{"NUL in the query", "/v1/requests/r1?state=%00", [2]string{}, 400},
		{"not UTF-8 in a query key", "/v1/requests/r1?%c3=1", [2]string{}, 400},
		{"a query that does not parse", "/v1/requests/r1?state=%zz", [2]string{}, 400},
		{"not UTF-8 in Idempotency-Key", "/v1/requests/r1", [2]string{"Idempotency-Key", "k\xff"}, 400},
		{"UTF-8 beyond ASCII is fine", "/v1/requests/Z%C3%BCrich", [2]string{"X-Note", "Zürich"}, 200},
	} {
		req := httptest.NewRequest(http.MethodGet, tt.target, nil)
		if tt.header[0] != "" {
			req.Header.Set(tt.header[0], tt.header[1])
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, rec.Code, rec.Body, tt.want)
		}
	}
}

func TestDecodeJSONRefusesBadBytes(t *testing.T) {
	t.Parallel()
	var v map[string]any
	for _, body := range []string{"{\"a\": \"x\xffy\"}", "{\"a\": \"x\\u0000\"}", "{\"a\": \"x\x00\"}"} {
		if err := httpx.DecodeJSON([]byte(body), &v); err == nil {
			t.Errorf("%q decoded", body)
		}
	}
	if err := httpx.DecodeJSON([]byte(`{"a": "Zürich ✓"}`), &v); err != nil {
		t.Errorf("UTF-8 refused: %v", err)
	}
}

// FuzzDecodeJSON: whatever the bytes, the binder answers a 4xx-kind error
// or a value, never a panic, and never lets NUL or bytes that are not UTF-8
// through into a string. (make test runs the seeds; make fuzz runs it for a
// bounded time.)
func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []string{`{"skill":"wifi_setup","lat":47.3,"lng":8.5}`, "{\"a\":\"\xff\"}", `{"a":"\u0000"}`, `{"a":[1,2,{"b":null}]}`, `[]`, `{"a":"\ud800"}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var v struct {
			Skill string         `json:"skill"`
			Lat   *float64       `json:"lat"`
			A     any            `json:"a"`
			Extra map[string]any `json:"extra"`
		}
		if err := httpx.DecodeJSON(body, &v); err != nil {
			return
		}
		for _, s := range []string{v.Skill} {
			if !utf8.ValidString(s) {
				t.Fatalf("decoded text that is not UTF-8: %q", s)
			}
		}
	})
}
