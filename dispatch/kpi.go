package dispatch

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/technicians"
)

// The KPIs are defined in docs/kpis.md; this file computes exactly that.

// repeatWithin is how long after a fix another visit for the same need
// means the first visit did not fix it.
const repeatWithin = 7 * 24 * time.Hour

// KPIs are the figures ops watch, over the requests created in [From, To)
// that pass the filter (docs/kpis.md defines each). A share is nil when
// there is nothing to divide by.
type KPIs struct {
	Requests    int `json:"requests"`
	Open        int `json:"open"`
	Completed   int `json:"completed"`
	Cancelled   int `json:"cancelled"`
	Unfulfilled int `json:"unfulfilled"`

	// The promise for ASAP requests.
	ASAPRequests         int      `json:"asap_requests"`
	ASAPJudged           int      `json:"asap_judged"`  // deadline passed, not cancelled before it
	ASAPOnTime           int      `json:"asap_on_time"` // of those, on site by the deadline within the arrival radius
	OnSiteWithinSLA      *float64 `json:"on_site_within_sla_share"`
	ASAPPending          int      `json:"asap_pending"`      // deadline not passed yet
	CancelledInTime      int      `json:"cancelled_in_time"` // cancelled before the deadline, reported apart
	TimeToSiteP50Seconds *int     `json:"time_to_site_p50_s"`
	TimeToSiteP90Seconds *int     `json:"time_to_site_p90_s"`
	// Windowed requests: arrival inside the window.
	WindowRequests        int      `json:"window_requests"`
	WindowJudged          int      `json:"window_judged"`
	WindowKept            int      `json:"window_kept"`
	WindowKeptShare       *float64 `json:"window_kept_share"`
	WindowCancelledInTime int      `json:"window_cancelled_in_time"`
	FlaggedArrivals       int      `json:"flagged_arrivals"` // farther than the arrival radius, or no position

	// Resolution, following chains of follow-ups.
	FirstVisits             int      `json:"first_visits"`               // requests (not follow-ups) whose first visit closed
	FirstTimeFixes          int      `json:"first_time_fixes"`           // fixed then, no visit for the same need within 7 days
	FirstTimeFixRate        *float64 `json:"first_time_fix_rate"`        // FCR
	FirstTimeFixProvisional int      `json:"first_time_fix_provisional"` // fixes younger than 7 days, may still turn
	FollowUps               int      `json:"follow_ups"`                 // follow-up requests created
	Resolved                int      `json:"resolved"`                   // requests (not follow-ups) whose chain ended fixed
	ResolutionP50Seconds    *int     `json:"time_to_resolution_p50_s"`
	ResolutionP90Seconds    *int     `json:"time_to_resolution_p90_s"`
	VisitsPerResolution     *float64 `json:"visits_per_resolution"`

	// Dispatch.
	Offers            int      `json:"offers"`
	OffersPerRequest  *float64 `json:"offers_per_request"`
	AcceptanceRate    *float64 `json:"acceptance_rate"` // accepted / (accepted + declined + expired)
	Drops             int      `json:"drops"`
	NoShows           int      `json:"no_shows"`
	AtRiskRequests    int      `json:"at_risk_requests"`
	TimeAtRiskSeconds int      `json:"time_at_risk_s"`
	Overrides         int      `json:"overrides"` // ops' assignments over the hard rules
}

// KPIFilter narrows the requests the KPIs are computed over; GroupBy splits
// them. The zero value keeps every request of the period.
type KPIFilter struct {
	From, To   time.Time
	Cell       *geo.Cell // an H3 cell of resolution 0 to 8 the place lies in
	Area       string    // a configured service area
	Skill      string
	Technician string
	Hour       *int   // hour of the day of creation, in the configured time zone
	GroupBy    string // "", cell (resolution 7), area, skill, hour or technician
}

// KPIGroupings are the values KPIFilter.GroupBy accepts.
var KPIGroupings = []string{"cell", "area", "skill", "hour", "technician"}

// KPIReport is the KPIs of a period, as a whole and by group.
type KPIReport struct {
	From   time.Time  `json:"from"`
	To     time.Time  `json:"to"`
	KPIs              // the whole period
	Groups []KPIGroup `json:"groups,omitempty"`
}

