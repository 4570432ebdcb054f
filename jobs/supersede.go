package jobs

import (
	"context"
	"slices"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/notify"
)

// Superseded is the one rule of which stored message still says something
// true: it returns why a message of kind, about technician, should no
// longer be sent given where its request stands now, or "" to send it. A
// message about a request's state goes only while the request is in that
// state (with the same technician): "assigned" and "on the way" not after a
// cancellation or a drop, "on the way" not once the technician is on site,
// "arrived" not once the job is done; "we are looking for someone else" not
// once someone is assigned. An offer goes only while it is open. A job taken
// off a technician is told whatever came after.
func Superseded(kind notify.Kind, technician string, now dispatch.Standing) string {
	var current []dispatch.State // the states in which the message is still true
	ofTechnician := false        // true only of the technician it names
	switch kind {
	case notify.KindOffer:
		if now.Offer != dispatch.OfferPending {
			return "offer " + string(now.Offer)
		}
		return ""
	case notify.KindConfirm:
		current = []dispatch.State{dispatch.PendingConfirmation}
	case notify.KindAssigned, notify.KindChanged, notify.KindLate, notify.KindJobGiven, notify.KindReminder, notify.KindReminderTech:
		current, ofTechnician = []dispatch.State{dispatch.Assigned, dispatch.EnRoute}, true
	case notify.KindSearching, notify.KindStill:
		// Once someone else is assigned, the change of technician says it.
		current = []dispatch.State{dispatch.Searching}
	case notify.KindJobCancelled:
		current = []dispatch.State{dispatch.Cancelled, dispatch.Scheduled} // a job cancelled, or moved to another window
	case notify.KindNotHome, notify.KindCustomerHome:
		current = []dispatch.State{dispatch.OnSite}
	case notify.KindNoShow:
		current = []dispatch.State{dispatch.NoShow}
	case notify.KindEnRoute:
		current, ofTechnician = []dispatch.State{dispatch.EnRoute}, true
	case notify.KindArrived:
		current, ofTechnician = []dispatch.State{dispatch.OnSite}, true
	case notify.KindCompleted:
		current = []dispatch.State{dispatch.Completed}
	case notify.KindCancelled:
		current = []dispatch.State{dispatch.Cancelled}
	case notify.KindUnfulfilled:
		current = []dispatch.State{dispatch.Unfulfilled}
	default:
		return "" // not about a request's state (sign-in codes, replies)
	}
	switch {
	case !slices.Contains(current, now.State):
		return "request " + string(now.State)
	case ofTechnician && technician != "" && technician != now.Technician:
		return "technician changed"
	}
	return ""
}

// Check returns the notifier's check before each send: Superseded, applied
// to where the message's request stands now.
func Check(d *dispatch.Service) notify.CheckFunc {
	return func(ctx context.Context, m notify.Message) (string, error) {
		if m.RequestID == nil {
			return "", nil
		}
		offer, tech := "", ""
		if m.OfferID != nil {
			offer = *m.OfferID
		}
		if m.TechnicianID != nil {
			tech = *m.TechnicianID
		}
		st, err := d.Standing(ctx, *m.RequestID, offer)
		if errs.CodeOf(err) == errs.NotFound {
			return "request or offer gone", nil
		}
		if err != nil {
			return "", err
		}
		return Superseded(m.Kind, tech, st), nil
	}
}
