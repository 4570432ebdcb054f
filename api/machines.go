package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/httpx"
	"github.com/onsite/onsite/machines"
)

// MachineKeys serves ops' management of machine customers' keys.
type MachineKeys struct {
	keys *machines.Service
}

// NewMachineKeys returns the key routes.
func NewMachineKeys(k *machines.Service) *MachineKeys { return &MachineKeys{keys: k} }

// Routes lists the key routes.
func (m *MachineKeys) Routes() []httpx.Route {
	ops := httpx.Roles(auth.Ops)
	return []httpx.Route{
		{Method: http.MethodPost, Path: "/v1/machine-keys", Roles: ops, Idempotent: true, Handler: m.create},
		{Method: http.MethodDelete, Path: "/v1/machine-keys/:id", Roles: ops, Handler: m.revoke},
	}
}

func (m *MachineKeys) create(c echo.Context) error {
	var in machines.CreateInput
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	k, err := m.keys.Create(c.Request().Context(), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, k)
}

func (m *MachineKeys) revoke(c echo.Context) error {
	if err := m.keys.Revoke(c.Request().Context(), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
