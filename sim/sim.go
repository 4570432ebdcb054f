package sim

import (
	"cmp"
	"container/heap"
	"fmt"
	"slices"
	"time"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/dispatch/match"
	"github.com/onsite/onsite/geo"
)

// answerSample is how many of the latest answers the typical answer time is
// learned from (as in the server).
const answerSample = 200

// retryEvery is how soon a request nobody could take is searched again (as
// in the server).
const retryEvery = 30 * time.Second

// maxSearchKm is the widest search (the server's default).
const maxSearchKm = 40

// expiredFor is how long a technician whose offer expired is not asked
// again for the same request (as in the server).
const expiredFor = 10 * time.Minute

type eventKind int

const (
	evSearch     eventKind = iota // a request starts searching
	evRetry                       // search again after nobody was found
	evAnswer                      // a technician answers an offer
	evExpire                      // an offer's time is up
	evArrive                      // the technician is on site
	evDone                        // the job is finished
	evDrop                        // the technician gives the job back
	evGiveUp                      // the request's give-up time
	evShift                       // a shift starts or ends
	evBatch                       // the batch strategy's tick
	evChainCheck                  // a chained job whose technician overran is released
	evOnline                      // an off-duty technician who was asked comes online
)

type event struct {
	at    time.Time
	seq   int
	kind  eventKind
	req   *reqState
	tech  *techState
	offer *offerState
}

type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

type techState struct {
	*simTech
	// shiftStart and shiftEnd shadow the drawn shift: an off-duty
	// technician who comes online gets one in this run only.
	shiftStart time.Time
	shiftEnd   time.Time
	offDuty    bool // one of the day's off-duty technicians (call-out runs)
	asked      bool // an off-duty technician already asked to come online
	pos        geo.Point
	active     int
	freeAt     time.Time // predicted end of the current job (the dispatcher's estimate)
	next       *reqState // a chained job taken while busy
	deciding   *offerState
	sent       int
	accepted   int
	idleFrom   time.Time
	cand       match.Candidate // what the pool holds for it
	cell       geo.Cell        // of pos
	// blockedUntil: since its last change in the pool, t is ineligible for
	// every request until then (zero: not known to be).
	blockedUntil time.Time
}

type reqState struct {
	*simRequest
	state     dispatch.State
	tech      *techState
	pending   []*offerState
	declined  map[string]bool
	expiredAt map[string]time.Time
	round     int
	giveUpAt  time.Time  // searching stops here (extended after a drop, as in the server)
	searching bool       // in the batch queue
	atRisk    bool       // debounced as in the server (match.RiskPolicy)
	riskSince time.Time  // when atRisk was raised
	level     match.Step // furthest escalation step taken (match.Escalation)
	calledOut bool       // off-duty technicians were asked to come online for it
	onTime    bool       // an ASAP request reached within the SLA
	w         reqWatch   // who may be eligible for it (see watch.go)
	idx       int        // in run.reqs
	cell      geo.Cell   // of place
}

type offerState struct {
	req     *reqState
	tech    *techState
	sent    time.Time
	open    bool
	answer  answer
	expires time.Time
}

// run is one strategy over one day.
type run struct {
	d        *day
	strategy string
	batch    time.Duration
	chain    time.Duration
	overlap  time.Duration
	callOut  bool // ask off-duty technicians near a request at risk to come online
	offDuty  []*techState
	policy   match.BatchPolicy
	answers  []time.Duration // the latest answer delays
	sla      time.Duration
	eta      geo.StraightLine
	now      time.Time
	queue    eventQueue
	seq      int
	pool     *match.Pool
	techs    []*techState
	reqs     []*reqState
	res      Result
	progress func(float64)
	tr       *Trace
	// exhaustive (tests only) searches every waiting request every time,
	// as the simulator did before it was incremental: the reference.
	exhaustive bool
	bySkill    map[string][]*techState // the technicians certified for each skill
	watching   map[string][]*reqState  // the watched requests, by skill
	never      time.Time               // after every event of the run
	maxK       int                     // the widest search's rings
	ringMin    []float64               // geo.RingMinDistanceKm by ring, to maxK+1
	rings      map[[2]geo.Cell]int     // grid distances met so far (-1: none)
	open       []*reqState             // batch: the searching requests (and some that may search again), in run.reqs order
	scheduled  int                     // requests not yet searching
	found      []match.Candidate       // withoutPool's buffers
	near       []match.Candidate
	// verify (tests only) checks every answer found without the pool
	// against the pool's search; mismatches counts those that differ.
	verify     bool
	mismatches int
}

