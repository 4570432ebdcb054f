package httpx

import (
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/errs"
)

// Route is one HTTP route and the roles that may call it. Public routes need
// no token.
type Route struct {
	Method  string
	Path    string // echo syntax: /v1/requests/:id
	Roles   []auth.Role
	Public  bool
	Handler echo.HandlerFunc
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

// Register adds the routes to e, each behind the token check for its roles.
func Register(e *echo.Echo, issuer *auth.Issuer, routes []Route) {
	for _, r := range routes {
		h := r.Handler
		if !r.Public {
			h = requireRoles(issuer, r)(h)
		}
		e.Add(r.Method, r.Path, h)
	}
}

func requireRoles(issuer *auth.Issuer, r Route) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			token, ok := auth.BearerToken(c.Request().Header.Get(echo.HeaderAuthorization))
			if !ok {
				return errs.E(errs.Unauthenticated, "missing bearer token")
			}
			p, err := issuer.Verify(token)
			if err != nil {
				return err
			}
			if !r.Allows(p.Role) {
				return errs.E(errs.Forbidden, "role %s may not call %s %s", p.Role, r.Method, r.OpenAPIPath())
			}
			req := c.Request()
			c.SetRequest(req.WithContext(auth.WithPrincipal(req.Context(), p)))
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
