package httpx_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/httpx"
)

// keysAway is a key store whose database is away.
type keysAway struct{}

func (keysAway) Resolve(context.Context, string) (auth.Principal, bool, error) {
	return auth.Principal{}, false, errors.New("look up machine key: dial tcp 127.0.0.1:5432: connect: connection refused")
}

// TestOutagesSaySo: a dependency away answers 503 with Retry-After in the
// shared error shape: never a bare 500, and never 401 for a key that could
// not be checked.
func TestOutagesSaySo(t *testing.T) {
	t.Parallel()
	e := echo.New()
	e.HTTPErrorHandler = httpx.ErrorHandlerWithOutages(slog.New(slog.NewTextHandler(io.Discard, nil)), db.Unavailable)
	dialErr := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	e.GET("/down", func(echo.Context) error { return dialErr })
	e.GET("/bug", func(echo.Context) error { return errors.New("nil map") })
	httpx.Register(e, httpx.Auth{Issuer: auth.NewIssuer([]byte("0123456789abcdef0123456789abcdef")), Keys: keysAway{}},
		[]httpx.Route{{Method: http.MethodGet, Path: "/v1/thing", Roles: httpx.Roles(auth.Machine), Handler: func(c echo.Context) error { return c.NoContent(204) }}},
		nil, httpx.Limits{}, nil)
	for _, tt := range []struct {
		path, token string
		status      int
		code        string
	}{
		{"/down", "", 503, "unavailable"},
		{"/bug", "", 500, "internal"},
		{"/v1/thing", "osk_live_somekey", 503, "unavailable"},
	} {
		req := httptest.NewRequest(http.MethodGet, tt.path, nil)
		if tt.token != "" {
			req.Header.Set("Authorization", "Bearer "+tt.token)
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		var body httpx.ErrorBody
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != tt.status || string(body.Error.Code) != tt.code {
			t.Errorf("%s: %d %s, want %d %s", tt.path, rec.Code, rec.Body, tt.status, tt.code)
		}
		if tt.status == 503 && rec.Header().Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", tt.path)
		}
	}
}
