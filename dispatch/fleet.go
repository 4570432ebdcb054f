package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"

	"github.com/onsite/onsite/dispatch/match"
	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/technicians"
)

// Fleet is this process's live index of technicians: the same match.Pool the
// simulator decides from, loaded from the database at start and kept
// current by the change feed (technicians.Channel), with a full resync
// after any gap in the feed. The database stays the truth: offers and
// assignments still commit through conditional updates, so a stale index can
// cost a candidate, never a wrong assignment.
//
// The fleet also keeps the searching requests (for the queue ahead of a
// customer's expected wait), fed by requestsChannel.
type Fleet struct {
	db         *db.DB
	now        func() time.Time
	log        *slog.Logger
	resolution int
	resyncEach time.Duration
	zone       *time.Location // of weekly shifts' clock times

	pool   atomic.Pointer[match.Pool]
	loaded atomic.Bool

	reloading sync.Mutex // one reload or resync at a time, so an older read never lands after a newer one
	mu        sync.Mutex
	dirty     map[string]struct{}
	inflight  map[string]struct{} // being reloaded now: a move heard meanwhile is reloaded again
	loading   bool                // a full load is reading: every move heard meanwhile is reloaded after it
	kick      chan struct{}

	waitMu  sync.RWMutex
	waiting map[string]waitingRequest
	waits   map[waitKey]cachedWait
}

// waitingRequest is what the fleet keeps of a searching request.
type waitingRequest struct {
	skill   string
	place   geo.Point
	created time.Time
}

// NewFleet returns an empty fleet; Load fills it and Run keeps it current.
// Weekly shifts are laid out at their clock times in zone.
func NewFleet(d *db.DB, now func() time.Time, log *slog.Logger, zone *time.Location) *Fleet {
	f := &Fleet{db: d, now: func() time.Time { return db.UTC(now()) }, log: log, resolution: geo.CityResolution, zone: zone,
		resyncEach: 10 * time.Minute, dirty: map[string]struct{}{}, kick: make(chan struct{}, 1),
		waiting: map[string]waitingRequest{}, waits: map[waitKey]cachedWait{}}
	f.pool.Store(match.NewPool(f.resolution))
	d.Subscribe(technicians.Channel, f.heard)
	d.Subscribe(requestsChannel, f.heardRequest)
	return f
}

// match.Pool is the current index (replaced whole by a resync).
func (f *Fleet) Pool() *match.Pool { return f.pool.Load() }

// Load reads every technician and searching request from the database into
// a fresh index and puts it in place.
func (f *Fleet) Load(ctx context.Context) error {
	f.reloading.Lock()
	defer f.reloading.Unlock()
	// What was marked before this read is in it; what is marked from now
	// on is applied after it.
	f.mu.Lock()
	before := f.dirty
	f.dirty, f.loading = map[string]struct{}{}, true
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.loading = false
		f.mu.Unlock()
	}()
	pool := match.NewPool(f.resolution)
	cands, err := f.read(ctx, nil)
	if err != nil {
		f.remark(before)
		return err
	}
	for _, c := range cands {
		if c.HasPosition {
			pool.Put(c)
		}
	}
	waiting, err := f.readWaiting(ctx)
	if err != nil {
		f.remark(before)
		return err
	}
	f.pool.Store(pool)
	f.loaded.Store(true)
	f.waitMu.Lock()
	f.waiting, f.waits = waiting, map[waitKey]cachedWait{}
	f.waitMu.Unlock()
	return nil
}

// Run keeps the index current until ctx ends: it hears other processes
// through the database's LISTEN (resyncing on every (re)connect, since
// changes may have gone unheard), applies reloads as they are marked, and
// resyncs every few minutes as a safety net.
func (f *Fleet) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		first := true
		f.db.Listen(ctx, technicians.Channel, f.heard, func() {
			if first {
				first = false // Load ran just before Run
				return
			}
			f.resync(ctx)
		})
	}()
	go func() {
		defer wg.Done()
		f.db.Listen(ctx, requestsChannel, f.heardRequest, func() {})
	}()
	t := time.NewTicker(f.resyncEach)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-f.kick:
			if err := f.Sync(ctx); err != nil && ctx.Err() == nil {
				f.log.Warn("fleet: reload technicians", "err", err)
			}
		case <-t.C:
			f.resync(ctx)
		}
	}
}

