package httpx

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/internal/idempotency"
)

// Idempotent replays the first answer to an Idempotency-Key (per caller,
// method and path) from the database: the first call claims the key and
// runs, a resend gets its answer (waiting while it runs), the same key with
// another body answers 409 idempotency_key_reused, a bad key 400. Server
// errors are not kept, so they can be retried under the same key.
func Idempotent(store *idempotency.Store, log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			key := c.Request().Header.Get(idempotency.Header)
			if key == "" {
				return next(c)
			}
			if err := idempotency.CheckKey(key); err != nil {
				return err
			}
			body, err := io.ReadAll(c.Request().Body)
			if err != nil {
				return errs.E(errs.Malformed, "could not read the request body")
			}
			c.Request().Body = io.NopCloser(bytes.NewReader(body))
			sum := sha256.Sum256(body)
			p, _ := auth.FromContext(c.Request().Context())
			scope := idempotency.Scope{Role: string(p.Role), Subject: p.Subject, Method: c.Request().Method, Path: c.Request().URL.Path, Key: key}
			ctx := c.Request().Context()
			claim, prev, err := store.Begin(ctx, scope, hex.EncodeToString(sum[:]))
			if err != nil {
				return err
			}
			if prev != nil {
				c.Response().Header().Set("Idempotent-Replayed", "true")
				return c.Blob(prev.Status, prev.ContentType, prev.Body)
			}
			rec := &recorder{ResponseWriter: c.Response().Writer}
			c.Response().Writer = rec
			if err := next(c); err != nil {
				c.Error(err) // write the error answer now, so it is recorded too
			}
			// The record must land even if the client went away.
			ctx = context.WithoutCancel(ctx)
			status := c.Response().Status
			if status >= 500 || status == 0 {
				if err := claim.Release(ctx); err != nil {
					log.WarnContext(ctx, "idempotency: release key", "err", err)
				}
				return nil
			}
			a := idempotency.Answer{Status: status, ContentType: c.Response().Header().Get(echo.HeaderContentType), Body: rec.buf.Bytes()}
			if err := claim.Finish(ctx, a); err != nil {
				log.WarnContext(ctx, "idempotency: keep answer", "err", err)
			}
			return nil
		}
	}
}

type recorder struct {
	http.ResponseWriter
	buf bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	r.buf.Write(b)
	return r.ResponseWriter.Write(b)
}
