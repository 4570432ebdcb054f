package jobs_test

import (
	"context"
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/onsite/onsite/internal/apitest"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/dbtest"
	"github.com/onsite/onsite/internal/lease"
	"github.com/onsite/onsite/jobs"
)

// runLog records the runs of a periodic job across runners.
type runLog struct {
	mu       sync.Mutex
	windows  map[string][]time.Time // region → window of every run, in order
	owners   map[time.Time]string
	inFlight map[string]*atomic.Int32
	overlap  atomic.Bool
}

func newRunLog() *runLog {
	return &runLog{windows: map[string][]time.Time{}, owners: map[time.Time]string{}, inFlight: map[string]*atomic.Int32{}}
}

// job returns the Run of a job that records itself for owner.
func (l *runLog) job(owner string) func(ctx context.Context, region string, f lease.Fence) error {
	return func(ctx context.Context, region string, f lease.Fence) error {
		w, ok := jobs.TickWindow(ctx)
		if !ok {
			return errors.New("no window in the context")
		}
		if f.Owner != owner || f.Token < 1 {
			return errors.New("wrong fence")
		}
		l.mu.Lock()
		n := l.inFlight[region]
		if n == nil {
			n = &atomic.Int32{}
			l.inFlight[region] = n
		}
		l.mu.Unlock()
		if n.Add(1) > 1 {
			l.overlap.Store(true)
		}
		defer n.Add(-1)
		time.Sleep(20 * time.Millisecond) // some work, so an overlap would show
		l.mu.Lock()
		l.windows[region] = append(l.windows[region], w)
		if region == "" {
			l.owners[w] = owner
		}
		l.mu.Unlock()
		return nil
	}
}

func (l *runLog) runs(region string) []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.windows[region]...)
}

func (l *runLog) runsBy(owner string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, o := range l.owners {
		if o == owner {
			n++
		}
	}
	return n
}

// startRunner runs r until the returned stop is called (or the test ends).
func startRunner(t *testing.T, r *jobs.Runner) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("runner %s: %v", r.Owner(), err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// checkWindows fails when a window ran twice, and logs the windows missed
// between the first and the last run (more than slack fails).
func checkWindows(t *testing.T, runs []time.Time, every time.Duration, slack int) {
	t.Helper()
	sorted := append([]time.Time(nil), runs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Before(sorted[j]) })
	missed := 0
	for i := 1; i < len(sorted); i++ {
		gap := sorted[i].Sub(sorted[i-1])
		if gap == 0 {
			t.Errorf("window %s ran twice", sorted[i].Format(time.StampMilli))
			continue
		}
		missed += int(gap/every) - 1
	}
	if missed > 0 {
		t.Logf("%d windows missed out of %d (a busy machine)", missed, len(sorted)+missed)
	}
	if missed > slack {
		t.Errorf("%d windows missed between %d runs, want at most %d", missed, len(sorted), slack)
	}
}

// TestPeriodicOnceAcrossRunners: two runners (two processes) over one
// database run the job once per window between them, never at once, and
// when the holder stops the other takes over at the next window.
func TestPeriodicOnceAcrossRunners(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		const every = 400 * time.Millisecond
		log := newRunLog()
		store := lease.NewStore(d)
		runners := map[string]*jobs.Runner{}
		stops := map[string]func(){}
		for _, owner := range []string{"a", "b"} {
			r := jobs.NewRunner(store, owner, quiet())
			r.Add(jobs.Periodic{Name: "test:job", Every: every, Run: log.job(owner)})
			runners[owner] = r
			stops[owner] = startRunner(t, r)
		}
		apitest.Eventually(t, 20*time.Second, "4 runs", func() bool { return len(log.runs("")) >= 4 })

		l, ok, err := store.Get(context.Background(), "test:job:")
		if err != nil || !ok {
			t.Fatalf("lease: %v, %v", ok, err)
		}
		holder, other := l.Owner, "a"
		if holder == "a" {
			other = "b"
		}
		stops[holder]()
		before := log.runsBy(other)
		apitest.Eventually(t, 20*time.Second, "the other runner to take over", func() bool { return log.runsBy(other) >= before+3 })
		stops[other]()

		runs := log.runs("")
		checkWindows(t, runs, every, 1)
		if log.overlap.Load() {
			t.Error("two runs of the job overlapped")
		}
		ran := runners["a"].Stats("test:job", "").Ran + runners["b"].Stats("test:job", "").Ran
		if ran != int64(len(runs)) {
			t.Errorf("runners counted %d runs, the job saw %d", ran, len(runs))
		}
		if runners[other].Stats("test:job", "").NotHolder == 0 {
			t.Errorf("%s never found the lease held by %s", other, holder)
		}
		after, _, _ := store.Get(context.Background(), "test:job:")
		if after.Token <= l.Token {
			t.Errorf("token after the takeover %d, before %d: want it raised", after.Token, l.Token)
		}
		t.Logf("%d runs: %d by a, %d by b", len(runs), log.runsBy("a"), log.runsBy("b"))
	})
}

