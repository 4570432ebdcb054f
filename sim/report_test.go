package sim

import (
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func durMins(ms ...float64) []time.Duration {
	out := make([]time.Duration, len(ms))
	for i, m := range ms {
		out[i] = time.Duration(m * float64(time.Minute))
	}
	return out
}

// sampleReport is a hand-computed case:
//
//	nearest: 3/4 and 3/4 on time → 75.0 ± 0.0 %; times 10 15 20 25 30 45 70 →
//	         p50 25.0, p90 70.0, max 70.0; offers/accepted (2+1)/2 = 1.50;
//	         acceptance (50+100)/2 = 75.0 %; utilisation (50+75)/2 = 62.5 %;
//	         unfulfilled 0.5; by hour 08 → 5/6 = 83.3 %, 09 → 1/2 = 50.0 %.
//	rank:    1/4 and 3/4 → 50.0 %, hours 08, 09, 10.
//	bounds:  upper (100+75)/2 = 87.5 %, clairvoyant 75.0 %, without
//	         windows (100+75)/2 = 87.5 %, matching 100 %, offline
//	         (100+75)/2 = 87.5 %, offline without windows 87.5 % →
//	         gaps 12.5 pp (nearest) and 37.5 pp (rank) to the upper bound
//	         and to the offline plan.
func sampleReport() Report {
	nearest := Summarise("nearest", []Result{
		{Strategy: "nearest", Seed: 1, Requests: 5, ASAP: 4, OnSiteInTime: 3, Unfulfilled: 1,
			TimeToSite: durMins(10, 20, 30),
			ByHour:     []HourShare{{Hour: 8, Requests: 2, OnTime: 2}, {Hour: 9, Requests: 2, OnTime: 1}},
			Offers:     6, Accepted: 3, Declined: 2, Expired: 1, BusySeconds: 3600, OnDutySeconds: 7200},
		{Strategy: "nearest", Seed: 2, Requests: 4, ASAP: 4, OnSiteInTime: 3,
			TimeToSite: durMins(15, 25, 45, 70),
			ByHour:     []HourShare{{Hour: 8, Requests: 4, OnTime: 3}},
			Offers:     4, Accepted: 4, BusySeconds: 5400, OnDutySeconds: 7200},
	})
	rank := Summarise("rank", []Result{
		{Strategy: "rank", Seed: 1, ASAP: 4, OnSiteInTime: 1, Unfulfilled: 2,
			TimeToSite: durMins(55, 80),
			ByHour:     []HourShare{{Hour: 8, Requests: 2, OnTime: 1}, {Hour: 10, Requests: 2, OnTime: 0}},
			Offers:     9, Accepted: 3, Declined: 6, BusySeconds: 1000, OnDutySeconds: 7200},
		{Strategy: "rank", Seed: 2, ASAP: 4, OnSiteInTime: 3,
			TimeToSite: durMins(5, 35, 58),
			ByHour:     []HourShare{{Hour: 9, Requests: 4, OnTime: 3}},
			Offers:     5, Accepted: 3, Declined: 2, BusySeconds: 2000, OnDutySeconds: 7200},
	})
	return Report{
		Scenario:  "city-weekday",
		Seeds:     []uint64{1, 2},
		SLA:       60 * time.Minute,
		Summaries: []Summary{nearest, rank},
		Bounds: []Bound{
			{Seed: 1, ASAP: 4, UpperBound: 4, Clairvoyant: 3, UpperShare: 1, ClairvoyShare: 0.75, WithoutWindows: 4, WithoutWindowsShare: 1,
				MatchingBound: 4, MatchingShare: 1, Offline: 4, OfflineShare: 1, OfflineWithoutWindows: 4, OfflineWithoutWindowsShare: 1},
			{Seed: 2, ASAP: 4, UpperBound: 3, Clairvoyant: 3, UpperShare: 0.75, ClairvoyShare: 0.75, WithoutWindows: 3, WithoutWindowsShare: 0.75,
				MatchingBound: 4, MatchingShare: 1, Offline: 3, OfflineShare: 0.75, OfflineWithoutWindows: 3, OfflineWithoutWindowsShare: 0.75},
		},
		Notes: []string{"travel times from the haversine model", "offers time out after 90 s"},
	}
}

// checkSVG decodes every token of an SVG document and checks its root.
func checkSVG(t *testing.T, name, doc string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(doc))
	d.Strict = true
	root := false
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: invalid XML: %v\n%s", name, err, doc)
		}
		if se, ok := tok.(xml.StartElement); ok && !root {
			root = true
			if se.Name.Local != "svg" || se.Name.Space != "http://www.w3.org/2000/svg" {
				t.Fatalf("%s: root element is %v, want svg in the SVG namespace", name, se.Name)
			}
		}
	}
	if !root {
		t.Fatalf("%s: no root element", name)
	}
	if !strings.Contains(doc, `font-family="sans-serif"`) {
		t.Errorf("%s: no sans-serif font", name)
	}
}

