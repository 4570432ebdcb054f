// Package jobs is the task shell: it relays the outbox to asynq, runs the
// asynq server whose handlers call dispatch, and schedules the periodic
// sweep. It is the only package besides cmd that imports asynq.
package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/internal/db"
)

// Relay hands committed outbox rows to asynq. A row is claimed with a lease
// (locked_until), enqueued with its id as the asynq task id, then marked
// relayed; a relay that dies after enqueueing leaves a lease that lapses, and
// the re-enqueue is refused by asynq as a duplicate id. While Redis is down
// rows simply wait, so a committed change always gets its task.
type Relay struct {
	live   func(context.Context, dispatch.TaskPayload) error // handles TaskLive rows itself
	db     *db.DB
	client *asynq.Client
	prefix string
	log    *slog.Logger
	now    func() time.Time
	batch  int
}

// NewRelay returns a relay; prefix is put before queue names.
func NewRelay(d *db.DB, client *asynq.Client, prefix string, log *slog.Logger) *Relay {
	return &Relay{db: d, client: client, prefix: prefix, log: log, now: func() time.Time { return db.UTC(time.Now()) }, batch: 200}
}

// Run relays until ctx ends.
func (r *Relay) Run(ctx context.Context) {
	wait := 50 * time.Millisecond
	lastClean := time.Time{}
	for {
		n, err := r.Once(ctx)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				r.log.Warn("outbox relay", "err", err)
			}
			wait = min(wait*2, 5*time.Second)
		case n == r.batch:
			wait = 0
		default:
			wait = 50 * time.Millisecond
		}
		if time.Since(lastClean) > time.Hour {
			if err := r.clean(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("outbox clean", "err", err)
			}
			lastClean = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// Once relays one batch and returns how many rows it handed over.
func (r *Relay) Once(ctx context.Context) (int, error) {
	now := r.now()
	rows, err := r.claim(ctx, now)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	var done []string
	var firstErr error
	for _, row := range rows {
		var err error
		if row.Kind == dispatch.TaskLive {
			err = r.publish(ctx, row)
		} else {
			err = r.enqueue(ctx, row.Kind, row.Payload, row.TaskID, row.Queue, row.ProcessAt)
		}
		if err == nil || errors.Is(err, asynq.ErrTaskIDConflict) {
			done = append(done, row.ID)
			continue
		}
		if firstErr == nil {
			firstErr = fmt.Errorf("enqueue %s: %w", row.Kind, err)
		}
		msg := err.Error()
		retryAt := now.Add(time.Duration(min(row.Attempts+1, 6)) * time.Second)
		_ = r.db.WithContext(ctx).Model(&dispatch.OutboxTask{}).Where("id = ?", row.ID).
			Updates(map[string]any{"attempts": gorm.Expr("attempts + 1"), "last_error": msg, "locked_until": retryAt}).Error
	}
	if len(done) > 0 {
		if err := r.db.WithContext(ctx).Model(&dispatch.OutboxTask{}).Where("id IN ?", done).
			Update("relayed_at", r.now()).Error; err != nil {
			return len(done), fmt.Errorf("mark relayed: %w", err)
		}
	}
	return len(done), firstErr
}

func (r *Relay) enqueue(ctx context.Context, kind, payload, taskID, queue string, at time.Time) error {
	task := asynq.NewTask(kind, []byte(payload))
	_, err := r.client.EnqueueContext(ctx, task, asynq.TaskID(taskID), asynq.Queue(r.prefix+queue),
		asynq.ProcessAt(at), asynq.MaxRetry(8), asynq.Timeout(30*time.Second))
	return err
}

// publish pushes a row's live updates straight to the streams: no task
// queue in between, so the dashboard sees a change within one relay tick.
// An event that asks for it then gets its message task, under an id made
// from the event so a row relayed twice queues it once.
func (r *Relay) publish(ctx context.Context, row dispatch.OutboxTask) error {
	var p dispatch.TaskPayload
	if err := json.Unmarshal([]byte(row.Payload), &p); err != nil {
		return nil // nothing to publish from a broken row
	}
	for _, e := range p.Items() {
		if r.live != nil {
			if err := r.live(ctx, e); err != nil {
				return err
			}
		}
		if !e.Notify {
			continue
		}
		body, err := json.Marshal(dispatch.TaskPayload{EventID: e.EventID, RequestID: e.RequestID})
		if err != nil {
			return fmt.Errorf("encode notify task: %w", err)
		}
		err = r.enqueue(ctx, dispatch.TaskNotify, string(body), e.EventID+"-notify", dispatch.QueueDefault, row.ProcessAt)
		if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
			return err
		}
	}
	return nil
}

func (r *Relay) claim(ctx context.Context, now time.Time) ([]dispatch.OutboxTask, error) {
	lock := ""
	if r.db.Dialect == db.Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var rows []dispatch.OutboxTask
	err := r.db.WithContext(ctx).Raw(`UPDATE outbox SET locked_until = ? WHERE id IN (
			SELECT id FROM outbox WHERE relayed_at IS NULL AND (locked_until IS NULL OR locked_until < ?)
			ORDER BY created_at LIMIT ?`+lock+`) RETURNING *`, now.Add(30*time.Second), now, r.batch).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("claim outbox rows: %w", err)
	}
	return rows, nil
}

// clean deletes rows relayed more than a day ago.
func (r *Relay) clean(ctx context.Context) error {
	return r.db.WithContext(ctx).Where("relayed_at < ?", r.now().Add(-24*time.Hour)).Delete(&dispatch.OutboxTask{}).Error
}
