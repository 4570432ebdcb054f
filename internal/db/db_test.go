package db_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

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
