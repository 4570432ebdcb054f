package db

import (
	"fmt"
	"strings"

	"gorm.io/gorm"
)

// Column is one column of a bulk insert: its name, its PostgreSQL array
// type, and its values (a slice, one per row: []string, []int, []float64, []bool,
// []time.Time).
type Column struct {
	Name   string
	Type   string // "text", "integer", "double precision", "timestamp", "boolean"
	Values any
}

// InsertColumns inserts rows given column by column into table in one
// statement: on PostgreSQL an INSERT … SELECT FROM unnest of one array per
// column (a handful of parameters however many rows, and no reflection), on
// SQLite GORM's batched insert of rows (fallback, given as a slice of
// models).
func InsertColumns(tx *gorm.DB, table string, cols []Column, rows any) error {
	if tx.Dialector.Name() != string(Postgres) {
		return tx.CreateInBatches(rows, 200).Error
	}
	names := make([]string, len(cols))
	casts := make([]string, len(cols))
	args := make([]any, len(cols))
	for i, c := range cols {
		names[i] = c.Name
		casts[i] = fmt.Sprintf("$%d::%s[]", i+1, c.Type)
		args[i] = c.Values
	}
	sql := "INSERT INTO " + table + " (" + strings.Join(names, ", ") + ") SELECT * FROM unnest(" + strings.Join(casts, ", ") + ")"
	// Straight to the driver: GORM would expand each slice into a list.
	if _, err := tx.Statement.ConnPool.ExecContext(tx.Statement.Context, sql, args...); err != nil {
		return fmt.Errorf("insert into %s: %w", table, err)
	}
	return nil
}
