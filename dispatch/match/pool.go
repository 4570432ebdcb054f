package match

import (
	"math"
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
// (held, for counts such as Around) by cell, and only those who can take
// work now (work: available, and under capacity or able to chain a next
// job), which is all a search ever needs to scan, by block: the cell one
// resolution coarser that holds their position, so that a search reads a few
// longer lists rather than many short ones.
type Pool struct {
	mu         sync.RWMutex
	resolution int
	blockRes   int // the work index's resolution
	skillIDs   map[string]int32
	held       []skillIndex // by skill id, by cell
	work       []skillIndex // by skill id, by block
	at         map[string]place
	inWork     map[string]bool
	byID       map[string]*Candidate
	maxSpeed   float64 // the fastest traveller ever put, for search bounds
	rings      *geo.RingCache
	walkOnly   bool // tests: always walk the rings
}

// place is where a candidate is indexed: their cell and block.
type place struct{ cell, block geo.Cell }

// skillIndex is one skill's technicians by cell or block (a technician with
// two skills sits in two), and how many, so a search can tell a sparse skill.
type skillIndex struct {
	byCell  map[geo.Cell][]member
	members int
}

// member is a technician in a skill's bucket with their certification for
// that skill, their cell and a copy of their position and travel, so the
// search checks the one and leaves out those too far away without reading
// the candidate.
type member struct {
	c    *Candidate
	pos  geo.Point     // c.Position, kept current by Move
	tr   geo.Traveller // c.Traveller, kept current by Update
	cell geo.Cell
	cert span // of the skill's certification
}

// span is an Interval as Unix nanoseconds, which a member holds in 16 bytes
// rather than 48: a search reads thousands of members, and their size is
// most of its memory traffic.
type span struct{ start, end int64 }

func spanOf(iv Interval) span { return span{unixNanos(iv.Start), unixNanos(iv.End)} }

// holds reports whether the span holds the instant t (Unix nanoseconds), as
// !t.Before(Start) && t.Before(End).
func (s span) holds(t int64) bool { return t >= s.start && t < s.end }

// unixNanos is t in Unix nanoseconds, clamped to what an int64 holds (the
// zero time is the earliest, so a zero End holds nothing).
func unixNanos(t time.Time) int64 {
	switch {
	case t.Before(minNanoTime):
		return math.MinInt64
	case t.After(maxNanoTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

var minNanoTime, maxNanoTime = time.Unix(0, math.MinInt64+1), time.Unix(0, math.MaxInt64)

// ringCacheCells bounds the rings a pool remembers (8 bytes a cell).
const ringCacheCells = 4 << 20

// NewPool returns an empty pool at the resolution.
func NewPool(resolution int) *Pool {
	blockRes := resolution - 1
	if geo.RingMinDistanceKm(blockRes, 3) == 0 {
		blockRes = resolution // no ring geometry for that resolution: no blocks
	}
	return &Pool{resolution: resolution, blockRes: blockRes, skillIDs: map[string]int32{}, at: map[string]place{},
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

// placeOf is where a candidate at pos is indexed.
func (p *Pool) placeOf(pos geo.Point) place {
	at := place{cell: geo.CellOf(pos, p.resolution)}
	at.block = at.cell
	if p.blockRes != p.resolution {
		at.block = geo.CellOf(pos, p.blockRes)
	}
	return at
}

// Put adds or replaces a candidate (by TechnicianID), moving it to the cell of
// its position.
func (p *Pool) Put(c Candidate) {
	at := p.placeOf(c.Position)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.removeLocked(c.TechnicianID)
	cp := c
	p.noteSpeed(&cp)
	p.byID[c.TechnicianID] = &cp
	p.at[c.TechnicianID] = at
	p.add(false, at, &cp)
	if takesWork(&cp) {
		p.inWork[c.TechnicianID] = true
		p.add(true, at, &cp)
	}
}

// noteSpeed keeps maxSpeed at least c's speed (50 km/h for one without).
func (p *Pool) noteSpeed(c *Candidate) {
	speed := c.Traveller.SpeedKmh
	if speed <= 0 {
		speed = 50
	}
	p.maxSpeed = max(p.maxSpeed, speed)
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
	at := p.at[id]
	p.remove(false, at, c)
	if p.inWork[id] {
		p.remove(true, at, c)
	}
	delete(p.byID, id)
	delete(p.at, id)
	delete(p.inWork, id)
	return true
}

// Move updates a candidate's position, the hot path of location pings.
func (p *Pool) Move(id string, to geo.Point) bool {
	at := p.placeOf(to)
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.byID[id]
	if !ok {
		return false
	}
	c.Position, c.HasPosition = to, true
	if old := p.at[id]; old != at {
		p.remove(false, old, c)
		p.add(false, at, c)
		if p.inWork[id] {
			p.remove(true, old, c)
			p.add(true, at, c)
		}
		p.at[id] = at
	} else {
		p.refresh(false, at, c)
		if p.inWork[id] {
			p.refresh(true, at, c)
		}
	}
	return true
}

// refresh copies c's position and travel into its members at the place.
func (p *Pool) refresh(work bool, at place, c *Candidate) {
	idx, key := p.index(work, at)
	for skill := range c.Certs {
		if id, ok := p.skillIDs[skill]; ok {
			list := idx[id].byCell[key]
			for i := range list {
				if list[i].c == c {
					list[i].pos, list[i].tr = c.Position, c.Traveller
					break
				}
			}
		}
	}
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
	pos, has, certs, tr := c.Position, c.HasPosition, c.Certs, c.Traveller
	f(c)
	c.Position, c.HasPosition, c.Certs = pos, has, certs
	if c.Traveller != tr {
		p.noteSpeed(c)
		p.refresh(false, p.at[id], c)
		if p.inWork[id] {
			p.refresh(true, p.at[id], c)
		}
	}
	if now := takesWork(c); now != p.inWork[id] {
		if now {
			p.add(true, p.at[id], c)
			p.inWork[id] = true
		} else {
			p.remove(true, p.at[id], c)
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

// index is the held or the work index, and the key of at in it.
func (p *Pool) index(work bool, at place) ([]skillIndex, geo.Cell) {
	if work {
		return p.work, at.block
	}
	return p.held, at.cell
}

func (p *Pool) add(work bool, at place, c *Candidate) {
	for skill, cert := range c.Certs {
		id := p.skillID(skill) // may grow the indexes: before reading them
		idx, key := p.index(work, at)
		idx[id].members++
		m := idx[id].byCell
		m[key] = append(m[key], member{c, c.Position, c.Traveller, at.cell, spanOf(cert)})
	}
}

func (p *Pool) remove(work bool, at place, c *Candidate) {
	for skill := range c.Certs {
		id, ok := p.skillIDs[skill]
		if !ok {
			continue
		}
		idx, key := p.index(work, at)
		m := idx[id].byCell
		list := m[key]
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
			delete(m, key)
		} else {
			m[key] = list
		}
	}
}

// Search returns the best want eligible candidates in reach, ranked exactly
// as Rank would rank them: those whose cell lies at most
// geo.MaxRing(resolution, reachKm) rings from the job's cell. exclude marks
// technicians to skip for this job. It walks the rings of blocks outward
// from the job's place; once want are found, only those who could still
// arrive within the want-th soonest arrival's 2-minute bucket can rank
// among them: anyone farther than the fastest traveller in the pool drives
// in that time is skipped without reading them, and the walk stops at the
// first ring of blocks beyond that distance. The bound assumes eta grows
// with distance and shrinks with speed, as geo.StraightLine does.
func (p *Pool) Search(j Job, want int, reachKm float64, exclude func(id string) bool, eta geo.ETA, now time.Time) []Scored {
	if want <= 0 {
		return nil
	}
	origin := geo.CellOf(j.Place, p.resolution)
	maxK := geo.MaxRing(p.resolution, reachKm)
	// The blocks that can hold a cell in reach, and who is surely in reach:
	// ring maxK+1 begins no nearer than RingMinDistanceKm from any point of
	// the centre cell; for anyone farther H3 is asked.
	lastK, surelyIn := maxK, math.Inf(1)
	originBlock := origin
	if p.blockRes != p.resolution {
		originBlock = geo.CellOf(j.Place, p.blockRes)
		lastK = geo.MaxRing(p.blockRes, geo.RingMaxDistanceKm(p.resolution, maxK))
		surelyIn = geo.RingMinDistanceKm(p.resolution, maxK+1) * 1000 * 0.99
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	skill, known := p.skillIDs[j.Skill]
	if !known {
		return nil
	}
	blocks := p.work[skill].byCell
	sc := scratchPool.Get().(*scratch)
	defer sc.release()
	s := search{scratch: sc, j: &j, want: want, exclude: exclude, eta: eta, now: now, nowN: unixNanos(now), origin: origin, maxK: maxK,
		surelyIn: surelyIn, fastest: geo.Traveller{Mode: "car", SpeedKmh: p.maxSpeed}, farM: math.Inf(1), farLat: math.Inf(1)}
	s.reach, _ = eta.(geo.Reach)
	if few := p.work[skill].members; !p.walkOnly && few <= sparseMembers && 3*lastK*(lastK+1)+1 > 4*len(blocks) {
		// Few can take work for this skill and the rings are wide: look at
		// all their blocks instead of walking mostly empty ones. The answer
		// is the same: the walk's early stop only skips those who cannot
		// rank among the best want.
		s.surelyIn = geo.RingMinDistanceKm(p.resolution, maxK+1) * 1000 * 0.99
		for _, list := range blocks {
			for i := range list {
				s.visit(&list[i])
			}
		}
		return s.best()
	}
	seen := 0
	for k := 0; k <= lastK && seen < len(blocks); k++ {
		if geo.RingMinDistanceKm(p.blockRes, k)*1000 > s.farM {
			break // all of ring k and beyond are farther than anyone who can rank
		}
		for _, block := range p.rings.Ring(originBlock, k) {
			list, ok := blocks[block]
			if !ok {
				continue
			}
			seen++
			for i := range list {
				s.visit(&list[i])
			}
		}
	}
	return s.best()
}

// sparseMembers is how few technicians of a skill make a search look at
// all their blocks rather than walk the rings.
const sparseMembers = 256

// search is one Search's state: the eligible candidates found with their
// arrival, and the want soonest arrival buckets among them, which bound who
// can still rank.
type search struct {
	*scratch
	j       *Job
	want    int
	exclude func(id string) bool
	eta     geo.ETA
	now     time.Time
	nowN    int64    // now in Unix nanoseconds
	origin  geo.Cell // the job's cell
	maxK    int      // the rings in reach
	// surelyIn is how near a member is surely in reach, without asking H3.
	surelyIn float64
	fastest  geo.Traveller
	farM     float64 // no one farther can rank (+Inf until want are found)
	farLat   float64 // geo.LatSpanDeg(farM): a cheap first test
	// limit is the arrival that cannot rank (once want are found), and
	// reach, if the travel model has it, tells each member's own farM.
	limit time.Duration
	reach geo.Reach
}

// scratch is what a search needs memory for, reused across searches (a
// sync.Pool, so concurrent readers each have their own).
type scratch struct {
	found   []hit
	buckets []time.Duration // the want soonest arrival buckets found, ascending
	keys    []keyed
	top     []int32
}

// keyed is a found candidate's rank key, chances and index in found.
type keyed struct {
	rankKey
	chances
	hit int
}

// hit is an eligible candidate and its predicted arrival.
type hit struct {
	c  *Candidate
	in time.Duration
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// release clears what points into the pool and gives the scratch back.
func (sc *scratch) release() {
	clear(sc.found)
	clear(sc.keys)
	sc.found, sc.buckets, sc.keys, sc.top = sc.found[:0], sc.buckets[:0], sc.keys[:0], sc.top[:0]
	scratchPool.Put(sc)
}

// visit keeps m's technician if they are eligible and could rank.
func (s *search) visit(m *member) {
	if !m.cert.holds(s.nowN) || math.Abs(m.pos.Lat-s.j.Place.Lat) > s.farLat ||
		(s.limit > 0 && !geo.WithinM(s.j.Place, m.pos, s.farM)) {
		return
	}
	if s.reach != nil && s.limit > 0 && !geo.WithinM(s.j.Place, m.pos, s.reach.ReachM(s.limit, m.tr)) {
		return // too far for their own speed
	}
	// Within farM ≤ surelyIn is in reach.
	if s.farM > s.surelyIn && !geo.WithinM(s.j.Place, m.pos, s.surelyIn) {
		if k, ok := geo.GridDistance(s.origin, m.cell); !ok || k > s.maxK {
			return
		}
	}
	c := m.c
	if (s.exclude != nil && s.exclude(c.TechnicianID)) || eligible(s.j, c, false, s.now) != ReasonOK {
		return
	}
	in := arrivalIn(s.j, c, s.eta, s.now)
	if !fitsBookings(s.j, c, in, s.eta, s.now) {
		return
	}
	b := in / etaBucket
	n := len(s.buckets)
	if n == s.want && b > s.buckets[n-1] {
		return // later than the want-th bucket: cannot rank
	}
	s.found = append(s.found, hit{c, in})
	// Insert b in order, dropping the last once want are kept.
	if n < s.want {
		s.buckets = append(s.buckets, b)
	} else if b == s.buckets[n-1] {
		return // the bound stays
	}
	last := s.buckets[len(s.buckets)-1]
	i := n - 1
	if n == s.want {
		i--
	}
	for ; i >= 0 && s.buckets[i] > b; i-- {
		s.buckets[i+1] = s.buckets[i]
	}
	s.buckets[i+1] = b
	if len(s.buckets) == s.want && (n < s.want || s.buckets[n-1] != last) {
		s.limit = (s.buckets[s.want-1] + 1) * etaBucket
		s.farM = s.reachM(s.limit)
		s.farLat = geo.LatSpanDeg(s.farM)
	}
}

// reachM is a distance beyond which the fastest traveller takes at least
// limit to the job (+Inf if none within 20,000 km): the model's own answer
// (geo.Reach), or else found by bisection, to the metre, on the model.
func (s *search) reachM(limit time.Duration) float64 {
	if s.reach != nil {
		return s.reach.ReachM(limit, s.fastest)
	}
	at := func(m float64) geo.Point { return geo.Offset(s.j.Place, m, 0) }
	slow := func(m float64) bool { return s.eta.Estimate(s.j.Place, at(m), s.fastest) >= limit }
	lo, hi := 0.0, 1000.0
	for !slow(hi) {
		if hi > 2e7 {
			return math.Inf(1)
		}
		lo, hi = hi, 2*hi
	}
	for hi-lo > 1 {
		if mid := (lo + hi) / 2; slow(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	// The model sees the great-circle distance to the point, not hi.
	return geo.DistanceM(s.j.Place, at(hi))
}

// best ranks what the search found and returns the best want, in Rank's
// order. Only those in the want-th soonest arrival's bucket or an earlier
// one can rank among the best want: the rest are not ranked. The best want
// are picked by insertion (a few dozen found, ten wanted: cheaper than
// sorting them all) and only they are scored in full (under the read lock:
// the candidates may change once it ends).
func (s *search) best() []Scored {
	for i, h := range s.found {
		if len(s.buckets) < s.want || h.in/etaBucket <= s.buckets[s.want-1] {
			ch := chanceIn(s.j, h.c, h.in, s.now)
			s.keys = append(s.keys, keyed{keyKnown(h.c, h.in, s.now, ch), ch, i})
		}
	}
	top := s.top[:0] // indexes into keys, best first
	for i := range s.keys {
		k := &s.keys[i].rankKey
		n := len(top)
		if n == s.want && compareKeys(*k, s.keys[top[n-1]].rankKey) >= 0 {
			continue
		}
		if n < s.want {
			top = append(top, 0)
			n++
		}
		at := n - 1
		for ; at > 0 && compareKeys(*k, s.keys[top[at-1]].rankKey) < 0; at-- {
			top[at] = top[at-1]
		}
		top[at] = int32(i)
	}
	s.top = top
	out := make([]Scored, len(top))
	for i, t := range top {
		k := &s.keys[t]
		h := s.found[k.hit]
		out[i] = scoreKnown(s.j, h.c, h.in, s.now, k.chances)
	}
	return out
}

// walk visits the members of buckets certified at now, ring by ring outward
// from origin, up to ring last() (asked after every ring, so a search can
// narrow it) or until every non-empty bucket has been seen; ringDone, if not
// nil, runs after each ring with its distance.
func (p *Pool) walk(buckets map[geo.Cell][]member, origin geo.Cell, now time.Time, last func() int, visit func(c *Candidate), ringDone func(k int)) {
	nowN := unixNanos(now)
	seen := 0
	for k := 0; k <= last() && seen < len(buckets); k++ {
		for _, cell := range p.rings.Ring(origin, k) {
			list, ok := buckets[cell]
			if !ok {
				continue
			}
			seen++
			for i := range list {
				if list[i].cert.holds(nowN) {
					visit(list[i].c)
				}
			}
		}
		if ringDone != nil {
			ringDone(k)
		}
	}
}

// Around counts the technicians certified now for skill within radiusKm of
// place: Free are on duty with room for a job, inside a shift and not on a
// break (one deciding on an offer counts: they may well say yes), Busy are
// on a job and at capacity. It is what a customer's expected wait is made of.
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
		case c.Available && inShift(c.Shifts, now) && !inBreak(c.Breaks, now):
			out.Free++
		}
	}, nil)
	return out
}

// Around is what Pool.Around counts.
type Around struct{ Free, Busy int }
