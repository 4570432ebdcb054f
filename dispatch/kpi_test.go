package dispatch

import (
	"testing"
	"time"
)

var now = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func TestComputeKPIs(t *testing.T) {
	t.Parallel()
	at := func(m int) *time.Time { x := now.Add(time.Duration(m) * time.Minute); return &x }
	fixed, parts := "fixed", "needs_parts"
	dl := at(60)
	reqs := []kpiRequest{
		{Mode: ASAP, State: Completed, CreatedAt: now, SLADeadline: dl, OnSiteAt: at(20), CompletedAt: at(80), Outcome: &fixed, Visits: 1},
		{Mode: ASAP, State: Completed, CreatedAt: now, SLADeadline: dl, OnSiteAt: at(40), CompletedAt: at(100), Outcome: &parts, Visits: 1},
		{Mode: ASAP, State: OnSite, CreatedAt: now, SLADeadline: dl, OnSiteAt: at(70)},
		{Mode: ASAP, State: Unfulfilled, CreatedAt: now, SLADeadline: dl},
		{Mode: ASAP, State: Cancelled, CreatedAt: now, SLADeadline: dl},
		{Mode: Window, State: Scheduled, CreatedAt: now},
	}
	k := ComputeKPIs(reqs, kpiOffers{Total: 12, Accepted: 3, Declined: 4, Expired: 3}, time.Hour, now.Add(2*time.Hour))
	if k.Requests != 6 || k.ASAPRequests != 5 || k.Unfulfilled != 1 || k.Completed != 2 || k.Open != 2 {
		t.Fatalf("counts: %+v", k)
	}
	if k.OnSiteWithin60 != 0.5 { // 2 of 4 decided (cancelled not counted)
		t.Errorf("on site within 60 = %v, want 0.5", k.OnSiteWithin60)
	}
	if *k.TimeToSiteP50Seconds != 40*60 || *k.TimeToSiteP90Seconds != 70*60 {
		t.Errorf("p50 %d p90 %d", *k.TimeToSiteP50Seconds, *k.TimeToSiteP90Seconds)
	}
	if k.OffersPerRequest != 2 || k.AcceptanceRate != 0.3 || k.FirstTimeFixRate != 0.5 || *k.ResolutionP50Seconds != 80*60 {
		t.Errorf("ratios: %+v", k)
	}
}
