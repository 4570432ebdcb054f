package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/onsite/onsite/geo"
)

// The day is drawn once per seed and is the same for every strategy: the same
// requests at the same places and times, the same technicians, and the same
// answer of each technician to each request (common random numbers), so that
// strategies differ only by what they decide.

var dayStart = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC) // a Monday

type simTech struct {
	idx        int
	id         string
	home       geo.Point
	mode       string
	speed      float64
	skills     []string // current certifications
	expired    []string // certifications held once, expired now
	shiftStart time.Time
	shiftEnd   time.Time
	capacity   int
}

type simRequest struct {
	idx         int
	id          string
	created     time.Time
	place       geo.Point
	skill       string
	asap        bool
	windowStart time.Time
	windowEnd   time.Time
	service     time.Duration
}

// deadline is when a technician must be on site: created + SLA, or the end
// of the window.
func (r *simRequest) deadline(sla time.Duration) time.Time {
	if r.asap {
		return r.created.Add(sla)
	}
	return r.windowEnd
}

// searchFrom is when dispatch starts for the request.
func (r *simRequest) searchFrom(lead time.Duration) time.Time {
	if r.asap {
		return r.created
	}
	return maxTime(r.created, r.windowStart.Add(-lead))
}

type day struct {
	sc       Scenario
	seed     uint64
	start    time.Time
	end      time.Time // last request created before this
	techs    []*simTech
	offDuty  []*simTech // would come online when asked (no shift of their own)
	requests []*simRequest
}

func newDay(sc Scenario, seed uint64) *day {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	d := &day{sc: sc, seed: seed, start: dayStart.Add(time.Duration(sc.StartHour) * time.Hour)}
	d.end = d.start.Add(time.Duration(sc.Hours) * time.Hour)
	d.techs = drawTechnicians(sc, rng)
	d.requests = drawRequests(sc, rng, d.start)
	// Surges, like off-duty technicians, draw from streams of their own.
	for i, u := range sc.Demand.Surges {
		d.requests = append(d.requests, drawSurge(sc, u, rand.New(rand.NewPCG(seed, 0x5e+uint64(i)<<8)), len(d.requests))...)
	}
	// Off-duty technicians come from a stream of their own, so adding them
	// changes nothing else of the day.
	off := rand.New(rand.NewPCG(seed, 0x0ff))
	for i := range sc.Technicians.OffDuty.Count {
		t := drawTechnician(sc, off, sc.Technicians.Count+i)
		t.shiftStart, t.shiftEnd = time.Time{}, time.Time{}
		d.offDuty = append(d.offDuty, t)
	}
	sort.SliceStable(d.requests, func(i, j int) bool { return d.requests[i].created.Before(d.requests[j].created) })
	for i, r := range d.requests {
		r.idx, r.id = i, fmt.Sprintf("r%05d", i)
	}
	return d
}

func drawTechnicians(sc Scenario, rng *rand.Rand) []*simTech {
	out := make([]*simTech, sc.Technicians.Count)
	for i := range out {
		out[i] = drawTechnician(sc, rng, i)
	}
	return out
}

// drawTechnician draws technician i. The draws of a scenario that uses none
// of towns, max_skills, expired_share and minute shifts are the ones the
// simulator always made (TestShippedDaysUnchanged).
func drawTechnician(sc Scenario, rng *rand.Rand, i int) *simTech {
	t := sc.Technicians
	skills := sortedKeys(t.Skills)
	modes := sortedKeys(t.Travel)
	tech := &simTech{idx: i, id: fmt.Sprintf("t%05d", i), home: drawHome(sc, rng), capacity: t.Capacity}
	for _, s := range skills {
		if rng.Float64() < t.Skills[s] {
			tech.skills = append(tech.skills, s)
		}
	}
	for len(tech.skills) < t.MinSkills {
		s := weighted(rng, t.Skills, skills)
		if !contains(tech.skills, s) {
			tech.skills = append(tech.skills, s)
		}
	}
	for t.MaxSkills > 0 && len(tech.skills) > t.MaxSkills {
		k := rng.IntN(len(tech.skills))
		tech.skills = append(tech.skills[:k], tech.skills[k+1:]...)
	}
	if t.ExpiredShare > 0 {
		var current []string
		for _, s := range tech.skills {
			if rng.Float64() < t.ExpiredShare {
				tech.expired = append(tech.expired, s)
			} else {
				current = append(current, s)
			}
		}
		tech.skills = current
	}
	m := modes[0]
	x := rng.Float64()
	for _, name := range modes {
		if x < t.Travel[name].Share {
			m = name
			break
		}
		x -= t.Travel[name].Share
	}
	tech.mode, tech.speed = m, t.Travel[m].SpeedKmh
	x = rng.Float64()
	shift := t.Shifts[len(t.Shifts)-1]
	for _, s := range t.Shifts {
		if x < s.Share {
			shift = s
			break
		}
		x -= s.Share
	}
	from, to := shift.Span()
	tech.shiftStart, tech.shiftEnd = dayStart.Add(from), dayStart.Add(to)
	return tech
}

