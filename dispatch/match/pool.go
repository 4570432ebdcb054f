package match

import (
	"slices"
	"sync"
	"time"

	"github.com/onsite/onsite/geo"
)

// This file is part of the pure core: an in-process index of candidates by
// H3 cell. The simulator uses it as its whole world; the server keeps one
// per process (Fleet), correct when stale because PostgreSQL is the truth and
// every accept is checked there.

// Pool holds candidates by skill and cell at one resolution; it is safe for
// concurrent use. Two indexes are kept: every candidate with a position
// (held, for counts such as Around) and only those who can take work now
// (work: available, and under capacity or able to chain a next job), which
// is all a search ever needs to scan.
type Pool struct {
	mu         sync.RWMutex
	resolution int
	skillIDs   map[string]int32
	held       []skillIndex // by skill id
	work       []skillIndex // by skill id
	cellOf     map[string]geo.Cell
	inWork     map[string]bool
	byID       map[string]*Candidate
	maxSpeed   float64 // the fastest traveller ever put, for search bounds
	rings      *geo.RingCache
	walkOnly   bool // tests: always walk the rings
}

// skillIndex is one skill's technicians by cell (a technician with two
// skills sits in two), and how many cells hold any, so a search can stop
// when it has seen them all.
type skillIndex struct {
	byCell  map[geo.Cell][]member
	members int
}

// member is a technician in a skill's bucket with their certification for
// that skill, so the search checks it without a map lookup.
type member struct {
	c    *Candidate
	cert Interval
}

// ringCacheCells bounds the rings a pool remembers (8 bytes a cell).
const ringCacheCells = 4 << 20

// NewPool returns an empty pool at the resolution.
func NewPool(resolution int) *Pool {
	return &Pool{resolution: resolution, skillIDs: map[string]int32{}, cellOf: map[string]geo.Cell{},
		inWork: map[string]bool{}, byID: map[string]*Candidate{}, rings: geo.NewRingCache(ringCacheCells)}
}

// Len is the number of candidates held.
func (p *Pool) Len() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.byID)
}

// takesWork reports whether c could be eligible for some job now: anyone
// else is left out of the search's buckets (Eligible would refuse them).
func takesWork(c *Candidate) bool {
	return c.Available && (c.ActiveJobs < c.Capacity || (!c.Queued && !c.FreeAt.IsZero()))
}

// Put adds or replaces a candidate (by TechnicianID), moving it to the cell of
// its position.
func (p *Pool) Put(c Candidate) {
	cell := geo.CellOf(c.Position, p.resolution)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.removeLocked(c.TechnicianID)
	cp := c
	speed := c.Traveller.SpeedKmh
	if speed <= 0 {
		speed = 50
	}
	p.maxSpeed = max(p.maxSpeed, speed)
	p.byID[c.TechnicianID] = &cp
	p.cellOf[c.TechnicianID] = cell
	p.add(false, cell, &cp)
	if takesWork(&cp) {
		p.inWork[c.TechnicianID] = true
		p.add(true, cell, &cp)
	}
}

// Remove takes a candidate out of the pool.
func (p *Pool) Remove(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.removeLocked(id)
}

func (p *Pool) removeLocked(id string) bool {
	c, ok := p.byID[id]
	if !ok {
		return false
	}
	cell := p.cellOf[id]
	p.remove(false, cell, c)
	if p.inWork[id] {
		p.remove(true, cell, c)
	}
	delete(p.byID, id)
	delete(p.cellOf, id)
	delete(p.inWork, id)
	return true
}

// Move updates a candidate's position, the hot path of location pings.
func (p *Pool) Move(id string, to geo.Point) bool {
	cell := geo.CellOf(to, p.resolution)
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.byID[id]
	if !ok {
		return false
	}
	c.Position, c.HasPosition = to, true
	if old := p.cellOf[id]; old != cell {
		p.remove(false, old, c)
		p.add(false, cell, c)
		if p.inWork[id] {
			p.remove(true, old, c)
			p.add(true, cell, c)
		}
		p.cellOf[id] = cell
	}
	return true
}

// Update changes a held candidate in place (availability, jobs, …); to
// change its position or skills, use Move or Put.
func (p *Pool) Update(id string, f func(c *Candidate)) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.byID[id]
	if !ok {
		return false
	}
	pos, has, certs := c.Position, c.HasPosition, c.Certs
	f(c)
	c.Position, c.HasPosition, c.Certs = pos, has, certs
	if now := takesWork(c); now != p.inWork[id] {
		if now {
			p.add(true, p.cellOf[id], c)
			p.inWork[id] = true
		} else {
			p.remove(true, p.cellOf[id], c)
			delete(p.inWork, id)
		}
	}
	return true
}

