package jobs_test

import (
	"testing"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/jobs"
	"github.com/onsite/onsite/notify"
)

func TestSuperseded(t *testing.T) {
	t.Parallel()
	at := func(s dispatch.State, tech string) dispatch.Standing {
		return dispatch.Standing{State: s, Technician: tech}
	}
	tests := []struct {
		name string
		kind notify.Kind
		tech string // the technician the message is about
		now  dispatch.Standing
		want string
	}{
		{"offer still open", notify.KindOffer, "t1", dispatch.Standing{State: dispatch.Searching, Offer: dispatch.OfferPending}, ""},
		{"offer expired", notify.KindOffer, "t1", dispatch.Standing{State: dispatch.Searching, Offer: dispatch.OfferExpired}, "offer expired"},
		{"offer taken by another", notify.KindOffer, "t1", dispatch.Standing{State: dispatch.Assigned, Technician: "t2", Offer: dispatch.OfferWithdrawn}, "offer withdrawn"},
		{"assigned", notify.KindAssigned, "t1", at(dispatch.Assigned, "t1"), ""},
		{"assigned, already on the way", notify.KindAssigned, "t1", at(dispatch.EnRoute, "t1"), ""},
		{"assigned after a cancellation", notify.KindAssigned, "t1", at(dispatch.Cancelled, "t1"), "request cancelled"},
		{"assigned after a drop", notify.KindAssigned, "t1", at(dispatch.Searching, ""), "request searching"},
		{"assigned, then reassigned", notify.KindAssigned, "t1", at(dispatch.Assigned, "t2"), "technician changed"},
		{"assigned, already on site", notify.KindAssigned, "t1", at(dispatch.OnSite, "t1"), "request on_site"},
		{"on the way", notify.KindEnRoute, "t1", at(dispatch.EnRoute, "t1"), ""},
		{"on the way after a cancellation", notify.KindEnRoute, "t1", at(dispatch.Cancelled, "t1"), "request cancelled"},
		{"on the way after a drop", notify.KindEnRoute, "t1", at(dispatch.Searching, ""), "request searching"},
		{"on the way, already arrived", notify.KindEnRoute, "t1", at(dispatch.OnSite, "t1"), "request on_site"},
		{"on the way, another technician now", notify.KindEnRoute, "t1", at(dispatch.EnRoute, "t2"), "technician changed"},
		{"arrived", notify.KindArrived, "t1", at(dispatch.OnSite, "t1"), ""},
		{"arrived after completion", notify.KindArrived, "t1", at(dispatch.Completed, "t1"), "request completed"},
		{"completed", notify.KindCompleted, "t1", at(dispatch.Completed, "t1"), ""},
		{"cancelled", notify.KindCancelled, "", at(dispatch.Cancelled, ""), ""},
		{"unfulfilled", notify.KindUnfulfilled, "", at(dispatch.Unfulfilled, ""), ""},
		{"unfulfilled, reopened since", notify.KindUnfulfilled, "", at(dispatch.Searching, ""), "request searching"},
		{"confirm, still waiting", notify.KindConfirm, "", at(dispatch.PendingConfirmation, ""), ""},
		{"confirm, confirmed since", notify.KindConfirm, "", at(dispatch.Searching, ""), "request searching"},
		{"reminder", notify.KindReminder, "t1", at(dispatch.Assigned, "t1"), ""},
		{"reminder, reassigned", notify.KindReminderTech, "t1", at(dispatch.Assigned, "t2"), "technician changed"},
		{"reminder after a cancellation", notify.KindReminder, "t1", at(dispatch.Cancelled, "t1"), "request cancelled"},
		{"changed technician", notify.KindChanged, "t2", at(dispatch.Assigned, "t2"), ""},
		{"changed, then changed again", notify.KindChanged, "t2", at(dispatch.Assigned, "t3"), "technician changed"},
		{"running late", notify.KindLate, "t1", at(dispatch.EnRoute, "t1"), ""},
		{"running late, arrived since", notify.KindLate, "t1", at(dispatch.OnSite, "t1"), "request on_site"},
		{"searching again", notify.KindSearching, "t1", at(dispatch.Searching, ""), ""},
		{"searching again, someone assigned since", notify.KindSearching, "t1", at(dispatch.Assigned, "t2"), "request assigned"},
		{"job given by hand", notify.KindJobGiven, "t1", at(dispatch.Assigned, "t1"), ""},
		{"job given by hand, cancelled since", notify.KindJobGiven, "t1", at(dispatch.Cancelled, "t1"), "request cancelled"},
		{"job taken off, whatever came after", notify.KindJobTaken, "t1", at(dispatch.Assigned, "t2"), ""},
		{"job cancelled", notify.KindJobCancelled, "t1", at(dispatch.Cancelled, "t1"), ""},
		{"sign-in code", notify.KindOTP, "", dispatch.Standing{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := jobs.Superseded(tt.kind, tt.tech, tt.now); got != tt.want {
				t.Fatalf("Superseded(%s, %s, %+v) = %q, want %q", tt.kind, tt.tech, tt.now, got, tt.want)
			}
		})
	}
}
