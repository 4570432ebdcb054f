package db

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
)

// This file is the change feed: a write transaction says what it changed
// (Notify), and every process that keeps something in memory hears of it
// once the transaction commits. In this process the subscribers are called
// right after the commit; other processes hear it through PostgreSQL's
// LISTEN/NOTIFY, which is transactional (sent at commit, never for a rolled
// back transaction). A listener that loses its connection may have missed
// changes: it is told (the gap callback) so it can resync from the tables.

// notes collects the notifications of one transaction until it commits.
type notes struct {
	db   *DB
	list []note
}

type note struct{ channel, payload string }

type notesKey struct{}

// feed is the in-process side of the change feed.
type feed struct {
	node string // this process's tag on its notifications, so it skips its own
	mu   sync.RWMutex
	subs map[string][]func(payload string)
}

func newFeed() *feed { return &feed{node: NewID()[24:], subs: map[string][]func(string){}} }

// Subscribe calls f with the payload of every notification on channel made
// by this process, after its transaction commits. f must be quick: it runs
// on the committing goroutine.
func (d *DB) Subscribe(channel string, f func(payload string)) {
	d.feed.mu.Lock()
	defer d.feed.mu.Unlock()
	d.feed.subs[channel] = append(d.feed.subs[channel], f)
}

func (d *DB) deliver(list []note) {
	d.feed.mu.RLock()
	defer d.feed.mu.RUnlock()
	for _, n := range list {
		for _, f := range d.feed.subs[n.channel] {
			f(n.payload)
		}
	}
}

// pgChannel is the PostgreSQL channel of a feed channel: channels are
// database-wide, so the schema is part of the name (tests run side by side in
// schemas of one database).
func (d *DB) pgChannel(channel string) string {
	if d.Schema == "" {
		return "onsite_" + channel
	}
	return fmt.Sprintf("onsite_%s_%08x", channel, crc32.ChecksumIEEE([]byte(d.Schema)))
}

// Notify publishes payload on channel when the transaction tx commits. tx
// must come from Tx: a notification outside a transaction is an error, so
// no write can forget to be heard.
func Notify(tx *gorm.DB, channel, payload string) error {
	n, ok := tx.Statement.Context.Value(notesKey{}).(*notes)
	if !ok {
		return errors.New("db: notify outside a transaction (use DB.Tx)")
	}
	n.list = append(n.list, note{channel, payload})
	if n.db.Dialect != Postgres {
		return nil
	}
	if err := tx.Exec("SELECT pg_notify(?, ?)", n.db.pgChannel(channel), n.db.feed.node+" "+payload).Error; err != nil {
		return fmt.Errorf("notify %s: %w", channel, err)
	}
	return nil
}

// UpdateNotify runs update (one UPDATE … RETURNING statement) into dest
// and, when it changed rows, publishes payload on channel as Notify does: on
// PostgreSQL in the same statement (one round trip, the notification sent
// when it commits), elsewhere in a transaction. It returns the rows changed.
func (d *DB) UpdateNotify(ctx context.Context, dest any, channel, payload, update string, args ...any) (int64, error) {
	if d.Dialect != Postgres {
		var n int64
		err := d.Tx(ctx, func(tx *gorm.DB) error {
			res := tx.Raw(update, args...).Scan(dest)
			if n = res.RowsAffected; res.Error != nil || n == 0 {
				return res.Error
			}
			return Notify(tx, channel, payload)
		})
		return n, err
	}
	// The lateral call runs once per changed row (here one), and not at all
	// when the update changed nothing.
	q := "WITH u AS (" + update + ") SELECT u.* FROM u, LATERAL (SELECT pg_notify(?, ?)) notified"
	res := d.DB.WithContext(ctx).Raw(q, append(args, d.pgChannel(channel), d.feed.node+" "+payload)...).Scan(dest)
	if res.Error != nil {
		return 0, res.Error
	}
	if res.RowsAffected > 0 {
		d.deliver([]note{{channel, payload}})
	}
	return res.RowsAffected, nil
}

// Listen hears the notifications that other processes make on channel
// (PostgreSQL only; in SQLite's embedded mode there is one process and
// Subscribe hears everything) until ctx ends. It calls gap whenever it
// (re)connects, because changes may have been made while nobody listened:
// the caller resyncs then.
func (d *DB) Listen(ctx context.Context, channel string, f func(payload string), gap func()) {
	if d.Dialect != Postgres {
		return
	}
	wait := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := d.listenOnce(ctx, channel, f, gap)
		if ctx.Err() != nil {
			return
		}
		if d.listenErr != nil {
			d.listenErr(channel, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Second)
	}
}

func (d *DB) listenOnce(ctx context.Context, channel string, f func(string), gap func()) error {
	conn, err := pgx.Connect(ctx, d.url)
	if err != nil {
		return fmt.Errorf("listen: connect: %w", err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{d.pgChannel(channel)}.Sanitize()); err != nil {
		return fmt.Errorf("listen %s: %w", channel, err)
	}
	gap()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("listen %s: %w", channel, err)
		}
		node, payload, _ := strings.Cut(n.Payload, " ")
		if node == d.feed.node {
			continue // heard already, at commit
		}
		f(payload)
	}
}

// OnListenError sets what to do with a lost listening connection (log it).
func (d *DB) OnListenError(f func(channel string, err error)) { d.listenErr = f }