// Run simulates one day (drawn from seed) under one strategy. batch is the
// batch window for the batch strategy (0: every second). progress, if not
// nil, is called with the share of the day done.
func Run(sc Scenario, v Variant, seed uint64, progress func(float64)) (Result, error) {
	if !contains(Strategies, v.Strategy) {
		return Result{}, fmt.Errorf("unknown strategy %q", v.Strategy)
	}
	return runDay(newDay(sc, seed), v, progress), nil
}

func runDay(d *day, v Variant, progress func(float64)) Result {
	return simulate(d, v, progress).res
}

// simulate runs the day and returns the finished run (tests look inside).
func simulate(d *day, v Variant, progress func(float64)) *run {
	return simulateWith(d, v, progress, nil)
}

// simulateWith is simulate; tests set the run up (exhaustive, verify)
// before it starts.
func simulateWith(d *day, v Variant, progress func(float64), setup func(*run)) *run {
	strategy := v.Strategy
	r := &run{d: d, strategy: strategy, batch: v.Batch, chain: v.Chain, overlap: v.Overlap, callOut: v.CallOut, sla: d.sc.Dispatch.SLA.Duration, progress: progress,
		eta: geo.StraightLine{Detour: d.sc.Behaviour.Detour}, pool: match.NewPool(d.sc.City.Resolution),
		policy: match.BatchPolicy{Urgency: v.Urgency, UrgencyCap: d.sc.Dispatch.SLA.Duration, MaxWait: match.DefaultMaxWait}}
	r.res = Result{Strategy: v.Name, Seed: d.seed}
	r.bySkill, r.watching, r.never = map[string][]*techState{}, map[string][]*reqState{}, r.horizon().Add(time.Hour)
	r.maxK, r.rings = geo.MaxRing(d.sc.City.Resolution, maxSearchKm), map[[2]geo.Cell]int{}
	for k := range r.maxK + 2 {
		r.ringMin = append(r.ringMin, geo.RingMinDistanceKm(d.sc.City.Resolution, k))
	}
	r.tr = v.Trace
	if setup != nil {
		setup(r)
	}
	r.traceDay()
	for _, t := range d.techs {
		ts := r.addTech(t)
		r.schedule(t.shiftStart, evShift, nil, ts, nil)
		r.schedule(t.shiftEnd, evShift, nil, ts, nil)
		r.res.OnDutySeconds += t.shiftEnd.Sub(t.shiftStart).Seconds()
	}
	if r.callOut {
		// Off shift, they are in the pool but never eligible until they
		// come online; runs without call-outs leave them out altogether.
		for _, t := range d.offDuty {
			ts := r.addTech(t)
			ts.offDuty = true
			r.offDuty = append(r.offDuty, ts)
		}
	}
	for _, q := range d.requests {
		rs := &reqState{simRequest: q, state: dispatch.Scheduled, declined: map[string]bool{}, expiredAt: map[string]time.Time{}, cell: geo.CellOf(q.place, d.sc.City.Resolution)}
		rs.idx = len(r.reqs)
		r.reqs = append(r.reqs, rs)
		r.scheduled++
		r.res.Requests++
		if q.asap {
			r.res.ASAP++
		} else {
			r.res.Windowed++
		}
		r.schedule(q.searchFrom(d.sc.Dispatch.WindowLead.Duration), evSearch, rs, nil, nil)
	}
	if strategy == "batch" {
		r.schedule(d.start, evBatch, nil, nil, nil)
	}
	r.loop()
	r.collect()
	return r
}