// KPIGroup is the KPIs of one cell, area, skill, hour or technician. Key ""
// holds the requests outside every service area (area) or without a
// technician (technician).
type KPIGroup struct {
	Key  string `json:"key"`
	KPIs `json:"kpis"`
}

// kpiRequest is what the KPIs need of a request.
type kpiRequest struct {
	ID             string
	CustomerID     string
	DeviceID       *string
	SkillCode      string
	Cell           geo.Cell
	Mode           Mode
	State          State
	CreatedAt      time.Time
	ConfirmedAt    *time.Time
	SLADeadline    *time.Time
	WindowStart    *time.Time
	WindowEnd      *time.Time
	OnSiteAt       *time.Time
	CompletedAt    *time.Time
	CancelledAt    *time.Time
	Outcome        *string
	ArrivalFlagged bool
	TechnicianID   *string
	FollowUpOf     *string
}

func (r *kpiRequest) tech() string {
	if r.TechnicianID == nil {
		return ""
	}
	return *r.TechnicianID
}

// kpiOffer, kpiDrop and kpiEvent are the offers, dropped assignments and
// events of the period's requests that the KPIs count.
type kpiOffer struct {
	RequestID, TechnicianID string
	State                   OfferState
}

type kpiDrop struct{ RequestID, TechnicianID string }

type kpiEvent struct {
	RequestID string
	Type      string
	At        time.Time
	Override  bool
	Tech      string // the technician an override assigned
}

// kpiFacts are the rows the KPIs are computed from: the period's requests
// (Period), every request they lead to by follow-ups and every later visit
// of their customers (All, by id), and the offers, drops and events of the
// period's requests.
type kpiFacts struct {
	Period []*kpiRequest
	All    map[string]*kpiRequest
	Offers []kpiOffer
	Drops  []kpiDrop
	Events []kpiEvent

	followUp map[string]*kpiRequest   // by the id of the request it follows up
	visits   map[string][]*kpiRequest // visited requests by customer and skill
}

// index builds the lookups of chains and visits, once.
func (f *kpiFacts) index() {
	if f.followUp != nil {
		return
	}
	f.followUp, f.visits = map[string]*kpiRequest{}, map[string][]*kpiRequest{}
	for _, r := range f.All {
		if r.FollowUpOf != nil {
			f.followUp[*r.FollowUpOf] = r
		}
		if r.OnSiteAt != nil {
			k := r.CustomerID + "\x00" + r.SkillCode
			f.visits[k] = append(f.visits[k], r)
		}
	}
}

// kpiSelection picks requests (in) and, when byTech, only the requests,
// offers, drops and overrides of technician tech ("": of nobody).
type kpiSelection struct {
	in     func(*kpiRequest) bool
	byTech bool
	tech   string
}

func (s kpiSelection) request(r *kpiRequest) bool {
	return (s.in == nil || s.in(r)) && s.technician(r.tech())
}

// technician reports whether the selection keeps what id did.
func (s kpiSelection) technician(id string) bool { return !s.byTech || id == s.tech }

// inPeriod reports whether id is one of the period's requests the selection
// keeps, whoever its technician.
func (s kpiSelection) inPeriod(byID map[string]*kpiRequest, id string) bool {
	r, ok := byID[id]
	return ok && (s.in == nil || s.in(r))
}

