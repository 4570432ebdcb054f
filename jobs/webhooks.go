package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/webhooks"
)

// Hooks delivers status changes to owners' webhook endpoints.
type Hooks struct {
	dispatch *dispatch.Service
	hooks    *webhooks.Service
}

// NewHooks returns the webhook shell.
func NewHooks(d *dispatch.Service, h *webhooks.Service) *Hooks { return &Hooks{dispatch: d, hooks: h} }

// Delivery is the JSON body of a webhook call.
type Delivery struct {
	ID      string           `json:"id"` // the event id: the same on every retry, for receivers to drop duplicates
	Type    string           `json:"type"`
	At      time.Time        `json:"at"`
	Request dispatch.Request `json:"request"`
}

// Deliver posts one event to one endpoint.
func (h *Hooks) Deliver(ctx context.Context, p dispatch.TaskPayload) error {
	f, err := h.dispatch.FactsForEvent(ctx, p.EventID)
	if err != nil {
		return err
	}
	body, err := json.Marshal(Delivery{ID: f.Event.ID, Type: f.Event.Type, At: f.Event.At, Request: f.Request})
	if err != nil {
		return fmt.Errorf("encode delivery: %w", err)
	}
	return h.hooks.Deliver(ctx, p.EndpointID, f.Event.ID, body)
}
