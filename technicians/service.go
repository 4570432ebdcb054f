package technicians

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/errs"
)

// Service holds the technician rules over the database.
type Service struct {
	db   *db.DB
	now  func() time.Time
	zone *time.Location // of weekly shifts' clock times
}

// NewService returns a Service; now is the clock (time.Now in production).
// Weekly shifts are read in UTC until WithTimeZone says otherwise.
func NewService(d *db.DB, now func() time.Time) *Service {
	return &Service{db: d, now: func() time.Time { return db.UTC(now()) }, zone: time.UTC}
}

// WithTimeZone sets the time zone of weekly shifts' clock times
// (ONSITE_TIME_ZONE) and returns s.
func (s *Service) WithTimeZone(loc *time.Location) *Service {
	if loc != nil {
		s.zone = loc
	}
	return s
}

// CreateSkill adds a skill to the catalog.
func (s *Service) CreateSkill(ctx context.Context, code, name string) (Skill, error) {
	return s.AddSkill(ctx, Skill{Code: code, Name: name})
}

// AddSkill adds a skill to the catalog with its names by locale.
func (s *Service) AddSkill(ctx context.Context, in Skill) (Skill, error) {
	code := strings.TrimSpace(in.Code)
	name := strings.TrimSpace(in.Name)
	if !ValidSkillCode(code) {
		return Skill{}, errs.InvalidField("code", "skill code must be 2-40 lowercase letters, digits or _, starting with a letter")
	}
	if name == "" || len(name) > 100 {
		return Skill{}, errs.InvalidField("name", "name must be 1-100 characters")
	}
	names, err := skillNames(in.Names)
	if err != nil {
		return Skill{}, err
	}
	sk := Skill{Code: code, Name: name, Names: names, CreatedAt: s.now()}
	if err := s.db.WithContext(ctx).Create(&sk).Error; err != nil {
		if db.IsDuplicate(err) {
			return Skill{}, errs.ConflictReason("skill_exists", "skill %q already exists", code)
		}
		return Skill{}, fmt.Errorf("create skill %s: %w", code, err)
	}
	return sk, nil
}

// skillNames checks a skill's names by locale and trims them.
func skillNames(in Names) (Names, error) {
	out := make(Names, len(in))
	for loc, n := range in {
		n = strings.TrimSpace(n)
		switch {
		case !locales[loc]:
			return nil, errs.InvalidField("names", "names are keyed by locale: en, de, fr or it (not %q)", loc)
		case n == "" || len(n) > 100:
			return nil, errs.InvalidField("names."+loc, "a name must be 1-100 characters")
		}
		out[loc] = n
	}
	return out, nil
}

// SkillUpdate changes a skill's display names; nil fields stay.
type SkillUpdate struct {
	Name  *string `json:"name"`
	Names Names   `json:"names"`
}

// UpdateSkill renames a skill or sets its names by locale (Names replaces
// them all).
func (s *Service) UpdateSkill(ctx context.Context, code string, in SkillUpdate) (Skill, error) {
	updates := map[string]any{}
	if in.Name != nil {
		name := strings.TrimSpace(*in.Name)
		if name == "" || len(name) > 100 {
			return Skill{}, errs.InvalidField("name", "name must be 1-100 characters")
		}
		updates["name"] = name
	}
	if in.Names != nil {
		names, err := skillNames(in.Names)
		if err != nil {
			return Skill{}, err
		}
		updates["names"] = names
	}
	if len(updates) == 0 {
		return Skill{}, errs.InvalidField("names", "nothing to change: give name or names")
	}
	res := s.db.WithContext(ctx).Model(&Skill{}).Where("code = ?", code).Updates(updates)
	if res.Error != nil {
		return Skill{}, fmt.Errorf("update skill %s: %w", code, res.Error)
	}
	if res.RowsAffected == 0 {
		return Skill{}, errs.NotFoundf("skill %s not found", code)
	}
	var sk Skill
	if err := s.db.WithContext(ctx).Where("code = ?", code).First(&sk).Error; err != nil {
		return Skill{}, fmt.Errorf("load skill %s: %w", code, err)
	}
	return sk, nil
}

// ListSkills returns the catalog ordered by code.
func (s *Service) ListSkills(ctx context.Context) ([]Skill, error) {
	var out []Skill
	if err := s.db.WithContext(ctx).Order("code").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list skills: %w", err)
	}
	return out, nil
}

// SkillExists reports whether code is in the catalog.
func (s *Service) SkillExists(ctx context.Context, code string) (bool, error) {
	var n int64
	if err := s.db.WithContext(ctx).Model(&Skill{}).Where("code = ?", code).Count(&n).Error; err != nil {
		return false, fmt.Errorf("find skill %s: %w", code, err)
	}
	return n > 0, nil
}

