package sim

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// FamilyFile is the index WriteFamilyReport writes: one table for every
// scenario of a family.
const FamilyFile = "index.md"

// FamilyRow is one scenario of a family: what each strategy reached on it
// and what the hindsight says.
type FamilyRow struct {
	Scenario  Scenario
	Dir       string // its own report, relative to the family's directory
	Seeds     []uint64
	Summaries []Summary
	Bounds    []Bound
	Wall      time.Duration // time it took to simulate
}

// FamilyReport is the comparison of strategies over a family of scenarios.
type FamilyReport struct {
	Rows  []FamilyRow
	Notes []string
}

// LoadFamily reads every scenario (*.yaml) of dir, in file name order.
func LoadFamily(dir string) ([]Scenario, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("sim: family %s: %w", dir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("sim: family %s: no scenario (*.yaml) in it", dir)
	}
	slices.Sort(files)
	var out []Scenario
	names := map[string]string{}
	for _, f := range files {
		sc, err := Load(f)
		if err != nil {
			return nil, err
		}
		if other, ok := names[sc.Name]; ok {
			return nil, fmt.Errorf("sim: family %s: %s and %s are both named %q", dir, other, f, sc.Name)
		}
		names[sc.Name] = f
		out = append(out, sc)
	}
	return out, nil
}

// WriteFamilyReport writes dir/index.md and, per scenario, its own report in
// dir/<row.Dir>.
func WriteFamilyReport(dir string, f FamilyReport) error {
	for _, row := range f.Rows {
		r := Report{Scenario: row.Scenario.Name, Seeds: row.Seeds, SLA: row.Scenario.Dispatch.SLA.Duration,
			Summaries: row.Summaries, Bounds: row.Bounds, Notes: []string{row.Scenario.Description}}
		if err := WriteReport(filepath.Join(dir, row.Dir), r); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, FamilyFile), []byte(f.Markdown()), 0o644); err != nil {
		return fmt.Errorf("sim: write %s: %w", FamilyFile, err)
	}
	return nil
}

// Markdown is the index: one table, a row per scenario and a column per
// strategy (on site within the SLA, mean ± 95 % interval over the seeds,
// and the mean unfulfilled per day), then the clairvoyant plan.
func (f FamilyReport) Markdown() string {
	var b strings.Builder
	b.WriteString("# Scenario family\n\n")
	var names []string
	for _, row := range f.Rows {
		for _, s := range row.Summaries {
			if !slices.Contains(names, s.Strategy) {
				names = append(names, s.Strategy)
			}
		}
	}
	b.WriteString("Each cell: ASAP requests on site within the SLA, mean ± 95 % interval over the seeds, " +
		"and in brackets the requests unfulfilled per day (mean). – : the strategy does not apply to that scenario.\n\n")
	b.WriteString("| scenario | seeds |")
	for _, n := range names {
		fmt.Fprintf(&b, " %s |", mdCell(n))
	}
	b.WriteString(" clairvoyant plan |\n|---|---:|")
	for range names {
		b.WriteString("---:|")
	}
	b.WriteString("---:|\n")
	for _, row := range f.Rows {
		fmt.Fprintf(&b, "| [%s](%s/%s) | %d |", mdCell(row.Scenario.Name), row.Dir, ReportFile, len(row.Seeds))
		for _, n := range names {
			i := slices.IndexFunc(row.Summaries, func(s Summary) bool { return s.Strategy == n })
			if i < 0 {
				b.WriteString(" – |")
				continue
			}
			s := row.Summaries[i]
			fmt.Fprintf(&b, " %s (%s) |", fmtShareCI(s), fmtNum(s.Unfulfil, 1))
		}
		if len(row.Bounds) == 0 {
			b.WriteString(" – |\n")
			continue
		}
		clair := Report{Bounds: row.Bounds}.meanBounds().clair
		fmt.Fprintf(&b, " %s %% |\n", fmtPct(clair))
	}
	b.WriteString("\n## What each scenario stands for\n\n")
	b.WriteString("| scenario | stands for | SLA | give-up | simulated in |\n|---|---|---:|---:|---:|\n")
	for _, row := range f.Rows {
		p := row.Scenario.Dispatch
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", mdCell(row.Scenario.Name), mdCell(row.Scenario.Description),
			fmtNum(p.SLA.Minutes(), 0)+" min", fmtNum(p.GiveUp.Minutes(), 0)+" min", row.Wall.Round(100*time.Millisecond))
	}
	if len(f.Notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range f.Notes {
			fmt.Fprintf(&b, "- %s\n", mdText(n))
		}
	}
	return b.String()
}
