package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/onsite/onsite/internal/lease"
)

// Periodic is work run once per window of Every across every process: each
// process ticks at the wall-clock window boundaries (time truncated to Every)
// and, for each partition Regions returns, only the holder of the lease
// "<Name>:<region>" runs it. Regions may be nil (one partition, ""), so
// different regions of one job can tick on different processes.
type Periodic struct {
	Name    string
	Every   time.Duration
	TTL     time.Duration // how long a holder that stops renewing keeps the lease; 0: 3 × Every
	Regions func(ctx context.Context) ([]string, error)
	// Run does one window's work for region. Writes that must not land
	// once the lease is lost call fence.Check inside their transaction.
	Run func(ctx context.Context, region string, fence lease.Fence) error
}

func (p Periodic) ttl() time.Duration {
	if p.TTL > 0 {
		return p.TTL
	}
	return 3 * p.Every
}

// TickStats counts what one job+region's ticks did in this process.
type TickStats struct {
	Ran       int64 // held the lease and ran (Failed included)
	Failed    int64 // ran and returned an error
	NotHolder int64 // another process holds the lease
	Busy      int64 // held the lease, but the previous run was still going
}

// Runner runs periodic jobs under database leases. Each process has one,
// with its own owner id.
type Runner struct {
	leases *lease.Store
	owner  string
	log    *slog.Logger
	now    func() time.Time
	jobs   []Periodic

	mu    sync.Mutex
	stats map[string]*TickStats
	ticks *prometheus.CounterVec
}

// NewRunner returns a runner whose leases are held as owner (unique per
// process, see NewOwnerID).
func NewRunner(leases *lease.Store, owner string, log *slog.Logger) *Runner {
	return &Runner{leases: leases, owner: owner, log: log, now: time.Now, stats: map[string]*TickStats{}}
}

// Owner returns the owner id the runner holds leases as.
func (r *Runner) Owner() string { return r.owner }

// Add registers a job; call it before Run.
func (r *Runner) Add(p Periodic) { r.jobs = append(r.jobs, p) }

// WithMetrics counts ticks in onsite_periodic_ticks_total{job,region,result}.
func (r *Runner) WithMetrics(reg prometheus.Registerer) error {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "onsite_periodic_ticks_total",
		Help: "Periodic job ticks in this process by result: ran, failed, not_holder, busy.",
	}, []string{"job", "region", "result"})
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return err
		}
		c = are.ExistingCollector.(*prometheus.CounterVec)
	}
	r.ticks = c
	return nil
}

// Stats returns the counts of job name's ticks for region in this process.
func (r *Runner) Stats(name, region string) TickStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.stats[leaseName(name, region)]; s != nil {
		return *s
	}
	return TickStats{}
}

func (r *Runner) count(name, region, result string) {
	r.mu.Lock()
	s := r.stats[leaseName(name, region)]
	if s == nil {
		s = &TickStats{}
		r.stats[leaseName(name, region)] = s
	}
	switch result {
	case "ran":
		s.Ran++
	case "failed":
		s.Ran++
		s.Failed++
	case "not_holder":
		s.NotHolder++
	case "busy":
		s.Busy++
	}
	r.mu.Unlock()
	if r.ticks != nil {
		r.ticks.WithLabelValues(name, region, result).Inc()
	}
}

func leaseName(name, region string) string { return name + ":" + region }

type windowKey struct{}

// TickWindow returns the start of the window a periodic run belongs to.
func TickWindow(ctx context.Context) (time.Time, bool) {
	t, ok := ctx.Value(windowKey{}).(time.Time)
	return t, ok
}

// Run ticks every job until ctx ends, then waits for the runs in progress
// (their context is cancelled) and hands the leases it holds over at the
// next window boundary.
func (r *Runner) Run(ctx context.Context) error {
	for _, p := range r.jobs {
		if p.Name == "" || p.Every <= 0 || p.Run == nil {
			return fmt.Errorf("periodic job %q: needs a name, a positive period and a Run", p.Name)
		}
	}
	var wg sync.WaitGroup
	for _, p := range r.jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.loop(ctx, p)
		}()
	}
	wg.Wait()
	return nil
}