func readReportFiles(t *testing.T, dir string) (md, cdf, bars string) {
	t.Helper()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("report file: %v", err)
		}
		return string(b)
	}
	return read("report.md"), read("time_to_site.svg"), read("on_time_by_hour.svg")
}

func TestWriteReport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out", "run") // WriteReport creates it
	r := sampleReport()
	if err := WriteReport(dir, r); err != nil {
		t.Fatal(err)
	}
	md, cdf, bars := readReportFiles(t, dir)
	if md != r.Markdown() {
		t.Error("report.md differs from Markdown()")
	}

	for _, want := range []string{
		"# Simulation report: city-weekday",
		"Seeds: 1, 2",
		"on site ≤ 60 min (mean ± 95 % CI)",
		"| nearest | 75.0 ± 0.0 % | 25.0 | 70.0 | 70.0 | 1.50 | 75.0 % | 62.5 % | 0.5 |",
		"| rank | 50.0 ± 317.8 % |",
		"| upper bound (no strategy can do better) | 87.5 % |",
		"| clairvoyant plan | 75.0 % |",
		"| clairvoyant plan with every window left out (as the upper bound may) | 87.5 % |",
		"| matching bound (the earlier, looser bound) | 100.0 % |",
		"| offline plan (local search from the clairvoyant plan) | 87.5 % |",
		"| offline plan with every window left out (the bound's own problem) | 87.5 % |",
		"| 1 | 4 | 4 (100.0 %) | 3 (75.0 %) | 4 (100.0 %) | 4 (100.0 %) | 4 (100.0 %) | 4 (100.0 %) |",
		"| 2 | 4 | 3 (75.0 %) | 3 (75.0 %) | 3 (75.0 %) | 4 (100.0 %) | 3 (75.0 %) | 3 (75.0 %) |",
		"| nearest | 75.0 % | 12.5 pp | 0.0 pp | 12.5 pp |",
		"| rank | 50.0 % | 37.5 pp | 25.0 pp | 37.5 pp |",
		"## On site within 60 min by hour",
		"| hour | nearest | rank |",
		"| 08:00 | 83.3 % (5/6) | 50.0 % (1/2) |",
		"| 09:00 | 50.0 % (1/2) | 75.0 % (3/4) |",
		"| 10:00 | – | 0.0 % (0/2) |",
		"![time to site](time_to_site.svg)",
		"(on_time_by_hour.svg)",
		"- travel times from the haversine model\n- offers time out after 90 s\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q\n%s", want, md)
		}
	}
	// The order of the sections.
	last := -1
	for _, h := range []string{"## Strategies", "## Hindsight", "## On site within", "## Charts", "## Notes"} {
		i := strings.Index(md, h)
		if i <= last {
			t.Errorf("section %q missing or out of order", h)
		}
		last = i
	}

	checkSVG(t, "time_to_site.svg", cdf)
	checkSVG(t, "on_time_by_hour.svg", bars)
	if n := strings.Count(cdf, "<polyline"); n != 2 {
		t.Errorf("time_to_site.svg has %d polylines, want 2", n)
	}
	if !strings.Contains(cdf, `class="sla"`) || !strings.Contains(cdf, "stroke-dasharray") {
		t.Error("time_to_site.svg lacks the dashed SLA line")
	}
	for _, want := range []string{">nearest<", ">rank<", ">90<", ">0 %<", ">100 %<"} {
		if !strings.Contains(cdf, want) {
			t.Errorf("time_to_site.svg lacks %q", want)
		}
	}
	// nearest has 2 hours, rank 3.
	if n := strings.Count(bars, `class="bar"`); n != 5 {
		t.Errorf("on_time_by_hour.svg has %d bars, want 5", n)
	}
	for _, want := range []string{">08<", ">09<", ">10<", ">nearest<", ">rank<"} {
		if !strings.Contains(bars, want) {
			t.Errorf("on_time_by_hour.svg lacks %q", want)
		}
	}
	// One distinct colour per strategy.
	if !strings.Contains(bars, chartPalette[0]) || !strings.Contains(bars, chartPalette[1]) || chartPalette[0] == chartPalette[1] {
		t.Error("strategies do not get distinct colours")
	}
}

