package httpx_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/dbtest"
	"github.com/onsite/onsite/internal/httpx"
	"github.com/onsite/onsite/internal/idempotency"
)

// TestIdempotentBadKeys: keys the database cannot hold, or that are not
// keys at all, are refused with 400 in the shared shape before anything
// runs; here through echo directly, as net/http itself refuses a NUL or a
// DEL in a header before a handler sees it.
func TestIdempotentBadKeys(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		e := echo.New()
		e.HTTPErrorHandler = httpx.ErrorHandler(log)
		var ran atomic.Int32
		e.POST("/things", httpx.Idempotent(idempotency.NewStore(d, time.Now), log)(func(c echo.Context) error {
			ran.Add(1)
			return c.JSON(http.StatusCreated, map[string]string{"id": "1"})
		}))
		for _, tc := range []struct {
			name, key string
			status    int
		}{
			{"NUL", "a\x00b", 400},
			{"DEL", "a\x7fb", 400},
			{"newline", "a\nb", 400},
			{"not UTF-8", "a\xc3\x28", 400},
			{"too long", strings.Repeat("é", 201), 400},
			{"good", "a-b", 201},
			{"good again", "a-b", 201},
		} {
			req := httptest.NewRequest(http.MethodPost, "/things", strings.NewReader("{}"))
			req.Header.Set(idempotency.Header, tc.key)
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("%s: %d %s", tc.name, rec.Code, rec.Body)
			}
			if tc.status == 400 {
				var body httpx.ErrorBody
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error.Code != "malformed" || body.Error.Field != idempotency.Header {
					t.Fatalf("%s: not the shared shape: %s", tc.name, rec.Body)
				}
			}
		}
		if ran.Load() != 1 {
			t.Fatalf("the handler ran %d times, want once", ran.Load())
		}
		if n := dbtest.Count(t, d, "idempotency_keys"); n != 1 {
			t.Fatalf("%d keys kept, want 1", n)
		}
	})
}
