package technicians

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/errs"
)

// Moved is a position the buffer wrote.
type Moved struct {
	TechnicianID string
	Point        geo.Point
	At           time.Time
	ActiveJobs   int
}

// PingBuffer takes position reports on the hot path and writes them in
// batches: it keeps the newest ping per technician and flushes every
// interval (or sooner when many wait) with one statement per batch. A ping
// older than the stored position is dropped at the flush. PostgreSQL stays
// the truth; a crash loses at most one interval of pings, which the next
// pings replace.
type PingBuffer struct {
	db       *db.DB
	now      func() time.Time
	every    time.Duration
	max      int
	onMoved  func(context.Context, []Moved)
	log      *slog.Logger
	mu       sync.Mutex
	pending  map[string]Ping
	kick     chan struct{}
	flushing sync.Mutex
}

// NewPingBuffer returns a buffer that flushes every interval; onMoved hears
// of every position written (to update ETAs and the dashboard).
func NewPingBuffer(d *db.DB, every time.Duration, onMoved func(context.Context, []Moved), log *slog.Logger) *PingBuffer {
	return &PingBuffer{db: d, now: func() time.Time { return db.UTC(time.Now()) }, every: every, max: 2000,
		onMoved: onMoved, log: log, pending: map[string]Ping{}, kick: make(chan struct{}, 1)}
}

// Accepted is the answer to buffered pings.
type Accepted struct {
	Received int       `json:"received"`
	Newest   time.Time `json:"newest"` // the time of the newest ping, written within the flush interval unless a newer one is stored
}

// Add validates the pings and keeps the newest of them for the next flush.
func (b *PingBuffer) Add(techID string, pings ...Ping) (Accepted, error) {
	if len(pings) == 0 {
		return Accepted{}, errs.InvalidField("pings", "pings must hold at least one ping")
	}
	if len(pings) > maxBatch {
		return Accepted{}, errs.InvalidField("pings", "at most %d pings at once", maxBatch)
	}
	now := b.now()
	newest := -1
	for i := range pings {
		field := ""
		if len(pings) > 1 {
			field = fmt.Sprintf("pings[%d].", i)
		}
		if err := pings[i].validate(now, field); err != nil {
			return Accepted{}, err
		}
		if newest < 0 || pings[i].At.After(*pings[newest].At) {
			newest = i
		}
	}
	p := pings[newest]
	b.mu.Lock()
	if prev, ok := b.pending[techID]; !ok || p.At.After(*prev.At) {
		b.pending[techID] = p
	}
	full := len(b.pending) >= b.max
	b.mu.Unlock()
	if full {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
	return Accepted{Received: len(pings), Newest: *p.At}, nil
}

// Run flushes until ctx ends, then once more.
func (b *PingBuffer) Run(ctx context.Context) {
	t := time.NewTicker(b.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := b.Flush(context.WithoutCancel(ctx)); err != nil {
				b.log.Warn("final ping flush", "err", err)
			}
			return
		case <-t.C:
		case <-b.kick:
		}
		if err := b.Flush(ctx); err != nil && ctx.Err() == nil {
			b.log.Warn("ping flush", "err", err)
		}
	}
}

// Flush writes what is pending.
func (b *PingBuffer) Flush(ctx context.Context) error {
	b.flushing.Lock()
	defer b.flushing.Unlock()
	b.mu.Lock()
	batch := b.pending
	b.pending = make(map[string]Ping, len(batch))
	b.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	moved, err := b.write(ctx, batch)
	if err != nil {
		// Put them back unless newer ones came meanwhile.
		b.mu.Lock()
		for id, p := range batch {
			if prev, ok := b.pending[id]; !ok || p.At.After(*prev.At) {
				b.pending[id] = p
			}
		}
		b.mu.Unlock()
		return err
	}
	if len(moved) > 0 && b.onMoved != nil {
		b.onMoved(ctx, moved)
	}
	return nil
}

