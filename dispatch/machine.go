package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/errs"
)

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (n NewRequest) validateDevice(c Caller) error {
	if c.Role != "machine" {
		if n.DeviceID != "" || n.FaultCode != "" || len(n.Diagnostics) > 0 {
			return errs.InvalidField("device_id", "device fields are for machine customers")
		}
		return nil
	}
	if len(n.DeviceID) > 200 || (n.DeviceID != "" && strings.TrimSpace(n.DeviceID) == "") {
		return errs.InvalidField("device_id", "device_id must be 1-200 characters")
	}
	if len(n.FaultCode) > 100 {
		return errs.InvalidField("fault_code", "fault_code is longer than 100 characters")
	}
	if len(n.Diagnostics) > 16<<10 {
		return errs.InvalidField("diagnostics", "diagnostics are larger than 16 KiB")
	}
	if len(n.Diagnostics) > 0 && !json.Valid(n.Diagnostics) {
		return errs.InvalidField("diagnostics", "diagnostics must be JSON")
	}
	return nil
}

var openStates = []State{PendingConfirmation, Scheduled, Searching, Assigned, EnRoute, OnSite}

// attachFault adds a device's new fault to its open request for the same
// skill, if it has one; a fault of another skill opens its own request.
func (s *Service) attachFault(ctx context.Context, c Caller, n NewRequest, now time.Time) (Created, bool, error) {
	var out Request
	found := false
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		var r Request
		err := tx.Where("customer_id = ? AND device_id = ? AND skill_code = ? AND state IN ?", c.Subject, n.DeviceID, n.Skill, openStates).First(&r).Error
		if db.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("find open request of device: %w", err)
		}
		r, err = lockRequest(tx, r.ID)
		if err != nil {
			return err
		}
		set := map[string]any{"faults": gorm.Expr("faults + 1"), "updated_at": now}
		if n.FaultCode != "" {
			set["fault_code"] = n.FaultCode
		}
		if len(n.Diagnostics) > 0 {
			set["diagnostics"] = string(n.Diagnostics)
		}
		if err := tx.Model(&Request{}).Where("id = ?", r.ID).Updates(set).Error; err != nil {
			return fmt.Errorf("attach fault: %w", err)
		}
		if err := appendEvent(tx, r.ID, "fault_attached", c.actor(), map[string]any{"fault_code": n.FaultCode, "device_id": n.DeviceID}, now); err != nil {
			return err
		}
		out, err = load(tx, r.ID)
		found = err == nil
		return err
	})
	if err != nil {
		return Created{}, false, wrap("attach fault", err)
	}
	return Created{Request: out, Attached: true}, found, nil
}

// ConfirmInput is the owner's yes to a device's request: as soon as
// possible, or for a time window.
type ConfirmInput struct {
	Window *TimeWindow `json:"window"`
}

// Confirm lets the owner confirm a request their device opened.
func (s *Service) Confirm(ctx context.Context, c Caller, id string, in ConfirmInput) (Request, error) {
	now := s.now()
	if in.Window != nil {
		if err := validWindow(in.Window, now); err != nil {
			return Request{}, err
		}
	}
	return s.change(ctx, id, "confirm", func(tx *gorm.DB, r *Request, now time.Time) error {
		if !mayRead(c, *r) || (c.Role != "customer" && c.Role != "ops") {
			return errNotFound("request", id)
		}
		set := map[string]any{"confirmed_at": now}
		action := ConfirmASAP
		if in.Window == nil {
			deadline, giveUp := now.Add(s.cfg.SLA), now.Add(s.cfg.GiveUp)
			set["sla_deadline"], set["give_up_at"] = deadline, giveUp
		} else {
			action = ConfirmSlot
			start, end := db.UTC(in.Window.Start), db.UTC(in.Window.End)
			set["mode"], set["window_start"], set["window_end"], set["sla_deadline"], set["give_up_at"] = Window, start, end, end, end
			if !start.Add(-s.cfg.WindowLead).After(now) {
				action = ConfirmASAP // the window is close: search now
			}
		}
		if err := transition(tx, r, action, c.actor(), set, map[string]any{"window": in.Window != nil}, now); err != nil {
			return err
		}
		return s.afterStateChange(tx, r, now)
	})
}