// addTech puts a drawn technician into the run and the pool (its index in
// r.techs is its idx).
func (r *run) addTech(t *simTech) *techState {
	ts := &techState{simTech: t, shiftStart: t.shiftStart, shiftEnd: t.shiftEnd, pos: t.home, idleFrom: t.shiftStart}
	r.techs = append(r.techs, ts)
	for _, s := range t.skills {
		r.bySkill[s] = append(r.bySkill[s], ts)
	}
	ts.cand, ts.cell = r.candidate(ts), geo.CellOf(ts.pos, r.d.sc.City.Resolution)
	r.pool.Put(ts.cand)
	return ts
}

func (r *run) schedule(at time.Time, kind eventKind, req *reqState, tech *techState, o *offerState) {
	r.seq++
	heap.Push(&r.queue, &event{at: at, seq: r.seq, kind: kind, req: req, tech: tech, offer: o})
}

// horizon is when the simulation stops: every request has met its give-up
// time by then.
func (r *run) horizon() time.Time {
	return r.d.end.Add(r.d.sc.Dispatch.GiveUp.Duration + 24*time.Hour)
}

func (r *run) loop() {
	end := r.horizon()
	total := r.d.end.Sub(r.d.start)
	n := 0
	for r.queue.Len() > 0 {
		e := heap.Pop(&r.queue).(*event)
		if e.at.After(end) {
			break
		}
		r.now = e.at
		n++
		if r.progress != nil && n%512 == 0 {
			r.progress(min(1, float64(r.now.Sub(r.d.start))/float64(total)))
		}
		switch e.kind {
		case evSearch:
			r.startSearch(e.req)
		case evRetry:
			r.match(e.req)
		case evAnswer:
			r.answer(e.offer)
		case evExpire:
			r.expire(e.offer)
		case evArrive:
			r.arrive(e.req)
		case evDone:
			r.done(e.req)
		case evDrop:
			r.drop(e.req)
		case evGiveUp:
			r.giveUp(e.req)
		case evShift:
			r.refresh(e.tech)
		case evBatch:
			r.batchTick()
		case evChainCheck:
			r.chainCheck(e.req, e.tech)
		case evOnline:
			r.comeOnline(e.tech)
		}
	}
	if r.progress != nil {
		r.progress(1)
	}
}

func (r *run) onShift(t *techState) bool {
	return !r.now.Before(t.shiftStart) && r.now.Before(t.shiftEnd)
}

// candidate is what the dispatch core sees of a technician now.
func (r *run) candidate(t *techState) match.Candidate {
	certs := map[string]match.Interval{}
	for _, s := range t.skills {
		certs[s] = match.Interval{Start: dayStart.Add(-24 * time.Hour), End: dayStart.Add(30 * 24 * time.Hour)}
	}
	for _, s := range t.expired {
		certs[s] = match.Interval{Start: dayStart.Add(-400 * 24 * time.Hour), End: dayStart.Add(-24 * time.Hour)}
	}
	return match.Candidate{
		TechnicianID: t.id, Position: t.pos, HasPosition: true, Traveller: geo.Traveller{Mode: t.mode, SpeedKmh: t.speed},
		RadiusKm: maxSearchKm, Certs: certs, Available: r.onShift(t), ActiveJobs: t.active, Capacity: t.capacity,
		Shifts: []match.Interval{{Start: t.shiftStart, End: t.shiftEnd}}, IdleSince: t.idleFrom,
		OffersSent: t.sent, Accepted: t.accepted, Deciding: t.deciding != nil, FreeAt: t.freeAt, Queued: t.next != nil,
	}
}

// candidateNoGeo refreshes everything but position and skills.
func (r *run) candidateNoGeo(t *techState, c match.Candidate) match.Candidate {
	fresh := r.candidate(t)
	fresh.Position, fresh.Certs = c.Position, c.Certs
	return fresh
}

func (r *run) refresh(t *techState) {
	r.pool.Update(t.id, func(c *match.Candidate) {
		*c = r.candidateNoGeo(t, *c)
		t.cand = *c
	})
	r.changed(t)
}

// move puts t at p in the pool.
func (r *run) move(t *techState, p geo.Point) {
	t.pos = p
	r.pool.Move(t.id, p)
	t.cand.Position, t.cand.HasPosition = p, true
	t.cell = geo.CellOf(p, r.d.sc.City.Resolution)
	r.changed(t)
}