// NewTechnician is what ops gives to onboard a technician.
type NewTechnician struct {
	Name       string   `json:"name"`
	Phone      string   `json:"phone"`
	Locale     string   `json:"locale"`
	TravelMode string   `json:"travel_mode"`
	SpeedKmh   *float64 `json:"speed_kmh"`
	RadiusKm   *float64 `json:"radius_km"`
	Capacity   *int     `json:"capacity"`
}

var locales = map[string]bool{"en": true, "de": true, "fr": true, "it": true}

// modeSpeeds is the speed a travel mode assumes unless one is given.
var modeSpeeds = map[string]float64{"car": 25, "bike": 15, "foot": 5}

func validLocale(l string) error {
	if !locales[l] {
		return errs.InvalidField("locale", "locale must be en, de, fr or it")
	}
	return nil
}

// modeSpeed is the default speed of a travel mode, or why it is no mode.
func modeSpeed(mode string) (float64, error) {
	speed, ok := modeSpeeds[mode]
	if !ok {
		return 0, errs.InvalidField("travel_mode", "travel_mode must be car, bike or foot")
	}
	return speed, nil
}

func validSpeed(v float64) error {
	if !(v > 0 && v <= 150) {
		return errs.InvalidField("speed_kmh", "speed_kmh must be above 0 and at most 150")
	}
	return nil
}

func validRadius(v float64) error {
	if !(v > 0 && v <= 500) {
		return errs.InvalidField("radius_km", "radius_km must be above 0 and at most 500")
	}
	return nil
}

func validCapacity(v int) error {
	if v < 1 || v > 10 {
		return errs.InvalidField("capacity", "capacity must be from 1 to 10")
	}
	return nil
}

func (n NewTechnician) build(id string, now time.Time) (Technician, error) {
	t := Technician{
		ID: id, Name: strings.TrimSpace(n.Name), Phone: strings.TrimSpace(n.Phone), Locale: n.Locale,
		DutyStatus: Offline, TravelMode: n.TravelMode, SpeedKmh: 25, RadiusKm: 30, Capacity: 1,
		CreatedAt: now, UpdatedAt: now,
	}
	if t.Name == "" || len(t.Name) > 100 {
		return t, errs.InvalidField("name", "name must be 1-100 characters")
	}
	if !ValidPhone(t.Phone) {
		return t, errs.InvalidField("phone", "phone must be in E.164 form, such as +41791234567")
	}
	if t.Locale == "" {
		t.Locale = "en"
	}
	if err := validLocale(t.Locale); err != nil {
		return t, err
	}
	if t.TravelMode == "" {
		t.TravelMode = "car"
	}
	speed, err := modeSpeed(t.TravelMode)
	if err != nil {
		return t, err
	}
	t.SpeedKmh = speed
	if n.SpeedKmh != nil {
		if err := validSpeed(*n.SpeedKmh); err != nil {
			return t, err
		}
		t.SpeedKmh = *n.SpeedKmh
	}
	if n.RadiusKm != nil {
		if err := validRadius(*n.RadiusKm); err != nil {
			return t, err
		}
		t.RadiusKm = *n.RadiusKm
	}
	if n.Capacity != nil {
		if err := validCapacity(*n.Capacity); err != nil {
			return t, err
		}
		t.Capacity = *n.Capacity
	}
	return t, nil
}

// Create onboards a technician, offline and without certifications.
func (s *Service) Create(ctx context.Context, n NewTechnician) (Technician, error) {
	t, err := n.build(db.NewID(), s.now())
	if err != nil {
		return Technician{}, err
	}
	err = s.db.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Omit(clause.Associations).Create(&t).Error; err != nil {
			return err
		}
		return Changed(tx, t.ID)
	})
	if err != nil {
		if db.IsDuplicate(err) {
			return Technician{}, errs.ConflictReason("phone_taken", "a technician with phone %s already exists", t.Phone)
		}
		return Technician{}, fmt.Errorf("create technician: %w", err)
	}
	t.Certifications = []Certification{}
	t.Shifts = []Shift{}
	t.WeeklyShifts = []WeeklyShift{}
	return t, nil
}

// Changes is what may change of a technician after onboarding; a nil field
// stays as it is. A new travel_mode without a speed_kmh takes that mode's
// speed (car 25, bike 15, foot 5 km/h).
type Changes struct {
	Capacity   *int     `json:"capacity"`
	RadiusKm   *float64 `json:"radius_km"`
	TravelMode *string  `json:"travel_mode"`
	SpeedKmh   *float64 `json:"speed_kmh"`
	Locale     *string  `json:"locale"`
}

