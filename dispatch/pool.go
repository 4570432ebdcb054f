package dispatch

import (
	"slices"
	"sync"
	"time"

	"github.com/onsite/onsite/geo"
)

// This file is part of the pure core: an in-process index of candidates by
// H3 cell. The simulator uses it as its whole world; a server may use it as an
// accelerator, correct when stale because PostgreSQL is the truth and every
// accept is checked there.

// Pool holds candidates by cell and skill at one resolution; it is safe for
// concurrent use.
type Pool struct {
	mu         sync.RWMutex
	resolution int
	byCell     map[cellSkill][]*Candidate
	buckets    map[int32]int // skill → non-empty buckets, so a search can stop when it has seen them all
	skillIDs   map[string]int32
	cellOf     map[string]geo.Cell
	byID       map[string]*Candidate
	maxSpeed   float64 // the fastest traveller ever put, for search bounds
}

// cellSkill is a bucket of the index: the technicians in one cell certified
// for one skill (a technician with two skills sits in two buckets).
type cellSkill struct {
	cell  geo.Cell
	skill int32
}

// NewPool returns an empty pool at the resolution.
func NewPool(resolution int) *Pool {
	return &Pool{resolution: resolution, byCell: map[cellSkill][]*Candidate{}, buckets: map[int32]int{},
		skillIDs: map[string]int32{}, cellOf: map[string]geo.Cell{}, byID: map[string]*Candidate{}}
}

// Len is the number of candidates held.
func (p *Pool) Len() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.byID)
}

// Put adds or replaces a candidate (by TechnicianID), moving it to the cell of
// its position.
func (p *Pool) Put(c Candidate) {
	cell := geo.CellOf(c.Position, p.resolution)
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.byID[c.TechnicianID]; ok {
		p.removeFromCell(p.cellOf[c.TechnicianID], old)
	}
	cp := c
	speed := c.Traveller.SpeedKmh
	if speed <= 0 {
		speed = 50
	}
	p.maxSpeed = max(p.maxSpeed, speed)
	p.byID[c.TechnicianID] = &cp
	p.cellOf[c.TechnicianID] = cell
	p.addToCell(cell, &cp)
}

// Remove takes a candidate out of the pool.
func (p *Pool) Remove(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.byID[id]
	if ok {
		p.removeFromCell(p.cellOf[id], c)
		delete(p.byID, id)
		delete(p.cellOf, id)
	}
	return ok
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
		p.removeFromCell(old, c)
		p.cellOf[id] = cell
		p.addToCell(cell, c)
	}
	return true
}

// Update changes a held candidate in place (availability, jobs, …); to
// change its position or skills, use Move or Put.
func (p *Pool) Update(id string, f func(c *Candidate)) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.byID[id]
	if ok {
		pos, certs := c.Position, c.Certs
		f(c)
		c.Position, c.Certs = pos, certs
	}
	return ok
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
	}
	return id
}

func (p *Pool) addToCell(cell geo.Cell, c *Candidate) {
	for skill := range c.Certs {
		k := cellSkill{cell, p.skillID(skill)}
		if len(p.byCell[k]) == 0 {
			p.buckets[k.skill]++
		}
		p.byCell[k] = append(p.byCell[k], c)
	}
}

func (p *Pool) removeFromCell(cell geo.Cell, c *Candidate) {
	for skill := range c.Certs {
		k := cellSkill{cell, p.skillID(skill)}
		list := p.byCell[k]
		for i, x := range list {
			if x.TechnicianID == c.TechnicianID {
				list[i] = list[len(list)-1]
				list = list[:len(list)-1]
				break
			}
		}
		if len(list) == 0 {
			delete(p.byCell, k)
			p.buckets[k.skill]--
		} else {
			p.byCell[k] = list
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
	var found []Candidate
	p.mu.RLock()
	skill, known := p.skillIDs[j.Skill]
	if !known {
		p.mu.RUnlock()
		return nil
	}
	fastest := geo.Traveller{Mode: "car", SpeedKmh: p.maxSpeed}
	stopAt, bounded := maxK, false
	seen, total := 0, p.buckets[skill]
	for k := 0; k <= stopAt && seen < total; k++ {
		for _, cell := range geo.Ring(origin, k) {
			list := p.byCell[cellSkill{cell, skill}]
			if len(list) > 0 {
				seen++
			}
			for _, c := range list {
				if exclude != nil && exclude(c.TechnicianID) {
					continue
				}
				if Eligible(j, *c, now) == ReasonOK {
					found = append(found, *c)
				}
			}
		}
		if !bounded && len(found) >= want {
			bounded = true
			// The want-th soonest arrival so far bounds how far to look.
			etas := make([]time.Duration, len(found))
			for i, c := range found {
				etas[i] = arrivalIn(j, c, eta, now)
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
		}
	}
	p.mu.RUnlock()
	ranked := rankEligible(j, found, eta, now)
	if len(ranked) > want {
		ranked = ranked[:want]
	}
	return ranked
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
	for k := 0; k <= maxK; k++ {
		for _, cell := range geo.Ring(origin, k) {
			for _, c := range p.byCell[cellSkill{cell, id}] {
				if !certified(c.Certs, skill, now) || !c.HasPosition || geo.DistanceM(c.Position, place) > radiusKm*1000 {
					continue
				}
				switch {
				case c.ActiveJobs >= c.Capacity:
					out.Busy++
				case c.Available && inShift(c.Shifts, now):
					out.Free++
				}
			}
		}
	}
	return out
}

// Around is what Pool.Around counts.
type Around struct{ Free, Busy int }