func (r *run) job(q *reqState) match.Job {
	j := match.Job{ID: q.id, Skill: q.skill, Place: q.place, Deadline: q.deadline(r.sla), GiveUp: q.giveUpAt, ChainWithin: r.chain}
	if !q.asap {
		j.Opens = q.windowStart
	}
	return j
}

func (r *run) startSearch(q *reqState) {
	q.state = dispatch.Searching
	q.giveUpAt = q.windowEnd // as in the server: a window is given up at its end
	if q.asap {
		q.giveUpAt = q.created.Add(r.d.sc.Dispatch.GiveUp.Duration)
	}
	r.schedule(q.giveUpAt, evGiveUp, q, nil, nil)
	r.scheduled--
	if r.strategy == "batch" {
		q.searching = true
		i, _ := slices.BinarySearchFunc(r.open, q.idx, func(o *reqState, idx int) int { return cmp.Compare(o.idx, idx) })
		r.open = slices.Insert(r.open, i, q)
		return
	}
	r.match(q)
}

// exclude mirrors the server: technicians who declined or dropped this
// request, and those whose offer for it expired in the last 10 minutes.
func (r *run) exclude(q *reqState) func(string) bool {
	return func(id string) bool { return r.excluded(q, id) }
}

func (r *run) excluded(q *reqState, id string) bool {
	if q.declined[id] {
		return true
	}
	at, ok := q.expiredAt[id]
	return ok && r.now.Sub(at) < expiredFor
}

// ranked returns the candidates for q as the server would find them.
func (r *run) ranked(q *reqState, want int) []match.Scored {
	if !r.exhaustive {
		if list, ok := r.withoutPool(q, want); ok {
			return r.check(q, want, list)
		}
	}
	return r.search(q, want)
}

// search asks the pool, as the server does.
func (r *run) search(q *reqState, want int) []match.Scored {
	j := r.job(q)
	reach := match.ReachKm(j, r.now, 60, r.eta.Detour, maxSearchKm)
	list := r.pool.Search(j, want, reach, r.exclude(q), r.eta, r.now)
	if match.AtRisk(j, list) && reach < maxSearchKm {
		list = r.pool.Search(j, want, maxSearchKm, r.exclude(q), r.eta, r.now)
	}
	return list
}

// match is one round of the sequential and wave strategies.
func (r *run) match(q *reqState) {
	if q.state != dispatch.Searching || len(q.pending) > 0 {
		return
	}
	if r.strategy == "batch" {
		q.searching = true
		return
	}
	sc := r.d.sc.Dispatch
	list := r.ranked(q, max(sc.WaveSize*3, 10))
	r.escalate(q, list)
	if len(list) == 0 {
		if r.now.Add(retryEvery).Before(q.giveUpAt) {
			r.schedule(r.now.Add(retryEvery), evRetry, q, nil, nil)
		}
		return
	}
	strategy, wave := r.strategy, sc.WaveSize
	if q.level >= match.StepBiggerWave { // escalated, as in the server's Match
		strategy, wave = match.Wave, q.level.WaveSize(wave)
	}
	plan := match.PlanOffers(strategy, wave, sc.OfferTimeout.Duration, q.deadline(r.sla).Sub(r.now), len(list))
	q.round++
	for _, c := range list[:plan.Size] {
		r.offer(q, r.techs[techIndex(c.TechnicianID)], plan.Timeout)
	}
}

func techIndex(id string) int {
	var i int
	fmt.Sscanf(id, "t%05d", &i)
	return i
}

func (r *run) offer(q *reqState, t *techState, timeout time.Duration) {
	o := &offerState{req: q, tech: t, sent: r.now, open: true, answer: r.d.answer(t.simTech, q.simRequest), expires: r.now.Add(timeout)}
	q.pending = append(q.pending, o)
	t.deciding = o
	t.sent++
	r.trace(TraceOffer, q, t, o.expires)
	r.res.Offers++
	r.refresh(t)
	if o.answer.responds && o.answer.delay < timeout {
		r.schedule(r.now.Add(o.answer.delay), evAnswer, q, t, o)
	} else {
		r.schedule(o.expires, evExpire, q, t, o)
	}
}