// drawHome is where a technician starts the day: around a town, or
// uniform in the region.
func drawHome(sc Scenario, rng *rand.Rand) geo.Point {
	t := sc.Technicians
	if len(t.Towns) == 0 {
		return randomInRegion(rng, sc.City)
	}
	if t.HomeUniformShare > 0 && rng.Float64() < t.HomeUniformShare {
		return randomInRegion(rng, sc.City)
	}
	return aroundHotspot(rng, t.Towns)
}

func drawRequests(sc Scenario, rng *rand.Rand, start time.Time) []*simRequest {
	d := sc.Demand
	skills := sortedKeys(d.Skills)
	var out []*simRequest
	service := func(r *simRequest) {
		mean, ok := sc.Behaviour.ServiceMinutes[r.skill]
		if !ok {
			mean = sc.Behaviour.ServiceMinutes["default"]
		}
		r.service = lognormal(rng, mean, sc.Behaviour.ServiceSigma, time.Minute)
	}
	for _, f := range d.Fixed {
		r := &simRequest{idx: len(out), created: start.Add(time.Duration(f.AtMinute * float64(time.Minute))), place: f.Place, skill: f.Skill, asap: !f.Window}
		r.id = fmt.Sprintf("r%05d", r.idx)
		if f.Window {
			r.windowStart = r.created.Add(time.Duration(d.WindowAheadHr[0] * float64(time.Hour)))
			r.windowEnd = r.windowStart.Add(time.Duration(d.WindowHours * float64(time.Hour)))
		}
		service(r)
		out = append(out, r)
	}
	for h, rate := range d.PerHour {
		if h >= sc.Hours {
			break
		}
		// Poisson arrivals: exponential gaps within the hour.
		t := 0.0
		for rate > 0 {
			t += rng.ExpFloat64() / rate
			if t >= 1 {
				break
			}
			r := &simRequest{idx: len(out), created: start.Add(time.Duration((float64(h) + t) * float64(time.Hour))).Truncate(time.Second)}
			r.id = fmt.Sprintf("r%05d", r.idx)
			r.skill = weighted(rng, d.Skills, skills)
			r.place = drawPlace(sc, rng)
			r.asap = rng.Float64() < d.ASAPShare
			if !r.asap {
				ahead := d.WindowAheadHr[0] + rng.Float64()*(d.WindowAheadHr[1]-d.WindowAheadHr[0])
				r.windowStart = r.created.Add(time.Duration(ahead * float64(time.Hour))).Truncate(time.Minute)
				r.windowEnd = r.windowStart.Add(time.Duration(d.WindowHours * float64(time.Hour)))
			}
			service(r)
			out = append(out, r)
		}
	}
	return out
}

// drawSurge draws a surge's ASAP requests (indexes from next on; newDay
// numbers them again in order of creation).
func drawSurge(sc Scenario, u Surge, rng *rand.Rand, next int) []*simRequest {
	mix := u.Skills
	if len(mix) == 0 {
		mix = sc.Demand.Skills
	}
	skills := sortedKeys(mix)
	hours := (u.To.Since - u.From.Since).Hours()
	var out []*simRequest
	for t := rng.ExpFloat64() / u.PerHour; t < hours; t += rng.ExpFloat64() / u.PerHour {
		r := &simRequest{idx: next + len(out), created: dayStart.Add(u.From.Since + time.Duration(t*float64(time.Hour))).Truncate(time.Second), asap: true}
		r.skill = weighted(rng, mix, skills)
		r.place = randomIn(rng, u.Center, u.RadiusKm)
		mean, ok := sc.Behaviour.ServiceMinutes[r.skill]
		if !ok {
			mean = sc.Behaviour.ServiceMinutes["default"]
		}
		r.service = lognormal(rng, mean, sc.Behaviour.ServiceSigma, time.Minute)
		out = append(out, r)
	}
	return out
}

func drawPlace(sc Scenario, rng *rand.Rand) geo.Point {
	d := sc.Demand
	if len(d.Hotspots) == 0 || rng.Float64() < d.UniformShare {
		return randomInRegion(rng, sc.City)
	}
	return aroundHotspot(rng, d.Hotspots)
}

