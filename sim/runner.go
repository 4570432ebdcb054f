package sim

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

// Variant is one strategy configuration to compare.
type Variant struct {
	Name     string        // shown in the report
	Strategy string        // sequential, wave or batch
	Batch    time.Duration // batch window (batch only)
	Chain    time.Duration // chaining horizon: a busy technician finishing within it may take a next job (0: off)
	Overlap  time.Duration // batch: a second offer when the first is unanswered this long (0: off)
	Urgency  float64       // batch: match.BatchPolicy.Urgency
	CallOut  bool          // ask off-duty technicians near a request at risk to come online
	Trace    *Trace        // when set, filled with the day and every decision (for replays)
}

// Variants expands strategy names ("all" for every one) into what to run:
// the batch strategy once per batch window of the scenario.
func Variants(sc Scenario, strategy string) ([]Variant, error) {
	names := sc.Dispatch.Strategies
	if strategy != "" && strategy != "all" {
		if !contains(Strategies, strategy) {
			return nil, fmt.Errorf("unknown strategy %q (known: sequential, wave, batch, all)", strategy)
		}
		names = []string{strategy}
	}
	if len(names) == 0 {
		names = Strategies
	}
	var out []Variant
	for _, n := range names {
		if n != "batch" {
			out = append(out, Variant{Name: n, Strategy: n})
			continue
		}
		windows := []time.Duration{sc.Dispatch.BatchWindow.Duration}
		for _, w := range sc.Dispatch.BatchWindows {
			if w.Duration != sc.Dispatch.BatchWindow.Duration {
				windows = append(windows, w.Duration)
			}
		}
		for _, w := range windows {
			name := "batch"
			if len(windows) > 1 {
				name = fmt.Sprintf("batch-%s", w)
			}
			u := sc.Dispatch.BatchUrgency
			out = append(out, Variant{Name: name, Strategy: "batch", Batch: w, Urgency: u})
			if o := sc.Dispatch.OverlapAfter.Duration; o > 0 {
				out = append(out, Variant{Name: name + "+overlap", Strategy: "batch", Batch: w, Overlap: o, Urgency: u})
			}
			if c := sc.Dispatch.ChainWithin.Duration; c > 0 {
				out = append(out, Variant{Name: name + "+chain", Strategy: "batch", Batch: w, Chain: c, Urgency: u})
			}
			if sc.Technicians.OffDuty.Count > 0 {
				out = append(out, Variant{Name: name + "+call", Strategy: "batch", Batch: w, Urgency: u, CallOut: true})
			}
		}
	}
	return out, nil
}

// Compare runs every variant on every seed (and the hindsight per seed) on
// all cores, and returns one summary per variant in order. progress, if not
// nil, is called with the share of work done.
func Compare(sc Scenario, variants []Variant, seeds []uint64, progress func(float64)) ([]Summary, []Bound) {
	type job struct {
		v    int // -1: hindsight
		seed int
	}
	var jobs []job
	for si := range seeds {
		jobs = append(jobs, job{-1, si})
		for vi := range variants {
			jobs = append(jobs, job{vi, si})
		}
	}
	results := make([][]Result, len(variants))
	for i := range results {
		results[i] = make([]Result, len(seeds))
	}
	bounds := make([]Bound, len(seeds))
	// Progress counts finished jobs plus the share of the day done in the
	// runs under way, so a long run shows as it goes.
	workers := max(1, runtime.GOMAXPROCS(0))
	var mu sync.Mutex
	done, partial := 0, make([]float64, workers)
	report := func(w int, frac float64, finished bool) {
		if progress == nil {
			return
		}
		mu.Lock()
		partial[w] = frac
		if finished {
			partial[w] = 0
			done++
		}
		sum := float64(done)
		for _, f := range partial {
			sum += f
		}
		progress(min(1, sum/float64(len(jobs))))
		mu.Unlock()
	}
	work := make(chan job)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				if j.v < 0 {
					bounds[j.seed] = Hindsight(sc, seeds[j.seed])
				} else {
					v := variants[j.v]
					var each func(float64)
					if progress != nil {
						each = func(f float64) { report(w, f, false) }
					}
					results[j.v][j.seed] = runDay(newDay(sc, seeds[j.seed]), v, each)
				}
				report(w, 0, true)
			}
		}()
	}
	for _, j := range jobs {
		work <- j
	}
	close(work)
	wg.Wait()
	out := make([]Summary, len(variants))
	for i, v := range variants {
		for k := range results[i] {
			results[i][k].Strategy = v.Name
		}
		out[i] = Summarise(v.Name, results[i])
	}
	return out, bounds
}
