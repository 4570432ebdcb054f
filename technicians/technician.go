// Package technicians owns the skills catalog and the technicians: profiles,
// certifications, duty, shifts and positions. It knows nothing of requests;
// dispatch reserves a technician's capacity through the methods here, inside
// its own transaction.
package technicians

import (
	"regexp"
	"time"

	"github.com/onsite/onsite/geo"
)

// Duty states.
const (
	Offline   = "offline"
	Available = "available"
	Busy      = "busy"
)

// Skill is a catalog entry such as router_replace.
type Skill struct {
	Code      string    `json:"code" gorm:"primaryKey"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Technician is a freelance technician's profile and live state.
type Technician struct {
	ID             string          `json:"id" gorm:"primaryKey"`
	Name           string          `json:"name"`
	Phone          string          `json:"phone"`
	Locale         string          `json:"locale"`
	DutyStatus     string          `json:"duty_status"`
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

// Shift is a period in which a technician works. A technician with no shifts
// at all is not restricted by shifts.
type Shift struct {
	ID           string    `json:"id" gorm:"primaryKey"`
	TechnicianID string    `json:"-"`
	StartsAt     time.Time `json:"start"`
	EndsAt       time.Time `json:"end"`
}

// InShift reports whether t falls in one of the shifts, or there are none.
func InShift(shifts []Shift, t time.Time) bool {
	if len(shifts) == 0 {
		return true
	}
	for _, s := range shifts {
		if !t.Before(s.StartsAt) && t.Before(s.EndsAt) {
			return true
		}
	}
	return false
}

var (
	phonePattern = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	skillPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{1,39}$`)
)

// ValidPhone reports whether s is a phone number in E.164 form.
func ValidPhone(s string) bool { return phonePattern.MatchString(s) }

// ValidSkillCode reports whether s is a well-formed skill code.
func ValidSkillCode(s string) bool { return skillPattern.MatchString(s) }
