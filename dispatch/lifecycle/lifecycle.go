// Package lifecycle is the request state machine: the states a service
// request goes through, the actions that move it, and which moves are
// allowed (DESIGN.md "Request lifecycle"). It is pure: the dispatch shell
// applies a move inside the transaction that writes it.
package lifecycle

import "github.com/onsite/onsite/internal/errs"

// State is where a request is in its lifecycle.
type State string

// Request states (DESIGN.md "Request lifecycle").
const (
	PendingConfirmation State = "pending_confirmation" // opened by a device, waiting for its owner
	Scheduled           State = "scheduled"
	Searching           State = "searching"
	Assigned            State = "assigned"
	EnRoute             State = "en_route"
	OnSite              State = "on_site"
	Completed           State = "completed"
	Cancelled           State = "cancelled"
	Unfulfilled         State = "unfulfilled"
	NoShow              State = "no_show" // the customer was not there when the technician came (final)
)

// States lists every state, for validation of filters.
var States = []State{PendingConfirmation, Scheduled, Searching, Assigned, EnRoute, OnSite, Completed, Cancelled, Unfulfilled, NoShow}

// Action is what happens to a request.
type Action string

// Actions that move a request between states.
const (
	StartSearch Action = "start_search"  // window start − lead time reached
	Assign      Action = "assign"        // an offer accepted, or ops assigned by hand
	Depart      Action = "en_route"      // the technician sets off
	Arrive      Action = "arrive"        // the technician is on site
	Complete    Action = "complete"      // the work is done
	Drop        Action = "drop"          // the technician gives the job back before arriving (the shell records every give-back as HandBack)
	Unassign    Action = "unassign"      // ops takes the job away to re-dispatch it
	Cancel      Action = "cancel"        // customer or ops
	GiveUp      Action = "give_up"       // no one found by the give-up time
	Reopen      Action = "reopen"        // ops searches again for an unfulfilled request
	ConfirmASAP Action = "confirm_asap"  // the owner confirms a device's request, as soon as possible
	ConfirmSlot Action = "confirm_slot"  // the owner confirms it for a time window
	HandBack    Action = "hand_back"     // the technician cannot finish (on the way or on site): searched again
	CloseNoShow Action = "close_no_show" // the wait at the door ran out with nobody there
	Expire      Action = "expire"        // the owner did not confirm a device's request in time
	Reschedule  Action = "reschedule"    // the customer, not at the door, books another time window
)

var transitions = map[State]map[Action]State{
	PendingConfirmation: {ConfirmASAP: Searching, ConfirmSlot: Scheduled, Cancel: Cancelled, Expire: Cancelled},
	Scheduled:           {StartSearch: Searching, Cancel: Cancelled, Assign: Assigned},
	Searching:           {Assign: Assigned, Cancel: Cancelled, GiveUp: Unfulfilled},
	Assigned:            {Depart: EnRoute, Arrive: OnSite, Drop: Searching, HandBack: Searching, Unassign: Searching, Cancel: Cancelled},
	EnRoute:             {Arrive: OnSite, Drop: Searching, HandBack: Searching, Unassign: Searching, Cancel: Cancelled},
	OnSite:              {Complete: Completed, HandBack: Searching, CloseNoShow: NoShow, Reschedule: Scheduled},
	Unfulfilled:         {Reopen: Searching, Cancel: Cancelled, Assign: Assigned},
}

// Next returns the state that action leads to from s, or a conflict error
// when the action is not allowed there.
func Next(s State, a Action) (State, error) {
	if next, ok := transitions[s][a]; ok {
		return next, nil
	}
	return s, errs.ConflictReason("illegal_transition", "cannot %s a request that is %s", actionVerb(a), s)
}

func actionVerb(a Action) string {
	switch a {
	case StartSearch:
		return "start searching for"
	case Depart:
		return "set off to"
	case Arrive:
		return "arrive at"
	case GiveUp:
		return "give up on"
	case ConfirmASAP:
		return "confirm"
	case ConfirmSlot:
		return "book a time window for"
	case HandBack:
		return "hand back"
	case CloseNoShow:
		return "close as a no-show"
	case Expire:
		return "let expire"
	}
	return string(a)
}

// Live reports whether a technician is bound to a request in state s.
func (s State) Live() bool { return s == Assigned || s == EnRoute || s == OnSite }

// Open reports whether a request in s may still be served.
func (s State) Open() bool {
	return s != Completed && s != Cancelled && s != Unfulfilled && s != NoShow
}

// Mode is how the customer wants the service.
type Mode string

// Modes.
const (
	ASAP   Mode = "asap"
	Window Mode = "window"
)
