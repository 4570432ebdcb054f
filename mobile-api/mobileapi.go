// Package mobileapi serves the customer and technician apps (and machine
// customers creating requests). A handler binds, calls one service method and
// encodes.
package mobileapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/internal/httpx"
	"github.com/onsite/onsite/technicians"
)

// Handler holds what the app routes call.
type Handler struct {
	techs    *technicians.Service
	dispatch *dispatch.Service
}

// New returns the app handler.
func New(techs *technicians.Service, d *dispatch.Service) *Handler {
	return &Handler{techs: techs, dispatch: d}
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
	loc, err := h.techs.UpdateLocation(c.Request().Context(), httpx.Principal(c).Subject, in)
	if err != nil {
		return err
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
