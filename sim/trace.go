package sim

import (
	"time"

	"github.com/onsite/onsite/geo"
)

// Trace is what a run decided and met, for replaying the same day into the
// server (Variant.Trace). Filling it changes nothing the run does.
type Trace struct {
	Technicians []TraceTechnician
	Requests    []TraceRequest
	Events      []TraceEvent // in the order they happened
}

// TraceTechnician is one technician of the day.
type TraceTechnician struct {
	ID                   string
	Home                 geo.Point
	Mode                 string
	SpeedKmh             float64
	Skills               []string
	ShiftStart, ShiftEnd time.Time
	Capacity             int
}

// TraceRequest is one request of the day (ASAP when WindowStart is zero).
type TraceRequest struct {
	ID                     string
	Created                time.Time
	Place                  geo.Point
	Skill                  string
	WindowStart, WindowEnd time.Time
}

// TraceKind names a traced event.
type TraceKind string

// What a trace records.
const (
	TraceBatch   TraceKind = "batch"   // a batch tick (its offers follow)
	TraceOffer   TraceKind = "offer"   // an offer sent, open until Expires
	TraceAccept  TraceKind = "accept"  // the technician said yes (and set off)
	TraceDecline TraceKind = "decline" // the technician said no
	TraceExpire  TraceKind = "expire"  // the offer's time ran out
	TraceArrive  TraceKind = "arrive"  // on site
	TraceDone    TraceKind = "done"    // the job is finished, the technician free where it was
	TraceGiveUp  TraceKind = "give_up" // the request is unfulfilled
)

// TraceEvent is one event; Request and Technician are the simulator's ids.
type TraceEvent struct {
	At         time.Time
	Kind       TraceKind
	Request    string
	Technician string
	Expires    time.Time // offers
}

func (r *run) trace(kind TraceKind, q *reqState, t *techState, expires time.Time) {
	if r.tr == nil {
		return
	}
	e := TraceEvent{At: r.now, Kind: kind, Expires: expires}
	if q != nil {
		e.Request = q.id
	}
	if t != nil {
		e.Technician = t.id
	}
	r.tr.Events = append(r.tr.Events, e)
}

func (r *run) traceDay() {
	if r.tr == nil {
		return
	}
	for _, t := range r.d.techs {
		r.tr.Technicians = append(r.tr.Technicians, TraceTechnician{ID: t.id, Home: t.home, Mode: t.mode, SpeedKmh: t.speed,
			Skills: append([]string(nil), t.skills...), ShiftStart: t.shiftStart, ShiftEnd: t.shiftEnd, Capacity: t.capacity})
	}
	for _, q := range r.d.requests {
		tq := TraceRequest{ID: q.id, Created: q.created, Place: q.place, Skill: q.skill}
		if !q.asap {
			tq.WindowStart, tq.WindowEnd = q.windowStart, q.windowEnd
		}
		r.tr.Requests = append(r.tr.Requests, tq)
	}
}
