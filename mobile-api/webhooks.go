package mobileapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/httpx"
	"github.com/onsite/onsite/webhooks"
)

// Webhooks serves owners' webhook endpoints: registration, and each
// endpoint's delivery log and redeliveries.
type Webhooks struct {
	hooks *webhooks.Service
}

// NewWebhooks returns the owners' webhook routes.
func NewWebhooks(h *webhooks.Service) *Webhooks { return &Webhooks{hooks: h} }

// Routes lists the owners' webhook routes (customers, and machines for
// their owner).
func (w *Webhooks) Routes() []httpx.Route {
	owners := httpx.Roles(auth.Customer, auth.Machine)
	return []httpx.Route{
		{Method: http.MethodPost, Path: "/v1/webhooks", Roles: owners, Idempotent: true, Handler: w.register},
		{Method: http.MethodGet, Path: "/v1/webhooks", Roles: owners, Handler: w.list},
		{Method: http.MethodDelete, Path: "/v1/webhooks/:id", Roles: owners, Handler: w.remove},
		{Method: http.MethodGet, Path: "/v1/webhooks/:id/deliveries", Roles: owners, Handler: w.deliveries},
		{Method: http.MethodPost, Path: "/v1/webhooks/:id/deliveries/:delivery/redeliver", Roles: owners, Idempotent: true, Handler: w.redeliver},
	}
}

type registerBody struct {
	URL string `json:"url"`
}

func (w *Webhooks) register(c echo.Context) error {
	var in registerBody
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	e, err := w.hooks.Register(c.Request().Context(), httpx.Principal(c).Subject, in.URL)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, e)
}

func (w *Webhooks) list(c echo.Context) error {
	list, err := w.hooks.List(c.Request().Context(), httpx.Principal(c).Subject)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, httpx.List(list))
}

func (w *Webhooks) remove(c echo.Context) error {
	if err := w.hooks.Remove(c.Request().Context(), httpx.Principal(c).Subject, c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (w *Webhooks) deliveries(c echo.Context) error {
	limit, err := httpx.QueryInt(c, "limit", 100, 1, 500)
	if err != nil {
		return err
	}
	offset, err := httpx.QueryInt(c, "offset", 0, 0, 1_000_000)
	if err != nil {
		return err
	}
	f := webhooks.LogFilter{State: c.QueryParam("state"), Limit: limit, Offset: offset}
	log, err := w.hooks.Log(c.Request().Context(), httpx.Principal(c).Subject, c.Param("id"), f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, log)
}

func (w *Webhooks) redeliver(c echo.Context) error {
	d, err := w.hooks.Redeliver(c.Request().Context(), httpx.Principal(c).Subject, c.Param("id"), c.Param("delivery"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, d)
}
