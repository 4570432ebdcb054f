package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const smallScenario = `
name: small-town
seeds: 2
start_hour: 9
hours: 2
city: {center: {lat: 47.3769, lng: 8.5417}, radius_km: 4}
technicians:
  count: 8
  skills: {router_replace: 1}
  shifts: [{start_hour: 9, end_hour: 12, share: 1}]
  travel: {car: {share: 1, speed_kmh: 25}}
demand:
  per_hour: [10, 12]
  skills: {router_replace: 1}
  asap_share: 0.8
behaviour:
  service_minutes: {default: 45}
`

func TestPlanCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	scenario := filepath.Join(dir, "small.yaml")
	if err := os.WriteFile(scenario, []byte(smallScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "plan")
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"plans", []string{"--scenario", scenario, "--target", "90", "--seeds", "2", "--check-seeds", "1", "--out", out}, ""},
		{"no scenario", nil, "--scenario"},
		{"missing scenario", []string{"--scenario", filepath.Join(dir, "none.yaml")}, "read scenario"},
		{"bad target", []string{"--scenario", scenario, "--target", "1"}, "--target"},
		{"bad windows", []string{"--scenario", scenario, "--windows", "most"}, "--windows"},
		{"bad seeds", []string{"--scenario", scenario, "--seeds", "0"}, "--seeds"},
		{"bad hour slack", []string{"--scenario", scenario, "--hour-slack", "0"}, "--hour-slack"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"plan"}, tt.args...), nil, &stdout, &stderr)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("plan: %v\n%s", err, stderr.String())
			}
			if !strings.Contains(stdout.String(), "# Staffing plan: small-town") {
				t.Fatalf("stdout lacks the plan:\n%s", stdout.String())
			}
			for _, f := range []string{"plan.md", "staffing.svg"} {
				if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
					t.Fatalf("%s not written: %v", f, err)
				}
			}
		})
	}
}
