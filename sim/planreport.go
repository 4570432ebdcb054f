package sim

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// File names WritePlan creates inside its directory.
const (
	PlanFile  = "plan.md"
	PlanChart = "staffing.svg"
	PlanJSON  = "plan.json"
)

// PlanHour is one hour of a plan in plan.json.
type PlanHour struct {
	Hour     int                `json:"hour"` // of day; 24 and above are the next day
	OnDuty   int                `json:"on_duty"`
	Skills   map[string]float64 `json:"skills"`            // holders of each skill among them
	Scenario float64            `json:"scenario_on_duty"`  // the scenario's own fleet
	OnTime   *float64           `json:"on_time,omitempty"` // share of the hour's ASAP requests on site within the SLA
}

// PlanDoc is plan.json: what a dashboard or another tool reads of a plan.
type PlanDoc struct {
	Scenario      string     `json:"scenario"`
	Target        float64    `json:"target"`
	SLASeconds    float64    `json:"sla_seconds"`
	Share         float64    `json:"share"`
	Holdout       *float64   `json:"holdout_share,omitempty"`
	TechHours     int        `json:"technician_hours"`
	LeastFeasible int        `json:"least_feasible_technician_hours"`
	Complete      bool       `json:"complete"`
	Hours         []PlanHour `json:"hours"`
}

// Doc is the plan as plan.json holds it.
func (r PlanResult) Doc() PlanDoc {
	doc := PlanDoc{Scenario: r.Scenario, Target: r.Target, SLASeconds: r.SLA.Seconds(), Share: r.Check.Share,
		TechHours: r.Recommended.TechHours(), LeastFeasible: r.LeastFeasible, Complete: r.Complete}
	if len(r.CheckSeeds) > 0 {
		h := r.Holdout.Share
		doc.Holdout = &h
	}
	for h, c := range r.Recommended.OnDuty {
		ph := PlanHour{Hour: r.Recommended.StartHour + h, OnDuty: c, Skills: map[string]float64{}, Scenario: at(r.ScenarioOnDuty, h)}
		for _, s := range r.Skills {
			ph.Skills[s.Skill] = at(s.OnDuty, h)
		}
		if x, ok := summaryHour(r.Check, ph.Hour); ok && x.Requests > 0 {
			share := x.Share
			ph.OnTime = &share
		}
		doc.Hours = append(doc.Hours, ph)
	}
	return doc
}

// WritePlan writes dir/plan.md, dir/staffing.svg and dir/plan.json
// (creating dir).
func WritePlan(dir string, r PlanResult) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("sim: plan dir: %w", err)
	}
	doc, err := json.MarshalIndent(r.Doc(), "", "  ")
	if err != nil {
		return fmt.Errorf("sim: plan json: %w", err)
	}
	for name, text := range map[string]string{PlanFile: r.Markdown(), PlanChart: r.SVG(), PlanJSON: string(doc) + "\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return fmt.Errorf("sim: write %s: %w", name, err)
		}
	}
	return nil
}

// ScenarioTechHours is the scenario's own fleet's technician-hours over the
// staffing's hours.
func (r PlanResult) ScenarioTechHours() float64 {
	n := 0.0
	for _, c := range r.ScenarioOnDuty {
		n += c
	}
	return n
}

