// Package dispatch owns service requests, offers and their audit events: the
// shell that applies the pure core (dispatch/lifecycle: the state machine;
// dispatch/match: the index, eligibility, ranking, offer plans and the batch
// solver) to PostgreSQL, one transaction per change.
//
// Where things are:
//
//	request.go   a request, its events, the lifecycle's names
//	service.go   the Service, reads, lists, transitions, cancel
//	create.go    a new request: validation, idempotency, the first tasks
//	machine.go   a device's fault report and its owner's confirmation
//	fleet.go     the live index of technicians and waiting requests (change feed)
//	matching.go  where a request is matched (one round; ops' candidate list)
//	batch.go     the batch tick: every waiting request in one assignment
//	offer.go     offers: made, accepted, declined, expired, withdrawn
//	job.go       the job after assignment: steps, hand assignment, redispatch
//	field.go     exceptions in the field: nobody at the door (no-show), hand-back, unconfirmed device requests expiring
//	intake.go    a request ops take on a caller's behalf (call-centre intake)
//	followup.go  the follow-up a not_fixed or needs_parts visit opens
//	eligibility.go  the hard rules at the doors outside matching (accept, hand assignment)
//	timers.go    what a timer fires: search start, give-up, the next match
//	sweep.go     the safety net that re-runs overdue timers
//	customer.go  the customer's view: expected wait, rating
//	links.go     signed share and confirm links, the tracking page's read
//	notify.go    the facts a message is written from (the text is in notify/)
//	outbox.go    tasks written with the change that implies them
//	kpi.go, heatmap.go  what ops measures (docs/kpis.md defines the KPIs)
package dispatch

import (
	"database/sql/driver"
	"encoding/json"
	"time"

	"github.com/onsite/onsite/dispatch/lifecycle"
	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/db"
)

// The request lifecycle is dispatch/lifecycle's (pure, shared with the
// simulator); these names keep the shell's code short.
type (
	State  = lifecycle.State
	Action = lifecycle.Action
	Mode   = lifecycle.Mode
)

// Request states.
const (
	PendingConfirmation = lifecycle.PendingConfirmation
	Scheduled           = lifecycle.Scheduled
	Searching           = lifecycle.Searching
	Assigned            = lifecycle.Assigned
	EnRoute             = lifecycle.EnRoute
	OnSite              = lifecycle.OnSite
	Completed           = lifecycle.Completed
	Cancelled           = lifecycle.Cancelled
	Unfulfilled         = lifecycle.Unfulfilled
	NoShow              = lifecycle.NoShow
)

// States lists every state, for validation of filters.
var States = lifecycle.States

// Modes.
const (
	ASAP   = lifecycle.ASAP
	Window = lifecycle.Window
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
	AtRiskSince    *time.Time `json:"at_risk_since"` // when the (debounced) at-risk flag was raised
	Escalation     int        `json:"escalation"`    // furthest escalation step taken: 0 none … 4 customer told (match.Step)
	TechnicianID   *string    `json:"technician_id"`
	EtaAt          *time.Time `json:"eta_at"`
	EtaPromisedAt  *time.Time `json:"-"`                   // the arrival time the customer was last told
	TimeZone       *string    `json:"time_zone,omitempty"` // the IANA zone of its texts' clock times, when given
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
	NoShowDueAt    *time.Time `json:"no_show_due_at"` // the technician at the door waits until then, then it closes as a no-show
	// FollowUpOf is the request whose visit closed not_fixed or needs_parts
	// and opened this one; PreferredTechnicianID who came then, offered
	// this one first when they suit.
	FollowUpOf            *string `json:"follow_up_of"`
	PreferredTechnicianID *string `json:"preferred_technician_id"`
	// ArrivalDistanceM is how far from the site the technician's latest
	// position was when they said they had arrived (nil: no position);
	// ArrivalFlagged marks an arrival farther than the arrival radius (or
	// with no position), shown to ops and never counted on time.
	ArrivalDistanceM *int       `json:"arrival_distance_m"`
	ArrivalFlagged   bool       `json:"arrival_flagged"`
	CreatedAt        time.Time  `json:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
	SearchingAt      *time.Time `json:"searching_at"`
	AssignedAt       *time.Time `json:"assigned_at"`
	EnRouteAt        *time.Time `json:"en_route_at"`
	OnSiteAt         *time.Time `json:"on_site_at"`
	CompletedAt      *time.Time `json:"completed_at"`
	CancelledAt      *time.Time `json:"cancelled_at"`
	UnfulfilledAt    *time.Time `json:"unfulfilled_at"`
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

// MarshalJSON implements json.Marshaler: no photos is [], as a stored
// request reads back (so a create and its replay answer alike).
func (p Photos) MarshalJSON() ([]byte, error) {
	if p == nil {
		return []byte("[]"), nil
	}
	return json.Marshal([]string(p))
}

// Scan implements sql.Scanner.
func (p *Photos) Scan(v any) error {
	var out []string
	ok, err := db.ScanJSON(v, &out, "photos")
	if err != nil {
		return err
	}
	if !ok {
		out = []string{}
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
	// MessagesOwed marks an event someone is to be told about until the
	// worker has stored its messages (docs/messages.md).
	MessagesOwed bool `json:"-"`
}

// Actor is who caused a change: a role and an id ("system" for Onsite itself).
type Actor struct {
	Role string
	ID   string
}

// System is Onsite acting on its own (timers, the matcher).
var System = Actor{Role: "system", ID: "onsite"}
