// Package migrations holds the SQL schema changes, embedded in the binary and
// applied at start on PostgreSQL and SQLite alike.
package migrations

import "embed"

// FS holds every migration file, 00001_name.sql and onwards; Go (go.go)
// adds the few written in Go.
//
//go:embed *.sql
var FS embed.FS
