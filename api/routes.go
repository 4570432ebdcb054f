package api

import (
	"net/http"

	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/httpx"
)

// Routes lists every ops route with the roles allowed to call it.
func (h *Handler) Routes() []httpx.Route {
	ops := httpx.Roles(auth.Ops)
	return []httpx.Route{
		{Method: http.MethodPost, Path: "/v1/skills", Roles: ops, Handler: h.createSkill},
		{Method: http.MethodPatch, Path: "/v1/skills/:code", Roles: ops, Handler: h.updateSkill},
		{Method: http.MethodGet, Path: "/v1/skills", Roles: httpx.Roles(auth.Ops, auth.Technician, auth.Customer, auth.Machine), Handler: h.listSkills},
		{Method: http.MethodPost, Path: "/v1/technicians", Roles: ops, Handler: h.createTechnician},
		{Method: http.MethodGet, Path: "/v1/technicians", Roles: ops, Handler: h.listTechnicians},
		{Method: http.MethodGet, Path: "/v1/technicians/:id", Roles: ops, Handler: h.getTechnician},
		{Method: http.MethodPatch, Path: "/v1/technicians/:id", Roles: ops, Handler: h.updateTechnician},
		{Method: http.MethodPut, Path: "/v1/technicians/:id/certifications/:skill", Roles: ops, Handler: h.certify},
		{Method: http.MethodDelete, Path: "/v1/technicians/:id/certifications/:skill", Roles: ops, Handler: h.revoke},
		{Method: http.MethodPut, Path: "/v1/technicians/:id/shifts", Roles: ops, Handler: h.setShifts},
		{Method: http.MethodPut, Path: "/v1/technicians/:id/weekly-shifts", Roles: ops, Handler: h.setWeekly},
		{Method: http.MethodPut, Path: "/v1/technicians/:id/suspension", Roles: ops, Handler: h.suspend},
		{Method: http.MethodGet, Path: "/v1/requests", Roles: ops, Handler: h.listRequests},
		{Method: http.MethodGet, Path: "/v1/requests/:id/events", Roles: ops, Handler: h.requestEvents},
		{Method: http.MethodGet, Path: "/v1/requests/:id/offers", Roles: ops, Handler: h.requestOffers},
		{Method: http.MethodGet, Path: "/v1/requests/:id/candidates", Roles: ops, Handler: h.candidates},
		{Method: http.MethodPost, Path: "/v1/requests/:id/assign", Roles: ops, Handler: h.assign},
		{Method: http.MethodPost, Path: "/v1/requests/:id/redispatch", Roles: ops, Handler: h.redispatch},
		{Method: http.MethodPost, Path: "/v1/intake", Roles: ops, Idempotent: true, Handler: h.intake},
		{Method: http.MethodGet, Path: "/v1/kpis", Roles: ops, Handler: h.kpis},
	}
}
