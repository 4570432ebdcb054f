package sim

import (
	"context"
	"slices"
	"strings"
	"testing"
)

func TestStaffingShifts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		onDuty []int
		want   [][2]int
	}{
		{"empty", []int{0, 0}, nil},
		{"flat", []int{2, 2}, [][2]int{{0, 2}, {0, 2}}},
		{"peak", []int{1, 3, 1}, [][2]int{{0, 3}, {1, 2}, {1, 2}}},
		{"gap", []int{1, 0, 1}, [][2]int{{0, 1}, {2, 3}}},
		{"steps", []int{0, 2, 1, 3}, [][2]int{{1, 2}, {1, 4}, {3, 4}, {3, 4}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := Staffing{OnDuty: tt.onDuty}
			got := s.shifts()
			if !slices.Equal(got, tt.want) {
				t.Fatalf("shifts(%v) = %v, want %v", tt.onDuty, got, tt.want)
			}
			// Whatever the shape, the shifts put OnDuty on duty.
			count := make([]int, len(tt.onDuty))
			for _, sh := range got {
				for h := sh[0]; h < sh[1]; h++ {
					count[h]++
				}
			}
			if !slices.Equal(count, tt.onDuty) {
				t.Fatalf("shifts cover %v, want %v", count, tt.onDuty)
			}
		})
	}
}

// planScenario is a small town over three hours: fast to simulate many times.
const planScenario = `
name: small-town
seeds: 3
start_hour: 9
hours: 3
city: {center: {lat: 47.3769, lng: 8.5417}, radius_km: 4}
technicians:
  count: 12
  skills: {router_replace: 0.8, wifi_setup: 0.5}
  shifts: [{start_hour: 9, end_hour: 13, share: 1}]
  travel: {car: {share: 1, speed_kmh: 25}}
demand:
  per_hour: [14, 20, 12]
  skills: {router_replace: 3, wifi_setup: 1}
behaviour:
  service_minutes: {default: 50}
dispatch:
  batch_window: 15s
`

func TestPlanReachesTargetAndIsMinimal(t *testing.T) {
	sc, err := Parse([]byte(planScenario))
	if err != nil {
		t.Fatal(err)
	}
	opts := PlanOptions{Target: 0.9, Seeds: []uint64{1, 2, 3}, CheckSeeds: []uint64{4, 5}, MaxEvaluations: 200}
	ctx := context.Background()
	res, err := Plan(ctx, sc, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Complete {
		t.Fatalf("the search did not finish within %d evaluations", opts.MaxEvaluations)
	}
	if len(res.Recommended.OnDuty) != planHours(sc) || planHours(sc) != 4 {
		t.Fatalf("staffing covers %d hours, want the day and one hour of tail (4)", len(res.Recommended.OnDuty))
	}
	p := &planner{sc: sc, opts: opts}
	p.opts.HourSlack = 0.05
	if !p.feasible(res.Check) {
		t.Fatalf("recommended %v reaches %.3f (by hour %v), want at least %.2f", res.Recommended.OnDuty, res.Check.Share, res.Check.ByHour, opts.Target)
	}
	if res.LeastFeasible != res.Recommended.TechHours() {
		t.Fatalf("least feasible %d technician-hours, recommended %d", res.LeastFeasible, res.Recommended.TechHours())
	}
	// Removing any one hour's technician misses the target on the same seeds.
	for h, c := range res.Recommended.OnDuty {
		if c == 0 {
			continue
		}
		fewer := res.Recommended.clone()
		fewer.OnDuty[h]--
		sum, _, err := p.evaluate(ctx, fewer, false)
		if err != nil {
			t.Fatal(err)
		}
		if p.feasible(sum) {
			t.Errorf("%v (one fewer at hour %d) still reaches %.3f: the plan is not minimal", fewer.OnDuty, h, sum.Share)
		}
	}
	// The same seeds give the same plan.
	again, err := Plan(ctx, sc, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(again.Recommended.OnDuty, res.Recommended.OnDuty) || again.Check.Share != res.Check.Share {
		t.Fatalf("second plan %v (%.4f), first %v (%.4f)", again.Recommended.OnDuty, again.Check.Share, res.Recommended.OnDuty, res.Check.Share)
	}
	md := res.Markdown()
	t.Log(md)
	for _, want := range []string{"| 09:00 | 14 |", "Least technician-hours", "Out of sample", "scenario's own"} {
		if !strings.Contains(md, want) {
			t.Errorf("plan.md lacks %q:\n%s", want, md)
		}
	}
	doc := res.Doc()
	if len(doc.Hours) != len(res.Recommended.OnDuty) || doc.Hours[0].Hour != 9 || doc.Hours[0].OnDuty != res.Recommended.OnDuty[0] ||
		doc.Hours[0].OnTime == nil || doc.Hours[3].OnTime != nil || doc.TechHours != res.Recommended.TechHours() || doc.Holdout == nil {
		t.Errorf("plan.json %+v does not match the plan %v", doc, res.Recommended.OnDuty)
	}
	svg := res.SVG()
	if !strings.Contains(svg, `class="bar"`) || !strings.Contains(svg, `class="scenario"`) || !strings.HasSuffix(svg, "</svg>\n") {
		t.Errorf("staffing.svg lacks the bars or the scenario line:\n%s", svg)
	}
}

func TestPlanRejectsBadOptions(t *testing.T) {
	t.Parallel()
	sc, err := Parse([]byte(planScenario))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts PlanOptions
		want string
	}{
		{"no target", PlanOptions{Seeds: []uint64{1}}, "target"},
		{"target 1", PlanOptions{Target: 1, Seeds: []uint64{1}}, "target"},
		{"no seeds", PlanOptions{Target: 0.9}, "seeds"},
		{"utilisation", PlanOptions{Target: 0.9, Seeds: []uint64{1}, Utilisation: 2}, "utilisation"},
		{"window target", PlanOptions{Target: 0.9, Seeds: []uint64{1}, WindowTarget: -1}, "window"},
		{"hour slack", PlanOptions{Target: 0.9, Seeds: []uint64{1}, HourSlack: 2}, "hour slack"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Plan(context.Background(), sc, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Plan(%+v) = %v, want an error about %s", tt.opts, err, tt.want)
			}
		})
	}
}