func (f *Fleet) resync(ctx context.Context) {
	if err := f.Load(ctx); err != nil && ctx.Err() == nil {
		f.log.Warn("fleet: resync", "err", err)
		f.mark("") // retried at the next kick
	}
}

// heard applies one message of the technicians feed: positions at once,
// other changes marked for a reload from the database.
func (f *Fleet) heard(payload string) {
	ch, ok := technicians.ParseChange(payload)
	if !ok {
		f.log.Warn("fleet: unknown change, resyncing", "payload", payload)
		go f.resync(context.Background())
		return
	}
	pool := f.Pool()
	f.mu.Lock()
	for _, m := range ch.Moves {
		// A reload reading now could put an older position back after this
		// move: leave the position to a reload that reads after it.
		_, dirty := f.dirty[m.ID]
		_, reading := f.inflight[m.ID]
		if f.loading || dirty || reading || !pool.Move(m.ID, m.Point) {
			ch.Reload = append(ch.Reload, m.ID) // (or not held yet: its first position)
		}
	}
	f.mu.Unlock()
	f.mark(ch.Reload...)
}

// remark marks again what a failed load had taken.
func (f *Fleet) remark(ids map[string]struct{}) {
	f.mu.Lock()
	for id := range ids {
		f.dirty[id] = struct{}{}
	}
	f.mu.Unlock()
}

func (f *Fleet) mark(ids ...string) {
	if len(ids) == 0 {
		return
	}
	f.mu.Lock()
	for _, id := range ids {
		if id != "" {
			f.dirty[id] = struct{}{}
		}
	}
	f.mu.Unlock()
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// Sync applies every change heard so far (reloading the technicians marked),
// so a decision made next sees all that this process committed.
func (f *Fleet) Sync(ctx context.Context) error {
	f.reloading.Lock()
	defer f.reloading.Unlock()
	f.mu.Lock()
	ids := make([]string, 0, len(f.dirty))
	for id := range f.dirty {
		ids = append(ids, id)
	}
	f.dirty = map[string]struct{}{}
	f.inflight = make(map[string]struct{}, len(ids))
	for _, id := range ids {
		f.inflight[id] = struct{}{}
	}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight = nil
		f.mu.Unlock()
	}()
	if len(ids) == 0 {
		return nil
	}
	cands, err := f.read(ctx, ids)
	if err != nil {
		f.mark(ids...)
		return err
	}
	pool := f.Pool()
	found := make(map[string]bool, len(cands))
	for _, c := range cands {
		found[c.TechnicianID] = true
		if c.HasPosition {
			pool.Put(c)
		} else {
			pool.Remove(c.TechnicianID)
		}
	}
	for _, id := range ids {
		if !found[id] {
			pool.Remove(id)
		}
	}
	return nil
}

// fleetRow is what the fleet reads per technician.
type fleetRow struct {
	ID             string
	Lat, Lng       *float64
	TravelMode     string
	SpeedKmh       float64
	RadiusKm       float64
	DutyStatus     string
	Suspended      bool
	ActiveJobs     int
	Capacity       int
	Rating         float64
	IdleSince      *time.Time
	OffersSent     int
	OffersAccepted int
	HasShifts      bool
}

// read loads technicians as candidates: all of them (ids nil) or those
// given, in six statements per thousand.
func (f *Fleet) read(ctx context.Context, ids []string) ([]match.Candidate, error) {
	if ids == nil {
		return f.readChunk(ctx, nil)
	}
	var out []match.Candidate
	for start := 0; start < len(ids); start += 1000 {
		c, err := f.readChunk(ctx, ids[start:min(start+1000, len(ids))])
		if err != nil {
			return nil, err
		}
		out = append(out, c...)
	}
	return out, nil
}

func (f *Fleet) readChunk(ctx context.Context, ids []string) ([]match.Candidate, error) {
	cands, err := readCandidates(f.db.WithContext(ctx), f.now(), ids, f.zone)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	return cands, nil
}

