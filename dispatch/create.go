package dispatch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/internal/idempotency"
	"github.com/onsite/onsite/internal/phones"
	"github.com/onsite/onsite/technicians"
)

// TimeWindow is a time slot the customer chose.
type TimeWindow struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// NewRequest is what a customer or machine sends to ask for a service.
type NewRequest struct {
	Skill   string      `json:"skill"`
	Lat     *float64    `json:"lat"`
	Lng     *float64    `json:"lng"`
	Address string      `json:"address"`
	Notes   string      `json:"notes"`
	Window  *TimeWindow `json:"window"`
	Phone   string      `json:"phone"`  // where to text about this request (E.164); kept on the request, never the sign-in phone
	Locale  string      `json:"locale"` // en, de, fr or it, for those texts
	// TimeZone is the IANA zone (Europe/Zurich) the texts' clock times are
	// written in; empty for the deployment's (ONSITE_TIME_ZONE).
	TimeZone string   `json:"time_zone"`
	Photos   []string `json:"photos"` // links to pictures of the problem

	// Machine customers: the device, what it detected, and its diagnostics.
	DeviceID    string          `json:"device_id"`
	FaultCode   string          `json:"fault_code"`
	Diagnostics json.RawMessage `json:"diagnostics"`
}

const maxWindowAhead = 90 * 24 * time.Hour

func (n NewRequest) validate(now time.Time, countries phones.Countries) error {
	if strings.TrimSpace(n.Skill) == "" {
		return errs.InvalidField("skill", "skill is required")
	}
	if n.Lat == nil {
		return errs.InvalidField("lat", "lat is required")
	}
	if n.Lng == nil {
		return errs.InvalidField("lng", "lng is required")
	}
	if err := geo.Validate(geo.Point{Lat: *n.Lat, Lng: *n.Lng}, "lat", "lng"); err != nil {
		return err
	}
	if len(n.Address) > 500 {
		return errs.InvalidField("address", "address is longer than 500 characters")
	}
	if n.Phone != "" && !technicians.ValidPhone(n.Phone) {
		return errs.InvalidField("phone", "phone must be in E.164 form, such as +41791234567")
	}
	if n.Phone != "" && !countries.Allows(n.Phone) {
		return errs.InvalidField("phone", "Onsite texts only numbers of %s", countries)
	}
	if n.Locale != "" && n.Locale != "en" && n.Locale != "de" && n.Locale != "fr" && n.Locale != "it" {
		return errs.InvalidField("locale", "locale must be en, de, fr or it")
	}
	if n.TimeZone != "" {
		if _, err := LoadZone(n.TimeZone); err != nil {
			return errs.InvalidField("time_zone", "time_zone must be an IANA time zone such as Europe/Zurich")
		}
	}
	if len(n.Photos) > 10 {
		return errs.InvalidField("photos", "at most 10 photos")
	}
	for i, p := range n.Photos {
		u, err := url.Parse(p)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(p) > 2000 {
			return errs.InvalidField(fmt.Sprintf("photos[%d]", i), "a photo must be an http(s) URL")
		}
	}
	if len(n.Notes) > 2000 {
		return errs.InvalidField("notes", "notes are longer than 2000 characters")
	}
	if n.Window != nil {
		return validWindow(n.Window, now)
	}
	return nil
}

// validWindow checks a time window a customer chose.
func validWindow(w *TimeWindow, now time.Time) error {
	switch {
	case w.Start.IsZero():
		return errs.InvalidField("window.start", "window.start is required")
	case w.End.IsZero():
		return errs.InvalidField("window.end", "window.end is required")
	case !w.End.After(w.Start):
		return errs.InvalidField("window.end", "window.end must be after window.start")
	case !w.End.After(now):
		return errs.InvalidField("window.end", "window.end must be in the future")
	case w.Start.After(now.Add(maxWindowAhead)):
		return errs.InvalidField("window.start", "window.start is more than 90 days ahead")
	case w.End.Sub(w.Start) > 24*time.Hour:
		return errs.InvalidField("window.end", "a window lasts at most 24 hours")
	}
	return nil
}

// Created is the outcome of Create: the request, whether it is the first
// result of an earlier call with the same idempotency key, and whether a
// device's fault was attached to its open request instead.
type Created struct {
	Request  Request
	Replayed bool
	Attached bool
}

// Create stores a new request. With an idempotency key, a retry returns the
// first request and creates nothing; the same key with a different body is a
// conflict.
func (s *Service) Create(ctx context.Context, c Caller, idemKey string, n NewRequest) (Created, error) {
	return s.create(ctx, c, idemKey, n, nil)
}