// columns validates the changes and returns the columns they write.
func (ch Changes) columns() (map[string]any, error) {
	set := map[string]any{}
	if ch.Capacity != nil {
		if err := validCapacity(*ch.Capacity); err != nil {
			return nil, err
		}
		set["capacity"] = *ch.Capacity
	}
	if ch.RadiusKm != nil {
		if err := validRadius(*ch.RadiusKm); err != nil {
			return nil, err
		}
		set["radius_km"] = *ch.RadiusKm
	}
	if ch.TravelMode != nil {
		speed, err := modeSpeed(*ch.TravelMode)
		if err != nil {
			return nil, err
		}
		set["travel_mode"], set["speed_kmh"] = *ch.TravelMode, speed
	}
	if ch.SpeedKmh != nil {
		if err := validSpeed(*ch.SpeedKmh); err != nil {
			return nil, err
		}
		set["speed_kmh"] = *ch.SpeedKmh
	}
	if ch.Locale != nil {
		if err := validLocale(*ch.Locale); err != nil {
			return nil, err
		}
		set["locale"] = *ch.Locale
	}
	if len(set) == 0 {
		return nil, errs.InvalidField("", "nothing to change: give capacity, radius_km, travel_mode, speed_kmh or locale")
	}
	return set, nil
}

// Update changes a technician's settings in one conditional update, said on
// the change feed so every live index follows. Capacity may not go below the
// jobs the technician holds now (409); an on-duty technician's duty status
// follows the new capacity (busy when their jobs fill it, available when
// not).
func (s *Service) Update(ctx context.Context, techID string, ch Changes) (Technician, error) {
	set, err := ch.columns()
	if err != nil {
		return Technician{}, err
	}
	set["updated_at"] = s.now()
	err = s.db.Tx(ctx, func(tx *gorm.DB) error {
		q := tx.Model(&Technician{}).Where("id = ?", techID)
		if ch.Capacity != nil {
			// Decided by the row as it is when written, so a job taken at the
			// same moment is counted.
			q = q.Where("active_jobs <= ?", *ch.Capacity)
			set["duty_status"] = gorm.Expr("CASE WHEN duty_status = ? THEN ? WHEN active_jobs >= ? THEN ? ELSE ? END",
				Offline, Offline, *ch.Capacity, Busy, Available)
		}
		res := q.Updates(set)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			t, err := get(tx, techID)
			if err != nil {
				return err
			}
			return errs.ConflictReason("capacity_below_jobs", "technician %s holds %d jobs: capacity cannot go below that", techID, t.ActiveJobs)
		}
		return Changed(tx, techID)
	})
	if err != nil {
		return Technician{}, fmt.Errorf("update technician %s: %w", techID, err)
	}
	return s.Get(ctx, techID)
}

// Filter narrows List.
type Filter struct {
	DutyStatus string
	Skill      string
	Query      string // part of the name or phone
	Limit      int
	Offset     int
}

// List returns technicians matching f, newest first.
func (s *Service) List(ctx context.Context, f Filter) ([]Technician, error) {
	q := s.db.WithContext(ctx).Model(&Technician{}).Preload("Certifications").Preload("Shifts").Preload("WeeklyShifts")
	if f.DutyStatus != "" {
		if f.DutyStatus != Offline && f.DutyStatus != Available && f.DutyStatus != Busy {
			return nil, errs.InvalidField("status", "status must be offline, available or busy")
		}
		q = q.Where("duty_status = ?", f.DutyStatus)
	}
	if f.Skill != "" {
		q = q.Where("id IN (SELECT technician_id FROM certifications WHERE skill_code = ? AND expires_at > ?)", f.Skill, s.now())
	}
	if f.Query != "" {
		like := "%" + strings.ToLower(f.Query) + "%"
		q = q.Where("LOWER(name) LIKE ? OR phone LIKE ?", like, like)
	}
	limit := f.Limit
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	var out []Technician
	if err := q.Order("created_at DESC, id DESC").Limit(limit).Offset(f.Offset).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list technicians: %w", err)
	}
	return out, nil
}

// Get returns one technician with certifications and shifts.
func (s *Service) Get(ctx context.Context, id string) (Technician, error) {
	return get(s.db.WithContext(ctx), id)
}

func get(tx *gorm.DB, id string) (Technician, error) {
	var t Technician
	err := tx.Preload("Certifications", func(q *gorm.DB) *gorm.DB { return q.Order("skill_code") }).
		Preload("Shifts", func(q *gorm.DB) *gorm.DB { return q.Order("starts_at") }).
		Preload("WeeklyShifts", func(q *gorm.DB) *gorm.DB { return q.Order("weekday, start_minute") }).
		Where("id = ?", id).First(&t).Error
	if db.IsNotFound(err) {
		return Technician{}, errs.NotFoundf("technician %s not found", id)
	}
	if err != nil {
		return Technician{}, fmt.Errorf("get technician %s: %w", id, err)
	}
	return t, nil
}

