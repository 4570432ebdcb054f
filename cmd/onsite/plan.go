package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"time"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/internal/app"
	"github.com/onsite/onsite/internal/config"
	"github.com/onsite/onsite/sim"
)

// plan recommends technicians on duty per hour for a scenario, checked by
// simulating the recommendation (docs/simulator.md, "Staffing planner").
func plan(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scenario := fs.String("scenario", "", "scenario file (YAML, see docs/simulator.md)")
	target := fs.Float64("target", 0.95, "share of ASAP requests on site within the SLA to reach (0.95 or 95)")
	seed := fs.Uint64("seed", 1, "first seed; simulates seeds seed … seed+seeds-1")
	seeds := fs.Int("seeds", 8, "how many seeds every candidate staffing is simulated on")
	windows := fs.String("windows", "scenario", "also require this share of windowed requests reached within their window: a share, \"scenario\" (what the scenario's own fleet keeps) or 0")
	slack := fs.Float64("hour-slack", 0.05, "how far below the target the requests opened in any one hour may be served (1: no limit)")
	check := fs.Int("check-seeds", 8, "then simulate the recommendation on this many further seeds the search never saw")
	budget := fs.Int("evaluations", 250, "at most this many candidate staffings are simulated")
	out := fs.String("out", "plan-out", "directory for plan.md and staffing.svg")
	verbose := fs.Bool("v", false, "print every candidate staffing simulated")
	history := fs.Int("history-days", 0, "take the demand from the requests of the last N whole days in the database (0: the scenario's)")
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
	keep, windowTarget := *windows == "scenario", 0.0
	if !keep {
		v, err := strconv.ParseFloat(*windows, 64)
		if err == nil && v > 1 && v < 100 {
			v /= 100
		}
		if err != nil || !(v >= 0 && v < 1) {
			return fmt.Errorf("plan: --windows must be \"scenario\" or a share from 0 to below 1 (or a percentage), not %q", *windows)
		}
		windowTarget = v
	}
	if !(*slack > 0 && *slack <= 1) {
		return fmt.Errorf("plan: --hour-slack must be above 0 and at most 1")
	}
	if *check < 0 || *check > 1000 {
		return fmt.Errorf("plan: --check-seeds must be from 0 to 1000")
	}
	if *budget < 1 || *budget > 10_000 {
		return fmt.Errorf("plan: --evaluations must be from 1 to 10000")
	}
	if *history < 0 || *history > 366 {
		return fmt.Errorf("plan: --history-days must be from 0 to 366")
	}
	sc, err := sim.Load(*scenario)
	if err != nil {
		return err
	}
	if *history > 0 {
		if sc, err = withHistory(ctx, sc, environ, *history, time.Now()); err != nil {
			return err
		}
	}
	var list []uint64
	for i := range *seeds {
		list = append(list, *seed+uint64(i))
	}
	var held []uint64
	for i := range *check {
		held = append(held, *seed+uint64(*seeds+i))
	}
	opts := sim.PlanOptions{Target: *target, WindowTarget: windowTarget, KeepWindows: keep, HourSlack: *slack, Seeds: list, CheckSeeds: held, MaxEvaluations: *budget}
	if *verbose {
		opts.Progress = func(t sim.Trial) {
			fmt.Fprintf(stderr, "plan: %-14s %5d technician-hours  %5.1f %% on time, %5.1f %% windows kept\n", t.Step, t.TechHours, 100*t.Share, 100*t.Windows)
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

// withHistory replaces the scenario's demand by that of the requests of the
// last days whole days (UTC) before now in the configured database.
func withHistory(ctx context.Context, sc sim.Scenario, environ []string, days int, now time.Time) (sim.Scenario, error) {
	cfg, err := config.Load(environ)
	if err != nil {
		return sim.Scenario{}, err
	}
	d, err := app.OpenDB(ctx, cfg)
	if err != nil {
		return sim.Scenario{}, err
	}
	defer d.Close()
	to := now.UTC().Truncate(24 * time.Hour)
	from := to.AddDate(0, 0, -days)
	rows, err := dispatch.History(ctx, d.DB, from, to)
	if err != nil {
		return sim.Scenario{}, fmt.Errorf("plan: %w", err)
	}
	past := make([]sim.PastRequest, len(rows))
	for i, r := range rows {
		past[i] = sim.PastRequest{Created: r.CreatedAt, Skill: r.SkillCode, ASAP: r.Mode == "asap"}
	}
	out, err := sim.WithHistory(sc, past, from, to)
	if err != nil {
		return sim.Scenario{}, fmt.Errorf("plan: %w", err)
	}
	out.Name = fmt.Sprintf("%s, demand of %d requests from %s to %s", sc.Name, len(rows), from.Format(time.DateOnly), to.AddDate(0, 0, -1).Format(time.DateOnly))
	return out, nil
}