// partition is one job+region in this process.
type partition struct {
	running atomic.Bool
	held    bool
	lease   lease.Lease
	cancel  context.CancelFunc // of the run in progress, if any
}

func (r *Runner) loop(ctx context.Context, p Periodic) {
	parts := map[string]*partition{}
	var runs sync.WaitGroup
	var last time.Time
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		now := r.now()
		timer.Reset(now.Truncate(p.Every).Add(p.Every).Sub(now))
		select {
		case <-ctx.Done():
			runs.Wait()
			r.releaseAll(p, parts)
			return
		case <-timer.C:
		}
		window := r.now().Truncate(p.Every)
		if !window.After(last) {
			continue // woke a hair early: wait for the boundary
		}
		last = window
		r.tick(ctx, p, window, parts, &runs)
	}
}

// tick renews or acquires each region's lease and starts the runs this
// process holds.
func (r *Runner) tick(ctx context.Context, p Periodic, window time.Time, parts map[string]*partition, runs *sync.WaitGroup) {
	regions := []string{""}
	if p.Regions != nil {
		rs, err := p.Regions(ctx)
		if err != nil {
			r.log.Warn("periodic job: list regions", "job", p.Name, "err", err)
			return
		}
		regions = rs
	}
	for _, region := range regions {
		part := parts[region]
		if part == nil {
			part = &partition{}
			parts[region] = part
		}
		name := leaseName(p.Name, region)
		actx, cancel := context.WithTimeout(ctx, max(p.Every, 5*time.Second))
		l, ok, err := r.leases.Acquire(actx, name, r.owner, p.ttl())
		cancel()
		if err != nil || !ok {
			if part.held {
				r.log.Info("periodic job: lease lost", "job", p.Name, "region", region, "owner", r.owner, "token", part.lease.Token, "err", err)
				part.held = false
				if part.cancel != nil {
					part.cancel() // its writes would be refused anyway
				}
			}
			if err != nil {
				if ctx.Err() == nil {
					r.log.Warn("periodic job: acquire lease", "job", p.Name, "region", region, "err", err)
				}
			} else {
				r.count(p.Name, region, "not_holder")
			}
			continue
		}
		if !part.held || part.lease.Token != l.Token {
			r.log.Info("periodic job: lease acquired", "job", p.Name, "region", region, "owner", r.owner, "token", l.Token)
		}
		part.held, part.lease = true, l
		if !part.running.CompareAndSwap(false, true) {
			r.count(p.Name, region, "busy")
			r.log.Warn("periodic job: previous run still going, window skipped", "job", p.Name, "region", region, "window", window)
			continue
		}
		rctx, rcancel := context.WithTimeout(context.WithValue(ctx, windowKey{}, window), p.ttl())
		part.cancel = rcancel
		runs.Add(1)
		go func() {
			defer runs.Done()
			defer part.running.Store(false)
			defer rcancel()
			start := time.Now()
			err := p.Run(rctx, region, l.Fence())
			if err != nil {
				r.count(p.Name, region, "failed")
				if ctx.Err() == nil {
					r.log.Warn("periodic job failed", "job", p.Name, "region", region, "window", window, "err", err)
				}
				return
			}
			r.count(p.Name, region, "ran")
			r.log.Debug("periodic job ran", "job", p.Name, "region", region, "window", window, "took", time.Since(start))
		}()
	}
}

// releaseAll hands every held lease over at the next window boundary: the
// window this process already ran is not run again by another.
func (r *Runner) releaseAll(p Periodic, parts map[string]*partition) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	next := r.now().Truncate(p.Every).Add(p.Every)
	for region, part := range parts {
		if !part.held {
			continue
		}
		if err := r.leases.ReleaseAt(ctx, part.lease.Fence(), next); err != nil {
			r.log.Warn("periodic job: release lease", "job", p.Name, "region", region, "err", err)
		}
	}
}

// NewOwnerID returns an owner id for this process: host, pid and a random
// suffix (a restarted process with the same pid is a new owner).
func NewOwnerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "onsite"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}
