package jobs

import (
	"context"
	"strings"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/live"
)

// Live pushes request changes to the streams: the request to ops and to the
// request's own stream, offers and jobs to the technician's stream.
type Live struct {
	dispatch *dispatch.Service
	hub      *live.Hub
}

// NewLive returns the live publisher.
func NewLive(d *dispatch.Service, h *live.Hub) *Live { return &Live{dispatch: d, hub: h} }

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
	if techID != "" {
		return l.hub.Publish(ctx, "job", r, live.TechnicianTopic(techID))
	}
	return nil
}