// Certify grants or renews a skill until expiresAt.
func (s *Service) Certify(ctx context.Context, techID, skill string, certifiedAt *time.Time, expiresAt time.Time) (Certification, error) {
	now := s.now()
	c := Certification{TechnicianID: techID, SkillCode: skill, CertifiedAt: now, ExpiresAt: db.UTC(expiresAt)}
	if certifiedAt != nil {
		c.CertifiedAt = db.UTC(*certifiedAt)
	}
	if expiresAt.IsZero() {
		return Certification{}, errs.InvalidField("expires_at", "expires_at is required")
	}
	if !c.ExpiresAt.After(now) {
		return Certification{}, errs.InvalidField("expires_at", "expires_at must be in the future")
	}
	if !c.ExpiresAt.After(c.CertifiedAt) {
		return Certification{}, errs.InvalidField("expires_at", "expires_at must be after certified_at")
	}
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		if err := mustExist(tx, &Technician{}, "id", techID, "technician"); err != nil {
			return err
		}
		if err := mustExist(tx, &Skill{}, "code", skill, "skill"); err != nil {
			return err
		}
		if err := tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "technician_id"}, {Name: "skill_code"}},
			DoUpdates: clause.AssignmentColumns([]string{"certified_at", "expires_at"}),
		}).Create(&c).Error; err != nil {
			return err
		}
		return Changed(tx, techID)
	})
	if err != nil {
		return Certification{}, fmt.Errorf("certify %s for %s: %w", techID, skill, err)
	}
	return c, nil
}

// Revoke removes a certification.
func (s *Service) Revoke(ctx context.Context, techID, skill string) error {
	var affected int64
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		res := tx.Where("technician_id = ? AND skill_code = ?", techID, skill).Delete(&Certification{})
		if res.Error != nil {
			return res.Error
		}
		affected = res.RowsAffected
		return Changed(tx, techID)
	})
	if err != nil {
		return fmt.Errorf("revoke %s for %s: %w", skill, techID, err)
	}
	if affected == 0 {
		if _, err := s.Get(ctx, techID); err != nil {
			return err
		}
		return errs.NotFoundf("technician %s holds no certification for %s", techID, skill)
	}
	return nil
}

func mustExist(tx *gorm.DB, model any, column, value, what string) error {
	var n int64
	if err := tx.Model(model).Where(column+" = ?", value).Count(&n).Error; err != nil {
		return err
	}
	if n == 0 {
		return errs.NotFoundf("%s %s not found", what, value)
	}
	return nil
}

// SetDuty puts a technician on duty (available, or busy while at capacity)
// or off duty. Going on duty outside every shift keeps the wish for the
// next shift: the technician is on duty from its start (OnDutyFrom says
// when; the shift clock leaves them be until then), and refused with a
// conflict when no shift lies ahead in the next week. A break does not
// change duty: matching leaves them out for its span.
func (s *Service) SetDuty(ctx context.Context, techID, status string) (Technician, error) {
	now := s.now()
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		t, err := get(tx, techID)
		if err != nil {
			return err
		}
		// The technician chose: no text about being taken off duty is owed
		// any more, and no reason of Onsite's stands.
		updates := map[string]any{"duty_status": Offline, "on_duty_from": nil, "updated_at": now, "duty_reason": nil, "duty_notice_at": nil}
		switch status {
		case Offline:
		case Available:
			if t.Suspended {
				return errs.ConflictReason("suspended", "technician %s is suspended and cannot go on duty", techID)
			}
			if sched := t.Schedule(now, now.Add(ScheduleHorizon), s.zone); !sched.InShift(now) {
				next, ok := sched.NextShift(now)
				if !ok {
					return errs.ConflictReason("no_shift_ahead", "technician %s has no shift now or in the next week: ask ops for one", techID)
				}
				updates["on_duty_from"] = next
			}
			// Decided by the row as it is when written, so a job taken at the
			// same moment keeps the technician busy.
			updates["duty_status"] = gorm.Expr("CASE WHEN active_jobs >= capacity THEN ? ELSE ? END", Busy, Available)
			if t.DutyStatus != Available {
				updates["idle_since"] = now
			}
		default:
			return errs.InvalidField("status", "status must be available or offline")
		}
		if err := tx.Model(&Technician{}).Where("id = ?", techID).Updates(updates).Error; err != nil {
			return err
		}
		return Changed(tx, techID)
	})
	if err != nil {
		return Technician{}, fmt.Errorf("set duty of %s: %w", techID, err)
	}
	return s.Get(ctx, techID)
}

// Why Onsite takes a technician off duty (technicians.duty_reason); each is
// texted to them (jobs.Messages.DutyNotices).
const (
	DutyShiftEnded = "shift_ended" // their shifts hold none now
	DutyNoPosition = "no_position" // their app stopped reporting a position
	DutySuspended  = "suspended"   // ops suspended them
)

