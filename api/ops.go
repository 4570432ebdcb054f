package api

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/internal/httpx"
	"github.com/onsite/onsite/live"
)

// Publisher pushes a change to the live streams.
type Publisher interface {
	Publish(ctx context.Context, event string, data any, topics ...string) error
}

// Ops serves the dashboard's own routes: sign-in, the live stream, the
// demand/supply layer, its configuration and tokens for demos and tests.
type Ops struct {
	h        *Handler
	issuer   *auth.Issuer
	hub      *live.Hub
	password string
	tileURL  string
}

// NewOps returns the dashboard routes.
func NewOps(h *Handler, issuer *auth.Issuer, hub *live.Hub, password, tileURL string) *Ops {
	return &Ops{h: h, issuer: issuer, hub: hub, password: password, tileURL: tileURL}
}

// Routes lists the dashboard routes.
func (o *Ops) Routes() []httpx.Route {
	ops := httpx.Roles(auth.Ops)
	return []httpx.Route{
		{Method: http.MethodPost, Path: "/v1/auth/ops", Public: true, Handler: o.signIn},
		{Method: http.MethodGet, Path: "/v1/ops/stream", Roles: ops, QueryToken: true, Handler: o.stream},
		{Method: http.MethodGet, Path: "/v1/ops/heatmap", Roles: ops, Handler: o.heatmap},
		{Method: http.MethodGet, Path: "/v1/ops/config", Roles: ops, Handler: o.config},
		{Method: http.MethodPost, Path: "/v1/ops/tokens", Roles: ops, Handler: o.token},
	}
}

type signInBody struct {
	Name     string `json:"name"`
	Password string `json:"password"`
}

// TokenAnswer is a fresh access token.
type TokenAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
}

const opsTokenTTL = 12 * time.Hour

func (o *Ops) signIn(c echo.Context) error {
	var in signInBody
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	name := strings.TrimSpace(in.Name)
	if name == "" || len(name) > 64 {
		return errs.InvalidField("name", "name must be 1-64 characters")
	}
	if o.password == "" || subtle.ConstantTimeCompare([]byte(in.Password), []byte(o.password)) != 1 {
		return errs.E(errs.Unauthenticated, "wrong name or password")
	}
	tok, err := o.issuer.Issue(auth.Principal{Role: auth.Ops, Subject: name}, opsTokenTTL)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, TokenAnswer{AccessToken: tok, ExpiresIn: int(opsTokenTTL.Seconds())})
}

func (o *Ops) stream(c echo.Context) error {
	return o.hub.Serve(c.Response(), c.Request(), live.TopicOps)
}

func (o *Ops) heatmap(c echo.Context) error {
	res, err := httpx.QueryInt(c, "resolution", 8, 7, 8)
	if err != nil {
		return err
	}
	cells, err := o.h.dispatch.Heatmap(c.Request().Context(), res)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"cells": cells})
}

func (o *Ops) config(c echo.Context) error {
	areas := []string{}
	for _, a := range o.h.dispatch.ServiceAreas() {
		areas = append(areas, a.Name)
	}
	return c.JSON(http.StatusOK, map[string]any{"tile_url": o.tileURL, "service_areas": areas})
}

type tokenBody struct {
	Role    string `json:"role"`
	Subject string `json:"subject"`
	TTL     string `json:"ttl"`
}

func (o *Ops) token(c echo.Context) error {
	var in tokenBody
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	role, err := auth.ParseRole(in.Role)
	if err != nil {
		return errs.InvalidField("role", "role must be customer, technician, ops or machine")
	}
	if strings.TrimSpace(in.Subject) == "" || len(in.Subject) > 200 {
		return errs.InvalidField("subject", "subject must be 1-200 characters")
	}
	ttl := time.Hour
	if in.TTL != "" {
		if ttl, err = time.ParseDuration(in.TTL); err != nil || ttl <= 0 || ttl > 30*24*time.Hour {
			return errs.InvalidField("ttl", "ttl must be a duration up to 720h")
		}
	}
	tok, err := o.issuer.Issue(auth.Principal{Role: role, Subject: in.Subject}, ttl)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, TokenAnswer{AccessToken: tok, ExpiresIn: int(ttl.Seconds())})
}