// TestPeriodicTakesOverFromDeadHolder: a holder that stops renewing (a
// crashed process) keeps the job until its lease expires; then a runner
// takes it over with a higher token.
func TestPeriodicTakesOverFromDeadHolder(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		const every = 200 * time.Millisecond
		store := lease.NewStore(d)
		dead, ok, err := store.Acquire(context.Background(), "test:job:", "dead", 3*every)
		if err != nil || !ok {
			t.Fatalf("dead holder: %v, %v", ok, err)
		}
		var first atomic.Pointer[time.Time]
		var token atomic.Int64
		r := jobs.NewRunner(store, "alive", quiet())
		r.Add(jobs.Periodic{Name: "test:job", Every: every, Run: func(ctx context.Context, _ string, f lease.Fence) error {
			now := time.Now()
			first.CompareAndSwap(nil, &now)
			token.Store(f.Token)
			return nil
		}})
		startRunner(t, r)
		apitest.Eventually(t, 20*time.Second, "the runner to take over", func() bool { return first.Load() != nil })
		if first.Load().Before(dead.ExpiresAt) {
			t.Errorf("ran at %v, before the dead holder's lease expired at %v", *first.Load(), dead.ExpiresAt)
		}
		if token.Load() != dead.Token+1 {
			t.Errorf("token %d, want %d", token.Load(), dead.Token+1)
		}
		if r.Stats("test:job", "").NotHolder == 0 {
			t.Error("the runner never saw the dead holder's lease")
		}
	})
}

// TestPeriodicNoOverlapInProcess: a run longer than the period skips the
// windows it overlaps (renewing the lease) instead of running beside itself.
func TestPeriodicNoOverlapInProcess(t *testing.T) {
	t.Parallel()
	d := dbtest.SQLite(t)
	const every = 200 * time.Millisecond
	store := lease.NewStore(d)
	release := make(chan struct{})
	var inFlight, maxInFlight, ran atomic.Int32
	r := jobs.NewRunner(store, "a", quiet())
	reg := prometheus.NewRegistry()
	if err := r.WithMetrics(reg); err != nil {
		t.Fatal(err)
	}
	r.Add(jobs.Periodic{Name: "test:slow", Every: every, TTL: time.Minute, Run: func(ctx context.Context, _ string, _ lease.Fence) error {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		if ran.Add(1) == 1 {
			<-release // the first run outlasts a few windows
		}
		return nil
	}})
	startRunner(t, r)
	apitest.Eventually(t, 20*time.Second, "windows skipped while the first run goes on", func() bool {
		return r.Stats("test:slow", "").Busy >= 2
	})
	close(release)
	apitest.Eventually(t, 20*time.Second, "runs after the slow one", func() bool { return ran.Load() >= 3 })
	if maxInFlight.Load() != 1 {
		t.Errorf("%d runs at once, want 1", maxInFlight.Load())
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counted := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "onsite_periodic_ticks_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" {
					counted[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	if counted["busy"] < 2 || counted["ran"] < 1 {
		t.Errorf("onsite_periodic_ticks_total by result: %v, want busy >= 2 and ran >= 1", counted)
	}
}

// TestPeriodicRegions: each region has its own lease and runs once per
// window; with two runners the regions may tick on either.
func TestPeriodicRegions(t *testing.T) {
	t.Parallel()
	d := dbtest.Postgres(t)
	const every = 300 * time.Millisecond
	log := newRunLog()
	store := lease.NewStore(d)
	for _, owner := range []string{"a", "b"} {
		r := jobs.NewRunner(store, owner, quiet())
		r.Add(jobs.Periodic{Name: "test:batch", Every: every,
			Regions: func(context.Context) ([]string, error) { return []string{"zurich", "geneva"}, nil },
			Run:     log.job(owner)})
		startRunner(t, r)
	}
	apitest.Eventually(t, 20*time.Second, "3 runs in each region", func() bool {
		return len(log.runs("zurich")) >= 3 && len(log.runs("geneva")) >= 3
	})
	for _, region := range []string{"zurich", "geneva"} {
		checkWindows(t, log.runs(region), every, 1)
		if _, ok, err := store.Get(context.Background(), "test:batch:"+region); !ok || err != nil {
			t.Errorf("no lease for %s: %v", region, err)
		}
	}
	if log.overlap.Load() {
		t.Error("two runs of one region overlapped")
	}
}
