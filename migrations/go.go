package migrations

import (
	"context"
	"database/sql"

	"github.com/pressly/goose/v3"
)

// Go returns the migrations written in Go: steps that only one of the two
// databases has (storage settings of PostgreSQL), which a shared .sql file
// cannot say. Each is a no-op on SQLite, so versions stay the same on both.
func Go(postgres bool) []*goose.Migration {
	only := func(stmts ...string) *goose.GoFunc {
		return &goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error {
			if !postgres {
				return nil
			}
			for _, stmt := range stmts {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return err
				}
			}
			return nil
		}}
	}
	return []*goose.Migration{
		// Technicians' rows are updated all day (positions, duty, the offer
		// count of every batch round). Room left on each page lets those
		// updates stay on the page (HOT) instead of writing a new tuple and
		// an entry in every index: a batch round counting 500 offers spent
		// 7–12 ms on it with full pages and 5–7 ms with this.
		goose.NewGoMigration(11,
			only("ALTER TABLE technicians SET (fillfactor = 70)"),
			only("ALTER TABLE technicians RESET (fillfactor)")),
		// Offers and events are the rows every dispatch decision appends
		// (a batch round writes 500 of each), and their foreign keys ran a
		// lookup per row: 1,500 per round, 10 of its 45 ms. Requests and
		// technicians are never deleted, and every writer appends these rows
		// while holding the parent request's row lock, so the keys could
		// never fail; every PostgreSQL test checks at its end that none points
		// nowhere (internal/dbtest). SQLite, the
		// embedded single-machine mode, keeps them.
		goose.NewGoMigration(12,
			only("ALTER TABLE offers DROP CONSTRAINT offers_request_id_fkey",
				"ALTER TABLE offers DROP CONSTRAINT offers_technician_id_fkey",
				"ALTER TABLE events DROP CONSTRAINT events_request_id_fkey"),
			only("ALTER TABLE offers ADD CONSTRAINT offers_request_id_fkey FOREIGN KEY (request_id) REFERENCES requests (id)",
				"ALTER TABLE offers ADD CONSTRAINT offers_technician_id_fkey FOREIGN KEY (technician_id) REFERENCES technicians (id)",
				"ALTER TABLE events ADD CONSTRAINT events_request_id_fkey FOREIGN KEY (request_id) REFERENCES requests (id)")),
	}
}
