package db_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/dbtest"
)

// TestMigrateUpDownUp checks that every migration rolls back cleanly and
// applies again, on both engines.
func TestMigrateUpDownUp(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		if err := db.Migrate(ctx, d, log, db.Down()); err != nil {
			t.Fatal(err)
		}
		if d.Migrator().HasTable("requests") {
			t.Fatal("requests table still there after down")
		}
		if err := db.Migrate(ctx, d, log); err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{"skills", "technicians", "certifications", "shifts", "customers", "requests", "assignments", "offers", "events", "outbox"} {
			if !d.Migrator().HasTable(table) {
				t.Errorf("table %s missing", table)
			}
		}
	})
}

// TestRequestChecksAfterNoShow: migration 26 lets a request end as a
// no-show and still refuses a state or outcome nobody defined, on both
// engines (SQLite has its table definition edited in place).
func TestRequestChecksAfterNoShow(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		now := time.Now().UTC()
		for _, stmt := range []string{
			"INSERT INTO skills (code, name, created_at) VALUES ('wifi', 'Wi-Fi', ?)",
			"INSERT INTO customers (id, created_at) VALUES ('c1', ?)",
		} {
			if err := d.Exec(stmt, now).Error; err != nil {
				t.Fatal(err)
			}
		}
		insert := func(id, state, outcome string) error {
			return d.Exec(`INSERT INTO requests (id, customer_id, created_by, skill_code, lat, lng, cell, mode, state, outcome, created_at, updated_at)
				VALUES (?, 'c1', 'customer', 'wifi', 47.37, 8.54, 1, 'asap', ?, ?, ?, ?)`, id, state, outcome, now, now).Error
		}
		tests := []struct {
			name, state, outcome string
			ok                   bool
		}{
			{"no-show", "no_show", "no_show", true},
			{"completed fixed", "completed", "fixed", true},
			{"unknown state", "lost", "fixed", false},
			{"unknown outcome", "completed", "maybe", false},
		}
		for i, tt := range tests {
			err := insert(fmt.Sprintf("r%d", i), tt.state, tt.outcome)
			if (err == nil) != tt.ok {
				t.Errorf("%s: insert err = %v, want ok=%v", tt.name, err, tt.ok)
			}
		}
	})
}
