// Package technicians owns the skills catalog and the technicians: profiles,
// certifications, duty, shifts and positions. It knows nothing of requests;
// dispatch reserves a technician's capacity through the methods here, inside
// its own transaction.
package technicians

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/db"
)

// Duty states.
const (
	Offline   = "offline"
	Available = "available"
	Busy      = "busy"
)

// Skill is a catalog entry such as router_replace.
type Skill struct {
	Code string `json:"code" gorm:"primaryKey"`
	Name string `json:"name"`
	// Names are the skill's display names by locale (de, fr, it, en); a
	// text in a locale without one uses Name.
	Names     Names     `json:"names"`
	CreatedAt time.Time `json:"created_at"`
}

// Names are display names by locale, stored as a JSON object.
type Names map[string]string

// Value implements driver.Valuer: no names is {}.
func (n Names) Value() (driver.Value, error) {
	if n == nil {
		return "{}", nil
	}
	b, err := json.Marshal(map[string]string(n))
	return string(b), err
}

// Scan implements sql.Scanner.
func (n *Names) Scan(v any) error {
	out := Names{}
	if _, err := db.ScanJSON(v, &out, "names"); err != nil {
		return err
	}
	*n = out
	return nil
}

// Technician is a freelance technician's profile and live state.
type Technician struct {
	ID             string          `json:"id" gorm:"primaryKey"`
	Name           string          `json:"name"`
	Phone          string          `json:"phone"`
	Locale         string          `json:"locale"`
	DutyStatus     string          `json:"duty_status"`
	DutyReason     *string         `json:"duty_reason"` // why Onsite last took them off duty: shift_ended, no_position or suspended
	Suspended      bool            `json:"suspended"`
	Lat            *float64        `json:"lat"`
	Lng            *float64        `json:"lng"`
	Cell           *geo.Cell       `json:"cell"`
	PositionAt     *time.Time      `json:"position_at"`
	TravelMode     string          `json:"travel_mode"`
	SpeedKmh       float64         `json:"speed_kmh"`
	RadiusKm       float64         `json:"radius_km"`
	Capacity       int             `json:"capacity"`
	ActiveJobs     int             `json:"active_jobs"`
	Rating         float64         `json:"rating"`
	RatingCount    int             `json:"rating_count"`
	OffersSent     int             `json:"offers_sent"`
	OffersAccepted int             `json:"offers_accepted"`
	IdleSince      *time.Time      `json:"idle_since"`
	OnDutyFrom     *time.Time      `json:"on_duty_from"` // went on duty before their shift: on duty from then
	CreatedAt      time.Time       `json:"created_at"`
	UpdatedAt      time.Time       `json:"updated_at"`
	Certifications []Certification `json:"certifications" gorm:"foreignKey:TechnicianID"`
	Shifts         []Shift         `json:"shifts" gorm:"foreignKey:TechnicianID"`
	WeeklyShifts   []WeeklyShift   `json:"weekly_shifts" gorm:"foreignKey:TechnicianID"`
}

// Schedule lays out the technician's shifts and breaks from from to to.
func (t Technician) Schedule(from, to time.Time, loc *time.Location) Schedule {
	return ScheduleOf(t.Shifts, t.WeeklyShifts, from, to, loc)
}

// Position returns the last known position, if any.
func (t Technician) Position() (geo.Point, bool) {
	if t.Lat == nil || t.Lng == nil {
		return geo.Point{}, false
	}
	return geo.Point{Lat: *t.Lat, Lng: *t.Lng}, true
}

