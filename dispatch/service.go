package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/onsite/onsite/dispatch/lifecycle"
	"github.com/onsite/onsite/dispatch/match"
	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/internal/phones"
)

// Config holds the dispatch settings.
type Config struct {
	SLA        time.Duration // promise for ASAP requests
	GiveUp     time.Duration // searching longer than this after creation → unfulfilled
	WindowLead time.Duration // windowed requests start searching this long before the window
	// JobLength is how long a technician is planned to stay on site; a job
	// taken before a booked window must leave time for it and the drive on
	// (zero: an hour).
	JobLength     time.Duration
	OfferStrategy string        // batch, sequential or wave
	BatchWindow   time.Duration // how often the batch strategy runs
	BatchUrgency  float64       // match.BatchPolicy.Urgency (the cap is the SLA)
	OfferTimeout  time.Duration
	WaveSize      int
	MaxSearchKm   float64
	ETA           geo.ETA
	Log           *slog.Logger // nil: slog.Default()
	// RegionResolution partitions requests into regions (H3 parent cells at
	// this resolution) whose batch rounds may run on different processes;
	// 0 keeps one region.
	RegionResolution int
	// TimeZone is where weekly shifts' clock times are read (nil: UTC).
	TimeZone *time.Location
	// SMSCountries are the countries whose phones a request may give for
	// texts (zero: Switzerland and its neighbours).
	SMSCountries phones.Countries
	// LateAfter is how far a predicted arrival may slip past the time the
	// customer was told before they are told again (running late); zero:
	// 10 minutes.
	LateAfter time.Duration
	// Risk debounces the at-risk flag and Escalation times the steps taken
	// for a request at risk; zero values: match.DefaultRiskPolicy and
	// match.DefaultEscalation.
	Risk       match.RiskPolicy
	Escalation match.Escalation
	// ArrivalRadiusM is how near the site (metres, from the latest position)
	// a technician must be to report nobody at the door (zero: 250).
	ArrivalRadiusM float64
	// NoShowWait is how long a technician at an empty door waits before the
	// request closes as a no-show (zero: 10 minutes).
	NoShowWait time.Duration
	// ConfirmTTL is how long a device's request waits for its owner's
	// confirmation before it is cancelled (zero: 24 hours).
	ConfirmTTL time.Duration
	// Areas are the named service areas the KPIs are reported by.
	Areas []geo.Area
}

// DefaultArrivalRadiusM is Config.ArrivalRadiusM when unset.
const DefaultArrivalRadiusM = 250

// Service applies the dispatch rules, one transaction per method.
type Service struct {
	db    *db.DB
	cfg   Config
	now   func() time.Time
	fleet *Fleet

	skills    sync.Map // skill codes known to exist
	customers knownIDs // customers known to exist (rows are never deleted)

	answerMu sync.Mutex // the typical answer time, learned every answerFresh
	answer   time.Duration
	answerAt time.Time
}