// readCandidates loads technicians from q as the matching core sees them
// (all of them when ids is nil) in six statements: the index reads them so,
// and so does every door that gives a technician a job (eligibleAtDoor),
// inside its own transaction.
func readCandidates(q *gorm.DB, now time.Time, ids []string, zone *time.Location) ([]match.Candidate, error) {
	filter := func(col string) (string, []any) {
		if ids == nil {
			return "", nil
		}
		return " AND " + col + " IN ?", []any{ids}
	}
	where, args := filter("t.id")
	var rows []fleetRow
	if err := q.Raw(`SELECT t.id, t.lat, t.lng, t.travel_mode, t.speed_kmh, t.radius_km, t.duty_status, t.suspended,
			t.active_jobs, t.capacity, t.rating, t.idle_since, t.offers_sent, t.offers_accepted,
			(EXISTS (SELECT 1 FROM shifts sh WHERE sh.technician_id = t.id AND sh.kind = 'shift')
			 OR EXISTS (SELECT 1 FROM weekly_shifts ws WHERE ws.technician_id = t.id AND ws.kind = 'shift')) AS has_shifts
		FROM technicians t WHERE 1 = 1`+where, args...).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("load technicians: %w", err)
	}
	where, args = filter("technician_id")
	var certs []technicians.Certification
	if err := q.Raw(`SELECT technician_id, skill_code, certified_at, expires_at FROM certifications WHERE expires_at > ?`+where,
		append([]any{now}, args...)...).Scan(&certs).Error; err != nil {
		return nil, fmt.Errorf("load certifications: %w", err)
	}
	var shifts []technicians.Shift
	if err := q.Raw(`SELECT technician_id, kind, starts_at, ends_at FROM shifts WHERE ends_at > ?`+where,
		append([]any{now.Add(-time.Hour)}, args...)...).Scan(&shifts).Error; err != nil {
		return nil, fmt.Errorf("load shifts: %w", err)
	}
	var weekly []technicians.WeeklyShift
	if err := q.Raw(`SELECT technician_id, kind, weekday, start_minute, minutes FROM weekly_shifts WHERE 1 = 1`+where, args...).
		Scan(&weekly).Error; err != nil {
		return nil, fmt.Errorf("load weekly shifts: %w", err)
	}
	var deciding []struct {
		TechnicianID string
		ExpiresAt    time.Time
	}
	if err := q.Raw(`SELECT technician_id, expires_at FROM offers WHERE state = ? AND expires_at > ?`+where,
		append([]any{OfferPending, now}, args...)...).Scan(&deciding).Error; err != nil {
		return nil, fmt.Errorf("load pending offers: %w", err)
	}
	where, args = filter("a.technician_id")
	var booked []struct {
		TechnicianID           string
		Lat, Lng               float64
		WindowStart, WindowEnd time.Time
	}
	if err := q.Raw(`SELECT a.technician_id, r.lat, r.lng, r.window_start, r.window_end
		FROM assignments a JOIN requests r ON r.id = a.request_id
		WHERE a.ended_at IS NULL AND a.counted = FALSE AND r.window_start IS NOT NULL`+where,
		args...).Scan(&booked).Error; err != nil {
		return nil, fmt.Errorf("load bookings: %w", err)
	}
	byID := make(map[string]*match.Candidate, len(rows))
	out := make([]match.Candidate, len(rows))
	for i, r := range rows {
		c := match.Candidate{
			TechnicianID: r.ID, Traveller: geo.Traveller{Mode: r.TravelMode, SpeedKmh: r.SpeedKmh}, RadiusKm: r.RadiusKm,
			Certs:     map[string]match.Interval{},
			Available: r.DutyStatus == technicians.Available && !r.Suspended, ActiveJobs: r.ActiveJobs, Capacity: r.Capacity,
			Rating: r.Rating, OffersSent: r.OffersSent, Accepted: r.OffersAccepted,
		}
		if r.Lat != nil && r.Lng != nil {
			c.Position, c.HasPosition = geo.Point{Lat: *r.Lat, Lng: *r.Lng}, true
		}
		if r.IdleSince != nil {
			c.IdleSince = *r.IdleSince
		}
		if r.HasShifts {
			// Shifts exist even if none is current or ahead: an empty
			// interval keeps such a technician outside every shift.
			c.Shifts = []match.Interval{{}}
		}
		out[i] = c
		byID[r.ID] = &out[i]
	}
	for _, ct := range certs {
		if c := byID[ct.TechnicianID]; c != nil {
			c.Certs[ct.SkillCode] = match.Interval{Start: ct.CertifiedAt, End: ct.ExpiresAt}
		}
	}
	// Shifts and breaks as spans from an hour ago to a week ahead (the
	// index is reloaded whole every few minutes, so the horizon keeps up).
	oneOff := map[string][]technicians.Shift{}
	for _, sh := range shifts {
		oneOff[sh.TechnicianID] = append(oneOff[sh.TechnicianID], sh)
	}
	recurring := map[string][]technicians.WeeklyShift{}
	for _, ws := range weekly {
		recurring[ws.TechnicianID] = append(recurring[ws.TechnicianID], ws)
	}
	for id, c := range byID {
		if len(oneOff[id]) == 0 && len(recurring[id]) == 0 {
			continue
		}
		sched := technicians.ScheduleOf(oneOff[id], recurring[id], now.Add(-time.Hour), now.Add(technicians.ScheduleHorizon), zone)
		for _, sp := range sched.Shifts {
			c.Shifts = append(c.Shifts, match.Interval{Start: sp.Start, End: sp.End})
		}
		for _, sp := range sched.Breaks {
			c.Breaks = append(c.Breaks, match.Interval{Start: sp.Start, End: sp.End})
		}
	}
	for _, b := range booked {
		if c := byID[b.TechnicianID]; c != nil {
			c.Bookings = append(c.Bookings, match.Booking{Place: geo.Point{Lat: b.Lat, Lng: b.Lng}, Start: b.WindowStart, End: b.WindowEnd})
		}
	}
	for _, d := range deciding {
		if c := byID[d.TechnicianID]; c != nil && d.ExpiresAt.After(c.DecidingUntil) {
			c.DecidingUntil = d.ExpiresAt
		}
	}
	return out, nil
}

