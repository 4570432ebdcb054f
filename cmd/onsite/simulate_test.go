package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// oneRequest is a day of one technician and one request, named name.
func oneRequest(name string) string {
	return `name: ` + name + `
description: "One technician, one request"
seeds: 3
hours: 1
city: {center: {lat: 47.3769, lng: 8.5417}, radius_km: 1}
technicians:
  count: 1
  skills: {wifi_setup: 1}
  shifts: [{start: "07:30", end: "18:00", share: 1}]
  travel: {car: {share: 1, speed_kmh: 30}}
demand:
  skills: {wifi_setup: 1}
  fixed: [{at_minute: 5, place: {lat: 47.38, lng: 8.55}, skill: wifi_setup}]
behaviour:
  accept_probability: 1
  no_response_share: 0
  service_minutes: {default: 30}
`
}

func TestSimulateFamily(t *testing.T) {
	t.Parallel()
	family := t.TempDir()
	for _, name := range []string{"alpha", "beta"} {
		if err := os.WriteFile(filepath.Join(family, name+".yaml"), []byte(oneRequest(name)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"family", []string{"--family", family, "--seeds", "2"}, ""},
		{"family and scenario", []string{"--family", family, "--scenario", "x.yaml"}, "not both"},
		{"no family", []string{"--family", filepath.Join(family, "none")}, "no scenario"},
		{"bad seeds", []string{"--family", family, "--seeds", "-1"}, "--seeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := t.TempDir()
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"simulate", "--out", out}, tt.args...), nil, &stdout, &stderr)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr.String())
			}
			raw, err := os.ReadFile(filepath.Join(out, "index.md"))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"| [alpha](alpha/report.md) | 2 | 100.0 ± 0.0 % (0.0) |", "| [beta](beta/report.md) | 2 |"} {
				if !strings.Contains(string(raw), want) {
					t.Errorf("index.md lacks %q:\n%s", want, raw)
				}
			}
			if _, err := os.Stat(filepath.Join(out, "beta", "report.md")); err != nil {
				t.Error(err)
			}
		})
	}
}
