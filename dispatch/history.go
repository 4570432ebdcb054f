package dispatch

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// PastRequest is one request of the history, as the staffing planner needs
// it: when it was opened, for which skill, and whether it was ASAP.
type PastRequest struct {
	CreatedAt time.Time
	SkillCode string
	Mode      string
}

// History returns the requests created in [from, to), oldest first, whatever
// became of them (a cancelled request was demand too).
func History(ctx context.Context, d *gorm.DB, from, to time.Time) ([]PastRequest, error) {
	var out []PastRequest
	err := d.WithContext(ctx).Raw(`SELECT created_at, skill_code, mode FROM requests
		WHERE created_at >= ? AND created_at < ? ORDER BY created_at, id`, from.UTC(), to.UTC()).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("request history: %w", err)
	}
	return out, nil
}
