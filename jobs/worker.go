package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/technicians"
)

// Periodic tasks.
const (
	TaskSweep     = "dispatch:sweep"         // the safety net (dispatch.Service.Sweep)
	TaskBatch     = "dispatch:batch"         // the batch strategy's round (dispatch.Service.BatchRound)
	TaskShiftEnds = "technicians:shift_ends" // off duty at the end of the shift
	TaskStale     = "technicians:stale"      // off duty without position reports
)

// Worker runs the outbox relay, the asynq server with Onsite's handlers and
// the periodic jobs (under database leases, schedule.go), until its context
// ends.
type Worker struct {
	db          *db.DB
	redis       redis.UniversalClient
	dispatch    *dispatch.Service
	techs       *technicians.Service
	messages    *Messages
	live        *Live
	hooks       *Hooks
	staleAfter  time.Duration
	log         *slog.Logger
	prefix      string
	concurrency int
	sweepEvery  time.Duration
	batchEvery  time.Duration // 0: the batch strategy is off
	owner       string        // the periodic jobs' lease owner (schedule.go)
	metrics     prometheus.Registerer
	waker       *Waker // the sweep's wake-ups of message work
	cleanups    []cleanup
}

// WithHooks turns on the owners' webhook deliveries.
func (w *Worker) WithHooks(h *Hooks) { w.hooks = h }

// WithLive turns on the live streams.
func (w *Worker) WithLive(l *Live) { w.live = l }

// WithMessages turns on the SMS tasks.
func (w *Worker) WithMessages(m *Messages) { w.messages = m }

// WithTechnicians turns on the end-of-shift and stale-position tasks.
func (w *Worker) WithTechnicians(t *technicians.Service, staleAfter time.Duration) {
	w.techs, w.staleAfter = t, staleAfter
}

// SweepEvery sets the sweep's period (default 30 s); messages whose
// wake-up was lost wait up to about two periods.
func (w *Worker) SweepEvery(d time.Duration) { w.sweepEvery = d }

// BatchEvery turns on the batch strategy's periodic round.
func (w *Worker) BatchEvery(d time.Duration) { w.batchEvery = d }

// NewWorker returns a worker over the shared Redis client; prefix is put
// before every queue name (so processes sharing a Redis can be kept apart).
func NewWorker(d *db.DB, rc redis.UniversalClient, ds *dispatch.Service, prefix string, log *slog.Logger) *Worker {
	return &Worker{db: d, redis: rc, dispatch: ds, log: log, prefix: prefix, concurrency: 10, sweepEvery: 30 * time.Second, owner: NewOwnerID(),
		waker: NewWaker(rc, prefix)}
}

// Queues returns the queue names with their priorities.
func (w *Worker) Queues() map[string]int {
	return map[string]int{w.prefix + dispatch.QueueCritical: 6, w.prefix + dispatch.QueueDefault: 3, w.prefix + dispatch.QueueLow: 1}
}

// Run blocks until ctx ends, then shuts everything down in order.
func (w *Worker) Run(ctx context.Context) error {
	client := asynq.NewClientFromRedisClient(w.redis)
	srv := asynq.NewServerFromRedisClient(w.redis, asynq.Config{
		Concurrency:              w.concurrency,
		Queues:                   w.Queues(),
		DelayedTaskCheckInterval: time.Second,
		ShutdownTimeout:          5 * time.Second,
		Logger:                   asynqLogger{w.log},
		LogLevel:                 asynq.WarnLevel,
		RetryDelayFunc: func(n int, err error, t *asynq.Task) time.Duration {
			return min(time.Duration(1<<min(n, 6))*time.Second, time.Minute)
		},
		IsFailure: func(err error) bool { return err != nil },
	})
	if err := srv.Start(w.mux()); err != nil {
		return fmt.Errorf("start asynq server: %w", err)
	}
	relay := NewRelay(w.db, client, w.prefix, w.log)
	if w.live != nil {
		relay.live = w.live.Event
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		relay.Run(ctx)
	}()
	periodic := w.periodic()
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = periodic.Run(ctx)
	}()
	w.log.Info("workers started", "queues", w.Queues(), "concurrency", w.concurrency)
	<-ctx.Done()
	wg.Wait()
	srv.Shutdown()
	return nil
}

