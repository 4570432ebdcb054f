package sim

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestWithHistory(t *testing.T) {
	t.Parallel()
	sc, err := Parse([]byte(planScenario)) // 09:00 for 3 hours; router_replace, wifi_setup
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	at := func(day, hour, minute int) time.Time {
		return from.AddDate(0, 0, day).Add(time.Duration(hour)*time.Hour + time.Duration(minute)*time.Minute)
	}
	past := []PastRequest{
		{at(0, 9, 5), "router_replace", true},
		{at(0, 9, 50), "router_replace", true},
		{at(1, 10, 0), "wifi_setup", false},
		{at(1, 11, 59), "router_replace", true},
		{at(1, 12, 0), "router_replace", true},       // after the scenario's hours
		{at(1, 8, 59), "router_replace", true},       // before them
		{at(2, 9, 0), "router_replace", true},        // after the period
		{from.Add(-time.Minute), "wifi_setup", true}, // before the period
	}
	tests := []struct {
		name    string
		past    []PastRequest
		to      time.Time
		perHour []float64
		asap    float64
		wantErr string
	}{
		{"two days", past, from.AddDate(0, 0, 2), []float64{1, 0.5, 0.5}, 0.75, ""},
		{"empty", nil, from.AddDate(0, 0, 2), nil, 0, "no requests"},
		{"too short", past, from.Add(time.Hour), nil, 0, "at least one day"},
		{"unknown skill", []PastRequest{{at(0, 9, 0), "roof_repair", true}}, from.AddDate(0, 0, 1), nil, 0, "roof_repair"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := WithHistory(sc, tt.past, from, tt.to)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Demand.PerHour, tt.perHour) || got.Demand.ASAPShare != tt.asap {
				t.Fatalf("per hour %v, asap %v; want %v, %v", got.Demand.PerHour, got.Demand.ASAPShare, tt.perHour, tt.asap)
			}
			if got.Demand.Skills["router_replace"] != 3 || got.Demand.Skills["wifi_setup"] != 1 {
				t.Fatalf("skills %v", got.Demand.Skills)
			}
			if sc.Demand.PerHour[0] != 14 {
				t.Fatal("the scenario given was changed")
			}
		})
	}
}
