package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/onsite/onsite/sim"
)

func simulate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scenario := fs.String("scenario", "", "scenario file (YAML, see docs/simulator.md)")
	strategy := fs.String("strategy", "all", "sequential, wave, batch or all")
	seed := fs.Uint64("seed", 1, "first seed; runs seeds seed … seed+seeds-1")
	seeds := fs.Int("seeds", 0, "how many seeds (default: the scenario's)")
	out := fs.String("out", "sim-out", "directory for report.md and the charts")
	family := fs.String("family", "", "run every scenario (*.yaml) of this directory instead; writes index.md with one table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *seeds < 0 || *seeds > 1000 {
		return fmt.Errorf("simulate: --seeds must be from 1 to 1000")
	}
	if *family != "" {
		if *scenario != "" {
			return fmt.Errorf("simulate: give --scenario or --family, not both")
		}
		return simulateFamily(*family, *strategy, *seed, *seeds, *out, stdout, stderr)
	}
	if *scenario == "" {
		return fmt.Errorf("simulate: --scenario (or --family) is required")
	}
	sc, err := sim.Load(*scenario)
	if err != nil {
		return err
	}
	if *seeds > 0 {
		sc.Seeds = *seeds
	}
	variants, err := sim.Variants(sc, *strategy)
	if err != nil {
		return fmt.Errorf("simulate: --strategy: %w", err)
	}
	var list []uint64
	for i := range sc.Seeds {
		list = append(list, *seed+uint64(i))
	}
	bar := newProgressBar(stderr)
	start := time.Now()
	summaries, bounds := sim.Compare(sc, variants, list, bar.update)
	bar.finish()
	report := sim.Report{Scenario: sc.Name, Seeds: list, SLA: sc.Dispatch.SLA.Duration, Summaries: summaries, Bounds: bounds,
		Notes: []string{fmt.Sprintf("%d variants × %d seeds simulated in %s.", len(variants), len(list), time.Since(start).Round(time.Millisecond))}}
	if err := sim.WriteReport(*out, report); err != nil {
		return err
	}
	fmt.Fprintln(stdout, report.Markdown())
	fmt.Fprintf(stdout, "report written to %s\n", filepath.Join(*out, sim.ReportFile))
	return nil
}

// simulateFamily runs every scenario of dir with the strategies asked for
// over the same seeds, and writes out/index.md and a report per scenario.
func simulateFamily(dir, strategy string, seed uint64, seeds int, out string, stdout, stderr io.Writer) error {
	scenarios, err := sim.LoadFamily(dir)
	if err != nil {
		return err
	}
	var report sim.FamilyReport
	start := time.Now()
	for _, sc := range scenarios {
		if seeds > 0 {
			sc.Seeds = seeds
		}
		variants, err := sim.Variants(sc, strategy)
		if err != nil {
			return fmt.Errorf("simulate: --strategy: %w", err)
		}
		var list []uint64
		for i := range sc.Seeds {
			list = append(list, seed+uint64(i))
		}
		fmt.Fprintf(stderr, "simulate: %s, %d variants × %d seeds\n", sc.Name, len(variants), len(list))
		bar := newProgressBar(stderr)
		began := time.Now()
		summaries, bounds := sim.Compare(sc, variants, list, bar.update)
		bar.finish()
		report.Rows = append(report.Rows, sim.FamilyRow{Scenario: sc, Dir: familyDir(sc.Name), Seeds: list,
			Summaries: summaries, Bounds: bounds, Wall: time.Since(began)})
	}
	report.Notes = append(report.Notes, fmt.Sprintf("%d scenarios simulated in %s (wall time, %d cores).",
		len(scenarios), time.Since(start).Round(time.Second), runtime.GOMAXPROCS(0)))
	if err := sim.WriteFamilyReport(out, report); err != nil {
		return err
	}
	fmt.Fprintln(stdout, report.Markdown())
	fmt.Fprintf(stdout, "report written to %s\n", filepath.Join(out, sim.FamilyFile))
	return nil
}

// familyDir is a directory name for a scenario's own report.
func familyDir(name string) string {
	d := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, name)
	return strings.Trim(d, "-.")
}

// progressBar draws on a terminal; elsewhere (a log, a pipe) it writes one
// line per tenth of the work, so it never floods.
type progressBar struct {
	mu   sync.Mutex
	w    io.Writer
	tty  bool
	last int
}

func newProgressBar(w io.Writer) *progressBar {
	f, ok := w.(*os.File)
	tty := false
	if ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progressBar{w: w, tty: tty, last: -1}
}

func (p *progressBar) update(frac float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pct := int(frac * 100)
	if !p.tty {
		if step := pct / 10 * 10; step > p.last {
			p.last = step
			fmt.Fprintf(p.w, "simulate: %d%% done\n", step)
		}
		return
	}
	if pct <= p.last {
		return
	}
	p.last = pct
	n := pct * 40 / 100
	fmt.Fprintf(p.w, "\r[%s%s] %3d%%", strings.Repeat("#", n), strings.Repeat(".", 40-n), pct)
}

func (p *progressBar) finish() {
	if p.tty {
		fmt.Fprintln(p.w)
	}
}
