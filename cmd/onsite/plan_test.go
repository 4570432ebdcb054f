package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
			for _, f := range []string{"plan.md", "staffing.svg", "plan.json"} {
				if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
					t.Fatalf("%s not written: %v", f, err)
				}
			}
		})
	}
}

// TestPlanFromHistory plans from the requests of yesterday in an SQLite
// database: the demand in the plan is theirs, not the scenario's.
func TestPlanFromHistory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := []string{"ONSITE_DATA_DIR=" + dir}
	ctx := context.Background()
	var stderr bytes.Buffer
	if err := run(ctx, []string{"migrate"}, env, &bytes.Buffer{}, &stderr); err != nil {
		t.Fatalf("migrate: %v\n%s", err, stderr.String())
	}
	d, err := sqlOpen(dir)
	if err != nil {
		t.Fatal(err)
	}
	yesterday := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -1)
	stmts := []string{
		`INSERT INTO skills (code, name, created_at) VALUES ('router_replace', 'Router', CURRENT_TIMESTAMP)`,
		`INSERT INTO customers (id, created_at) VALUES ('c1', CURRENT_TIMESTAMP)`,
	}
	for _, st := range stmts {
		if err := d.Exec(st).Error; err != nil {
			t.Fatal(err)
		}
	}
	// 5 requests at 09:xx and 3 at 10:xx yesterday, one ASAP in 4 windowed.
	for i := range 8 {
		at := yesterday.Add(9*time.Hour + time.Duration(i)*12*time.Minute)
		mode := "asap"
		if i%4 == 3 {
			mode = "window"
		}
		err := d.Exec(`INSERT INTO requests (id, customer_id, created_by, skill_code, lat, lng, cell, mode, state, created_at, updated_at)
			VALUES (?, 'c1', 'customer', 'router_replace', 47.37, 8.54, 0, ?, 'completed', ?, ?)`, fmt.Sprintf("r%d", i), mode, at, at).Error
		if err != nil {
			t.Fatal(err)
		}
	}
	d.Close()
	scenario := filepath.Join(dir, "small.yaml")
	if err := os.WriteFile(scenario, []byte(smallScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	args := []string{"plan", "--scenario", scenario, "--history-days", "1", "--target", "0.9", "--seeds", "2", "--check-seeds", "0", "--out", filepath.Join(dir, "plan")}
	if err := run(ctx, args, env, &stdout, &stderr); err != nil {
		t.Fatalf("plan: %v\n%s", err, stderr.String())
	}
	for _, want := range []string{"demand of 8 requests", "| 09:00 | 5 |", "| 10:00 | 3 |"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("plan lacks %q:\n%s", want, stdout.String())
		}
	}
}