// closeOffer ends an offer; the technician is free to be asked again.
func (r *run) closeOffer(o *offerState) {
	o.open = false
	q := o.req
	for i, p := range q.pending {
		if p == o {
			q.pending = append(q.pending[:i], q.pending[i+1:]...)
			break
		}
	}
	if o.tech.deciding == o {
		o.tech.deciding = nil
	}
	r.refresh(o.tech)
}

func (r *run) answer(o *offerState) {
	if !o.open {
		return // withdrawn meanwhile
	}
	q, t := o.req, o.tech
	r.closeOffer(o)
	// The dispatcher learns the typical answer time from the latest answers,
	// as the server does.
	if r.answers = append(r.answers, r.now.Sub(o.sent)); len(r.answers) > answerSample {
		r.answers = r.answers[1:]
	}
	if !o.answer.accepts {
		r.trace(TraceDecline, q, t, time.Time{})
		r.res.Declined++
		q.declined[t.id] = true
		r.match(q)
		return
	}
	chained := t.active >= t.capacity
	if q.state != dispatch.Searching || (chained && (r.chain == 0 || t.next != nil)) {
		return // taken meanwhile: the accept fails like a 409
	}
	r.trace(TraceAccept, q, t, time.Time{})
	r.res.Accepted++
	t.accepted++
	for len(q.pending) > 0 {
		r.closeOffer(q.pending[0]) // withdrawn: first accept wins
	}
	q.state, q.tech = dispatch.Assigned, t
	q.atRisk = false // as the server's bind clears the flag (the steps taken stay)
	if chained {
		t.next = q // sets off when the current job is done
		r.refresh(t)
		// If the current job runs well past its predicted end, the promise
		// is released and the request searched again.
		r.schedule(t.freeAt.Add(chainGrace), evChainCheck, q, t, nil)
		return
	}
	r.startJob(q, t)
}

// startJob sends t on the way to q.
func (r *run) startJob(q *reqState, t *techState) {
	t.active++
	travel := r.eta.Estimate(t.pos, q.place, geo.Traveller{Mode: t.mode, SpeedKmh: t.speed})
	if r.d.answer(t.simTech, q.simRequest).drops {
		r.refresh(t)
		r.schedule(r.now.Add(travel/2), evDrop, q, t, nil)
		return
	}
	arrival := r.now.Add(travel)
	if !q.asap && arrival.Before(q.windowStart) {
		arrival = q.windowStart // wait for the window
	}
	// The dispatcher predicts the end of the job from the mean length.
	mean, ok := r.d.sc.Behaviour.ServiceMinutes[q.skill]
	if !ok {
		mean = r.d.sc.Behaviour.ServiceMinutes["default"]
	}
	t.freeAt = arrival.Add(time.Duration(mean * float64(time.Minute)))
	r.refresh(t)
	r.res.BusySeconds += travel.Seconds()
	r.schedule(arrival, evArrive, q, t, nil)
}

// chainGrace is how long past the predicted end a chained job waits.
const chainGrace = 5 * time.Minute

func (r *run) chainCheck(q *reqState, t *techState) {
	if t.next != q || q.state != dispatch.Assigned {
		return // started, or gone
	}
	t.next = nil
	q.tech, q.state = nil, dispatch.Searching
	r.fairChance(q)
	r.refresh(t)
	r.match(q)
}

// fairChance: as in the server, a request that goes back to searching gets
// a fair chance (a quarter of the SLA) rather than none, even when its
// give-up time has passed meanwhile.
func (r *run) fairChance(q *reqState) {
	if fair := r.now.Add(r.sla / 4); q.giveUpAt.Before(fair) {
		q.giveUpAt = fair
		r.schedule(fair, evGiveUp, q, nil, nil)
	}
}

func (r *run) expire(o *offerState) {
	if !o.open {
		return
	}
	r.res.Expired++
	r.trace(TraceExpire, o.req, o.tech, time.Time{})
	o.req.expiredAt[o.tech.id] = r.now
	r.closeOffer(o)
	r.match(o.req)
}