// create is Create, and Intake's creation when caller is set: then the
// customer is found or created by the caller's phone inside the
// transaction, and the created event names the dispatcher and tells the
// customer.
func (s *Service) create(ctx context.Context, c Caller, idemKey string, n NewRequest, caller *intakeCaller) (Created, error) {
	now := s.now()
	if idemKey != "" {
		// The same rule as the HTTP middleware in front, so the two agree.
		if err := idempotency.CheckKey(idemKey); err != nil {
			return Created{}, err
		}
	}
	if c.Role == "machine" && idemKey == "" {
		return Created{}, errs.InvalidField("Idempotency-Key", "machine customers must send an Idempotency-Key header")
	}
	if err := n.validate(now, s.cfg.SMSCountries); err != nil {
		return Created{}, err
	}
	if err := n.validateDevice(c); err != nil {
		return Created{}, err
	}
	var hash *string
	var key *string
	if idemKey != "" {
		body, _ := json.Marshal(n)
		sum := sha256.Sum256(body)
		h := hex.EncodeToString(sum[:])
		hash, key = &h, &idemKey
		// The unique index on (customer, key) holds a retry to the first
		// result: the insert below fails and the first request is replayed.
		// Only a device's fault looks first, so a retry never attaches the
		// same fault twice.
		if n.DeviceID != "" {
			if prev, ok, err := s.byIdempotencyKey(ctx, c.Subject, idemKey); err != nil {
				return Created{}, err
			} else if ok {
				return replay(prev, h)
			}
		}
	}
	if n.DeviceID != "" {
		if att, ok, err := s.attachFault(ctx, c, n, now); err != nil || ok {
			return att, err
		}
	}
	place := geo.Point{Lat: *n.Lat, Lng: *n.Lng}
	r := Request{ContactPhone: nonEmpty(n.Phone), ContactLocale: nonEmpty(n.Locale), TimeZone: nonEmpty(n.TimeZone),
		ID: db.NewID(), CustomerID: c.Subject, CreatedBy: c.Role, IdempotencyKey: key, BodyHash: hash,
		SkillCode: n.Skill, Lat: place.Lat, Lng: place.Lng, Cell: geo.CellOf(place, geo.CityResolution),
		Address: strings.TrimSpace(n.Address), Notes: strings.TrimSpace(n.Notes), Photos: Photos(n.Photos), CreatedAt: now, UpdatedAt: now,
	}
	r.Region = s.RegionOf(r.Cell)
	if n.DeviceID != "" {
		r.DeviceID, r.FaultCode = &n.DeviceID, nonEmpty(n.FaultCode)
		if len(n.Diagnostics) > 0 {
			d := string(n.Diagnostics)
			r.Diagnostics = &d
		}
		r.Faults = 1
	}
	if c.Role == "machine" && !c.AutoConfirm && n.Window == nil {
		// A device's request waits for its owner to say yes.
		r.Mode, r.State = ASAP, PendingConfirmation
	} else if n.Window == nil {
		r.Mode, r.State = ASAP, Searching
		r.SearchingAt = &now
		deadline := now.Add(s.cfg.SLA)
		giveUp := now.Add(s.cfg.GiveUp)
		r.SLADeadline, r.GiveUpAt = &deadline, &giveUp
	} else {
		start, end := db.UTC(n.Window.Start), db.UTC(n.Window.End)
		r.Mode, r.WindowStart, r.WindowEnd = Window, &start, &end
		r.SLADeadline, r.GiveUpAt = &end, &end
		r.State = Scheduled
		if !start.Add(-s.cfg.WindowLead).After(now) {
			r.State, r.SearchingAt = Searching, &now
		}
	}
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		if _, known := s.skills.Load(n.Skill); !known {
			if err := mustExist(tx, &technicians.Skill{}, "code", n.Skill); err != nil {
				return errs.InvalidField("skill", "unknown skill %q", n.Skill)
			}
			s.skills.Store(n.Skill, true) // skills are never removed from the catalog
		}
		if caller != nil {
			id, err := caller.account(tx, c, now)
			if err != nil {
				return err
			}
			r.CustomerID = id
		} else if !s.customers.has(c.Subject) {
			if err := tx.Clauses(clause.OnConflict{DoNothing: true}).
				Create(&customer{ID: c.Subject, Locale: "en", CreatedAt: now}).Error; err != nil {
				return fmt.Errorf("ensure customer: %w", err)
			}
		}
		if err := tx.Create(&r).Error; err != nil {
			return err
		}
		// The event, its live row and the timers of the new state in one
		// outbox write.
		var w writes
		data := map[string]any{"skill": r.SkillCode, "mode": r.Mode, "cell": r.Cell.String()}
		tells := r.State == PendingConfirmation
		if caller != nil {
			caller.describe(data)
			tells = true // the caller is texted that the request is taken, with its tracking link
		}
		if err := w.eventTelling(r.ID, "created", c.actor(), data, tells, now); err != nil {
			return err
		}
		s.timersOf(&w, &r, now)
		if err := w.flush(tx, now); err != nil {
			return err
		}
		return notifyRequest(tx, r)
	})
	if db.IsDuplicate(err) && key != nil {
		// A concurrent retry with the same key won the insert.
		prev, ok, lookErr := s.byIdempotencyKey(ctx, c.Subject, idemKey)
		if lookErr == nil && ok {
			return replay(prev, *hash)
		}
	}
	if db.IsDuplicate(err) && n.DeviceID != "" {
		// Another fault of the same device opened its request at the same time.
		if att, ok, aerr := s.attachFault(ctx, c, n, now); aerr == nil && ok {
			return att, nil
		}
	}
	if err != nil {
		if _, isDomain := errs.As(err); isDomain {
			return Created{}, err
		}
		return Created{}, fmt.Errorf("create request: %w", err)
	}
	s.customers.add(r.CustomerID) // committed: the customer row exists
	return Created{Request: r}, nil
}

func replay(prev Request, hash string) (Created, error) {
	if prev.BodyHash == nil || *prev.BodyHash != hash {
		return Created{}, errs.ConflictReason("idempotency_key_reused", "this Idempotency-Key was already used with a different request body")
	}
	return Created{Request: prev, Replayed: true}, nil
}

func (s *Service) byIdempotencyKey(ctx context.Context, customerID, key string) (Request, bool, error) {
	var r Request
	err := s.db.WithContext(ctx).Where("customer_id = ? AND idempotency_key = ?", customerID, key).First(&r).Error
	if db.IsNotFound(err) {
		return Request{}, false, nil
	}
	if err != nil {
		return Request{}, false, fmt.Errorf("find request by idempotency key: %w", err)
	}
	return r, true, nil
}