// DutyNotice is a technician owed a text about being taken off duty.
type DutyNotice struct {
	TechnicianID string
	Name         string
	Phone        string
	Locale       string
	Reason       string
	At           time.Time // when; with TechnicianID, the text's key
	Current      bool      // still off duty for that reason (else the text is moot)
}

// DutyNotices returns the technicians owed a text about being taken off
// duty, oldest first (at most limit).
func (s *Service) DutyNotices(ctx context.Context, limit int) ([]DutyNotice, error) {
	var rows []struct {
		ID, Name, Phone, Locale, DutyStatus string
		DutyReason                          *string
		DutyNoticeAt                        time.Time
		Suspended                           bool
	}
	if err := s.db.WithContext(ctx).Model(&Technician{}).
		Select("id", "name", "phone", "locale", "duty_status", "duty_reason", "duty_notice_at", "suspended").
		Where("duty_notice_at IS NOT NULL").Order("duty_notice_at").Limit(limit).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("duty notices: %w", err)
	}
	out := make([]DutyNotice, len(rows))
	for i, r := range rows {
		n := DutyNotice{TechnicianID: r.ID, Name: r.Name, Phone: r.Phone, Locale: r.Locale, At: r.DutyNoticeAt}
		if r.DutyReason != nil {
			n.Reason = *r.DutyReason
		}
		n.Current = r.DutyStatus == Offline && (n.Reason != DutySuspended || r.Suspended)
		out[i] = n
	}
	return out, nil
}

// DutyNoticeDone records that a technician's off-duty text is stored (or
// moot): unless they were taken off duty again since.
func (s *Service) DutyNoticeDone(ctx context.Context, techID string, at time.Time) error {
	if err := s.db.WithContext(ctx).Model(&Technician{}).Where("id = ? AND duty_notice_at = ?", techID, at).
		Update("duty_notice_at", nil).Error; err != nil {
		return fmt.Errorf("duty notice of %s: %w", techID, err)
	}
	return nil
}

// Suspend takes a technician off duty and keeps them from going on duty;
// Unsuspend lifts it.
func (s *Service) Suspend(ctx context.Context, techID string, suspended bool) (Technician, error) {
	now := s.now()
	updates := map[string]any{"suspended": suspended, "updated_at": now}
	if suspended {
		updates["duty_status"], updates["on_duty_from"] = Offline, nil
		updates["duty_reason"], updates["duty_notice_at"] = DutySuspended, now
	}
	var affected int64
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&Technician{}).Where("id = ?", techID).Updates(updates)
		if res.Error != nil {
			return res.Error
		}
		affected = res.RowsAffected
		return Changed(tx, techID)
	})
	if err != nil {
		return Technician{}, fmt.Errorf("suspend %s: %w", techID, err)
	}
	if affected == 0 {
		return Technician{}, errs.NotFoundf("technician %s not found", techID)
	}
	return s.Get(ctx, techID)
}

// Ping is one position report from a technician's phone.
type Ping struct {
	Lat *float64   `json:"lat"`
	Lng *float64   `json:"lng"`
	At  *time.Time `json:"at"`
}

// Point returns the ping's position; validate first.
func (p Ping) Point() geo.Point { return geo.Point{Lat: *p.Lat, Lng: *p.Lng} }

// maxClockSkew is how far in the future a ping's time may lie.
const maxClockSkew = 2 * time.Minute

// validate checks a ping and fills in its time.
func (p *Ping) validate(now time.Time, field string) error {
	if p.Lat == nil {
		return errs.InvalidField(field+"lat", "lat is required")
	}
	if p.Lng == nil {
		return errs.InvalidField(field+"lng", "lng is required")
	}
	if err := geo.Validate(p.Point(), field+"lat", field+"lng"); err != nil {
		return err
	}
	if p.At == nil {
		p.At = &now
	}
	at := db.UTC(*p.At)
	p.At = &at
	if at.After(now.Add(maxClockSkew)) {
		return errs.InvalidField(field+"at", "at lies in the future")
	}
	return nil
}

// Located is the outcome of a position report.
type Located struct {
	Applied    bool      `json:"applied"` // false when the ping was older than the stored position
	Cell       geo.Cell  `json:"cell"`
	At         time.Time `json:"at"`
	ActiveJobs int       `json:"-"` // the technician's live jobs, so the caller knows whether ETAs move
}

// UpdateLocation records a position; a ping older than the stored one is
// ignored, so out-of-order delivery never moves a technician backwards. One
// statement does it, on the hot path of every app.
func (s *Service) UpdateLocation(ctx context.Context, techID string, p Ping) (Located, error) {
	now := s.now()
	if err := p.validate(now, ""); err != nil {
		return Located{}, err
	}
	return s.apply(ctx, techID, p, now)
}