// Certification says a technician holds a skill from CertifiedAt until
// ExpiresAt. Only a current one qualifies.
type Certification struct {
	TechnicianID string    `json:"-" gorm:"primaryKey"`
	SkillCode    string    `json:"skill" gorm:"primaryKey"`
	CertifiedAt  time.Time `json:"certified_at"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// CurrentAt reports whether the certification qualifies at t.
func (c Certification) CurrentAt(t time.Time) bool {
	return !t.Before(c.CertifiedAt) && t.Before(c.ExpiresAt)
}

// Kinds of shift entries: a shift, or a break inside one.
const (
	KindShift = "shift"
	KindBreak = "break"
)

// Shift is a period in which a technician works, or (Kind break) one in
// which they take no work. A technician with no shifts at all is not
// restricted by shifts.
type Shift struct {
	ID           string    `json:"id" gorm:"primaryKey"`
	TechnicianID string    `json:"-"`
	Kind         string    `json:"kind"`
	StartsAt     time.Time `json:"start"`
	EndsAt       time.Time `json:"end"`
}

// WeeklyShift is a shift or break that recurs every week at a clock time
// in the deployment's time zone.
type WeeklyShift struct {
	ID           string       `json:"-" gorm:"primaryKey"`
	TechnicianID string       `json:"-"`
	Kind         string       `json:"kind"`
	Weekday      time.Weekday `json:"-"`
	StartMinute  int          `json:"-"` // after midnight
	Minutes      int          `json:"-"` // its length by the clock (past midnight for a night shift)
}

// weekdays are the names of days in the API, Sunday first as Go counts.
var weekdays = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// clock is minutes after midnight as HH:MM.
func clock(m int) string { return fmt.Sprintf("%02d:%02d", m/60%24, m%60) }

// MarshalJSON writes a weekly entry as the API reads it: day, start, end.
func (w WeeklyShift) MarshalJSON() ([]byte, error) {
	return json.Marshal(WeeklyInput{Kind: w.Kind, Day: weekdays[w.Weekday], Start: clock(w.StartMinute), End: clock(w.StartMinute + w.Minutes)})
}

// Span is a stretch of time, Start included, End not.
type Span struct {
	Start, End time.Time
}

func (s Span) holds(t time.Time) bool { return !t.Before(s.Start) && t.Before(s.End) }

// Schedule is a technician's shifts and breaks as spans of time.
type Schedule struct {
	Restricted bool // there are shifts: outside them the technician takes no work
	Shifts     []Span
	Breaks     []Span
}

// ScheduleOf lays out one-off and weekly entries (at their clock time in
// loc) as the spans that end after from and start before to. Restricted
// says there are shifts at all, whether or not one falls in [from, to).
func ScheduleOf(oneOff []Shift, weekly []WeeklyShift, from, to time.Time, loc *time.Location) Schedule {
	var out Schedule
	add := func(kind string, sp Span) {
		if kind == KindShift {
			out.Restricted = true
		}
		if !sp.End.After(from) || !sp.Start.Before(to) {
			return
		}
		if kind == KindBreak {
			out.Breaks = append(out.Breaks, sp)
		} else {
			out.Shifts = append(out.Shifts, sp)
		}
	}
	for _, s := range oneOff {
		add(s.Kind, Span{s.StartsAt, s.EndsAt})
	}
	if len(weekly) == 0 {
		return out
	}
	// From the day before (a night shift begun then may still run).
	day := from.In(loc).AddDate(0, 0, -1)
	for d := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, loc); d.Before(to); d = d.AddDate(0, 0, 1) {
		for _, w := range weekly {
			if w.Weekday != d.Weekday() {
				continue
			}
			// Clock times both: on the night clocks go forward, 01:00-05:00
			// lasts three hours.
			start := time.Date(d.Year(), d.Month(), d.Day(), 0, w.StartMinute, 0, 0, loc).UTC()
			end := time.Date(d.Year(), d.Month(), d.Day(), 0, w.StartMinute+w.Minutes, 0, 0, loc).UTC()
			add(w.Kind, Span{start, end})
		}
	}
	return out
}

// InShift reports whether t falls in one of the one-off shifts, or there
// are none.
func InShift(shifts []Shift, t time.Time) bool {
	return ScheduleOf(shifts, nil, t, t.Add(time.Nanosecond), time.UTC).InShift(t)
}

// Works reports whether the schedule lets the technician work at t: inside
// a shift (or with no shifts at all) and not on a break.
func (s Schedule) Works(t time.Time) bool { return s.InShift(t) && !s.OnBreak(t) }

// InShift reports whether t falls in one of the shifts, or there are none.
func (s Schedule) InShift(t time.Time) bool {
	if !s.Restricted {
		return true
	}
	for _, sp := range s.Shifts {
		if sp.holds(t) {
			return true
		}
	}
	return false
}

// OnBreak reports whether t falls in a break.
func (s Schedule) OnBreak(t time.Time) bool {
	for _, sp := range s.Breaks {
		if sp.holds(t) {
			return true
		}
	}
	return false
}

// NextShift is the start of the first shift after t, if the schedule has one.
func (s Schedule) NextShift(t time.Time) (time.Time, bool) {
	var next time.Time
	for _, sp := range s.Shifts {
		if sp.Start.After(t) && (next.IsZero() || sp.Start.Before(next)) {
			next = sp.Start
		}
	}
	return next, !next.IsZero()
}

// ScheduleHorizon is how far ahead schedules are laid out: a week and a day,
// so every weekly entry is met.
const ScheduleHorizon = 8 * 24 * time.Hour

var (
	phonePattern = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	skillPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{1,39}$`)
)

// ValidPhone reports whether s is a phone number in E.164 form.
func ValidPhone(s string) bool { return phonePattern.MatchString(s) }

// ValidSkillCode reports whether s is a well-formed skill code.
func ValidSkillCode(s string) bool { return skillPattern.MatchString(s) }
