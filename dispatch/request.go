// Package dispatch owns service requests, offers and their audit events: the
// request state machine, candidate matching and ranking (a pure core in
// request.go, match.go, strategy.go) and the service that applies them in one
// transaction each (service.go).
package dispatch

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"time"

	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/errs"
)

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
)

// States lists every state, for validation of filters.
var States = []State{PendingConfirmation, Scheduled, Searching, Assigned, EnRoute, OnSite, Completed, Cancelled, Unfulfilled}

// Action is what happens to a request.
type Action string

// Actions that move a request between states.
const (
	StartSearch Action = "start_search" // window start − lead time reached
	Assign      Action = "assign"       // an offer accepted, or ops assigned by hand
	Depart      Action = "en_route"     // the technician sets off
	Arrive      Action = "arrive"       // the technician is on site
	Complete    Action = "complete"     // the work is done
	Drop        Action = "drop"         // the technician gives the job back
	Unassign    Action = "unassign"     // ops takes the job away to re-dispatch it
	Cancel      Action = "cancel"       // customer or ops
	GiveUp      Action = "give_up"      // no one found by the give-up time
	Reopen      Action = "reopen"       // ops searches again for an unfulfilled request
	ConfirmASAP Action = "confirm_asap" // the owner confirms a device's request, as soon as possible
	ConfirmSlot Action = "confirm_slot" // the owner confirms it for a time window
)

var transitions = map[State]map[Action]State{
	PendingConfirmation: {ConfirmASAP: Searching, ConfirmSlot: Scheduled, Cancel: Cancelled},
	Scheduled:           {StartSearch: Searching, Cancel: Cancelled, Assign: Assigned},
	Searching:           {Assign: Assigned, Cancel: Cancelled, GiveUp: Unfulfilled},
	Assigned:            {Depart: EnRoute, Arrive: OnSite, Drop: Searching, Unassign: Searching, Cancel: Cancelled},
	EnRoute:             {Arrive: OnSite, Drop: Searching, Unassign: Searching, Cancel: Cancelled},
	OnSite:              {Complete: Completed},
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
		return "give up"
	}
	return string(a)
}

// Live reports whether a technician is bound to a request in state s.
func (s State) Live() bool { return s == Assigned || s == EnRoute || s == OnSite }

// Open reports whether a request in s may still be served.
func (s State) Open() bool { return s != Completed && s != Cancelled && s != Unfulfilled }

// Mode is how the customer wants the service.
type Mode string

// Modes.
const (
	ASAP   Mode = "asap"
	Window Mode = "window"
)

// Request is a service request ("job" in the technician app).
type Request struct {
	ID             string     `json:"id" gorm:"primaryKey"`
	CustomerID     string     `json:"customer_id"`
	CreatedBy      string     `json:"created_by"`
	IdempotencyKey *string    `json:"-"`
	BodyHash       *string    `json:"-"`
	SkillCode      string     `json:"skill"`
	Lat            float64    `json:"lat"`
	Lng            float64    `json:"lng"`
	Cell           geo.Cell   `json:"cell"`
	Region         string     `json:"region"`
	Address        string     `json:"address"`
	Notes          string     `json:"notes"`
	Mode           Mode       `json:"mode"`
	WindowStart    *time.Time `json:"window_start"`
	WindowEnd      *time.Time `json:"window_end"`
	State          State      `json:"state"`
	SLADeadline    *time.Time `json:"sla_deadline"`
	GiveUpAt       *time.Time `json:"give_up_at"`
	AtRisk         bool       `json:"at_risk"`
	TechnicianID   *string    `json:"technician_id"`
	EtaAt          *time.Time `json:"eta_at"`
	Outcome        *string    `json:"outcome"`
	Visits         int        `json:"visits"`
	CancelReason   *string    `json:"cancel_reason"`
	Photos         Photos     `json:"photos"`
	RatingStars    *int       `json:"rating_stars"`
	RatingComment  *string    `json:"rating_comment"`
	RatedAt        *time.Time `json:"rated_at"`
	DeviceID       *string    `json:"device_id"`
	FaultCode      *string    `json:"fault_code"`
	Diagnostics    *string    `json:"-"`
	Faults         int        `json:"faults"`
	ConfirmedAt    *time.Time `json:"confirmed_at"`
	ContactPhone   *string    `json:"contact_phone"`
	ContactLocale  *string    `json:"contact_locale"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	SearchingAt    *time.Time `json:"searching_at"`
	AssignedAt     *time.Time `json:"assigned_at"`
	EnRouteAt      *time.Time `json:"en_route_at"`
	OnSiteAt       *time.Time `json:"on_site_at"`
	CompletedAt    *time.Time `json:"completed_at"`
	CancelledAt    *time.Time `json:"cancelled_at"`
	UnfulfilledAt  *time.Time `json:"unfulfilled_at"`
}

// Photos are links to pictures the customer attached, stored as JSON text.
type Photos []string

// Value implements driver.Valuer.
func (p Photos) Value() (driver.Value, error) {
	if p == nil {
		return "[]", nil
	}
	b, err := json.Marshal([]string(p))
	return string(b), err
}

// Scan implements sql.Scanner.
func (p *Photos) Scan(v any) error {
	var raw []byte
	switch x := v.(type) {
	case string:
		raw = []byte(x)
	case []byte:
		raw = x
	case nil:
		*p = Photos{}
		return nil
	default:
		return fmt.Errorf("photos: cannot scan %T", v)
	}
	var out []string
	if err := json.Unmarshal(raw, &out); err != nil {
		return fmt.Errorf("photos: %w", err)
	}
	*p = out
	return nil
}

// Place returns where the service is wanted.
func (r Request) Place() geo.Point { return geo.Point{Lat: r.Lat, Lng: r.Lng} }

// stampColumn is the column that records when a request entered a state.
var stampColumn = map[State]string{
	Searching: "searching_at", Assigned: "assigned_at", EnRoute: "en_route_at", OnSite: "on_site_at",
	Completed: "completed_at", Cancelled: "cancelled_at", Unfulfilled: "unfulfilled_at",
}

// Event is one append-only audit record of what happened to a request.
type Event struct {
	ID        string    `json:"id" gorm:"primaryKey"`
	RequestID string    `json:"request_id"`
	Type      string    `json:"type"`
	ActorRole string    `json:"actor_role"`
	ActorID   string    `json:"actor_id"`
	Data      string    `json:"-"`
	At        time.Time `json:"at"`
}

// Actor is who caused a change: a role and an id ("system" for Onsite itself).
type Actor struct {
	Role string
	ID   string
}

// System is Onsite acting on its own (timers, the matcher).
var System = Actor{Role: "system", ID: "onsite"}