func (s *Service) apply(ctx context.Context, techID string, p Ping, now time.Time) (Located, error) {
	cell := geo.CellOf(p.Point(), geo.CityResolution)
	// The update and its change-feed note in one statement: a ping is one
	// round trip to PostgreSQL.
	var rows []struct{ ActiveJobs int }
	_, err := s.db.UpdateNotify(ctx, &rows, Channel, movedPayload(Moved{TechnicianID: techID, Point: p.Point()}),
		`UPDATE technicians SET lat = ?, lng = ?, cell = ?, position_at = ?, updated_at = ?
		WHERE id = ? AND (position_at IS NULL OR position_at < ?) RETURNING active_jobs`,
		*p.Lat, *p.Lng, cell, *p.At, now, techID, *p.At)
	if err != nil {
		return Located{}, fmt.Errorf("update location of %s: %w", techID, err)
	}
	if len(rows) == 0 {
		if err := mustExist(s.db.WithContext(ctx), &Technician{}, "id", techID, "technician"); err != nil {
			return Located{}, err
		}
		return Located{Applied: false, Cell: cell, At: *p.At}, nil
	}
	return Located{Applied: true, Cell: cell, At: *p.At, ActiveJobs: rows[0].ActiveJobs}, nil
}

// maxBatch is the most pings one batch may carry.
const maxBatch = 500

// ShiftInput is a shift or a break as ops enters it.
type ShiftInput struct {
	Kind  string    `json:"kind"` // shift (the default) or break
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// maxEntries bounds the shifts and breaks one call may set.
const maxEntries = 200

func validKind(kind, field string) (string, error) {
	switch kind {
	case "", KindShift:
		return KindShift, nil
	case KindBreak:
		return KindBreak, nil
	}
	return "", errs.InvalidField(field, "kind must be shift or break")
}

// SetShifts replaces a technician's one-off shifts and breaks.
func (s *Service) SetShifts(ctx context.Context, techID string, in []ShiftInput) (Technician, error) {
	if len(in) > maxEntries {
		return Technician{}, errs.InvalidField("shifts", "at most %d shifts and breaks", maxEntries)
	}
	shifts := make([]Shift, 0, len(in))
	for i, x := range in {
		field := fmt.Sprintf("shifts[%d]", i)
		kind, err := validKind(x.Kind, field+".kind")
		if err != nil {
			return Technician{}, err
		}
		if x.Start.IsZero() || x.End.IsZero() {
			return Technician{}, errs.InvalidField(field, "start and end are required")
		}
		if !x.End.After(x.Start) {
			return Technician{}, errs.InvalidField(field+".end", "end must be after start")
		}
		if x.End.Sub(x.Start) > 24*time.Hour {
			return Technician{}, errs.InvalidField(field+".end", "a shift lasts at most 24 hours")
		}
		shifts = append(shifts, Shift{ID: db.NewID(), TechnicianID: techID, Kind: kind, StartsAt: db.UTC(x.Start), EndsAt: db.UTC(x.End)})
	}
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		if err := mustExist(tx, &Technician{}, "id", techID, "technician"); err != nil {
			return err
		}
		if err := tx.Where("technician_id = ?", techID).Delete(&Shift{}).Error; err != nil {
			return err
		}
		if len(shifts) > 0 {
			if err := tx.Create(&shifts).Error; err != nil {
				return err
			}
		}
		if err := s.replanEarly(tx, techID, s.now()); err != nil {
			return err
		}
		return Changed(tx, techID)
	})
	if err != nil {
		return Technician{}, fmt.Errorf("set shifts of %s: %w", techID, err)
	}
	return s.Get(ctx, techID)
}

// WeeklyInput is a shift or break that recurs every week, as ops enters
// it: a day (mon … sun) and clock times HH:MM in the deployment's time
// zone; an end before the start runs past midnight.
type WeeklyInput struct {
	Kind  string `json:"kind"` // shift (the default) or break
	Day   string `json:"day"`
	Start string `json:"start"`
	End   string `json:"end"`
}

// minuteOf reads HH:MM (00:00 to 24:00 when end) as minutes after midnight.
func minuteOf(v string, end bool) (int, bool) {
	t, err := time.Parse("15:04", v)
	if err == nil && len(v) == 5 {
		return t.Hour()*60 + t.Minute(), true
	}
	return 24 * 60, end && v == "24:00"
}