// Get returns a copy of a candidate.
func (p *Pool) Get(id string) (Candidate, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	c, ok := p.byID[id]
	if !ok {
		return Candidate{}, false
	}
	return *c, true
}

func (p *Pool) skillID(skill string) int32 {
	id, ok := p.skillIDs[skill]
	if !ok {
		id = int32(len(p.skillIDs))
		p.skillIDs[skill] = id
		p.held = append(p.held, skillIndex{byCell: map[geo.Cell][]member{}})
		p.work = append(p.work, skillIndex{byCell: map[geo.Cell][]member{}})
	}
	return id
}

// index is the held or the work index.
func (p *Pool) index(work bool) []skillIndex {
	if work {
		return p.work
	}
	return p.held
}

func (p *Pool) add(work bool, cell geo.Cell, c *Candidate) {
	for skill, cert := range c.Certs {
		id := p.skillID(skill) // may grow the indexes: before reading them
		idx := p.index(work)
		idx[id].members++
		m := idx[id].byCell
		m[cell] = append(m[cell], member{c, cert})
	}
}

func (p *Pool) remove(work bool, cell geo.Cell, c *Candidate) {
	for skill := range c.Certs {
		id, ok := p.skillIDs[skill]
		if !ok {
			continue
		}
		idx := p.index(work)
		m := idx[id].byCell
		list := m[cell]
		for i, x := range list {
			if x.c == c {
				idx[id].members--
				list[i] = list[len(list)-1]
				list[len(list)-1] = member{}
				list = list[:len(list)-1]
				break
			}
		}
		if len(list) == 0 {
			delete(m, cell)
		} else {
			m[cell] = list
		}
	}
}

// Search walks rings outward from the job's cell and returns the best want
// eligible candidates, ranked exactly as Rank would rank every candidate in
// reach: once want are found it keeps walking while a ring could still hold
// someone who arrives sooner (bounded by the fastest traveller in the pool),
// and stops at reachKm. exclude marks technicians to skip for this job. The
// bound assumes eta grows with distance and shrinks with speed, as
// geo.StraightLine does.
func (p *Pool) Search(j Job, want int, reachKm float64, exclude func(id string) bool, eta geo.ETA, now time.Time) []Scored {
	origin := geo.CellOf(j.Place, p.resolution)
	maxK := geo.MaxRing(p.resolution, reachKm)
	p.mu.RLock()
	defer p.mu.RUnlock()
	skill, known := p.skillIDs[j.Skill]
	if !known {
		return nil
	}
	buckets := p.work[skill].byCell
	fastest := geo.Traveller{Mode: "car", SpeedKmh: p.maxSpeed}
	var found []*Candidate
	stopAt, bounded := maxK, false
	keep := func(c *Candidate) {
		if (exclude == nil || !exclude(c.TechnicianID)) && eligible(&j, c, false, now) == ReasonOK {
			found = append(found, c)
		}
	}
	if few := p.work[skill].members; !p.walkOnly && few <= sparseMembers && 3*maxK*(maxK+1)+1 > 4*len(buckets) {
		// Few can take work for this skill and the rings are wide: look at
		// their buckets instead of walking mostly empty cells. The answer is
		// the same: the walk's early stop only skips those who cannot rank
		// among the best want.
		p.within(buckets, origin, j.Place, maxK, now, keep)
		return p.best(j, found, want, eta, now)
	}
	p.walk(buckets, origin, now, func() int { return stopAt }, keep, func(k int) {
		if bounded || len(found) < want {
			return
		}
		bounded = true
		// The want-th soonest arrival so far bounds how far to look.
		etas := make([]time.Duration, len(found))
		for i, c := range found {
			etas[i] = arrivalIn(j, *c, eta, now)
		}
		slices.Sort(etas)
		bound := etas[want-1]/etaBucket*etaBucket + etaBucket
		for k2 := k + 1; k2 <= maxK; k2++ {
			edge := geo.Offset(j.Place, geo.RingMinDistanceKm(p.resolution, k2)*1000, 0)
			if eta.Estimate(j.Place, edge, fastest) > bound {
				stopAt = k2 - 1
				break
			}
		}
	})
	return p.best(j, found, want, eta, now)
}