// NewService returns a Service; now is the clock.
func NewService(d *db.DB, cfg Config, now func() time.Time) *Service {
	if cfg.ETA == nil {
		cfg.ETA = geo.DefaultETA()
	}
	if cfg.LateAfter <= 0 {
		cfg.LateAfter = 10 * time.Minute
	}
	if cfg.Risk == (match.RiskPolicy{}) {
		cfg.Risk = match.DefaultRiskPolicy
	}
	if cfg.Escalation == (match.Escalation{}) {
		cfg.Escalation = match.DefaultEscalation
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.ArrivalRadiusM <= 0 {
		cfg.ArrivalRadiusM = DefaultArrivalRadiusM
	}
	if cfg.NoShowWait <= 0 {
		cfg.NoShowWait = 10 * time.Minute
	}
	if cfg.ConfirmTTL <= 0 {
		cfg.ConfirmTTL = 24 * time.Hour
	}
	if cfg.JobLength <= 0 {
		cfg.JobLength = time.Hour
	}
	if cfg.TimeZone == nil {
		cfg.TimeZone = time.UTC
	}
	if cfg.SMSCountries.IsZero() {
		cfg.SMSCountries = phones.MustParseCountries(phones.DefaultCountries)
	}
	return &Service{db: d, cfg: cfg, now: func() time.Time { return db.UTC(now()) }, fleet: NewFleet(d, now, cfg.Log, cfg.TimeZone),
		customers: knownIDs{max: 100_000}}
}

// knownIDs remembers ids of rows known to exist, so a create can skip its
// "insert if missing"; at max it forgets them all and starts again.
type knownIDs struct {
	mu  sync.Mutex
	ids map[string]struct{}
	max int
}

func (k *knownIDs) has(id string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	_, ok := k.ids[id]
	return ok
}

func (k *knownIDs) add(id string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.ids == nil || len(k.ids) >= k.max {
		k.ids = make(map[string]struct{})
	}
	k.ids[id] = struct{}{}
}

// RegionOf is the region of a request in a cell ("" with one region).
func (s *Service) RegionOf(c geo.Cell) string {
	if s.cfg.RegionResolution <= 0 {
		return ""
	}
	return c.Parent(s.cfg.RegionResolution).String()
}

// Regions lists the regions with searching requests, for the periodic
// rounds (the one region "" when requests are not partitioned).
func (s *Service) Regions(ctx context.Context) ([]string, error) {
	if s.cfg.RegionResolution <= 0 {
		return []string{""}, nil
	}
	var out []string
	if err := s.db.WithContext(ctx).Model(&Request{}).Where("state = ?", Searching).Distinct().Pluck("region", &out).Error; err != nil {
		return nil, fmt.Errorf("regions with searching requests: %w", err)
	}
	return out, nil
}

// Fleet is the live index this service decides from; run it (Fleet.Run)
// to hear other processes' changes.
func (s *Service) Fleet() *Fleet { return s.fleet }

// Caller is who asks, for ownership checks: ops sees everything, a customer
// or machine only requests of its customer, a technician only its jobs.
type Caller struct {
	Role        string
	Subject     string
	AutoConfirm bool // a machine key whose requests need no confirmation
}

func (c Caller) actor() Actor { return Actor{Role: c.Role, ID: c.Subject} }

type customer struct {
	ID        string `gorm:"primaryKey"`
	Locale    string
	CreatedAt time.Time
}

func (customer) TableName() string { return "customers" }

func mustExist(tx *gorm.DB, model any, column, value string) error {
	var n int64
	if err := tx.Model(model).Where(column+" = ?", value).Count(&n).Error; err != nil {
		return err
	}
	if n == 0 {
		return errs.NotFoundf("%s not found", value)
	}
	return nil
}

// Get returns a request the caller may see.
func (s *Service) Get(ctx context.Context, c Caller, id string) (Request, error) {
	r, err := load(s.db.WithContext(ctx), id)
	if err != nil {
		return Request{}, err
	}
	if !mayRead(c, r) {
		return Request{}, errs.NotFoundf("request %s not found", id)
	}
	return r, nil
}

func mayRead(c Caller, r Request) bool {
	switch c.Role {
	case "ops":
		return true
	case "customer", "machine":
		return r.CustomerID == c.Subject
	case "technician":
		return r.TechnicianID != nil && *r.TechnicianID == c.Subject
	}
	return false
}

func load(tx *gorm.DB, id string) (Request, error) {
	return loadRequest(tx, id)
}

// lockRequest loads a request for a change. On PostgreSQL it takes the row
// lock first, so every transaction on one request takes its locks in the same
// order (request, offers, technician, assignment) and none can deadlock;
// SQLite runs write transactions one at a time anyway.
func lockRequest(tx *gorm.DB, id string) (Request, error) {
	return loadRequest(tx.Clauses(clause.Locking{Strength: "UPDATE"}), id)
}

func loadRequest(tx *gorm.DB, id string) (Request, error) {
	var r Request
	err := tx.Where("id = ?", id).First(&r).Error
	if db.IsNotFound(err) {
		return Request{}, errs.NotFoundf("request %s not found", id)
	}
	if err != nil {
		return Request{}, fmt.Errorf("load request %s: %w", id, err)
	}
	return r, nil
}

// ListFilter narrows List.
type ListFilter struct {
	States     []State
	CustomerID string
	Limit      int
	Offset     int
}

// ParseStates reads a comma-separated list of states.
func ParseStates(s string) ([]State, error) {
	if s == "" {
		return nil, nil
	}
	var out []State
	for _, part := range strings.Split(s, ",") {
		st := State(strings.TrimSpace(part))
		if !slices.Contains(States, st) {
			return nil, errs.InvalidField("state", "unknown state %q", part)
		}
		out = append(out, st)
	}
	return out, nil
}

// List returns requests, newest first.
func (s *Service) List(ctx context.Context, f ListFilter) ([]Request, error) {
	q := s.db.WithContext(ctx).Model(&Request{})
	if len(f.States) > 0 {
		q = q.Where("state IN ?", f.States)
	}
	if f.CustomerID != "" {
		q = q.Where("customer_id = ?", f.CustomerID)
	}
	limit := f.Limit
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	out := []Request{}
	if err := q.Order("created_at DESC, id DESC").Limit(limit).Offset(f.Offset).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list requests: %w", err)
	}
	return out, nil
}

// EventView is an event as ops reads it, with its data decoded.
type EventView struct {
	Event
	Data map[string]any `json:"data"`
}

// Events returns a request's audit trail, oldest first.
func (s *Service) Events(ctx context.Context, id string) ([]EventView, error) {
	if _, err := load(s.db.WithContext(ctx), id); err != nil {
		return nil, err
	}
	var evs []Event
	if err := s.db.WithContext(ctx).Where("request_id = ?", id).Order("id").Find(&evs).Error; err != nil {
		return nil, fmt.Errorf("list events of %s: %w", id, err)
	}
	out := make([]EventView, len(evs))
	for i, e := range evs {
		out[i] = EventView{Event: e}
		_ = json.Unmarshal([]byte(e.Data), &out[i].Data)
	}
	return out, nil
}