const flushChunk = 500

func (b *PingBuffer) write(ctx context.Context, batch map[string]Ping) ([]Moved, error) {
	now := b.now()
	ids := make([]string, 0, len(batch))
	for id := range batch {
		ids = append(ids, id)
	}
	// The same order in every flush (and ascending like other writers) keeps
	// two writers from locking rows in opposite order.
	slices.Sort(ids)
	var moved []Moved
	for start := 0; start < len(ids); start += flushChunk {
		chunk := ids[start:min(start+flushChunk, len(ids))]
		var rows []struct {
			ID         string
			ActiveJobs int
		}
		var err error
		if b.db.Dialect == db.Postgres {
			rows, err = b.writePostgres(ctx, chunk, batch, now)
		} else {
			rows, err = b.writeEach(ctx, chunk, batch, now)
		}
		if err != nil {
			return moved, err
		}
		for _, r := range rows {
			p := batch[r.ID]
			moved = append(moved, Moved{TechnicianID: r.ID, Point: p.Point(), At: *p.At, ActiveJobs: r.ActiveJobs})
		}
	}
	return moved, nil
}

type movedRow = struct {
	ID         string
	ActiveJobs int
}

// writePostgres updates a chunk in one statement from a VALUES list.
func (b *PingBuffer) writePostgres(ctx context.Context, ids []string, batch map[string]Ping, now time.Time) ([]movedRow, error) {
	var sb strings.Builder
	args := make([]any, 0, len(ids)*5+1)
	args = append(args, now)
	for i, id := range ids {
		p := batch[id]
		if i > 0 {
			sb.WriteString(",")
		}
		sb.WriteString("(?::text, ?::float8, ?::float8, ?::bigint, ?::timestamp)")
		args = append(args, id, *p.Lat, *p.Lng, int64(geo.CellOf(p.Point(), geo.CityResolution)), *p.At)
	}
	var rows []movedRow
	err := b.db.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Raw(`UPDATE technicians AS t SET lat = v.lat, lng = v.lng, cell = v.cell, position_at = v.at, updated_at = ?
		FROM (VALUES `+sb.String()+`) AS v(id, lat, lng, cell, at)
		WHERE t.id = v.id AND (t.position_at IS NULL OR t.position_at < v.at)
		RETURNING t.id, t.active_jobs`, args...).Scan(&rows).Error; err != nil {
			return err
		}
		return notifyMoved(tx, movedOf(rows, batch))
	})
	if err != nil {
		return nil, fmt.Errorf("flush %d pings: %w", len(ids), err)
	}
	return rows, nil
}

// writeEach updates a chunk row by row in one transaction (SQLite).
func (b *PingBuffer) writeEach(ctx context.Context, ids []string, batch map[string]Ping, now time.Time) ([]movedRow, error) {
	var rows []movedRow
	err := b.db.Tx(ctx, func(tx *gorm.DB) error {
		for _, id := range ids {
			p := batch[id]
			var r []movedRow
			if err := tx.Raw(`UPDATE technicians SET lat = ?, lng = ?, cell = ?, position_at = ?, updated_at = ?
				WHERE id = ? AND (position_at IS NULL OR position_at < ?) RETURNING id, active_jobs`,
				*p.Lat, *p.Lng, geo.CellOf(p.Point(), geo.CityResolution), *p.At, now, id, *p.At).Scan(&r).Error; err != nil {
				return err
			}
			rows = append(rows, r...)
		}
		return notifyMoved(tx, movedOf(rows, batch))
	})
	if err != nil {
		return nil, fmt.Errorf("flush %d pings: %w", len(ids), err)
	}
	return rows, nil
}

func movedOf(rows []movedRow, batch map[string]Ping) []Moved {
	out := make([]Moved, len(rows))
	for i, r := range rows {
		out[i] = Moved{TechnicianID: r.ID, Point: batch[r.ID].Point()}
	}
	return out
}
