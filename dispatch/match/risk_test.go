package match

import (
	"testing"
	"time"
)

func TestRiskPolicyDebounces(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	j := Job{ID: "r", Deadline: now.Add(20 * time.Minute)}
	arriving := func(d time.Duration) []Scored { return []Scored{{Arrival: j.Deadline.Add(d)}} }
	p := DefaultRiskPolicy
	for _, tt := range []struct {
		name   string
		was    bool
		since  time.Duration // before now
		ranked []Scored
		want   bool
	}{
		{"on time stays off", false, 0, arriving(-time.Minute), false},
		{"a minute late goes on", false, 0, arriving(time.Minute), true},
		{"nobody at all goes on", false, 0, nil, true},
		{"back a little early is not enough", true, 5 * time.Minute, arriving(-time.Minute), true},
		{"back with two minutes to spare leaves", true, 5 * time.Minute, arriving(-2*time.Minute - time.Second), false},
		{"not before a minute at risk", true, 30 * time.Second, arriving(-10 * time.Minute), true},
		{"still nobody stays on", true, 10 * time.Minute, nil, true},
	} {
		if got := p.Next(tt.was, now.Add(-tt.since), j, tt.ranked, now); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	// An arrival wavering a minute around the deadline flips the flag once
	// (it used to flip at every round).
	was, since, flips := false, time.Time{}, 0
	for i := range 24 { // two minutes of 5 s rounds
		at := now.Add(time.Duration(i) * 5 * time.Second)
		d := time.Minute
		if i%2 == 1 {
			d = -time.Minute
		}
		next := p.Next(was, since, j, arriving(d), at)
		if next != was {
			flips++
			was, since = next, at
		}
	}
	if flips != 1 {
		t.Fatalf("%d flips in two minutes, want 1", flips)
	}
}

func TestEscalationSteps(t *testing.T) {
	t.Parallel()
	e := DefaultEscalation
	for _, tt := range []struct {
		at   time.Duration
		want Step
	}{
		{0, StepWiderSearch}, {time.Minute, StepWiderSearch}, {2 * time.Minute, StepBiggerWave},
		{5 * time.Minute, StepPaged}, {9 * time.Minute, StepPaged}, {10 * time.Minute, StepCustomerTold}, {time.Hour, StepCustomerTold},
	} {
		if got := e.Due(tt.at); got != tt.want {
			t.Errorf("at risk %v: %s, want %s", tt.at, got, tt.want)
		}
	}
	if StepWiderSearch.WaveSize(1) != 1 || StepBiggerWave.WaveSize(1) != 3 || StepPaged.WaveSize(3) != 6 {
		t.Error("wave sizes")
	}
}
