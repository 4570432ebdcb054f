package sim

import (
	"time"

	"github.com/onsite/onsite/geo"
)

// The offline model is the day as the hindsight figures see it: every
// request's time, place and length is known, and so is every technician's
// answer (wouldTake), with no answer delay. A technician (one slot per unit
// of capacity) serves a sequence of requests: they accept a request while on
// shift and once it is searching (its searchFrom), possibly while still busy
// with the previous one (as batch+chain does), set off when both the accept
// and the previous job are done, travel from the previous place (or home),
// wait for a window to open, and work the job's length. A plan holds only
// requests reached by their deadline: a late request is better left out.

// planSlot is one technician slot of a plan and the requests it serves, in
// order.
type planSlot struct {
	t   *simTech
	seq []*simRequest
}

// offlinePlan is a plan of the day in the offline model.
type offlinePlan struct {
	slots []*planSlot
}

// newPlan is an empty plan: one slot per technician and unit of capacity.
func newPlan(d *day) *offlinePlan {
	p := &offlinePlan{}
	for _, t := range d.techs {
		for range t.capacity {
			p.slots = append(p.slots, &planSlot{t: t})
		}
	}
	return p
}

// offlinePlanner plans in the offline model, with every technician's answer to
// every request drawn once.
type offlinePlanner struct {
	d     *day
	takes [][]bool // [technician][request]: would take it (wouldTake)
}

func newPlanner(d *day) *offlinePlanner {
	pl := &offlinePlanner{d: d, takes: make([][]bool, len(d.techs))}
	for i, t := range d.techs {
		pl.takes[i] = make([]bool, len(d.requests))
		for j, q := range d.requests {
			pl.takes[i][j] = d.wouldTake(t, q)
		}
	}
	return pl
}

func (pl *offlinePlanner) wouldTake(t *simTech, q *simRequest) bool { return pl.takes[t.idx][q.idx] }

// step is the technician's next arrival: serving q after being free at free
// in pos. ok is false when q cannot be reached by its deadline.
func (d *day) step(t *simTech, pos geo.Point, free time.Time, q *simRequest) (arrival time.Time, ok bool) {
	sla, lead := d.sc.Dispatch.SLA.Duration, d.sc.Dispatch.WindowLead.Duration
	accept := maxTime(q.searchFrom(lead), t.shiftStart)
	if !accept.Before(t.shiftEnd) {
		return time.Time{}, false
	}
	arrival = maxTime(accept, free).Add(d.travel(pos, q.place, t))
	if !q.asap && arrival.Before(q.windowStart) {
		arrival = q.windowStart
	}
	return arrival, !arrival.After(q.deadline(sla))
}

// feasible reports whether t can serve seq in order, each by its deadline,
// and when t is free after the last one.
func (pl *offlinePlanner) feasible(t *simTech, seq []*simRequest) (time.Time, bool) {
	pos, free := t.home, t.shiftStart
	for _, q := range seq {
		if !pl.wouldTake(t, q) {
			return time.Time{}, false
		}
		arrival, ok := pl.d.step(t, pos, free, q)
		if !ok {
			return time.Time{}, false
		}
		pos, free = q.place, arrival.Add(q.service)
	}
	return free, true
}

// value counts the ASAP and windowed requests the plan serves.
func (p *offlinePlan) value() (asap, windows int) {
	for _, s := range p.slots {
		for _, q := range s.seq {
			if q.asap {
				asap++
			} else {
				windows++
			}
		}
	}
	return asap, windows
}

// insertion is where q goes into a slot's sequence, and when the slot is
// free after its last job then (less is more room for others).
type insertion struct {
	at   int
	free time.Time
	ok   bool
}

// bestInsertion finds the position in seq where q fits and leaves t free
// the earliest.
func (pl *offlinePlanner) bestInsertion(t *simTech, seq []*simRequest, q *simRequest) insertion {
	var best insertion
	buf := make([]*simRequest, len(seq)+1)
	for at := 0; at <= len(seq); at++ {
		copy(buf, seq[:at])
		buf[at] = q
		copy(buf[at+1:], seq[at:])
		free, ok := pl.feasible(t, buf)
		if ok && (!best.ok || free.Before(best.free)) {
			best = insertion{at: at, free: free, ok: true}
		}
	}
	return best
}

func insertAt(seq []*simRequest, at int, q *simRequest) []*simRequest {
	out := make([]*simRequest, 0, len(seq)+1)
	out = append(out, seq[:at]...)
	out = append(out, q)
	return append(out, seq[at:]...)
}

func removeAt(seq []*simRequest, at int) []*simRequest {
	out := make([]*simRequest, 0, len(seq))
	out = append(out, seq[:at]...)
	return append(out, seq[at+1:]...)
}

// localSearchPasses bounds the local search: each pass tries every request
// left out once.
const localSearchPasses = 4

// improve is a local search from the plan p over requests (those p may
// serve): it takes each ASAP request p leaves out and tries to fit it in,
// directly (insert) or by moving one request of a slot to another slot
// (relocate, then insert in the room it left). A move is kept only when it
// serves one more ASAP request; no request p serves is ever left out, so the
// windows it keeps stay kept and the plan never gets worse. It is
// deterministic: requests and slots are tried in order.
func (pl *offlinePlanner) improve(p *offlinePlan, requests []*simRequest) {
	served := map[*simRequest]bool{}
	for _, s := range p.slots {
		for _, q := range s.seq {
			served[q] = true
		}
	}
	// slotsFor lists the slots whose technician would take the request.
	slotsFor := func(q *simRequest) []int {
		var out []int
		for i, s := range p.slots {
			if pl.wouldTake(s.t, q) {
				out = append(out, i)
			}
		}
		return out
	}
	for range localSearchPasses {
		improved := false
		for _, q := range requests {
			if !q.asap || served[q] {
				continue
			}
			if pl.fit(p, q, slotsFor(q)) {
				served[q], improved = true, true
			}
		}
		if !improved {
			return
		}
	}
}

// fit tries to serve q in one of the slots: directly, or by relocating one
// request of a slot into another slot first.
func (pl *offlinePlanner) fit(p *offlinePlan, q *simRequest, slots []int) bool {
	var best *planSlot
	var bestIns insertion
	for _, i := range slots {
		s := p.slots[i]
		if ins := pl.bestInsertion(s.t, s.seq, q); ins.ok && (!bestIns.ok || ins.free.Before(bestIns.free)) {
			best, bestIns = s, ins
		}
	}
	if best != nil {
		best.seq = insertAt(best.seq, bestIns.at, q)
		return true
	}
	for _, i := range slots {
		s := p.slots[i]
		for k, r := range s.seq {
			rest := removeAt(s.seq, k)
			ins := pl.bestInsertion(s.t, rest, q)
			if !ins.ok {
				continue
			}
			// r must go to another slot.
			for _, o := range p.slots {
				if o == s || !pl.wouldTake(o.t, r) {
					continue
				}
				if rIns := pl.bestInsertion(o.t, o.seq, r); rIns.ok {
					o.seq = insertAt(o.seq, rIns.at, r)
					s.seq = insertAt(rest, ins.at, q)
					return true
				}
			}
		}
	}
	return false
}