// Markdown is the plan.md text: the staffing by hour and skill, and how the
// simulation of it came out.
func (r PlanResult) Markdown() string {
	var b strings.Builder
	sla := Report{SLA: r.SLA}.slaText()
	fmt.Fprintf(&b, "# Staffing plan: %s\n\n", mdText(r.Scenario))
	fmt.Fprintf(&b, "Target: %s %% of ASAP requests on site within %s", fmtPct(r.Target), sla)
	if r.WindowTarget > 0 {
		fmt.Fprintf(&b, " and %s %% of windowed requests within their window", fmtPct(r.WindowTarget))
		if r.KeepWindows {
			b.WriteString(" (at least what the scenario's own fleet keeps)")
		}
	}
	fmt.Fprintf(&b, ", batch strategy. Seeds searched on: %s.\n\n", fmtSeeds(r.Seeds))
	fmt.Fprintf(&b, "| hour | requests/h | scenario on duty | recommended on duty |")
	for _, s := range r.Skills {
		fmt.Fprintf(&b, " %s |", mdCell(s.Skill))
	}
	b.WriteString(" on time (requests opened in the hour) |\n|---|---|---|---|")
	for range r.Skills {
		b.WriteString("---|")
	}
	b.WriteString("---|\n")
	for h, c := range r.Recommended.OnDuty {
		hour := r.Recommended.StartHour + h
		fmt.Fprintf(&b, "| %s | %s | %s | %d |", fmtHour(hour), fmtNum(at(r.Demand, h), 0), fmtNum(at(r.ScenarioOnDuty, h), 1), c)
		for _, s := range r.Skills {
			fmt.Fprintf(&b, " %s |", fmtNum(at(s.OnDuty, h), 1))
		}
		if x, ok := summaryHour(r.Check, hour); ok && x.Requests > 0 {
			fmt.Fprintf(&b, " %s %% (%d/%d) |\n", fmtPct(x.Share), x.OnTime, x.Requests)
		} else {
			b.WriteString(" — |\n")
		}
	}
	b.WriteString("\nSkill columns: technicians holding the skill on duty (mean over the seeds' fleets, drawn from the scenario's skill shares); a technician may hold several.\n\n")
	fmt.Fprintf(&b, "- Recommended: %d technician-hours (%d shifts); on site within %s: %s %% ± %s over %d seeds (target %s %%).\n",
		r.Recommended.TechHours(), len(r.Recommended.shifts()), sla, fmtPct(r.Check.Share), fmtPct(r.Check.ShareCI95), len(r.Seeds), fmtPct(r.Target))
	if len(r.CheckSeeds) > 0 {
		fmt.Fprintf(&b, "- Out of sample (seeds %s, never seen by the search): %s %% ± %s; windows kept %s.\n",
			fmtSeeds(r.CheckSeeds), fmtPct(r.Holdout.Share), fmtPct(r.Holdout.ShareCI95), windowsText(r.Holdout))
	}
	fmt.Fprintf(&b, "- Least technician-hours of any simulated staffing that reached the target: %d (the recommendation is %s %% of it).\n",
		r.LeastFeasible, fmtNum(100*float64(r.Recommended.TechHours())/math.Max(1, float64(r.LeastFeasible)), 1))
	fmt.Fprintf(&b, "\n| fleet | technician-hours | on site within %s | windows kept | unfulfilled per day | utilisation |\n|---|---|---|---|---|---|\n", sla)
	row := func(name string, hours float64, s Summary) {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s %% |\n", name, fmtNum(hours, 0), fmtShareCI(s), windowsText(s), fmtNum(s.Unfulfil, 1), fmtPct(s.Utilised))
	}
	row("recommended", float64(r.Recommended.TechHours()), r.Check)
	row("scenario's own", r.ScenarioTechHours(), r.Baseline)
	b.WriteString("\nSame seeds and requests for both; utilisation counts work after a shift's end, so it can pass 100 %.\n\n")
	feasible := 0
	for _, t := range r.Trials {
		if t.Feasible {
			feasible++
		}
	}
	fmt.Fprintf(&b, "- Search: %d staffings simulated, %d of them reached the target", len(r.Trials), feasible)
	if r.Complete {
		b.WriteString("; it ended where removing any one hour's technician missed the target.\n")
	} else {
		b.WriteString("; the evaluation budget ended it before a last pass of single removals (raise --evaluations).\n")
	}
	return b.String()
}

// windowsText is the share of windowed requests kept, or a dash without any.
func windowsText(s Summary) string {
	for _, r := range s.Runs {
		if r.Windowed > 0 {
			return fmtPct(s.Windows) + " %"
		}
	}
	return "—"
}

func at(xs []float64, i int) float64 {
	if i < len(xs) {
		return xs[i]
	}
	return 0
}

