package httpx

import (
	"context"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/errs"
)

// Route is one HTTP route and the roles that may call it. Public routes need
// no token.
type Route struct {
	Method string
	Path   string // echo syntax: /v1/requests/:id
	Roles  []auth.Role
	Public bool
	// QueryToken also accepts the token as ?access_token=… (for EventSource,
	// which cannot set headers).
	QueryToken bool
	// Idempotent routes replay their first answer to a resent
	// Idempotency-Key instead of running again.
	Idempotent bool
	// KeyInHandler marks an idempotent route whose handler keeps the key
	// itself, inside its own transaction (request creation: a unique index
	// on the request row); the middleware's two extra writes are skipped.
	KeyInHandler bool
	Handler      echo.HandlerFunc
}

// OpenAPIPath turns /v1/requests/:id into /v1/requests/{id}.
func (r Route) OpenAPIPath() string {
	parts := strings.Split(r.Path, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, ":") {
			parts[i] = "{" + p[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}

// Allows reports whether role may call the route.
func (r Route) Allows(role auth.Role) bool { return slices.Contains(r.Roles, role) }

// Limiter counts calls per key: one call counts against every key given,
// in one round trip.
type Limiter interface {
	AllowAll(ctx context.Context, keys []string, limits []int) (ok bool, retryAfter time.Duration, err error)
}

// Limits are calls per minute.
type Limits struct {
	PerIP        int // every route, by client address
	PerPrincipal int // authenticated routes, by role and subject
}

// KeyResolver turns an API key (not a JWT) into a principal; err says the
// key could not be looked up (the database is away), not that it is wrong.
type KeyResolver interface {
	Resolve(ctx context.Context, secret string) (p auth.Principal, ok bool, err error)
}

// Auth is how callers are recognised: signed tokens, and API keys.
type Auth struct {
	Issuer *auth.Issuer
	Keys   KeyResolver // may be nil
}

// Register adds the routes to e, each behind the rate limits, the token check
// for its roles and, for idempotent routes, idem (each may be nil).
func Register(e *echo.Echo, a Auth, routes []Route, lim Limiter, limits Limits, idem echo.MiddlewareFunc) {
	for _, r := range routes {
		h := r.Handler
		if r.Idempotent && !r.KeyInHandler && idem != nil {
			h = idem(h)
		}
		if !r.Public {
			// Signed-in calls count against the address and the caller at once.
			h = requireRoles(a, r, lim, limits)(h)
		} else if lim != nil {
			h = limit(lim, func(c echo.Context) ([]string, []int) { return []string{"ip:" + c.RealIP()}, []int{limits.PerIP} })(h)
		}
		e.Add(r.Method, r.Path, h)
	}
}

// limit answers 429 with Retry-After past the calls a minute allowed for any
// of the keys (a limit of 0 is no limit). When the counter cannot be reached
// it lets the call through (and logs): a Redis outage must not take the API
// down.
func limit(lim Limiter, keysOf func(echo.Context) ([]string, []int)) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			all, allLimits := keysOf(c)
			var keys []string
			var limits []int
			for i, k := range all {
				if allLimits[i] > 0 {
					keys, limits = append(keys, k), append(limits, allLimits[i])
				}
			}
			if len(keys) == 0 {
				return next(c)
			}
			ok, retry, err := lim.AllowAll(c.Request().Context(), keys, limits)
			if err != nil {
				c.Logger().Warn(err)
			}
			if !ok {
				c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retry.Seconds()))))
				return errs.E(errs.RateLimited, "too many requests; try again in %d s", int(math.Ceil(retry.Seconds())))
			}
			return next(c)
		}
	}
}

func requireRoles(a Auth, r Route, lim Limiter, limits Limits) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			// A refused call still counts against its address.
			refuse := func(err error) error {
				if lim == nil {
					return err
				}
				return limit(lim, func(c echo.Context) ([]string, []int) {
					return []string{"ip:" + c.RealIP()}, []int{limits.PerIP}
				})(func(echo.Context) error { return err })(c)
			}
			token, ok := auth.BearerToken(c.Request().Header.Get(echo.HeaderAuthorization))
			if !ok && r.QueryToken {
				token = c.QueryParam("access_token")
				ok = token != ""
			}
			if !ok {
				return refuse(errs.E(errs.Unauthenticated, "missing bearer token"))
			}
			p, err := a.Issuer.Verify(token)
			if err != nil {
				kp, ok := auth.Principal{}, false
				if a.Keys != nil {
					var kerr error
					kp, ok, kerr = a.Keys.Resolve(c.Request().Context(), token)
					if kerr != nil {
						// A valid key is never told it is invalid because the
						// database is away.
						return refuse(errs.E(errs.Unavailable, "keys cannot be checked right now; try again shortly"))
					}
				}
				if !ok {
					return refuse(err)
				}
				p = kp
			}
			if !r.Allows(p.Role) {
				return refuse(errs.E(errs.Forbidden, "role %s may not call %s %s", p.Role, r.Method, r.OpenAPIPath()))
			}
			req := c.Request()
			c.SetRequest(req.WithContext(auth.WithPrincipal(req.Context(), p)))
			if lim != nil {
				return limit(lim, func(c echo.Context) ([]string, []int) {
					return []string{"ip:" + c.RealIP(), "p:" + string(p.Role) + ":" + p.Subject}, []int{limits.PerIP, limits.PerPrincipal}
				})(next)(c)
			}
			return next(c)
		}
	}
}

// Principal returns the caller of an authenticated route.
func Principal(c echo.Context) auth.Principal {
	p, _ := auth.FromContext(c.Request().Context())
	return p
}

// Roles is a short way to list roles in route tables.
func Roles(r ...auth.Role) []auth.Role { return r }
