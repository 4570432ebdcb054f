package lifecycle

import (
	"strings"
	"testing"

	"github.com/onsite/onsite/internal/errs"
)

func TestNext(t *testing.T) {
	t.Parallel()
	tests := []struct {
		from State
		act  Action
		want State
		ok   bool
	}{
		{Scheduled, StartSearch, Searching, true},
		{Searching, Assign, Assigned, true},
		{Assigned, Depart, EnRoute, true},
		{EnRoute, Arrive, OnSite, true},
		{Assigned, Arrive, OnSite, true},
		{OnSite, Complete, Completed, true},
		{Assigned, Drop, Searching, true},
		{EnRoute, Drop, Searching, true},
		{Searching, GiveUp, Unfulfilled, true},
		{Unfulfilled, Reopen, Searching, true},
		{Searching, Cancel, Cancelled, true},
		{EnRoute, Cancel, Cancelled, true},
		{OnSite, Cancel, OnSite, false},
		{Completed, Cancel, Completed, false},
		{Cancelled, Cancel, Cancelled, false},
		{Searching, Complete, Searching, false},
		{Searching, Depart, Searching, false},
		{Assigned, Assign, Assigned, false},
		{OnSite, Drop, OnSite, false},
		{Completed, Reopen, Completed, false},
		{Assigned, HandBack, Searching, true},
		{EnRoute, HandBack, Searching, true},
		{OnSite, HandBack, Searching, true},
		{Searching, HandBack, Searching, false},
		{OnSite, CloseNoShow, NoShow, true},
		{EnRoute, CloseNoShow, EnRoute, false},
		{NoShow, Reopen, NoShow, false},
		{NoShow, Cancel, NoShow, false},
		{PendingConfirmation, Expire, Cancelled, true},
		{Searching, Expire, Searching, false},
		{OnSite, Reschedule, Scheduled, true},
		{EnRoute, Reschedule, EnRoute, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.from)+"/"+string(tt.act), func(t *testing.T) {
			got, err := Next(tt.from, tt.act)
			if tt.ok != (err == nil) || got != tt.want {
				t.Fatalf("Next(%s, %s) = %s, %v", tt.from, tt.act, got, err)
			}
			if err != nil && errs.CodeOf(err) != errs.Conflict {
				t.Fatalf("error code = %s, want conflict", errs.CodeOf(err))
			}
		})
	}
}

// FuzzNext checks that no sequence of actions leaves the known states or
// leaves a final state.
func FuzzNext(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4})
	actions := []Action{StartSearch, Assign, Depart, Arrive, Complete, Drop, Unassign, Cancel, GiveUp, Reopen, HandBack, CloseNoShow, Expire, Reschedule}
	f.Fuzz(func(t *testing.T, seq []byte) {
		s := Searching
		for _, b := range seq {
			next, err := Next(s, actions[int(b)%len(actions)])
			if err != nil {
				if next != s {
					t.Fatalf("failed transition changed state %s → %s", s, next)
				}
				continue
			}
			if s == Completed || s == Cancelled || s == NoShow {
				t.Fatalf("left final state %s", s)
			}
			s = next
		}
	})
}

// TestRefusalsSpeakPlainly: the 409 of an illegal transition names the
// action in words, never an internal action name such as confirm_asap.
func TestRefusalsSpeakPlainly(t *testing.T) {
	actions := []Action{StartSearch, Assign, Depart, Arrive, Complete, Drop, Unassign, Cancel, GiveUp, Reopen, ConfirmASAP, ConfirmSlot, HandBack, CloseNoShow, Expire, Reschedule}
	for _, a := range actions {
		for _, s := range States {
			_, err := Next(s, a)
			if err == nil {
				continue
			}
			// The state is an API value (en_route); nothing else may have "_".
			if msg := err.Error(); strings.Contains(strings.ReplaceAll(msg, string(s), ""), "_") {
				t.Errorf("%s from %s: %q names an internal action", a, s, msg)
			}
		}
	}
}
