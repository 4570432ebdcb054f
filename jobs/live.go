package jobs

import (
	"context"
	"strings"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/live"
	"github.com/onsite/onsite/technicians"
)

// Live pushes request changes to the streams: the request to ops and to the
// request's own stream, offers and jobs to the technician's stream.
type Live struct {
	dispatch *dispatch.Service
	techs    *technicians.Service
	hub      *live.Hub
}

// NewLive returns the live publisher.
func NewLive(d *dispatch.Service, t *technicians.Service, h *live.Hub) *Live {
	return &Live{dispatch: d, techs: t, hub: h}
}

// movesTechnician are the events that change a technician's duty or jobs.
var movesTechnician = map[string]bool{"assigned": true, "completed": true, "cancelled": true, "searching": true}

// OfferChange is what a technician's stream carries about an offer.
type OfferChange struct {
	Type      string `json:"type"` // offered, offer_withdrawn, offer_expired, offer_declined, assigned
	OfferID   string `json:"offer_id"`
	RequestID string `json:"request_id"`
}

// Event publishes what one event changed.
func (l *Live) Event(ctx context.Context, p dispatch.TaskPayload) error {
	f, err := l.dispatch.FactsForEvent(ctx, p.EventID)
	if errs.CodeOf(err) == errs.NotFound {
		return nil
	}
	if err != nil {
		return err
	}
	r := f.Request
	if err := l.hub.Publish(ctx, "request", r, live.TopicOps, live.RequestTopic(r.ID)); err != nil {
		return err
	}
	techID, _ := f.Data["technician_id"].(string)
	if strings.HasPrefix(f.Event.Type, "offer") {
		offerID, _ := f.Data["offer_id"].(string)
		if techID != "" {
			return l.hub.Publish(ctx, "offer", OfferChange{Type: f.Event.Type, OfferID: offerID, RequestID: r.ID}, live.TechnicianTopic(techID))
		}
		return nil
	}
	if r.TechnicianID != nil {
		techID = *r.TechnicianID
	}
	if techID == "" {
		return nil
	}
	if movesTechnician[f.Event.Type] {
		if t, err := l.techs.Get(ctx, techID); err == nil {
			if err := l.hub.Publish(ctx, "technician", t, live.TopicOps); err != nil {
				return err
			}
		}
	}
	return l.hub.Publish(ctx, "job", r, live.TechnicianTopic(techID))
}