func (w *Worker) mux() *asynq.ServeMux {
	mux := asynq.NewServeMux()
	mux.HandleFunc(dispatch.TaskMatch, w.handle(func(ctx context.Context, p dispatch.TaskPayload) error {
		_, err := w.dispatch.Match(ctx, p.RequestID)
		return err
	}))
	mux.HandleFunc(dispatch.TaskOfferExpire, w.handle(w.expireOffers))
	mux.HandleFunc(dispatch.TaskStartSearch, w.handle(func(ctx context.Context, p dispatch.TaskPayload) error {
		return w.dispatch.StartSearch(ctx, p.RequestID)
	}))
	mux.HandleFunc(dispatch.TaskDeadline, w.handle(func(ctx context.Context, p dispatch.TaskPayload) error {
		return w.dispatch.CheckDeadline(ctx, p.RequestID)
	}))
	mux.HandleFunc(dispatch.TaskNoShow, w.handle(func(ctx context.Context, p dispatch.TaskPayload) error {
		return w.dispatch.CloseNoShow(ctx, p.RequestID)
	}))
	mux.HandleFunc(dispatch.TaskConfirmExpire, w.handle(func(ctx context.Context, p dispatch.TaskPayload) error {
		return w.dispatch.ExpireConfirmation(ctx, p.RequestID)
	}))
	if w.messages != nil {
		mux.HandleFunc(dispatch.TaskNotify, w.handle(func(ctx context.Context, p dispatch.TaskPayload) error {
			return w.messages.ForEvent(ctx, p.EventID)
		}))
		mux.HandleFunc(dispatch.TaskRemind, w.handle(func(ctx context.Context, p dispatch.TaskPayload) error {
			return w.messages.Remind(ctx, p.RequestID)
		}))
		mux.HandleFunc(TaskSend, func(ctx context.Context, t *asynq.Task) error {
			var p sendPayload
			if err := json.Unmarshal(t.Payload(), &p); err != nil {
				return fmt.Errorf("%s: bad payload: %v: %w", t.Type(), err, asynq.SkipRetry)
			}
			if err := w.messages.notifier.SendMessage(ctx, p.MessageID); err != nil {
				return fmt.Errorf("%s: %w", t.Type(), err)
			}
			return nil
		})
	}
	if w.hooks != nil {
		mux.HandleFunc(dispatch.TaskWebhook, w.handle(w.hooks.Deliver))
	}
	// Tasks the asynq scheduler of an older version may still have queued:
	// the lease runner does this work now.
	for _, task := range []string{TaskSweep, TaskBatch, TaskShiftEnds, TaskStale} {
		mux.HandleFunc(task, func(context.Context, *asynq.Task) error { return nil })
	}
	return mux
}

// expireOffers ends the offers of an expiry row (one, or a batch round's
// offers due at the same time). An offer answered or gone meanwhile is
// skipped; the others are still expired.
func (w *Worker) expireOffers(ctx context.Context, p dispatch.TaskPayload) error {
	var failed []error
	for _, o := range p.Items() {
		err := w.dispatch.ExpireOffer(ctx, o.OfferID)
		var early *dispatch.NotDueError
		if errors.As(err, &early) {
			// asynq fires to the whole second; wait out the rest here.
			wait := time.Until(early.Due) + 10*time.Millisecond
			if wait > 5*time.Second {
				return err // retried later by asynq
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
			err = w.dispatch.ExpireOffer(ctx, o.OfferID)
		}
		if err != nil && errs.CodeOf(err) != errs.NotFound {
			failed = append(failed, fmt.Errorf("offer %s: %w", o.OfferID, err))
		}
	}
	return errors.Join(failed...)
}

// handle decodes the payload and runs f; a task for something that no longer
// exists is dropped rather than retried.
func (w *Worker) handle(f func(context.Context, dispatch.TaskPayload) error) asynq.HandlerFunc {
	return func(ctx context.Context, t *asynq.Task) error {
		var p dispatch.TaskPayload
		if err := json.Unmarshal(t.Payload(), &p); err != nil {
			return fmt.Errorf("%s: bad payload: %v: %w", t.Type(), err, asynq.SkipRetry)
		}
		err := f(ctx, p)
		if errs.CodeOf(err) == errs.NotFound {
			w.log.Warn("task for something that no longer exists", "type", t.Type(), "payload", string(t.Payload()))
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", t.Type(), err)
		}
		return nil
	}
}

// asynqLogger sends asynq's logs to slog.
type asynqLogger struct{ log *slog.Logger }

func (l asynqLogger) Debug(args ...any) { l.log.Debug(fmt.Sprint(args...), "component", "asynq") }
func (l asynqLogger) Info(args ...any)  { l.log.Info(fmt.Sprint(args...), "component", "asynq") }
func (l asynqLogger) Warn(args ...any)  { l.log.Warn(fmt.Sprint(args...), "component", "asynq") }
func (l asynqLogger) Error(args ...any) { l.log.Error(fmt.Sprint(args...), "component", "asynq") }
func (l asynqLogger) Fatal(args ...any) {
	l.log.Error(fmt.Sprint(args...), "component", "asynq", "fatal", true)
}