// requestsChannel carries searching requests coming and going: "id state
// skill lat lng created-unix-µs".
const requestsChannel = "requests"

// notifyRequest says inside tx that r is now in its state, for the fleets'
// queues.
func notifyRequest(tx *gorm.DB, r Request) error {
	return db.Notify(tx, requestsChannel, requestPayload(r))
}

func requestPayload(r Request) string {
	return strings.Join([]string{r.ID, string(r.State), r.SkillCode, strconv.FormatFloat(r.Lat, 'f', -1, 64),
		strconv.FormatFloat(r.Lng, 'f', -1, 64), strconv.FormatInt(r.CreatedAt.UnixMicro(), 10)}, " ")
}

func (f *Fleet) heardRequest(payload string) {
	p := strings.Fields(payload)
	if len(p) != 6 {
		return
	}
	lat, err1 := strconv.ParseFloat(p[3], 64)
	lng, err2 := strconv.ParseFloat(p[4], 64)
	us, err3 := strconv.ParseInt(p[5], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return
	}
	f.waitMu.Lock()
	defer f.waitMu.Unlock()
	if State(p[1]) == Searching {
		f.waiting[p[0]] = waitingRequest{skill: p[2], place: geo.Point{Lat: lat, Lng: lng}, created: time.UnixMicro(us).UTC()}
	} else {
		delete(f.waiting, p[0])
	}
}

func (f *Fleet) readWaiting(ctx context.Context) (map[string]waitingRequest, error) {
	var rows []Request
	if err := f.db.WithContext(ctx).Select("id", "skill_code", "lat", "lng", "created_at").
		Where("state = ?", Searching).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("fleet: load searching requests: %w", err)
	}
	out := make(map[string]waitingRequest, len(rows))
	for _, r := range rows {
		out[r.ID] = waitingRequest{skill: r.SkillCode, place: r.Place(), created: r.CreatedAt}
	}
	return out, nil
}
