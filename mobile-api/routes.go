package mobileapi

import (
	"net/http"

	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/httpx"
)

// Routes lists every app route with the roles allowed to call it.
func (h *Handler) Routes() []httpx.Route {
	tech := httpx.Roles(auth.Technician)
	return []httpx.Route{
		{Method: http.MethodGet, Path: "/v1/me", Roles: tech, Handler: h.me},
		{Method: http.MethodPut, Path: "/v1/me/duty", Roles: tech, Handler: h.setDuty},
		{Method: http.MethodPost, Path: "/v1/me/location", Roles: tech, Handler: h.location},
		{Method: http.MethodGet, Path: "/v1/me/offers", Roles: tech, Handler: h.myOffers},
		{Method: http.MethodGet, Path: "/v1/me/stream", Roles: tech, QueryToken: true, Handler: h.myStream},
		{Method: http.MethodGet, Path: "/v1/requests/:id/stream", Roles: httpx.Roles(auth.Customer, auth.Machine, auth.Ops), QueryToken: true, Handler: h.requestStream},
		{Method: http.MethodGet, Path: "/v1/me/jobs", Roles: tech, Handler: h.myJobs},
		{Method: http.MethodPost, Path: "/v1/offers/:id/accept", Roles: tech, Handler: h.accept},
		{Method: http.MethodPost, Path: "/v1/offers/:id/decline", Roles: tech, Handler: h.decline},
		{Method: http.MethodPost, Path: "/v1/jobs/:id/en-route", Roles: tech, Handler: h.enRoute},
		{Method: http.MethodPost, Path: "/v1/jobs/:id/arrived", Roles: tech, Handler: h.arrived},
		{Method: http.MethodPost, Path: "/v1/jobs/:id/complete", Roles: tech, Handler: h.complete},
		{Method: http.MethodPost, Path: "/v1/jobs/:id/drop", Roles: tech, Handler: h.drop},
		{Method: http.MethodPost, Path: "/v1/requests", Roles: httpx.Roles(auth.Customer, auth.Machine), Handler: h.createRequest},
		{Method: http.MethodGet, Path: "/v1/requests/:id", Roles: httpx.Roles(auth.Customer, auth.Machine, auth.Ops), Handler: h.getRequest},
		{Method: http.MethodPost, Path: "/v1/requests/:id/cancel", Roles: httpx.Roles(auth.Customer, auth.Machine, auth.Ops), Handler: h.cancelRequest},
	}
}
