// Package mobileapi serves the customer and technician apps (and machine
// customers creating requests). A handler binds, calls one service method and
// encodes.
package mobileapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/internal/httpx"
	"github.com/onsite/onsite/live"
	"github.com/onsite/onsite/technicians"
)

// Handler holds what the app routes call.
type Handler struct {
	techs    *technicians.Service
	dispatch *dispatch.Service
	hub      *live.Hub
}

// New returns the app handler; hub serves and feeds the live streams.
func New(techs *technicians.Service, d *dispatch.Service, hub *live.Hub) *Handler {
	return &Handler{techs: techs, dispatch: d, hub: hub}
}

// technicianChanged pushes a technician to the dashboard's stream (best
// effort: the database already holds the change).
func (h *Handler) technicianChanged(c echo.Context, t technicians.Technician) {
	if h.hub == nil {
		return
	}
	if err := h.hub.Publish(c.Request().Context(), "technician", t, live.TopicOps); err != nil {
		c.Logger().Warn(err)
	}
}

func (h *Handler) myStream(c echo.Context) error {
	return h.hub.Serve(c.Response(), c.Request(), live.TechnicianTopic(httpx.Principal(c).Subject))
}

func (h *Handler) requestStream(c echo.Context) error {
	r, err := h.dispatch.Get(c.Request().Context(), caller(c), c.Param("id"))
	if err != nil {
		return err
	}
	return h.hub.Serve(c.Response(), c.Request(), live.RequestTopic(r.ID))
}

func caller(c echo.Context) dispatch.Caller {
	p := httpx.Principal(c)
	return dispatch.Caller{Role: string(p.Role), Subject: p.Subject}
}

type dutyBody struct {
	Status string `json:"status"`
}

func (h *Handler) setDuty(c echo.Context) error {
	var in dutyBody
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	t, err := h.techs.SetDuty(c.Request().Context(), httpx.Principal(c).Subject, in.Status)
	if err != nil {
		return err
	}
	h.technicianChanged(c, t)
	return c.JSON(http.StatusOK, t)
}

func (h *Handler) me(c echo.Context) error {
	t, err := h.techs.Get(c.Request().Context(), httpx.Principal(c).Subject)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, t)
}

func (h *Handler) location(c echo.Context) error {
	var in technicians.Ping
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	ctx, techID := c.Request().Context(), httpx.Principal(c).Subject
	loc, err := h.techs.UpdateLocation(ctx, techID, in)
	if err != nil {
		return err
	}
	if loc.Applied {
		// A technician on the way has a new ETA.
		if err := h.dispatch.TechnicianMoved(ctx, techID, in.Point()); err != nil {
			return err
		}
		if t, err := h.techs.Get(ctx, techID); err == nil {
			h.technicianChanged(c, t)
		}
	}
	return c.JSON(http.StatusOK, loc)
}

func (h *Handler) createRequest(c echo.Context) error {
	var in dispatch.NewRequest
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	out, err := h.dispatch.Create(c.Request().Context(), caller(c), c.Request().Header.Get("Idempotency-Key"), in)
	if err != nil {
		return err
	}
	if out.Replayed {
		c.Response().Header().Set("Idempotent-Replayed", "true")
	}
	return c.JSON(http.StatusCreated, out.Request)
}

func (h *Handler) getRequest(c echo.Context) error {
	r, err := h.dispatch.Get(c.Request().Context(), caller(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

func (h *Handler) cancelRequest(c echo.Context) error {
	var in dispatch.CancelInput
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	r, err := h.dispatch.Cancel(c.Request().Context(), caller(c), c.Param("id"), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

func (h *Handler) myOffers(c echo.Context) error {
	offers, err := h.dispatch.MyOffers(c.Request().Context(), httpx.Principal(c).Subject)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, httpx.List(offers))
}

func (h *Handler) myJobs(c echo.Context) error {
	limit, err := httpx.QueryInt(c, "limit", 100, 1, 500)
	if err != nil {
		return err
	}
	jobs, err := h.dispatch.MyJobs(c.Request().Context(), httpx.Principal(c).Subject, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, httpx.List(jobs))
}

func (h *Handler) accept(c echo.Context) error {
	r, err := h.dispatch.Accept(c.Request().Context(), httpx.Principal(c).Subject, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

func (h *Handler) decline(c echo.Context) error {
	o, err := h.dispatch.Decline(c.Request().Context(), httpx.Principal(c).Subject, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, o)
}

func (h *Handler) enRoute(c echo.Context) error {
	r, err := h.dispatch.Depart(c.Request().Context(), httpx.Principal(c).Subject, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

func (h *Handler) arrived(c echo.Context) error {
	r, err := h.dispatch.Arrive(c.Request().Context(), httpx.Principal(c).Subject, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

type completeBody struct {
	Outcome string `json:"outcome"`
}

func (h *Handler) complete(c echo.Context) error {
	var in completeBody
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	r, err := h.dispatch.Complete(c.Request().Context(), httpx.Principal(c).Subject, c.Param("id"), dispatch.JobStep{Outcome: in.Outcome})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

type dropBody struct {
	Reason string `json:"reason"`
}

func (h *Handler) drop(c echo.Context) error {
	var in dropBody
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	r, err := h.dispatch.Drop(c.Request().Context(), httpx.Principal(c).Subject, c.Param("id"), dispatch.JobStep{Reason: in.Reason})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}
