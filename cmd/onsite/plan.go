package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/onsite/onsite/sim"
)

// plan recommends technicians on duty per hour for a scenario, checked by
// simulating the recommendation (docs/simulator.md, "Staffing planner").
func plan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scenario := fs.String("scenario", "", "scenario file (YAML, see docs/simulator.md)")
	target := fs.Float64("target", 0.95, "share of ASAP requests on site within the SLA to reach (0.95 or 95)")
	seed := fs.Uint64("seed", 1, "first seed; simulates seeds seed … seed+seeds-1")
	seeds := fs.Int("seeds", 8, "how many seeds every candidate staffing is simulated on")
	budget := fs.Int("evaluations", 60, "at most this many candidate staffings are simulated")
	out := fs.String("out", "plan-out", "directory for plan.md and staffing.svg")
	verbose := fs.Bool("v", false, "print every candidate staffing simulated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *scenario == "" {
		return fmt.Errorf("plan: --scenario is required")
	}
	if *target > 1 && *target < 100 {
		*target /= 100
	}
	if !(*target > 0 && *target < 1) {
		return fmt.Errorf("plan: --target must be a share between 0 and 1 (or a percentage)")
	}
	if *seeds < 1 || *seeds > 1000 {
		return fmt.Errorf("plan: --seeds must be from 1 to 1000")
	}
	if *budget < 1 || *budget > 10_000 {
		return fmt.Errorf("plan: --evaluations must be from 1 to 10000")
	}
	sc, err := sim.Load(*scenario)
	if err != nil {
		return err
	}
	var list []uint64
	for i := range *seeds {
		list = append(list, *seed+uint64(i))
	}
	opts := sim.PlanOptions{Target: *target, Seeds: list, MaxEvaluations: *budget}
	if *verbose {
		opts.Progress = func(t sim.Trial) {
			fmt.Fprintf(stderr, "plan: %-14s %5d technician-hours  %5.1f %%\n", t.Step, t.TechHours, 100*t.Share)
		}
	}
	start := time.Now()
	res, err := sim.Plan(ctx, sc, opts)
	if err != nil {
		return err
	}
	if err := sim.WritePlan(*out, res); err != nil {
		return err
	}
	fmt.Fprintln(stdout, res.Markdown())
	fmt.Fprintf(stdout, "planned in %s; written to %s and %s\n", time.Since(start).Round(time.Millisecond),
		filepath.Join(*out, sim.PlanFile), filepath.Join(*out, sim.PlanChart))
	return nil
}
