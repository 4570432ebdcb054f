package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/onsite/onsite/dispatch"
)

// TaskSend wakes the send of one message (notify.Notifier.SendMessage).
const TaskSend = "notify:send"

// sendPayload is TaskSend's payload.
type sendPayload struct {
	MessageID string `json:"message_id"`
}

// Waker queues wake-ups of message work. A wake-up carries nothing that is
// not in PostgreSQL: losing one (Redis flushed) only delays the work until
// the sweep (Messages.Sweep) queues it again.
type Waker struct {
	client *asynq.Client
	prefix string
}

// NewWaker returns a waker over the shared Redis client; prefix is put
// before queue names.
func NewWaker(rc redis.UniversalClient, prefix string) *Waker {
	return &Waker{client: asynq.NewClientFromRedisClient(rc), prefix: prefix}
}

// Message queues a send attempt of message id at a time; it is the
// notifier's notify.WakeFunc. Its task id names the attempt, so each retry
// is queued once.
func (w *Waker) Message(ctx context.Context, id string, attempt int, at time.Time) error {
	return w.send(ctx, id, "msg-"+id+"-"+strconv.Itoa(attempt), at)
}

func (w *Waker) send(ctx context.Context, id, taskID string, at time.Time) error {
	body, err := json.Marshal(sendPayload{MessageID: id})
	if err != nil {
		return fmt.Errorf("encode send task: %w", err)
	}
	return w.enqueue(ctx, TaskSend, body, taskID, at)
}

func (w *Waker) enqueue(ctx context.Context, kind string, payload []byte, taskID string, at time.Time) error {
	_, err := w.client.EnqueueContext(ctx, asynq.NewTask(kind, payload), asynq.TaskID(taskID), asynq.Queue(w.prefix+dispatch.QueueDefault),
		asynq.ProcessAt(at), asynq.MaxRetry(8), asynq.Timeout(30*time.Second))
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return nil // already queued
	}
	if err != nil {
		return fmt.Errorf("queue %s %s: %w", kind, taskID, err)
	}
	return nil
}

// MessageSweep counts what one sweep woke.
type MessageSweep struct {
	Events    int // events that still owed their messages
	Messages  int // messages due, or whose send attempt's lease ended
	Reminders int // reminders due and not stored
}

// Sweep queues again the message work whose wake-up may have been lost:
// events that still owe their messages, messages that have been due (or
// whose attempt's lease ended) for longer than grace, and reminders due but
// not stored. Its task ids name the sweep's window, so a wake-up still
// waiting in a queue is at most doubled, and doing the work twice is
// harmless.
func (m *Messages) Sweep(ctx context.Context, w *Waker, window time.Time, grace time.Duration) (MessageSweep, error) {
	var res MessageSweep
	now := time.Now()
	suffix := "-s" + strconv.FormatInt(window.Unix(), 10)
	var errsSeen []error
	owed, err := m.dispatch.OwedEvents(ctx, now.Add(-grace), 500)
	if err != nil {
		return res, err
	}
	for _, p := range owed {
		body, err := json.Marshal(p)
		if err != nil {
			return res, fmt.Errorf("encode notify task: %w", err)
		}
		if err := w.enqueue(ctx, dispatch.TaskNotify, body, "notify-"+p.EventID+suffix, now); err != nil {
			errsSeen = append(errsSeen, err)
			break // Redis is likely down: the next sweep tries again
		}
		res.Events++
	}
	due, err := m.notifier.Due(ctx, now.Add(-grace), 500)
	if err != nil {
		return res, errors.Join(append(errsSeen, err)...)
	}
	for _, msg := range due {
		if err := w.send(ctx, msg.ID, "msg-"+msg.ID+"-"+strconv.Itoa(msg.Attempts)+suffix, now); err != nil {
			errsSeen = append(errsSeen, err)
			break
		}
		res.Messages++
	}
	reminders, err := m.dispatch.DueReminders(ctx, now.Add(-grace), 500)
	if err != nil {
		return res, errors.Join(append(errsSeen, err)...)
	}
	keys := make([]string, len(reminders))
	for i, r := range reminders {
		keys[i] = ReminderKey(r.ID, *r.TechnicianID)
	}
	stored, err := m.notifier.Stored(ctx, keys)
	if err != nil {
		return res, errors.Join(append(errsSeen, err)...)
	}
	for i, r := range reminders {
		if stored[keys[i]] {
			continue
		}
		body, err := json.Marshal(dispatch.TaskPayload{RequestID: r.ID})
		if err != nil {
			return res, fmt.Errorf("encode remind task: %w", err)
		}
		if err := w.enqueue(ctx, dispatch.TaskRemind, body, "remind-"+r.ID+suffix, now); err != nil {
			errsSeen = append(errsSeen, err)
			break
		}
		res.Reminders++
	}
	return res, errors.Join(errsSeen...)
}
