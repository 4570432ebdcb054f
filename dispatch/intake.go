package dispatch

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/errs"
)

// IntakeInput is what a dispatcher takes down from a caller who asks for a
// service by phone: who they are, where, what, and when (no window: as soon
// as possible).
type IntakeInput struct {
	Name    string      `json:"name"`
	Phone   string      `json:"phone"`  // the caller's phone (E.164): finds or creates their account, and gets the texts
	Locale  string      `json:"locale"` // en, de, fr or it, for the texts (default en)
	Skill   string      `json:"skill"`
	Lat     *float64    `json:"lat"`
	Lng     *float64    `json:"lng"`
	Address string      `json:"address"`
	Notes   string      `json:"notes"`
	Window  *TimeWindow `json:"window"`
}

// IntakeCustomer is the account an intake was filed under.
type IntakeCustomer struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Phone   string `json:"phone"`
	Created bool   `json:"created"` // no account had this phone: one was made
}

// Intake is a request ops took on a caller's behalf, with the account it
// belongs to and the tracking link the caller can be given.
type Intake struct {
	Request  Request        `json:"request"`
	Customer IntakeCustomer `json:"customer"`
	Tracking ShareLink      `json:"tracking"`
}

// intakeCaller is the caller of an intake while its request is created.
type intakeCaller struct {
	name, phone, locale string
	found               IntakeCustomer // set by account
}

// Intake creates a request for a caller on the phone with a dispatcher. The
// customer account is the oldest with that phone (the account the caller
// signs in to with it), or a new one with that phone and name. The phone
// counts as proved for texts, because the caller gave it to a dispatcher:
// it is recorded as a contact phone confirmed by "ops:<dispatcher>". The
// request is the customer's like any other (the same texts, the same
// tracking link, which the answer carries for the dispatcher to read out);
// its created event is by the dispatcher. key and publicURL make the link.
func (s *Service) Intake(ctx context.Context, c Caller, in IntakeInput, key []byte, publicURL string) (Intake, error) {
	if c.Role != "ops" {
		return Intake{}, errs.E(errs.Forbidden, "only ops take requests on a caller's behalf")
	}
	name := strings.TrimSpace(in.Name)
	if name == "" || len(name) > 100 {
		return Intake{}, errs.InvalidField("name", "name must be 1-100 characters")
	}
	if in.Phone == "" {
		return Intake{}, errs.InvalidField("phone", "phone is required")
	}
	locale := in.Locale
	if locale == "" {
		locale = "en"
	}
	n := NewRequest{Skill: in.Skill, Lat: in.Lat, Lng: in.Lng, Address: in.Address, Notes: in.Notes, Window: in.Window,
		Phone: in.Phone, Locale: locale}
	caller := &intakeCaller{name: name, phone: in.Phone, locale: locale}
	created, err := s.create(ctx, c, "", n, caller)
	if err != nil {
		return Intake{}, err
	}
	return Intake{Request: created.Request, Customer: caller.found,
		Tracking: TrackLink(key, publicURL, created.Request, s.now())}, nil
}

// account finds or creates the caller's customer account inside tx and
// records that the dispatcher proved the phone.
func (ic *intakeCaller) account(tx *gorm.DB, c Caller, now time.Time) (string, error) {
	if tx.Dialector.Name() == "postgres" {
		// Two intakes for one new phone at once make one account: the
		// second waits here for the first to commit, then finds it.
		// (SQLite runs write transactions one at a time.)
		if err := tx.Exec("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", "customer-phone:"+ic.phone).Error; err != nil {
			return "", fmt.Errorf("lock the phone: %w", err)
		}
	}
	var found []struct {
		ID   string
		Name string
	}
	if err := tx.Table("customers").Select("id", "name").Where("phone = ?", ic.phone).
		Order("created_at, id").Limit(1).Find(&found).Error; err != nil {
		return "", fmt.Errorf("find customer by phone: %w", err)
	}
	ic.found = IntakeCustomer{Name: ic.name, Phone: ic.phone}
	switch {
	case len(found) == 0:
		ic.found.ID, ic.found.Created = db.NewID(), true
		if err := tx.Table("customers").Create(map[string]any{"id": ic.found.ID, "name": ic.name, "phone": ic.phone,
			"locale": ic.locale, "created_at": now}).Error; err != nil {
			return "", fmt.Errorf("create customer: %w", err)
		}
	case found[0].Name == "":
		ic.found.ID = found[0].ID
		if err := tx.Table("customers").Where("id = ? AND name = ''", ic.found.ID).Update("name", ic.name).Error; err != nil {
			return "", fmt.Errorf("name customer: %w", err)
		}
	default:
		ic.found.ID, ic.found.Name = found[0].ID, found[0].Name // the account's own name stays
	}
	proof := map[string]any{"customer_id": ic.found.ID, "phone": ic.phone, "attempts": 0, "confirmed_at": now,
		"confirmed_by": "ops:" + c.Subject, "created_at": now, "updated_at": now}
	err := tx.Table("contact_phones").Clauses(clause.OnConflict{
		Columns: []clause.Column{{Name: "customer_id"}, {Name: "phone"}},
		DoUpdates: clause.Assignments(map[string]any{"confirmed_at": now, "confirmed_by": "ops:" + c.Subject,
			"code_hash": nil, "expires_at": nil, "updated_at": now}),
		Where: clause.Where{Exprs: []clause.Expression{clause.Expr{SQL: "contact_phones.confirmed_at IS NULL"}}},
	}).Create(proof).Error
	if err != nil {
		return "", fmt.Errorf("record the proved phone: %w", err)
	}
	return ic.found.ID, nil
}

// describe adds the intake to the created event's data: who took the call
// (also the event's actor), for whom, and whether the account is new.
func (ic *intakeCaller) describe(data map[string]any) {
	data["intake"] = true
	data["customer_id"] = ic.found.ID
	data["customer_created"] = ic.found.Created
}