func TestReportCDFIsOverAllASAP(t *testing.T) {
	// The curve is over all ASAP requests: it ends at 7/8 for nearest (one
	// request never reached), never at 100 %.
	r := sampleReport()
	pts, ok := cdfPoints(r.Summaries[0], func(m float64) float64 { return m }, func(s float64) float64 { return 100 * s }, 90)
	if !ok {
		t.Fatal("no points")
	}
	if !strings.HasPrefix(pts, "0.0,0.0 10.0,0.0 10.0,12.5 ") || !strings.HasSuffix(pts, " 70.0,87.5 90.0,87.5") {
		t.Errorf("points = %s", pts)
	}
}

func TestReportXAxisCoversLongTimes(t *testing.T) {
	r := Report{Scenario: "slow", SLA: time.Hour, Summaries: []Summary{
		Summarise("slow", []Result{{ASAP: 2, TimeToSite: durMins(30, 143)}}),
	}}
	svg := r.TimeToSiteSVG()
	checkSVG(t, "slow", svg)
	if !strings.Contains(svg, ">150<") || strings.Contains(svg, ">180<") {
		t.Errorf("x axis should end at 150 min:\n%s", svg)
	}
}

func TestReportEmpty(t *testing.T) {
	for name, r := range map[string]Report{
		"zero": {},
		"no data": {
			Scenario: "empty",
			SLA:      time.Hour,
			Seeds:    []uint64{7},
			Summaries: []Summary{
				Summarise("idle", nil),
				Summarise("quiet", []Result{{Seed: 7}}),
				Summarise("nobody came", []Result{{Seed: 7, ASAP: 3, Unfulfilled: 3}}),
			},
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := WriteReport(dir, r); err != nil {
				t.Fatal(err)
			}
			md, cdf, bars := readReportFiles(t, dir)
			checkSVG(t, "time_to_site.svg", cdf)
			checkSVG(t, "on_time_by_hour.svg", bars)
			if n := strings.Count(bars, `class="bar"`); n != 0 {
				t.Errorf("%d bars without data", n)
			}
			if !strings.Contains(md, "# Simulation report") || !strings.Contains(md, "![time to site](time_to_site.svg)") {
				t.Errorf("report.md:\n%s", md)
			}
			if strings.Contains(md, "## Hindsight") {
				t.Error("hindsight section without bounds")
			}
			for _, s := range r.Summaries {
				if !strings.Contains(md, "| "+s.Strategy+" |") {
					t.Errorf("report.md lacks a row for %q", s.Strategy)
				}
			}
			if name == "no data" {
				// Only "nobody came" has ASAP requests: a flat line at 0 %.
				if n := strings.Count(cdf, "<polyline"); n != 1 {
					t.Errorf("%d polylines, want 1", n)
				}
				if !strings.Contains(md, "| idle | 0.0 % | – | – | – |") {
					t.Errorf("report.md:\n%s", md)
				}
			}
		})
	}
}

func TestReportEscapesText(t *testing.T) {
	const odd = `a<b & "c">d`
	r := sampleReport()
	r.Scenario = "x & <y>"
	r.Summaries[0] = Summarise(odd, r.Summaries[0].Runs)
	r.Summaries[1].Strategy = "pipe|name\x01"
	dir := t.TempDir()
	if err := WriteReport(dir, r); err != nil {
		t.Fatal(err)
	}
	md, cdf, bars := readReportFiles(t, dir)
	for name, svg := range map[string]string{"time_to_site.svg": cdf, "on_time_by_hour.svg": bars} {
		checkSVG(t, name, svg)
		if strings.Contains(svg, "a<b") || strings.Contains(svg, "x & <y>") {
			t.Errorf("%s has unescaped text", name)
		}
		if !strings.Contains(svg, "a&lt;b &amp; &#34;c&#34;&gt;d") {
			t.Errorf("%s lacks the escaped strategy name", name)
		}
	}
	if strings.Contains(md, "a<b") || !strings.Contains(md, "| a&lt;b &amp; \"c\"&gt;d | 75.0 ± 0.0 % |") {
		t.Errorf("report.md does not escape the strategy name:\n%s", md)
	}
	if !strings.Contains(md, `| pipe\|name`) {
		t.Errorf("report.md does not escape | in a table cell:\n%s", md)
	}
	if !strings.Contains(md, "# Simulation report: x &amp; &lt;y&gt;") {
		t.Errorf("report.md does not escape the scenario:\n%s", md)
	}
}