// computeKPIs is the pure calculation of docs/kpis.md.
func computeKPIs(f *kpiFacts, sel kpiSelection, now time.Time) KPIs {
	var k KPIs
	var toSite, toResolve []time.Duration
	resolvedVisits := 0
	f.index()
	period := map[string]*kpiRequest{}
	for _, r := range f.Period {
		period[r.ID] = r
		if !sel.request(r) {
			continue
		}
		k.Requests++
		switch {
		case r.State.Open():
			k.Open++
		case r.State == Completed:
			k.Completed++
		case r.State == Cancelled:
			k.Cancelled++
		case r.State == Unfulfilled:
			k.Unfulfilled++
		}
		if r.ArrivalFlagged {
			k.FlaggedArrivals++
		}
		if r.Outcome != nil && *r.Outcome == "no_show" {
			k.NoShows++
		}
		arrivedBy := func(t time.Time) bool { return r.OnSiteAt != nil && !r.ArrivalFlagged && !r.OnSiteAt.After(t) }
		switch {
		case r.Mode == ASAP && r.SLADeadline != nil:
			// A promise was made (at creation, or at the owner's confirmation).
			k.ASAPRequests++
			start := r.CreatedAt // the clock runs from the owner's confirmation when one was needed
			if r.ConfirmedAt != nil {
				start = *r.ConfirmedAt
			}
			if r.OnSiteAt != nil && !r.ArrivalFlagged {
				toSite = append(toSite, r.OnSiteAt.Sub(start))
			}
			deadline := *r.SLADeadline
			switch {
			case r.OnSiteAt == nil && r.CancelledAt != nil && r.CancelledAt.Before(deadline):
				k.CancelledInTime++
			case deadline.After(now):
				k.ASAPPending++
			default:
				k.ASAPJudged++
				if arrivedBy(deadline) {
					k.ASAPOnTime++
				}
			}
		case r.Mode == Window && r.WindowStart != nil && r.WindowEnd != nil:
			k.WindowRequests++
			end := *r.WindowEnd
			switch {
			case r.OnSiteAt == nil && r.CancelledAt != nil && r.CancelledAt.Before(end):
				k.WindowCancelledInTime++
			case end.After(now):
			default:
				k.WindowJudged++
				if arrivedBy(end) && !r.OnSiteAt.Before(*r.WindowStart) {
					k.WindowKept++
				}
			}
		}
		if r.FollowUpOf != nil {
			k.FollowUps++
			continue
		}
		// A request that is no follow-up starts a chain.
		if r.State == Completed && r.CompletedAt != nil && r.Outcome != nil && *r.Outcome != "no_show" {
			k.FirstVisits++
			if *r.Outcome == "fixed" && !f.repeated(r) {
				k.FirstTimeFixes++
				if r.CompletedAt.Add(repeatWithin).After(now) {
					k.FirstTimeFixProvisional++
				}
			}
		}
		visits := 0
		for c := r; c != nil; c = f.followUp[c.ID] {
			if c.OnSiteAt != nil {
				visits++
			}
			if c.State == Completed && c.Outcome != nil && *c.Outcome == "fixed" && c.CompletedAt != nil {
				k.Resolved++
				resolvedVisits += visits
				toResolve = append(toResolve, c.CompletedAt.Sub(r.CreatedAt))
				break
			}
		}
	}
	k.OnSiteWithinSLA = share(k.ASAPOnTime, k.ASAPJudged)
	k.WindowKeptShare = share(k.WindowKept, k.WindowJudged)
	k.TimeToSiteP50Seconds = percentile(toSite, 0.5)
	k.TimeToSiteP90Seconds = percentile(toSite, 0.9)
	k.FirstTimeFixRate = share(k.FirstTimeFixes, k.FirstVisits)
	k.ResolutionP50Seconds = percentile(toResolve, 0.5)
	k.ResolutionP90Seconds = percentile(toResolve, 0.9)
	k.VisitsPerResolution = share(resolvedVisits, k.Resolved)

	answered, accepted := 0, 0
	for _, o := range f.Offers {
		if !sel.inPeriod(period, o.RequestID) || !sel.technician(o.TechnicianID) {
			continue
		}
		k.Offers++
		switch o.State {
		case OfferAccepted:
			accepted++
			answered++
		case OfferDeclined, OfferExpired:
			answered++
		}
	}
	k.OffersPerRequest = share(k.Offers, k.Requests)
	k.AcceptanceRate = share(accepted, answered)
	for _, d := range f.Drops {
		if sel.inPeriod(period, d.RequestID) && sel.technician(d.TechnicianID) {
			k.Drops++
		}
	}

	noShow := map[string]bool{}
	var riskFrom map[string]time.Time
	atRisk := map[string]bool{}
	var atRiskFor time.Duration
	for _, e := range f.Events { // in order of time within each request
		r := period[e.RequestID]
		if r == nil || !sel.inPeriod(period, e.RequestID) {
			continue
		}
		if e.Override && sel.technician(e.Tech) {
			k.Overrides++
		}
		if !sel.request(r) {
			continue
		}
		switch {
		case e.Type == "no_show":
			if r.Outcome == nil || *r.Outcome != "no_show" {
				noShow[r.ID] = true
			}
		case e.Type == "at_risk":
			atRisk[r.ID] = true
			if riskFrom == nil {
				riskFrom = map[string]time.Time{}
			}
			if _, on := riskFrom[r.ID]; !on {
				riskFrom[r.ID] = e.At
			}
		case riskEnds[e.Type]:
			if from, on := riskFrom[r.ID]; on {
				atRiskFor += e.At.Sub(from)
				delete(riskFrom, r.ID)
			}
		}
	}
	for _, from := range riskFrom {
		atRiskFor += max(0, now.Sub(from)) // still at risk
	}
	k.NoShows += len(noShow)
	k.AtRiskRequests = len(atRisk)
	k.TimeAtRiskSeconds = int(atRiskFor.Seconds())
	return k
}

