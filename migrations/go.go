package migrations

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

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
		// A request can end as a no-show: state and outcome no_show. The
		// two CHECK constraints of 00001 list the values; PostgreSQL
		// replaces them, SQLite (which cannot alter a constraint) has the
		// table's definition edited in place, the way SQLite documents for
		// loosening a CHECK: every row that passed the old one passes the
		// new one, so no data is copied or checked.
		goose.NewGoMigration(26,
			&goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error {
				return requestChecks(ctx, tx, postgres, checksWithoutNoShow, checksWithNoShow)
			}},
			&goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error {
				return requestChecks(ctx, tx, postgres, checksWithNoShow, checksWithoutNoShow)
			}}),
	}
}

// The CHECK constraints on requests.state and requests.outcome before and
// after migration 26, as 00001 wrote them.
var (
	checksWithoutNoShow = [2]string{
		"state IN ('pending_confirmation', 'scheduled', 'searching', 'assigned', 'en_route', 'on_site', 'completed', 'cancelled', 'unfulfilled')",
		"outcome IN ('fixed', 'not_fixed', 'needs_parts')",
	}
	checksWithNoShow = [2]string{
		"state IN ('pending_confirmation', 'scheduled', 'searching', 'assigned', 'en_route', 'on_site', 'completed', 'cancelled', 'unfulfilled', 'no_show')",
		"outcome IN ('fixed', 'not_fixed', 'needs_parts', 'no_show')",
	}
)

// requestChecks replaces the CHECK constraints from on requests' state and
// outcome columns by to.
func requestChecks(ctx context.Context, tx *sql.Tx, postgres bool, from, to [2]string) error {
	if postgres {
		for i, col := range []string{"state", "outcome"} {
			stmt := fmt.Sprintf("ALTER TABLE requests DROP CONSTRAINT requests_%s_check, ADD CONSTRAINT requests_%s_check CHECK (%s)", col, col, to[i])
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("replace the check on requests.%s: %w", col, err)
			}
		}
		return nil
	}
	var def string
	if err := tx.QueryRowContext(ctx, "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'requests'").Scan(&def); err != nil {
		return fmt.Errorf("read the definition of requests: %w", err)
	}
	for i := range from {
		if strings.Count(def, from[i]) != 1 {
			return fmt.Errorf("the definition of requests does not hold %q once", from[i])
		}
		def = strings.Replace(def, from[i], to[i], 1)
	}
	var version int
	if err := tx.QueryRowContext(ctx, "PRAGMA schema_version").Scan(&version); err != nil {
		return fmt.Errorf("read the schema version: %w", err)
	}
	for _, stmt := range []string{
		"PRAGMA writable_schema = ON",
		"UPDATE sqlite_master SET sql = " + quote(def) + " WHERE type = 'table' AND name = 'requests'",
		// A new schema version makes every connection read the definition again.
		fmt.Sprintf("PRAGMA schema_version = %d", version+1),
		"PRAGMA writable_schema = OFF",
	} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("edit the definition of requests (%s): %w", stmt, err)
		}
	}
	var ok string
	if err := tx.QueryRowContext(ctx, "PRAGMA quick_check(requests)").Scan(&ok); err != nil || ok != "ok" {
		return fmt.Errorf("check requests after the edit: %q %v", ok, err)
	}
	return nil
}

// quote is s as an SQL string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