func (x WeeklyInput) build(techID, field string) (WeeklyShift, error) {
	kind, err := validKind(x.Kind, field+".kind")
	if err != nil {
		return WeeklyShift{}, err
	}
	day := -1
	for i, name := range weekdays {
		if name == x.Day {
			day = i
		}
	}
	if day < 0 {
		return WeeklyShift{}, errs.InvalidField(field+".day", "day must be mon, tue, wed, thu, fri, sat or sun")
	}
	start, ok := minuteOf(x.Start, false)
	if !ok {
		return WeeklyShift{}, errs.InvalidField(field+".start", "start must be a clock time HH:MM, such as 08:00")
	}
	end, ok := minuteOf(x.End, true)
	if !ok {
		return WeeklyShift{}, errs.InvalidField(field+".end", "end must be a clock time HH:MM, such as 17:30")
	}
	minutes := end - start
	if minutes == 0 {
		return WeeklyShift{}, errs.InvalidField(field+".end", "end must differ from start")
	}
	if minutes < 0 {
		minutes += 24 * 60 // past midnight
	}
	return WeeklyShift{ID: db.NewID(), TechnicianID: techID, Kind: kind, Weekday: time.Weekday(day), StartMinute: start, Minutes: minutes}, nil
}

// SetWeekly replaces a technician's weekly shifts and breaks.
func (s *Service) SetWeekly(ctx context.Context, techID string, in []WeeklyInput) (Technician, error) {
	if len(in) > maxEntries {
		return Technician{}, errs.InvalidField("weekly", "at most %d weekly shifts and breaks", maxEntries)
	}
	weekly := make([]WeeklyShift, 0, len(in))
	for i, x := range in {
		w, err := x.build(techID, fmt.Sprintf("weekly[%d]", i))
		if err != nil {
			return Technician{}, err
		}
		weekly = append(weekly, w)
	}
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		if err := mustExist(tx, &Technician{}, "id", techID, "technician"); err != nil {
			return err
		}
		if err := tx.Where("technician_id = ?", techID).Delete(&WeeklyShift{}).Error; err != nil {
			return err
		}
		if len(weekly) > 0 {
			if err := tx.Create(&weekly).Error; err != nil {
				return err
			}
		}
		if err := s.replanEarly(tx, techID, s.now()); err != nil {
			return err
		}
		return Changed(tx, techID)
	})
	if err != nil {
		return Technician{}, fmt.Errorf("set weekly shifts of %s: %w", techID, err)
	}
	return s.Get(ctx, techID)
}

// replanEarly moves a technician's pending early duty to the first shift
// of their new schedule inside tx (or clears it when they are in shift now,
// or no shift lies ahead: the shift clock then takes them off duty).
func (s *Service) replanEarly(tx *gorm.DB, techID string, now time.Time) error {
	t, err := get(tx, techID)
	if err != nil || t.OnDutyFrom == nil {
		return err
	}
	var from any
	if sched := t.Schedule(now, now.Add(ScheduleHorizon), s.zone); !sched.InShift(now) {
		if next, ok := sched.NextShift(now); ok {
			from = next
		}
	}
	return tx.Model(&Technician{}).Where("id = ?", techID).Update("on_duty_from", from).Error
}

// ErrNoCapacity is returned by Reserve when the technician is at capacity,
// off duty or suspended.
var ErrNoCapacity = errors.New("technician has no free capacity")