// aroundHotspot picks a spot by weight and draws a Gaussian point around it,
// σ = radius / 2.
func aroundHotspot(rng *rand.Rand, spots []Hotspot) geo.Point {
	total := 0.0
	for _, h := range spots {
		total += h.Weight
	}
	x := rng.Float64() * total
	h := spots[len(spots)-1]
	for _, c := range spots {
		if x < c.Weight {
			h = c
			break
		}
		x -= c.Weight
	}
	return geo.Offset(h.Center, rng.NormFloat64()*h.RadiusKm*500, rng.NormFloat64()*h.RadiusKm*500)
}

// randomInRegion is a uniform point in the served area: the disc, or a
// point uniform in latitude and longitude inside the rectangle or polygon
// (by rejection from its bounding box; within 2 % of equal-area at the
// sizes the validation allows away from the poles).
func randomInRegion(rng *rand.Rand, c City) geo.Point {
	var ps []geo.Point
	switch {
	case c.Rectangle != nil:
		ps = c.Rectangle.vertices()
	case len(c.Polygon) > 0:
		ps = c.Polygon
	default:
		return randomIn(rng, c.Center, c.RadiusKm)
	}
	lo, hi := bounds(ps)
	for {
		p := geo.Point{Lat: lo.Lat + rng.Float64()*(hi.Lat-lo.Lat), Lng: lo.Lng + rng.Float64()*(hi.Lng-lo.Lng)}
		if c.Rectangle != nil || inPolygon(p, ps) {
			return p
		}
	}
}

// randomIn is a uniform point in the disc.
func randomIn(rng *rand.Rand, c geo.Point, radiusKm float64) geo.Point {
	r := radiusKm * 1000 * math.Sqrt(rng.Float64())
	a := rng.Float64() * 2 * math.Pi
	return geo.Offset(c, r*math.Cos(a), r*math.Sin(a))
}

// lognormal draws with the given mean (in unit) and log-σ.
func lognormal(rng *rand.Rand, mean, sigma float64, unit time.Duration) time.Duration {
	mu := math.Log(mean) - sigma*sigma/2
	return time.Duration(math.Exp(mu+sigma*rng.NormFloat64()) * float64(unit))
}

func weighted(rng *rand.Rand, w map[string]float64, keys []string) string {
	total := 0.0
	for _, k := range keys {
		total += w[k]
	}
	x := rng.Float64() * total
	for _, k := range keys {
		if x < w[k] {
			return k
		}
		x -= w[k]
	}
	return keys[len(keys)-1]
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// answer is what a technician does with an offer of a request: fixed per
// seed, technician and request, so every strategy meets the same people.
type answer struct {
	responds bool
	delay    time.Duration
	accepts  bool
	drops    bool
}

func (d *day) answer(t *simTech, r *simRequest) answer {
	b := d.behaviourAt(r.searchFrom(d.sc.Dispatch.WindowLead.Duration))
	u := func(salt uint64) float64 { return pairUniform(d.seed, uint64(t.idx), uint64(r.idx), salt) }
	// Each technician has a rate of their own around the scenario's.
	rate := b.AcceptProbability + (pairUniform(d.seed, uint64(t.idx), 0, 9)*2-1)*b.AcceptSpread
	a := answer{responds: u(1) >= b.NoResponseShare, accepts: u(2) < rate, drops: u(3) < b.DropShare}
	z := math.Sqrt(-2*math.Log(math.Max(u(4), 1e-12))) * math.Cos(2*math.Pi*u(5)) // Box–Muller
	a.delay = time.Duration(b.ResponseMedian.Seconds() * math.Exp(b.ResponseSigma*z) * float64(time.Second))
	return a
}

// behaviourAt is how technicians answer a request that starts searching at
// at: the day's behaviour with the overrides of behaviour.by_hour.
func (d *day) behaviourAt(at time.Time) Behaviour {
	b := d.sc.Behaviour
	since := at.Sub(dayStart)
	for _, h := range b.ByHour {
		if since < h.From.Since || since >= h.To.Since {
			continue
		}
		if h.AcceptProbability != nil {
			b.AcceptProbability = *h.AcceptProbability
		}
		if h.NoResponseShare != nil {
			b.NoResponseShare = *h.NoResponseShare
		}
		if h.ResponseMedian != nil {
			b.ResponseMedian = *h.ResponseMedian
		}
		break
	}
	return b
}

// pairUniform is a uniform number in [0, 1) from a hash of its inputs
// (splitmix64).
func pairUniform(seed, a, b, salt uint64) float64 {
	x := seed*0x9E3779B97F4A7C15 ^ a*0xBF58476D1CE4E5B9 ^ b*0x94D049BB133111EB ^ salt*0xD6E8FEB86659FD93
	x ^= x >> 30
	x *= 0xBF58476D1CE4E5B9
	x ^= x >> 27
	x *= 0x94D049BB133111EB
	x ^= x >> 31
	return float64(x>>11) / (1 << 53)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
