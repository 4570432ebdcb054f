package sim

import (
	"encoding/xml"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Report is what `onsite simulate` writes.
type Report struct {
	Scenario  string        // scenario name
	Seeds     []uint64      // the seeds every strategy ran on
	SLA       time.Duration // e.g. 60m, used in headings ("on site within 60 min")
	Summaries []Summary     // one per strategy, in the order to show
	Bounds    []Bound       // one per seed (may be empty)
	Notes     []string      // free lines appended at the end
}

// File names WriteReport creates inside its directory.
const (
	ReportFile        = "report.md"
	TimeToSiteChart   = "time_to_site.svg"
	OnTimeByHourChart = "on_time_by_hour.svg"
)

// WriteReport writes dir/report.md, dir/time_to_site.svg and
// dir/on_time_by_hour.svg (creating dir).
func WriteReport(dir string, r Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("sim: report dir: %w", err)
	}
	files := []struct {
		name, text string
	}{
		{ReportFile, r.Markdown()},
		{TimeToSiteChart, r.TimeToSiteSVG()},
		{OnTimeByHourChart, r.OnTimeByHourSVG()},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), []byte(f.text), 0o644); err != nil {
			return fmt.Errorf("sim: write %s: %w", f.name, err)
		}
	}
	return nil
}

// Markdown returns the report.md text (so tests and the CLI can print it).
func (r Report) Markdown() string {
	var b strings.Builder
	sla := r.slaText()

	fmt.Fprintf(&b, "# Simulation report: %s\n\n", mdText(r.Scenario))
	fmt.Fprintf(&b, "Seeds: %s", fmtSeeds(r.Seeds))
	if len(r.Seeds) > 0 {
		fmt.Fprintf(&b, " (%d per strategy)", len(r.Seeds))
	}
	b.WriteString("  \n")
	fmt.Fprintf(&b, "SLA: ASAP requests with a technician on site within %s.\n\n", sla)

	// Side-by-side comparison.
	b.WriteString("## Strategies\n\n")
	if len(r.Summaries) == 0 {
		b.WriteString("_No strategies were simulated._\n\n")
	} else {
		fmt.Fprintf(&b, "| strategy | on site ≤ %s (mean ± 95 %% CI) | p50 time to site (min) | p90 time to site (min) | max time to site (min) | offers per accepted | acceptance rate | utilisation | unfulfilled (mean) | windows kept |\n", sla)
		b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, s := range r.Summaries {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
				mdCell(s.Strategy), fmtShareCI(s),
				fmtMinutesCell(s, s.P50), fmtMinutesCell(s, s.P90), fmtMinutesCell(s, s.Max),
				fmtNum(s.OffersPer, 2), fmtPct(s.Acceptance)+" %", fmtPct(s.Utilised)+" %", fmtNum(s.Unfulfil, 1), fmtPct(s.Windows)+" %")
		}
		b.WriteString("\n")
	}

	// Hindsight.
	if len(r.Bounds) > 0 {
		m := r.meanBounds()
		b.WriteString("## Hindsight\n\n")
		fmt.Fprintf(&b, "Knowing the whole day in advance (mean over %d seed(s)), with no answer delays:\n\n", len(r.Bounds))
		fmt.Fprintf(&b, "| | on site ≤ %s |\n|---|---:|\n", sla)
		fmt.Fprintf(&b, "| upper bound (no strategy can do better) | %s %% |\n", fmtPct(m.upper))
		fmt.Fprintf(&b, "| matching bound (the earlier, looser bound) | %s %% |\n", fmtPct(m.matching))
		fmt.Fprintf(&b, "| offline plan (local search from the clairvoyant plan) | %s %% |\n", fmtPct(m.offline))
		fmt.Fprintf(&b, "| clairvoyant plan | %s %% |\n", fmtPct(m.clair))
		fmt.Fprintf(&b, "| offline plan with every window left out (the bound's own problem) | %s %% |\n", fmtPct(m.offlineNoWindows))
		fmt.Fprintf(&b, "| clairvoyant plan with every window left out (as the upper bound may) | %s %% |\n\n", fmtPct(m.noWindows))
		if len(r.Summaries) > 0 {
			b.WriteString("| strategy | on site | gap to upper bound | gap to clairvoyant plan | gap to offline plan |\n")
			b.WriteString("|---|---:|---:|---:|---:|\n")
			for _, s := range r.Summaries {
				fmt.Fprintf(&b, "| %s | %s %% | %s pp | %s pp | %s pp |\n",
					mdCell(s.Strategy), fmtPct(s.Share), fmtNum(100*(m.upper-s.Share), 1), fmtNum(100*(m.clair-s.Share), 1),
					fmtNum(100*(m.offline-s.Share), 1))
			}
			b.WriteString("\n")
		}
		b.WriteString("| seed | ASAP requests | upper bound | clairvoyant plan | without windows | matching bound | offline plan | offline without windows |\n")
		b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, x := range r.Bounds {
			fmt.Fprintf(&b, "| %d | %d | %d (%s %%) | %d (%s %%) | %d (%s %%) | %d (%s %%) | %d (%s %%) | %d (%s %%) |\n",
				x.Seed, x.ASAP, x.UpperBound, fmtPct(x.UpperShare), x.Clairvoyant, fmtPct(x.ClairvoyShare),
				x.WithoutWindows, fmtPct(x.WithoutWindowsShare), x.MatchingBound, fmtPct(x.MatchingShare),
				x.Offline, fmtPct(x.OfflineShare), x.OfflineWithoutWindows, fmtPct(x.OfflineWithoutWindowsShare))
		}
		b.WriteString("\n")
	}

	// By hour of day.
	fmt.Fprintf(&b, "## On site within %s by hour\n\n", sla)
	hours := r.hours()
	if len(hours) == 0 || len(r.Summaries) == 0 {
		b.WriteString("_No ASAP requests._\n\n")
	} else {
		b.WriteString("Share of the ASAP requests created in that hour (on time / requests, all seeds pooled).\n\n")
		b.WriteString("| hour |")
		for _, s := range r.Summaries {
			fmt.Fprintf(&b, " %s |", mdCell(s.Strategy))
		}
		b.WriteString("\n|---|")
		for range r.Summaries {
			b.WriteString("---:|")
		}
		b.WriteString("\n")
		for _, h := range hours {
			fmt.Fprintf(&b, "| %s |", fmtHour(h))
			for _, s := range r.Summaries {
				if x, ok := summaryHour(s, h); ok {
					fmt.Fprintf(&b, " %s %% (%d/%d) |", fmtPct(x.Share), x.OnTime, x.Requests)
				} else {
					b.WriteString(" – |")
				}
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}

	// Charts.
	b.WriteString("## Charts\n\n")
	fmt.Fprintf(&b, "![time to site](%s)\n\n", TimeToSiteChart)
	fmt.Fprintf(&b, "![on site within %s by hour](%s)\n\n", sla, OnTimeByHourChart)

	if len(r.Notes) > 0 {
		b.WriteString("## Notes\n\n")
		for _, n := range r.Notes {
			n = strings.TrimSpace(strings.ReplaceAll(n, "\r\n", "\n"))
			fmt.Fprintf(&b, "- %s\n", strings.ReplaceAll(n, "\n", "\n  "))
		}
		b.WriteString("\n")
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}

// TimeToSiteSVG is the cumulative distribution of the time to site, one line
// per strategy: at x minutes, the share of ASAP requests with a technician on
// site within x minutes (requests never reached keep the curve below 100 %).
func (r Report) TimeToSiteSVG() string {
	const (
		width, height = 860, 440
		left, right   = 64, 220 // right margin holds the legend
		top, bottom   = 44, 56
	)
	pw, ph := float64(width-left-right), float64(height-top-bottom)

	// x axis: 0 .. max(90, data max, SLA), rounded up to a tick.
	maxMin := 90.0
	for _, s := range r.Summaries {
		for _, d := range s.Pooled {
			maxMin = math.Max(maxMin, d.Minutes())
		}
	}
	if r.SLA > 0 {
		maxMin = math.Max(maxMin, r.SLA.Minutes())
	}
	step := chartStep(maxMin, 10)
	xmax := math.Ceil(maxMin/step) * step
	xOf := func(m float64) float64 { return float64(left) + pw*clampF(m/xmax, 0, 1) }
	yOf := func(share float64) float64 { return float64(top) + ph*(1-clampF(share, 0, 1)) }

	var b strings.Builder
	svgOpen(&b, width, height)
	svgTitle(&b, width, "Time to site: share of ASAP requests on site within x minutes — "+r.Scenario)
	svgYAxis(&b, left, top, pw, ph)
	for m := 0.0; m <= xmax+1e-9; m += step {
		x := xOf(m)
		fmt.Fprintf(&b, `<line class="grid" x1="%s" y1="%d" x2="%s" y2="%s" stroke="#eeeeee"/>`+"\n", fmtCoord(x), top, fmtCoord(x), fmtCoord(float64(top)+ph))
		fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#333333"/>`+"\n", fmtCoord(x), fmtCoord(float64(top)+ph), fmtCoord(x), fmtCoord(float64(top)+ph+5))
		fmt.Fprintf(&b, `<text x="%s" y="%s" font-size="12" text-anchor="middle">%s</text>`+"\n", fmtCoord(x), fmtCoord(float64(top)+ph+19), strconv.FormatFloat(m, 'f', -1, 64))
	}
	svgAxes(&b, left, top, pw, ph)
	fmt.Fprintf(&b, `<text x="%s" y="%d" font-size="13" text-anchor="middle">minutes from request to technician on site</text>`+"\n", fmtCoord(float64(left)+pw/2), height-12)

	if r.SLA > 0 {
		x := xOf(r.SLA.Minutes())
		fmt.Fprintf(&b, `<line class="sla" x1="%s" y1="%d" x2="%s" y2="%s" stroke="#555555" stroke-width="1.5" stroke-dasharray="6 4"/>`+"\n", fmtCoord(x), top, fmtCoord(x), fmtCoord(float64(top)+ph))
		fmt.Fprintf(&b, `<text x="%s" y="%d" font-size="12" fill="#555555">SLA %s</text>`+"\n", fmtCoord(x+4), top+14, xmlEsc(r.slaText()))
	}

	var legend []legendEntry
	for i, s := range r.Summaries {
		col := chartColor(i)
		pts, ok := cdfPoints(s, xOf, yOf, xmax)
		label := s.Strategy
		if !ok {
			label += " (no data)"
		} else {
			fmt.Fprintf(&b, `<polyline class="cdf" fill="none" stroke="%s" stroke-width="2" stroke-linejoin="round" points="%s"><title>%s</title></polyline>`+"\n", col, pts, xmlEsc(s.Strategy))
		}
		legend = append(legend, legendEntry{label, col, true})
	}
	if len(r.Summaries) == 0 {
		fmt.Fprintf(&b, `<text x="%s" y="%s" font-size="14" text-anchor="middle" fill="#777777">no data</text>`+"\n", fmtCoord(float64(left)+pw/2), fmtCoord(float64(top)+ph/2))
	}
	drawLegend(&b, float64(width-right+16), float64(top), legend)
	b.WriteString("</svg>\n")
	return b.String()
}

// OnTimeByHourSVG is the on-site-within-SLA share by hour of day of creation:
// grouped bars, one per strategy per hour present in the data.
func (r Report) OnTimeByHourSVG() string {
	const (
		height      = 440
		left, right = 64, 220
		top, bottom = 44, 56
	)
	hours := r.hours()
	n := max(1, len(r.Summaries))
	groupW := math.Max(28, float64(n*10+10))
	pw := math.Max(576, groupW*float64(len(hours)))
	width := left + right + int(math.Ceil(pw))
	ph := float64(height - top - bottom)
	yOf := func(share float64) float64 { return float64(top) + ph*(1-clampF(share, 0, 1)) }

	var b strings.Builder
	svgOpen(&b, width, height)
	svgTitle(&b, width, "ASAP requests on site within "+r.slaText()+" by hour of day — "+r.Scenario)
	svgYAxis(&b, left, top, pw, ph)

	if len(hours) == 0 || len(r.Summaries) == 0 {
		fmt.Fprintf(&b, `<text x="%s" y="%s" font-size="14" text-anchor="middle" fill="#777777">no data</text>`+"\n", fmtCoord(float64(left)+pw/2), fmtCoord(float64(top)+ph/2))
	} else {
		slot := pw / float64(len(hours))
		barW := slot * 0.8 / float64(n)
		for i, h := range hours {
			x0 := float64(left) + slot*float64(i) + slot*0.1
			for j, s := range r.Summaries {
				x, ok := summaryHour(s, h)
				if !ok {
					continue
				}
				y := yOf(x.Share)
				if x.Requests > 0 {
					y = math.Min(y, float64(top)+ph-1.5) // keep 0 % visible, unlike an hour without requests
				}
				tip := fmt.Sprintf("%s, %s: %s %% (%d/%d)", s.Strategy, fmtHour(h), fmtPct(x.Share), x.OnTime, x.Requests)
				fmt.Fprintf(&b, `<rect class="bar" x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s</title></rect>`+"\n",
					fmtCoord(x0+barW*float64(j)), fmtCoord(y), fmtCoord(math.Max(barW-1, 0.5)), fmtCoord(float64(top)+ph-y), chartColor(j), xmlEsc(tip))
			}
			cx := float64(left) + slot*(float64(i)+0.5)
			fmt.Fprintf(&b, `<text x="%s" y="%s" font-size="12" text-anchor="middle">%02d</text>`+"\n", fmtCoord(cx), fmtCoord(float64(top)+ph+19), h)
		}
	}
	svgAxes(&b, left, top, pw, ph)
	fmt.Fprintf(&b, `<text x="%s" y="%d" font-size="13" text-anchor="middle">hour of day the request was created</text>`+"\n", fmtCoord(float64(left)+pw/2), height-12)

	var legend []legendEntry
	for i, s := range r.Summaries {
		label := s.Strategy
		if len(s.ByHour) == 0 {
			label += " (no data)"
		}
		legend = append(legend, legendEntry{label, chartColor(i), false})
	}
	drawLegend(&b, float64(width-right+16), float64(top), legend)
	b.WriteString("</svg>\n")
	return b.String()
}

// cdfPoints is the polyline of one strategy's cumulative distribution. The
// denominator is every ASAP request of its runs (or the reached ones when the
// runs are unknown); ok is false when there is nothing to draw.
func cdfPoints(s Summary, xOf, yOf func(float64) float64, xmax float64) (string, bool) {
	total := 0
	for _, r := range s.Runs {
		total += r.ASAP
	}
	total = max(total, len(s.Pooled))
	if total == 0 {
		return "", false
	}
	durMins := make([]float64, 0, len(s.Pooled))
	for _, d := range s.Pooled {
		durMins = append(durMins, math.Max(0, d.Minutes()))
	}
	slices.Sort(durMins)

	var pts []string
	add := func(m, share float64) {
		p := fmtCoord(xOf(m)) + "," + fmtCoord(yOf(share))
		if len(pts) == 0 || pts[len(pts)-1] != p {
			pts = append(pts, p)
		}
	}
	add(0, 0)
	for i := 0; i < len(durMins); {
		j := i
		for j < len(durMins) && durMins[j] == durMins[i] {
			j++
		}
		add(durMins[i], float64(i)/float64(total))
		add(durMins[i], float64(j)/float64(total))
		i = j
	}
	add(xmax, float64(len(durMins))/float64(total))
	return strings.Join(pts, " "), true
}

type legendEntry struct {
	label string
	color string
	line  bool // a line sample rather than a box
}

func drawLegend(b *strings.Builder, x, y float64, entries []legendEntry) {
	for i, e := range entries {
		yy := y + 8 + 20*float64(i)
		if e.line {
			fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="3"/>`+"\n", fmtCoord(x), fmtCoord(yy), fmtCoord(x+22), fmtCoord(yy), e.color)
		} else {
			fmt.Fprintf(b, `<rect x="%s" y="%s" width="14" height="14" fill="%s"/>`+"\n", fmtCoord(x+4), fmtCoord(yy-7), e.color)
		}
		fmt.Fprintf(b, `<text class="legend" x="%s" y="%s" font-size="12">%s</text>`+"\n", fmtCoord(x+30), fmtCoord(yy+4), xmlEsc(truncRunes(e.label, 26)))
	}
}

func svgOpen(b *strings.Builder, width, height int) {
	b.WriteString(`<?xml version="1.0" encoding="UTF-8" standalone="no"?>` + "\n")
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif">`+"\n", width, height, width, height)
	fmt.Fprintf(b, `<rect class="background" x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`+"\n", width, height)
}

func svgTitle(b *strings.Builder, width int, title string) {
	fmt.Fprintf(b, "<title>%s</title>\n", xmlEsc(title))
	fmt.Fprintf(b, `<text x="%d" y="26" font-size="15" font-weight="bold" text-anchor="middle">%s</text>`+"\n", width/2, xmlEsc(truncRunes(title, 100)))
}

// svgYAxis draws the 0..100 % grid, ticks and labels.
func svgYAxis(b *strings.Builder, left, top int, pw, ph float64) {
	for p := 0; p <= 100; p += 20 {
		y := float64(top) + ph*(1-float64(p)/100)
		fmt.Fprintf(b, `<line class="grid" x1="%d" y1="%s" x2="%s" y2="%s" stroke="#eeeeee"/>`+"\n", left, fmtCoord(y), fmtCoord(float64(left)+pw), fmtCoord(y))
		fmt.Fprintf(b, `<line x1="%d" y1="%s" x2="%d" y2="%s" stroke="#333333"/>`+"\n", left-5, fmtCoord(y), left, fmtCoord(y))
		fmt.Fprintf(b, `<text x="%d" y="%s" font-size="12" text-anchor="end">%d %%</text>`+"\n", left-8, fmtCoord(y+4), p)
	}
	cy := float64(top) + ph/2
	fmt.Fprintf(b, `<text x="16" y="%s" font-size="13" text-anchor="middle" transform="rotate(-90 16 %s)">share of ASAP requests</text>`+"\n", fmtCoord(cy), fmtCoord(cy))
}

func svgAxes(b *strings.Builder, left, top int, pw, ph float64) {
	bottom := fmtCoord(float64(top) + ph)
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%s" stroke="#333333"/>`+"\n", left, top, left, bottom)
	fmt.Fprintf(b, `<line x1="%d" y1="%s" x2="%s" y2="%s" stroke="#333333"/>`+"\n", left, bottom, fmtCoord(float64(left)+pw), bottom)
}

// chartPalette is the Okabe-Ito colour-blind-safe set (without its yellow).
var chartPalette = []string{"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"}

// chartColor is the colour of the i-th strategy; beyond the palette, hues
// spread by the golden angle.
func chartColor(i int) string {
	if i < len(chartPalette) {
		return chartPalette[i]
	}
	h := math.Mod(float64(i-len(chartPalette))*137.508+20, 360)
	return fmt.Sprintf("hsl(%d,65%%,42%%)", int(h))
}

// chartStep is a tick step in minutes (5, 10, 15, 30, 60, 120, …) that puts
// at most maxTicks ticks on 0..span.
func chartStep(span float64, maxTicks int) float64 {
	for _, s := range []float64{5, 10, 15, 30, 60, 120, 180, 240, 360, 480, 720, 1440} {
		if span/s <= float64(maxTicks) {
			return s
		}
	}
	s := 1440.0
	for span/s > float64(maxTicks) {
		s *= 2
	}
	return s
}

func (r Report) slaText() string {
	if r.SLA <= 0 {
		return "the SLA"
	}
	return strconv.FormatFloat(r.SLA.Minutes(), 'f', -1, 64) + " min"
}

// meanBounds is the mean share of every hindsight figure over the seeds.
type meanBounds struct {
	upper, matching, clair, offline, noWindows, offlineNoWindows float64
}

func (r Report) meanBounds() meanBounds {
	var m meanBounds
	n := float64(len(r.Bounds))
	for _, x := range r.Bounds {
		m.upper += x.UpperShare / n
		m.matching += x.MatchingShare / n
		m.clair += x.ClairvoyShare / n
		m.offline += x.OfflineShare / n
		m.noWindows += x.WithoutWindowsShare / n
		m.offlineNoWindows += x.OfflineWithoutWindowsShare / n
	}
	return m
}

// hours present in any strategy's ByHour, ascending.
func (r Report) hours() []int {
	var hs []int
	for _, s := range r.Summaries {
		for _, h := range s.ByHour {
			if !slices.Contains(hs, h.Hour) {
				hs = append(hs, h.Hour)
			}
		}
	}
	slices.Sort(hs)
	return hs
}

func summaryHour(s Summary, hour int) (HourShare, bool) {
	for _, h := range s.ByHour {
		if h.Hour == hour {
			return h, true
		}
	}
	return HourShare{}, false
}

func fmtHour(h int) string { return fmt.Sprintf("%02d:00", h) }

func fmtSeeds(seeds []uint64) string {
	if len(seeds) == 0 {
		return "none"
	}
	parts := make([]string, len(seeds))
	for i, s := range seeds {
		parts[i] = strconv.FormatUint(s, 10)
	}
	return strings.Join(parts, ", ")
}

// fmtShareCI is "75.0 ± 4.3 %", or "75.0 %" when there is no interval (one run).
func fmtShareCI(s Summary) string {
	if len(s.Runs) < 2 || !isFinite(s.ShareCI95) {
		return fmtPct(s.Share) + " %"
	}
	return fmtPct(s.Share) + " ± " + fmtPct(s.ShareCI95) + " %"
}

// fmtMinutesCell is d in minutes with one decimal, or "–" when the strategy
// never got anyone on site.
func fmtMinutesCell(s Summary, d time.Duration) string {
	if len(s.Pooled) == 0 && s.P50 == 0 && s.P90 == 0 && s.Max == 0 {
		return "–"
	}
	return fmtNum(d.Minutes(), 1)
}

// fmtPct formats a share 0..1 as a percentage with one decimal.
func fmtPct(x float64) string { return fmtNum(100*x, 1) }

func fmtNum(x float64, prec int) string {
	if !isFinite(x) {
		return "–"
	}
	s := strconv.FormatFloat(x, 'f', prec, 64)
	if strings.Trim(s, "-0.") == "" {
		s = strings.TrimPrefix(s, "-") // no "-0.0"
	}
	return s
}

func fmtCoord(x float64) string {
	if !isFinite(x) {
		x = 0
	}
	return fmtNum(x, 1)
}

func isFinite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

func clampF(x, lo, hi float64) float64 {
	if !isFinite(x) {
		return lo
	}
	return math.Max(lo, math.Min(hi, x))
}

func truncRunes(s string, n int) string {
	rs := []rune(s)
	if len(rs) <= n {
		return s
	}
	return string(rs[:n-1]) + "…"
}

// xmlEsc escapes text for XML character data and attribute values.
func xmlEsc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s)) // writes to a strings.Builder never fail
	return b.String()
}

// mdText makes free text safe to put into Markdown (no raw HTML, one line).
func mdText(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && !unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// mdCell is mdText that also keeps a table cell intact.
func mdCell(s string) string {
	s = strings.ReplaceAll(mdText(s), "|", `\|`)
	if s == "" {
		return "–"
	}
	return s
}
