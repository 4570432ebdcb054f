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
		{Method: http.MethodPost, Path: "/v1/auth/otp", Public: true, Handler: h.sendCode},
		{Method: http.MethodPost, Path: "/v1/auth/token", Public: true, Handler: h.verifyCode},
		{Method: http.MethodPost, Path: "/v1/auth/refresh", Public: true, Handler: h.refresh},
		{Method: http.MethodPost, Path: "/v1/auth/logout", Public: true, Handler: h.signOut},
		{Method: http.MethodGet, Path: "/v1/me", Roles: tech, Handler: h.me},
		{Method: http.MethodPatch, Path: "/v1/me", Roles: tech, Idempotent: true, Handler: h.updateMe},
		{Method: http.MethodPut, Path: "/v1/me/duty", Roles: tech, Idempotent: true, Handler: h.setDuty},
		{Method: http.MethodPost, Path: "/v1/me/location", Roles: tech, Idempotent: true, Handler: h.location},
		{Method: http.MethodPost, Path: "/v1/me/locations", Roles: tech, Idempotent: true, Handler: h.locations},
		{Method: http.MethodGet, Path: "/v1/me/offers", Roles: tech, Handler: h.myOffers},
		{Method: http.MethodGet, Path: "/v1/me/stream", Roles: tech, QueryToken: true, Handler: h.myStream},
		{Method: http.MethodGet, Path: "/v1/requests/:id/stream", Roles: httpx.Roles(auth.Customer, auth.Machine, auth.Ops), QueryToken: true, Handler: h.requestStream},
		{Method: http.MethodGet, Path: "/v1/me/jobs", Roles: tech, Handler: h.myJobs},
		{Method: http.MethodPost, Path: "/v1/offers/:id/accept", Roles: tech, Idempotent: true, Handler: h.accept},
		{Method: http.MethodPost, Path: "/v1/offers/:id/decline", Roles: tech, Idempotent: true, Handler: h.decline},
		{Method: http.MethodPost, Path: "/v1/jobs/:id/en-route", Roles: tech, Idempotent: true, Handler: h.enRoute},
		{Method: http.MethodPost, Path: "/v1/jobs/:id/arrived", Roles: tech, Idempotent: true, Handler: h.arrived},
		{Method: http.MethodPost, Path: "/v1/jobs/:id/complete", Roles: tech, Idempotent: true, Handler: h.complete},
		{Method: http.MethodPost, Path: "/v1/jobs/:id/drop", Roles: tech, Idempotent: true, Handler: h.drop},
		{Method: http.MethodPost, Path: "/v1/jobs/:id/hand-back", Roles: tech, Idempotent: true, Handler: h.handBack},
		{Method: http.MethodPost, Path: "/v1/jobs/:id/not-home", Roles: tech, Idempotent: true, Handler: h.notHome},
		{Method: http.MethodPost, Path: "/v1/jobs/:id/customer-home", Roles: tech, Idempotent: true, Handler: h.customerHome},
		{Method: http.MethodPost, Path: "/v1/requests/:id/home", Roles: httpx.Roles(auth.Customer, auth.Ops), Idempotent: true, Handler: h.customerHome},
		{Method: http.MethodPost, Path: "/v1/requests/:id/reschedule", Roles: httpx.Roles(auth.Customer, auth.Ops), Idempotent: true, Handler: h.reschedule},
		{Method: http.MethodPost, Path: "/v1/requests", Roles: httpx.Roles(auth.Customer, auth.Machine), Idempotent: true, KeyInHandler: true, Handler: h.createRequest},
		{Method: http.MethodGet, Path: "/v1/requests/:id", Roles: httpx.Roles(auth.Customer, auth.Machine, auth.Ops), Handler: h.getRequest},
		{Method: http.MethodPost, Path: "/v1/requests/:id/confirm", Roles: httpx.Roles(auth.Customer, auth.Ops), Idempotent: true, Handler: h.confirm},
		{Method: http.MethodGet, Path: "/v1/me/requests", Roles: httpx.Roles(auth.Customer, auth.Machine), Handler: h.myRequests},
		{Method: http.MethodGet, Path: "/v1/me/contacts", Roles: httpx.Roles(auth.Customer), Handler: h.contacts},
		{Method: http.MethodPost, Path: "/v1/me/contacts", Roles: httpx.Roles(auth.Customer), Idempotent: true, Handler: h.addContact},
		{Method: http.MethodPost, Path: "/v1/me/contacts/confirm", Roles: httpx.Roles(auth.Customer), Idempotent: true, Handler: h.confirmContact},
		{Method: http.MethodPost, Path: "/v1/requests/:id/rating", Roles: httpx.Roles(auth.Customer, auth.Machine), Idempotent: true, Handler: h.rate},
		{Method: http.MethodPost, Path: "/v1/requests/:id/share", Roles: httpx.Roles(auth.Customer, auth.Machine), Handler: h.share},
		{Method: http.MethodGet, Path: "/v1/track/:token", Public: true, Handler: h.tracked},
		{Method: http.MethodGet, Path: "/v1/track/:token/stream", Public: true, Handler: h.trackedStream},
		{Method: http.MethodGet, Path: "/track/:token", Public: true, Handler: h.trackedPage},
		{Method: http.MethodPost, Path: "/v1/confirm/:token", Public: true, Handler: h.confirmByLink},
		{Method: http.MethodGet, Path: "/confirm/:token", Public: true, Handler: h.confirmPage},
		{Method: http.MethodPost, Path: "/v1/rate/:token", Public: true, Handler: h.rateByLink},
		{Method: http.MethodGet, Path: "/rate/:token", Public: true, Handler: h.ratePage},
		{Method: http.MethodPost, Path: "/v1/requests/:id/cancel", Roles: httpx.Roles(auth.Customer, auth.Machine, auth.Ops), Idempotent: true, Handler: h.cancelRequest},
	}
}