// SVG is the staffing chart: technicians on duty by hour, recommended
// (bars) against the scenario's own fleet (a step line).
func (r PlanResult) SVG() string {
	const (
		height      = 400
		left, right = 64, 220
		top, bottom = 44, 56
	)
	n := len(r.Recommended.OnDuty)
	pw := math.Max(576, 40*float64(n))
	width := left + right + int(math.Ceil(pw))
	ph := float64(height - top - bottom)
	ymax := 1.0
	for h := range n {
		ymax = math.Max(ymax, math.Max(float64(r.Recommended.OnDuty[h]), at(r.ScenarioOnDuty, h)))
	}
	tick := niceStep(ymax, 6)
	ymax = math.Ceil(ymax/tick) * tick
	yOf := func(v float64) float64 { return float64(top) + ph*(1-clampF(v/ymax, 0, 1)) }

	var b strings.Builder
	svgOpen(&b, width, height)
	svgTitle(&b, width, "Technicians on duty by hour — "+r.Scenario)
	for v := 0.0; v <= ymax+1e-9; v += tick {
		y := yOf(v)
		fmt.Fprintf(&b, `<line class="grid" x1="%d" y1="%s" x2="%s" y2="%s" stroke="#eeeeee"/>`+"\n", left, fmtCoord(y), fmtCoord(float64(left)+pw), fmtCoord(y))
		fmt.Fprintf(&b, `<text x="%d" y="%s" font-size="12" text-anchor="end">%s</text>`+"\n", left-8, fmtCoord(y+4), fmtNum(v, 0))
	}
	cy := float64(top) + ph/2
	fmt.Fprintf(&b, `<text x="16" y="%s" font-size="13" text-anchor="middle" transform="rotate(-90 16 %s)">technicians on duty</text>`+"\n", fmtCoord(cy), fmtCoord(cy))
	slot := pw / float64(max(1, n))
	var line []string
	for h := range n {
		x0 := float64(left) + slot*float64(h)
		c := float64(r.Recommended.OnDuty[h])
		y := yOf(c)
		tip := fmt.Sprintf("%s: %d recommended, %s in the scenario", fmtHour(r.Recommended.StartHour+h), r.Recommended.OnDuty[h], fmtNum(at(r.ScenarioOnDuty, h), 1))
		fmt.Fprintf(&b, `<rect class="bar" x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s</title></rect>`+"\n",
			fmtCoord(x0+slot*0.15), fmtCoord(y), fmtCoord(slot*0.7), fmtCoord(float64(top)+ph-y), chartColor(0), xmlEsc(tip))
		ys := fmtCoord(yOf(at(r.ScenarioOnDuty, h)))
		line = append(line, fmtCoord(x0)+","+ys, fmtCoord(x0+slot)+","+ys)
		fmt.Fprintf(&b, `<text x="%s" y="%s" font-size="12" text-anchor="middle">%02d</text>`+"\n", fmtCoord(x0+slot/2), fmtCoord(float64(top)+ph+19), (r.Recommended.StartHour+h)%24)
	}
	fmt.Fprintf(&b, `<polyline class="scenario" points="%s" fill="none" stroke="%s" stroke-width="3"/>`+"\n", strings.Join(line, " "), chartColor(1))
	svgAxes(&b, left, top, pw, ph)
	fmt.Fprintf(&b, `<text x="%s" y="%d" font-size="13" text-anchor="middle">hour of day</text>`+"\n", fmtCoord(float64(left)+pw/2), height-12)
	drawLegend(&b, float64(width-right+16), float64(top), []legendEntry{
		{fmt.Sprintf("recommended (%d h)", r.Recommended.TechHours()), chartColor(0), false},
		{fmt.Sprintf("scenario (%s h)", fmtNum(r.ScenarioTechHours(), 0)), chartColor(1), true},
	})
	b.WriteString("</svg>\n")
	return b.String()
}

// niceStep is a tick step of 1, 2 or 5 × 10^k that puts at most maxTicks
// ticks on 0..span.
func niceStep(span float64, maxTicks int) float64 {
	for p := 1.0; ; p *= 10 {
		for _, m := range []float64{1, 2, 5} {
			if span/(m*p) <= float64(maxTicks) {
				return m * p
			}
		}
	}
}