// appendEvent writes an audit event inside tx (invariant 4), with the live
// update, the message and the webhook deliveries it implies via the outbox.
func appendEvent(tx *gorm.DB, requestID, typ string, a Actor, data map[string]any, now time.Time) error {
	var w writes
	if err := w.event(requestID, typ, a, data, now); err != nil {
		return err
	}
	return w.flush(tx, now)
}

// hooked are the event types owners' webhooks hear about: status changes.
var hooked = map[string]bool{
	"created": true, "searching": true, "scheduled": true, "assigned": true, "en_route": true, "on_site": true,
	"completed": true, "cancelled": true, "unfulfilled": true, "fault_attached": true, "at_risk": true,
	"no_show": true,
}

// transition moves r by action with a conditional update on its current
// state, so a concurrent change makes this one fail instead of both winning.
// set holds extra columns to write. It records the event.
func transition(tx *gorm.DB, r *Request, a Action, actor Actor, set map[string]any, data map[string]any, now time.Time) error {
	next, err := lifecycle.Next(r.State, a)
	if err != nil {
		return err
	}
	return move(tx, r, a, actor, set, data, tells(string(next), map[string]any{"from": r.State}), now)
}

// move is transition for a caller that knows better than the new state
// whether anyone is told of its event (tells).
func move(tx *gorm.DB, r *Request, a Action, actor Actor, set map[string]any, data map[string]any, tells bool, now time.Time) error {
	next, err := lifecycle.Next(r.State, a)
	if err != nil {
		return err
	}
	updates := map[string]any{"state": next, "updated_at": now}
	if col, ok := stampColumn[next]; ok {
		updates[col] = now
	}
	for k, v := range set {
		updates[k] = v
	}
	res := tx.Model(&Request{}).Where("id = ? AND state = ?", r.ID, r.State).Updates(updates)
	if res.Error != nil {
		return fmt.Errorf("move request %s to %s: %w", r.ID, next, res.Error)
	}
	if res.RowsAffected == 0 {
		return errs.ConflictReason("changed_concurrently", "request %s changed at the same time; try again", r.ID)
	}
	prev := r.State
	if data == nil {
		data = map[string]any{}
	}
	data["from"] = prev
	data["to"] = next
	var w writes
	if err := w.eventTelling(r.ID, string(next), actor, data, tells, now); err != nil {
		return err
	}
	if err := w.flush(tx, now); err != nil {
		return err
	}
	fresh, err := load(tx, r.ID)
	if err != nil {
		return err
	}
	*r = fresh
	return notifyRequest(tx, fresh)
}

// CancelInput is the body of a cancellation.
type CancelInput struct {
	Reason string `json:"reason"`
}

// Cancel cancels a request before the technician is on site.
func (s *Service) Cancel(ctx context.Context, c Caller, id string, in CancelInput) (Request, error) {
	reason := strings.TrimSpace(in.Reason)
	if reason == "" {
		return Request{}, errs.InvalidField("reason", "reason is required")
	}
	if len(reason) > 500 {
		return Request{}, errs.InvalidField("reason", "reason is longer than 500 characters")
	}
	return s.change(ctx, id, "cancel", func(tx *gorm.DB, r *Request, now time.Time) error {
		if !mayRead(c, *r) || c.Role == "technician" {
			return errs.NotFoundf("request %s not found", id)
		}
		techID := r.TechnicianID
		data := map[string]any{"reason": reason}
		if techID != nil {
			data["technician_id"] = *techID // who no longer needs to go
		}
		if err := transition(tx, r, Cancel, c.actor(), map[string]any{"cancel_reason": reason}, data, now); err != nil {
			return err
		}
		if err := s.withdrawPending(tx, r.ID, "request cancelled", now); err != nil {
			return err
		}
		if techID != nil {
			if err := endAssignment(tx, r.ID, *techID, "cancelled", now); err != nil {
				return err
			}
		}
		return s.afterStateChange(tx, r, now)
	})
}

// change runs f on the locked request in one transaction and returns the
// request as f left it: the shape of every action on a request.
func (s *Service) change(ctx context.Context, id, what string, f func(tx *gorm.DB, r *Request, now time.Time) error) (Request, error) {
	now := s.now()
	var out Request
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		r, err := lockRequest(tx, id)
		if err != nil {
			return err
		}
		if err := f(tx, &r, now); err != nil {
			return err
		}
		out = r
		return nil
	})
	if err != nil {
		return Request{}, wrap(what+" request "+id, err)
	}
	return out, nil
}

// wrap adds context to unexpected errors and leaves domain errors as they are
// (they are already meant for the client).
func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errs.As(err); ok {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

func errNotFound(what, id string) error { return errs.NotFoundf("%s %s not found", what, id) }