// sparseMembers is how few technicians of a skill make a search look at
// their buckets rather than walk the rings.
const sparseMembers = 256

// within visits the members of buckets certified at now whose cell lies at
// most maxK rings from origin (place's cell). Ring maxK+1 begins no nearer
// than RingMinDistanceKm from any point of the centre cell, so a bucket with
// a member nearer than that is in; only for the others H3 is asked.
func (p *Pool) within(buckets map[geo.Cell][]member, origin geo.Cell, place geo.Point, maxK int, now time.Time, visit func(c *Candidate)) {
	surelyIn := geo.RingMinDistanceKm(p.resolution, maxK+1) * 1000 * 0.99
	for cell, list := range buckets {
		if len(list) == 0 || !list[0].c.HasPosition || !geo.WithinM(place, list[0].c.Position, surelyIn) {
			if k, ok := geo.GridDistance(origin, cell); !ok || k > maxK {
				continue
			}
		}
		for _, m := range list {
			if !now.Before(m.cert.Start) && now.Before(m.cert.End) {
				visit(m.c)
			}
		}
	}
}

// best ranks what a search found and returns the best want, in Rank's order.
func (p *Pool) best(j Job, found []*Candidate, want int, eta geo.ETA, now time.Time) []Scored {
	// Only those in the want-th soonest arrival's 2-minute bucket or an
	// earlier one can rank among the best want: the rest are not scored.
	if len(found) > want {
		etas := make([]time.Duration, len(found))
		for i, c := range found {
			etas[i] = arrivalIn(j, *c, eta, now) / etaBucket
		}
		cut := slices.Clone(etas)
		slices.Sort(cut)
		keep := found[:0]
		for i, c := range found {
			if etas[i] <= cut[want-1] {
				keep = append(keep, c)
			}
		}
		found = keep
	}
	// Scored under the read lock (the candidates may change once it ends),
	// ordered by pointer, and only the best want copied out.
	scored := make([]Scored, len(found))
	order := make([]*Scored, len(found))
	for i, c := range found {
		scored[i] = score(j, *c, eta, now)
		order[i] = &scored[i]
	}
	slices.SortFunc(order, compareScoredP)
	out := make([]Scored, min(want, len(order)))
	for i := range out {
		out[i] = *order[i]
	}
	return out
}

// walk visits the members of buckets certified at now, ring by ring outward
// from origin, up to ring last() (asked after every ring, so a search can
// narrow it) or until every non-empty bucket has been seen; ringDone, if not
// nil, runs after each ring with its distance.
func (p *Pool) walk(buckets map[geo.Cell][]member, origin geo.Cell, now time.Time, last func() int, visit func(c *Candidate), ringDone func(k int)) {
	seen := 0
	for k := 0; k <= last() && seen < len(buckets); k++ {
		for _, cell := range p.rings.Ring(origin, k) {
			list, ok := buckets[cell]
			if !ok {
				continue
			}
			seen++
			for _, m := range list {
				if !now.Before(m.cert.Start) && now.Before(m.cert.End) {
					visit(m.c)
				}
			}
		}
		if ringDone != nil {
			ringDone(k)
		}
	}
}

// Around counts the technicians certified now for skill within radiusKm of
// place: Free are on duty with room for a job and inside a shift (one
// deciding on an offer counts: they may well say yes), Busy are on a job
// and at capacity. It is what a customer's expected wait is made of.
func (p *Pool) Around(place geo.Point, skill string, radiusKm float64, now time.Time) Around {
	var out Around
	origin := geo.CellOf(place, p.resolution)
	maxK := geo.MaxRing(p.resolution, radiusKm)
	p.mu.RLock()
	defer p.mu.RUnlock()
	id, known := p.skillIDs[skill]
	if !known {
		return out
	}
	buckets := p.held[id].byCell
	p.walk(buckets, origin, now, func() int { return maxK }, func(c *Candidate) {
		if !c.HasPosition || !geo.WithinM(c.Position, place, radiusKm*1000) {
			return
		}
		switch {
		case c.ActiveJobs >= c.Capacity:
			out.Busy++
		case c.Available && inShift(c.Shifts, now):
			out.Free++
		}
	}, nil)
	return out
}

// Around is what Pool.Around counts.
type Around struct{ Free, Busy int }