func (r *run) arrive(q *reqState) {
	q.state = dispatch.OnSite
	t := q.tech
	r.trace(TraceArrive, q, t, time.Time{})
	r.move(t, q.place)
	if q.asap {
		d := r.now.Sub(q.created)
		r.res.TimeToSite = append(r.res.TimeToSite, d)
		if d <= r.sla {
			r.res.OnSiteInTime++
			q.onTime = true
		}
	} else if !r.now.After(q.windowEnd) {
		r.res.WindowOnTime++
	}
	r.res.BusySeconds += q.service.Seconds()
	r.schedule(r.now.Add(q.service), evDone, q, t, nil)
}

func (r *run) done(q *reqState) {
	q.state = dispatch.Completed
	r.trace(TraceDone, q, q.tech, time.Time{})
	r.free(q.tech)
}

// free ends a technician's current job; a chained next job starts now.
func (r *run) free(t *techState) {
	t.active--
	t.idleFrom, t.freeAt = r.now, time.Time{}
	if n := t.next; n != nil {
		t.next = nil
		r.startJob(n, t)
		return
	}
	r.refresh(t)
}

func (r *run) drop(q *reqState) {
	t := q.tech
	r.res.Dropped++
	q.declined[t.id] = true
	q.tech, q.state = nil, dispatch.Searching
	r.fairChance(q)
	r.free(t)
	r.match(q)
}

func (r *run) giveUp(q *reqState) {
	if q.state != dispatch.Searching || r.now.Before(q.giveUpAt) {
		return
	}
	q.state = dispatch.Unfulfilled
	r.trace(TraceGiveUp, q, nil, time.Time{})
	q.searching = false
	for len(q.pending) > 0 {
		r.closeOffer(q.pending[0])
	}
	r.res.Unfulfilled++
}

// batchTick solves one batch: every searching request without a pending
// offer against the free technicians, by least-cost assignment, then one
// offer per pair.
func (r *run) batchTick() {
	var jobs []match.Job
	var waiting []*reqState
	var lists [][]match.Scored
	var levels []match.Step
	for _, q := range r.waiting() {
		if !q.searching || q.state != dispatch.Searching || !r.mayOfferMore(q) {
			continue
		}
		list := r.ranked(q, 5)
		r.escalate(q, list)
		if len(list) == 0 {
			continue
		}
		jobs = append(jobs, r.job(q))
		waiting = append(waiting, q)
		lists = append(lists, list)
		levels = append(levels, q.level)
	}
	sc := r.d.sc.Dispatch
	policy := r.policy
	policy.AnswerTime = match.AnswerTime(r.answers)
	r.trace(TraceBatch, nil, nil, time.Time{})
	rounded := map[*reqState]bool{}
	for _, p := range match.BiggerWaves(match.AssignBatch(jobs, lists, r.now, policy), lists, levels) {
		q := waiting[p.JobIndex]
		if !rounded[q] { // a bigger wave's offers are one round
			q.round++
			rounded[q] = true
		}
		r.offer(q, r.techs[techIndex(p.TechnicianID)], match.BatchOfferTimeout(sc.OfferTimeout.Duration, p.ETA, q.giveUpAt, r.now))
	}
	every := r.batch
	if every <= 0 {
		every = time.Second
	}
	if r.now.Before(r.horizon()) && r.anyOpen() {
		r.schedule(r.now.Add(every), evBatch, nil, nil, nil)
	}
}

// escalate applies the server's at-risk debounce and escalation steps to a
// waiting request after its candidates were ranked (dispatch.assessRisk).
func (r *run) escalate(q *reqState, list []match.Scored) {
	was := q.atRisk
	q.atRisk = match.DefaultRiskPolicy.Next(was, q.riskSince, r.job(q), list, r.now)
	if q.atRisk && !was {
		q.riskSince = r.now
	}
	if q.atRisk {
		q.level = max(q.level, match.DefaultEscalation.Due(r.now.Sub(q.riskSince)))
	}
	if r.callOut && q.atRisk && q.level >= match.StepPaged && !q.calledOut {
		q.calledOut = true
		r.askOffDuty(q)
	}
}

// callOutAsk is how many off-duty technicians are asked for one request.
const callOutAsk = 3