// riskEnds are the events that end a spell at risk: back on track, or the
// request leaving the search.
var riskEnds = map[string]bool{"back_on_track": true, "assigned": true, "cancelled": true, "unfulfilled": true}

// repeated reports whether another visit for the same need (same customer
// and skill, and the same device when both name one) came within 7 days
// after r's completion.
func (f *kpiFacts) repeated(r *kpiRequest) bool {
	end := r.CompletedAt.Add(repeatWithin)
	for _, x := range f.visits[r.CustomerID+"\x00"+r.SkillCode] {
		if x.ID == r.ID || (r.DeviceID != nil && x.DeviceID != nil && *r.DeviceID != *x.DeviceID) {
			continue
		}
		if x.OnSiteAt.After(*r.CompletedAt) && !x.OnSiteAt.After(end) {
			return true
		}
	}
	return false
}

func share(a, b int) *float64 {
	if b == 0 {
		return nil
	}
	v := round3(float64(a) / float64(b))
	return &v
}

// percentile uses the nearest-rank method; nil when there is no data.
func percentile(ds []time.Duration, p float64) *int {
	if len(ds) == 0 {
		return nil
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	i = max(0, min(i, len(s)-1))
	v := int(s[i].Seconds())
	return &v
}

// KPIs computes the figures of docs/kpis.md over the requests created in
// [f.From, f.To) that pass f, as a whole and by f.GroupBy.
func (s *Service) KPIs(ctx context.Context, f KPIFilter) (KPIReport, error) {
	if err := s.checkKPIFilter(f); err != nil {
		return KPIReport{}, err
	}
	if err := s.mustKnow(ctx, f); err != nil {
		return KPIReport{}, err
	}
	from, to := f.From.UTC(), f.To.UTC()
	facts, err := s.kpiFacts(ctx, from, to)
	if err != nil {
		return KPIReport{}, err
	}
	now := s.now()
	base := s.kpiFilterFunc(f)
	out := KPIReport{From: from, To: to}
	whole := kpiSelection{in: base, byTech: f.Technician != "", tech: f.Technician}
	out.KPIs = computeKPIs(facts, whole, now)
	if f.GroupBy == "" {
		return out, nil
	}
	keysOf := s.kpiKeys(f.GroupBy)
	seen := map[string]bool{}
	var keys []string
	add := func(k string) {
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	for _, r := range facts.Period {
		if whole.request(r) {
			for _, k := range keysOf(r) {
				add(k)
			}
		}
	}
	if f.GroupBy == "technician" {
		// A technician who was only offered requests still has figures.
		for _, o := range facts.Offers {
			if r := facts.All[o.RequestID]; r != nil && base(r) && whole.technician(o.TechnicianID) {
				add(o.TechnicianID)
			}
		}
	}
	sortKeys(f.GroupBy, keys)
	for _, key := range keys {
		sel := whole
		if f.GroupBy == "technician" {
			sel.byTech, sel.tech = true, key
		} else {
			sel.in = func(r *kpiRequest) bool { return base(r) && slices.Contains(keysOf(r), key) }
		}
		out.Groups = append(out.Groups, KPIGroup{Key: key, KPIs: computeKPIs(facts, sel, now)})
	}
	return out, nil
}

// ServiceAreas are the configured service areas.
func (s *Service) ServiceAreas() []geo.Area { return s.cfg.Areas }

// mustKnow refuses a filter by a skill or technician that does not exist,
// which would otherwise answer zeros for a typo.
func (s *Service) mustKnow(ctx context.Context, f KPIFilter) error {
	q := s.db.WithContext(ctx)
	for _, c := range []struct {
		field, value, column string
		model                any
	}{
		{"skill", f.Skill, "code", &technicians.Skill{}},
		{"technician", f.Technician, "id", &technicians.Technician{}},
	} {
		if c.value == "" {
			continue
		}
		err := mustExist(q, c.model, c.column, c.value)
		if errs.CodeOf(err) == errs.NotFound {
			return errs.InvalidField(c.field, "unknown %s %q", c.field, c.value)
		}
		if err != nil {
			return fmt.Errorf("kpis: look up %s %s: %w", c.field, c.value, err)
		}
	}
	return nil
}

func (s *Service) checkKPIFilter(f KPIFilter) error {
	if !f.To.After(f.From) {
		return errs.InvalidField("to", "to must be after from")
	}
	if f.To.Sub(f.From) > 366*24*time.Hour {
		return errs.InvalidField("from", "the period is at most a year")
	}
	if f.Cell != nil && f.Cell.Resolution() > geo.CityResolution {
		return errs.InvalidField("cell", "cell must be an H3 cell of resolution 0 to %d", geo.CityResolution)
	}
	if f.Area != "" && !slices.ContainsFunc(s.cfg.Areas, func(a geo.Area) bool { return a.Name == f.Area }) {
		return errs.InvalidField("area", "unknown service area %q (ONSITE_SERVICE_AREAS)", f.Area)
	}
	if f.Hour != nil && (*f.Hour < 0 || *f.Hour > 23) {
		return errs.InvalidField("hour", "hour must be a whole number from 0 to 23")
	}
	if f.GroupBy != "" && !slices.Contains(KPIGroupings, f.GroupBy) {
		return errs.InvalidField("group_by", "group_by must be one of cell, area, skill, hour, technician")
	}
	return nil
}

// kpiFilterFunc is f's place, area, skill and hour conditions (the
// technician is a selection of its own: kpiSelection).
func (s *Service) kpiFilterFunc(f KPIFilter) func(*kpiRequest) bool {
	var area *geo.Area
	for i := range s.cfg.Areas {
		if s.cfg.Areas[i].Name == f.Area {
			area = &s.cfg.Areas[i]
		}
	}
	return func(r *kpiRequest) bool {
		if f.Cell != nil && (r.Cell.Resolution() < f.Cell.Resolution() || r.Cell.Parent(f.Cell.Resolution()) != *f.Cell) {
			return false
		}
		if area != nil && !area.Contains(r.Cell) {
			return false
		}
		if f.Skill != "" && r.SkillCode != f.Skill {
			return false
		}
		return f.Hour == nil || r.CreatedAt.In(s.cfg.TimeZone).Hour() == *f.Hour
	}
}

// kpiKeys returns the groups a request falls in under a grouping.
func (s *Service) kpiKeys(by string) func(*kpiRequest) []string {
	switch by {
	case "cell":
		return func(r *kpiRequest) []string { return []string{r.Cell.Parent(geo.RuralResolution).String()} }
	case "area":
		return func(r *kpiRequest) []string {
			var out []string
			for _, a := range s.cfg.Areas {
				if a.Contains(r.Cell) {
					out = append(out, a.Name)
				}
			}
			if out == nil {
				out = []string{""}
			}
			return out
		}
	case "skill":
		return func(r *kpiRequest) []string { return []string{r.SkillCode} }
	case "hour":
		return func(r *kpiRequest) []string { return []string{strconv.Itoa(r.CreatedAt.In(s.cfg.TimeZone).Hour())} }
	default: // technician
		return func(r *kpiRequest) []string { return []string{r.tech()} }
	}
}

func sortKeys(by string, keys []string) {
	if by == "hour" {
		slices.SortFunc(keys, func(a, b string) int {
			x, _ := strconv.Atoi(a)
			y, _ := strconv.Atoi(b)
			return cmp.Compare(x, y)
		})
		return
	}
	slices.Sort(keys)
}

const kpiColumns = `id, customer_id, device_id, skill_code, cell, mode, state, created_at, confirmed_at, sla_deadline,
	window_start, window_end, on_site_at, completed_at, cancelled_at, outcome, arrival_flagged, technician_id, follow_up_of`

// kpiFacts loads the rows the KPIs of [from, to) are computed from.
func (s *Service) kpiFacts(ctx context.Context, from, to time.Time) (*kpiFacts, error) {
	q := s.db.WithContext(ctx)
	const period = `SELECT id FROM requests WHERE created_at >= ? AND created_at < ?`
	var chain []*kpiRequest
	// The period's requests and every follow-up they lead to, however late.
	if err := q.Raw(`WITH RECURSIVE chain(id) AS (`+period+`
		UNION SELECT r.id FROM requests r JOIN chain c ON r.follow_up_of = c.id)
		SELECT `+kpiColumns+` FROM requests WHERE id IN (SELECT id FROM chain)`, from, to).Scan(&chain).Error; err != nil {
		return nil, fmt.Errorf("kpi requests: %w", err)
	}
	// Later visits of the same customers, which may undo a first-time fix.
	var later []*kpiRequest
	if err := q.Raw(`SELECT `+kpiColumns+` FROM requests WHERE on_site_at > ? AND customer_id IN
		(SELECT customer_id FROM requests WHERE created_at >= ? AND created_at < ? AND outcome = 'fixed')`, from, from, to).
		Scan(&later).Error; err != nil {
		return nil, fmt.Errorf("kpi later visits: %w", err)
	}
	f := &kpiFacts{All: make(map[string]*kpiRequest, len(chain)+len(later))}
	for _, r := range append(chain, later...) {
		f.All[r.ID] = r
	}
	for _, r := range f.All {
		if !r.CreatedAt.Before(from) && r.CreatedAt.Before(to) {
			f.Period = append(f.Period, r)
		}
	}
	slices.SortFunc(f.Period, func(a, b *kpiRequest) int { return cmp.Compare(a.ID, b.ID) })
	if err := q.Raw(`SELECT request_id, technician_id, state FROM offers WHERE request_id IN (`+period+`)`, from, to).
		Scan(&f.Offers).Error; err != nil {
		return nil, fmt.Errorf("kpi offers: %w", err)
	}
	if err := q.Raw(`SELECT request_id, technician_id FROM assignments WHERE end_reason = 'dropped' AND request_id IN (`+period+`)`, from, to).
		Scan(&f.Drops).Error; err != nil {
		return nil, fmt.Errorf("kpi drops: %w", err)
	}
	var evs []struct {
		RequestID, Type, Data string
		At                    time.Time
	}
	if err := q.Raw(`SELECT request_id, type, data, at FROM events WHERE request_id IN (`+period+`)
		AND (type IN ('at_risk', 'back_on_track', 'assigned', 'cancelled', 'unfulfilled', 'no_show') OR data LIKE '%"override"%')
		ORDER BY request_id, at, id`, from, to).Scan(&evs).Error; err != nil {
		return nil, fmt.Errorf("kpi events: %w", err)
	}
	for _, e := range evs {
		ke := kpiEvent{RequestID: e.RequestID, Type: e.Type, At: e.At}
		var data struct {
			Override     bool   `json:"override"`
			TechnicianID string `json:"technician_id"`
		}
		if json.Unmarshal([]byte(e.Data), &data) == nil && data.Override {
			ke.Override, ke.Tech = true, data.TechnicianID
		}
		f.Events = append(f.Events, ke)
	}
	return f, nil
}