// Reserve takes one unit of a technician's capacity inside the caller's
// transaction. The conditional update holds invariant 2 on both engines.
// When force is false the technician must be on duty (ops hand assignment
// may pass force to assign an off-duty technician who agreed by phone).
func Reserve(tx *gorm.DB, techID string, now time.Time, force bool) error {
	q := tx.Model(&Technician{}).Where("id = ? AND active_jobs < capacity AND suspended = ?", techID, false)
	if !force {
		q = q.Where("duty_status = ?", Available)
	}
	res := q.Updates(map[string]any{
		"active_jobs": gorm.Expr("active_jobs + 1"),
		"duty_status": gorm.Expr("CASE WHEN active_jobs + 1 >= capacity THEN ? ELSE duty_status END", Busy),
		"updated_at":  now,
	})
	if res.Error != nil {
		return fmt.Errorf("reserve %s: %w", techID, res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNoCapacity
	}
	return Changed(tx, techID)
}

// Book takes a windowed job ahead of its hold inside the caller's
// transaction: no capacity is taken (the job counts once its hold begins),
// but the technician must be on duty (unless force) and not suspended. The
// update holds the technician's row to the end of the transaction, so the
// caller's check of their other bookings sees every booking committed
// before it, and none can be added meanwhile.
func Book(tx *gorm.DB, techID string, now time.Time, force bool) error {
	q := tx.Model(&Technician{}).Where("id = ? AND suspended = ?", techID, false)
	if !force {
		q = q.Where("duty_status IN ?", []string{Available, Busy})
	}
	res := q.Update("updated_at", now)
	if res.Error != nil {
		return fmt.Errorf("book %s: %w", techID, res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNoCapacity
	}
	return Changed(tx, techID)
}

// Release gives back one unit of capacity inside the caller's transaction; a
// busy technician becomes available again and starts idling.
func Release(tx *gorm.DB, techID string, now time.Time) error {
	res := tx.Model(&Technician{}).Where("id = ? AND active_jobs > 0", techID).Updates(map[string]any{
		"active_jobs": gorm.Expr("active_jobs - 1"),
		"duty_status": gorm.Expr("CASE WHEN duty_status = ? THEN ? ELSE duty_status END", Busy, Available),
		"idle_since":  now,
		"updated_at":  now,
	})
	if res.Error != nil {
		return fmt.Errorf("release %s: %w", techID, res.Error)
	}
	return Changed(tx, techID)
}

// ByPhone finds a technician by phone number.
func (s *Service) ByPhone(ctx context.Context, phone string) (Technician, error) {
	var t Technician
	err := s.db.WithContext(ctx).Where("phone = ?", phone).First(&t).Error
	if db.IsNotFound(err) {
		return Technician{}, errs.NotFoundf("no technician with phone %s", phone)
	}
	if err != nil {
		return Technician{}, fmt.Errorf("technician by phone: %w", err)
	}
	return t, nil
}

// EndShifts takes off duty every available technician whose shifts are all
// elsewhere in time right now, unless they hold a live job (busy) or went on
// duty early for a shift still to come (OnDutyFrom ahead). It returns how
// many went off duty, and clears OnDutyFrom once it has passed.
func (s *Service) EndShifts(ctx context.Context) (int64, error) {
	now := s.now()
	var techs []Technician
	err := s.db.WithContext(ctx).
		Preload("Shifts", "ends_at > ? AND starts_at <= ?", now.Add(-24*time.Hour), now.Add(24*time.Hour)).Preload("WeeklyShifts").
		Where(`duty_status = ? AND active_jobs = 0 AND (on_duty_from IS NULL OR on_duty_from <= ?)
			AND (EXISTS (SELECT 1 FROM shifts sh WHERE sh.technician_id = technicians.id AND sh.kind = ?)
			  OR EXISTS (SELECT 1 FROM weekly_shifts ws WHERE ws.technician_id = technicians.id AND ws.kind = ?))`,
			Available, now, KindShift, KindShift).
		Select("id").Find(&techs).Error
	if err != nil {
		return 0, fmt.Errorf("end shifts: %w", err)
	}
	var over []string
	for _, t := range techs {
		// Restricted even when no shift falls in the day loaded: the
		// query found one.
		sched := t.Schedule(now, now.Add(time.Minute), s.zone)
		sched.Restricted = true
		if !sched.InShift(now) {
			over = append(over, t.ID)
		}
	}
	var n int64
	if len(over) > 0 {
		// Conditional on the row as it is now: a job taken or duty changed
		// since the read keeps them on.
		n, err = s.offDuty(ctx, DutyShiftEnded, "id IN ? AND duty_status = ? AND active_jobs = 0 AND (on_duty_from IS NULL OR on_duty_from <= ?)",
			now, over, Available, now)
		if err != nil {
			return 0, fmt.Errorf("end shifts: %w", err)
		}
	}
	if err := s.db.WithContext(ctx).Model(&Technician{}).Where("on_duty_from <= ?", now).Update("on_duty_from", nil).Error; err != nil {
		return n, fmt.Errorf("end shifts: early duty taking effect: %w", err)
	}
	return n, nil
}

// offDuty takes the technicians matching where off duty in one statement,
// owing each a text that says why, and says which on the change feed.
func (s *Service) offDuty(ctx context.Context, why, where string, now time.Time, args ...any) (int64, error) {
	var ids []string
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Raw("UPDATE technicians SET duty_status = ?, duty_reason = ?, duty_notice_at = ?, updated_at = ? WHERE "+where+" RETURNING id",
			append([]any{Offline, why, now, now}, args...)...).Scan(&ids).Error; err != nil {
			return err
		}
		return Changed(tx, ids...)
	})
	return int64(len(ids)), err
}

// OfflineStale takes off duty every available technician without a position
// report for longer than after: an app that stopped pinging is not someone
// to send a job to. One on duty early for a shift still to come is left be.
func (s *Service) OfflineStale(ctx context.Context, after time.Duration) (int64, error) {
	now := s.now()
	n, err := s.offDuty(ctx, DutyNoPosition, "duty_status = ? AND active_jobs = 0 AND (position_at IS NULL OR position_at < ?) AND (on_duty_from IS NULL OR on_duty_from <= ?)",
		now, Available, now.Add(-after), now)
	if err != nil {
		return 0, fmt.Errorf("offline stale technicians: %w", err)
	}
	return n, nil
}
