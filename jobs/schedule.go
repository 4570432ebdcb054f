package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/internal/lease"
)

// WithOwner sets the owner id the periodic jobs' leases are held as
// (default NewOwnerID(); tests run several workers in one process).
func (w *Worker) WithOwner(id string) { w.owner = id }

// WithMetrics counts the periodic jobs' ticks in reg.
func (w *Worker) WithMetrics(reg prometheus.Registerer) { w.metrics = reg }

// periodic returns the runner of the periodic jobs: each runs once per
// window across every process, by the holder of its lease.
func (w *Worker) periodic() *Runner {
	r := NewRunner(lease.NewStore(w.db), w.owner, w.log)
	if w.metrics != nil {
		if err := r.WithMetrics(w.metrics); err != nil {
			w.log.Warn("periodic jobs: metrics", "err", err)
		}
	}
	r.Add(Periodic{Name: TaskSweep, Every: w.sweepEvery, Run: w.sweep})
	if w.batchEvery > 0 {
		r.Add(Periodic{Name: TaskBatch, Every: w.batchEvery, Regions: w.dispatch.Regions, Run: w.batchRound})
	}
	if w.hooks != nil {
		r.Add(Periodic{Name: TaskWebhookSweep, Every: w.sweepEvery, Run: w.hooks.sweep})
	}
	if w.techs != nil {
		r.Add(Periodic{Name: TaskShiftEnds, Every: time.Minute, Run: w.endShifts})
		r.Add(Periodic{Name: TaskStale, Every: time.Minute, Run: w.offlineStale})
	}
	for _, c := range w.cleanups {
		r.Add(Periodic{Name: c.name, Every: cleanupEvery, Run: func(ctx context.Context, _ string, _ lease.Fence) error {
			n, err := c.run(ctx)
			if n > 0 {
				w.log.Info("cleanup", "job", c.name, "deleted", n)
			}
			return err
		}})
	}
	return r
}

// cleanupEvery is how often the housekeeping jobs run.
const cleanupEvery = 10 * time.Minute

// cleanup is housekeeping: deleting rows that have served their time.
type cleanup struct {
	name string
	run  func(ctx context.Context) (deleted int64, err error)
}

// WithCleanup adds a housekeeping job, run every 10 minutes once across
// processes (it must stay correct when two runs overlap).
func (w *Worker) WithCleanup(name string, run func(ctx context.Context) (int64, error)) {
	w.cleanups = append(w.cleanups, cleanup{name: name, run: run})
}

// batchRound is the one adapter between the runner and the batch strategy:
// the round of one region, fenced by its lease.
func (w *Worker) batchRound(ctx context.Context, region string, fence lease.Fence) error {
	res, err := w.dispatch.BatchRound(ctx, region, 500, fence)
	if len(res.Offered) > 0 {
		w.log.Debug("batch round", "region", region, "waiting", res.Waiting, "offered", len(res.Offered), "token", fence.Token)
	}
	return err
}

// The sweep, shift ends and stale positions are conditional updates that
// stay correct when two runs overlap; the lease only keeps them from running
// once per process.

func (w *Worker) sweep(ctx context.Context, _ string, _ lease.Fence) error {
	res, err := w.dispatch.Sweep(ctx)
	if res != (dispatch.SweepResult{}) {
		w.log.Info("sweep repaired work", "matched", res.Matched, "expired", res.Expired, "given_up", res.GivenUp, "started", res.Started,
			"held", res.Held, "no_shows", res.NoShows, "confirmations_expired", res.ConfirmationsExpired)
	}
	if w.messages == nil {
		return err
	}
	window, ok := TickWindow(ctx)
	if !ok {
		window = time.Now()
	}
	mres, merr := w.messages.Sweep(ctx, w.waker, window, w.sweepEvery)
	if mres != (MessageSweep{}) {
		w.log.Info("sweep woke message work", "events", mres.Events, "messages", mres.Messages, "reminders", mres.Reminders)
	}
	return errors.Join(err, merr, w.dutyNotices(ctx))
}

// dutyNotices texts the technicians Onsite took off duty (a suspension by
// ops is found by the sweep; the shift and position jobs text at once).
func (w *Worker) dutyNotices(ctx context.Context) error {
	if w.messages == nil || w.techs == nil {
		return nil
	}
	n, err := w.messages.DutyNotices(ctx, w.techs)
	if n > 0 {
		w.log.Info("off-duty texts", "stored", n)
	}
	return err
}

func (w *Worker) endShifts(ctx context.Context, _ string, _ lease.Fence) error {
	n, err := w.techs.EndShifts(ctx)
	if n > 0 {
		w.log.Info("shifts ended", "off_duty", n)
		err = errors.Join(err, w.dutyNotices(ctx))
	}
	return err
}

func (w *Worker) offlineStale(ctx context.Context, _ string, _ lease.Fence) error {
	n, err := w.techs.OfflineStale(ctx, w.staleAfter)
	if n > 0 {
		w.log.Info("stale positions", "off_duty", n)
		err = errors.Join(err, w.dutyNotices(ctx))
	}
	return err
}