// askOffDuty asks the nearest off-duty technicians certified for q, who
// could still reach it by its give-up time once online, to come online.
// Each says yes with the scenario's probability (fixed per seed,
// technician and request) and is on duty after its delay, for its hours:
// then they take any request, as every technician on duty does.
func (r *run) askOffDuty(q *reqState) {
	o := r.d.sc.Technicians.OffDuty
	type near struct {
		t   *techState
		eta time.Duration
	}
	var list []near
	for _, t := range r.offDuty {
		if t.asked || !contains(t.skills, q.skill) {
			continue
		}
		eta := r.eta.Estimate(t.pos, q.place, geo.Traveller{Mode: t.mode, SpeedKmh: t.speed})
		if r.now.Add(o.Delay.Duration + eta).After(q.giveUpAt) {
			continue
		}
		list = append(list, near{t, eta})
	}
	slices.SortFunc(list, func(a, b near) int { return cmp.Or(cmp.Compare(a.eta, b.eta), cmp.Compare(a.t.idx, b.t.idx)) })
	for _, n := range list[:min(len(list), callOutAsk)] {
		n.t.asked = true
		r.res.CalledOut++
		if pairUniform(r.d.seed, uint64(n.t.idx), uint64(q.idx), 21) < o.ComeOnline {
			r.schedule(r.now.Add(o.Delay.Duration), evOnline, nil, n.t, nil)
		}
	}
}

// comeOnline starts the shift of an off-duty technician who said yes.
func (r *run) comeOnline(t *techState) {
	hours := time.Duration(r.d.sc.Technicians.OffDuty.Hours * float64(time.Hour))
	t.shiftStart, t.shiftEnd, t.idleFrom = r.now, r.now.Add(hours), r.now
	r.res.CameOnline++
	r.res.OnDutySeconds += hours.Seconds()
	r.refresh(t)
	r.schedule(t.shiftEnd, evShift, nil, t, nil)
}

// mayOfferMore: a waiting request gets a batch offer when it has none
// pending, or (with overlap) when its one pending offer has gone unanswered
// for the overlap time: the next technician is asked while the first still
// may say yes, and the first yes wins.
func (r *run) mayOfferMore(q *reqState) bool {
	switch {
	case len(q.pending) == 0:
		return true
	case r.overlap > 0 && len(q.pending) == 1:
		return r.now.Sub(q.pending[0].sent) >= r.overlap
	}
	return false
}

// waiting is the batch's requests to look at: every request, or (the
// same in the same order, and fewer) the open ones.
func (r *run) waiting() []*reqState {
	if r.exhaustive {
		return r.reqs
	}
	r.open = slices.DeleteFunc(r.open, func(q *reqState) bool {
		return !q.searching || q.dispatched()
	})
	return r.open
}

// dispatched reports whether q can never be searched again: its technician
// is on site, or it has ended.
func (q *reqState) dispatched() bool {
	return q.state == dispatch.OnSite || q.state == dispatch.Completed || q.state == dispatch.Unfulfilled
}

// anyOpen reports whether a request may still need dispatch.
func (r *run) anyOpen() bool {
	if r.now.Before(r.d.end) {
		return true
	}
	if !r.exhaustive {
		return r.scheduled > 0 || slices.ContainsFunc(r.open, func(q *reqState) bool { return q.state == dispatch.Searching })
	}
	for _, q := range r.reqs {
		if q.state == dispatch.Scheduled || q.state == dispatch.Searching {
			return true
		}
	}
	return false
}

// collect fills the per-hour figures.
func (r *run) collect() {
	hours := map[int]*HourShare{}
	for _, q := range r.reqs {
		if !q.asap {
			continue
		}
		h := q.created.Hour()
		x, ok := hours[h]
		if !ok {
			x = &HourShare{Hour: h}
			hours[h] = x
		}
		x.Requests++
		if q.onTime {
			x.OnTime++
		}
	}
	for h := 0; h < 24; h++ {
		if x, ok := hours[h]; ok {
			x.Share = frac(x.OnTime, x.Requests)
			r.res.ByHour = append(r.res.ByHour, *x)
		}
	}
}
