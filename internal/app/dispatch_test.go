package app_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/onsite/onsite/internal/apitest"
	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/dbtest"
)

type offer struct {
	ID        string    `json:"id"`
	RequestID string    `json:"request_id"`
	State     string    `json:"state"`
	ExpiresAt time.Time `json:"expires_at"`
	Skill     string    `json:"skill"`
}

type fullRequest struct {
	request
	TechnicianID *string    `json:"technician_id"`
	EtaAt        *time.Time `json:"eta_at"`
	Outcome      *string    `json:"outcome"`
}

// onboard creates the skill and n certified, available technicians at the
// given distances (metres east of the request place) and returns their ids.
func onboard(t *testing.T, s *apitest.Server, eastM ...float64) []string {
	t.Helper()
	ops := s.Token(auth.Ops, "alice")
	s.Must(http.StatusCreated, "POST", "/v1/skills", ops, map[string]string{"code": "router_replace", "name": "Replace a router"}, nil)
	var ids []string
	for i, dx := range eastM {
		var tech technician
		s.Must(http.StatusCreated, "POST", "/v1/technicians", ops, map[string]any{"name": "Tech", "phone": "+4179555000" + string(rune('0'+i))}, &tech)
		s.Must(http.StatusOK, "PUT", "/v1/technicians/"+tech.ID+"/certifications/router_replace", ops, map[string]any{"expires_at": time.Now().Add(48 * time.Hour)}, nil)
		tok := s.Token(auth.Technician, tech.ID)
		s.Must(http.StatusOK, "PUT", "/v1/me/duty", tok, map[string]string{"status": "available"}, nil)
		// about 75 km per degree of longitude at 47° N
		s.Must(http.StatusOK, "POST", "/v1/me/location", tok, map[string]any{"lat": 47.3769, "lng": 8.5417 + dx/75500}, nil)
		apitest.Eventually(t, 5*time.Second, "the position to be written", func() bool {
			var got technician
			s.Must(http.StatusOK, "GET", "/v1/technicians/"+tech.ID, ops, nil, &got)
			return got.Cell != ""
		})
		ids = append(ids, tech.ID)
	}
	return ids
}

func waitOffer(t *testing.T, s *apitest.Server, techID string) offer {
	t.Helper()
	tok := s.Token(auth.Technician, techID)
	var got offer
	apitest.Eventually(t, 15*time.Second, "an offer for "+techID, func() bool {
		var list struct{ Items []offer }
		s.Must(http.StatusOK, "GET", "/v1/me/offers", tok, nil, &list)
		if len(list.Items) > 0 {
			got = list.Items[0]
			return true
		}
		return false
	})
	return got
}

// TestDispatchOverHTTP runs the whole path through the real server and its
// asynq workers: request → offer → accept → en route → on site → complete,
// with the events and KPIs checked; then a decline and an unanswered offer
// cascade to the next technician.
func TestDispatchOverHTTP(t *testing.T) {
	t.Parallel()
	for _, engine := range apitest.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			s := apitest.Start(t, engine, dbtest.RedisDBApp, apitest.Env("ONSITE_OFFER_STRATEGY", "sequential"), apitest.Env("ONSITE_OFFER_TIMEOUT", "2s"))
			techs := onboard(t, s, 1000, 3000, 5000)
			ops := s.Token(auth.Ops, "alice")
			cust := s.Token(auth.Customer, "carla")

			var req fullRequest
			s.Must(http.StatusCreated, "POST", "/v1/requests", cust, map[string]any{"skill": "router_replace", "lat": 47.3769, "lng": 8.5417}, &req)
			o := waitOffer(t, s, techs[0])
			if o.RequestID != req.ID || o.Skill != "router_replace" {
				t.Fatalf("offer %+v", o)
			}
			t0 := s.Token(auth.Technician, techs[0])
			// someone else's offer is not found
			s.Must(http.StatusNotFound, "POST", "/v1/offers/"+o.ID+"/accept", s.Token(auth.Technician, techs[1]), nil, nil)
			s.Must(http.StatusOK, "POST", "/v1/offers/"+o.ID+"/accept", t0, nil, &req)
			if req.State != "assigned" || req.TechnicianID == nil || *req.TechnicianID != techs[0] || req.EtaAt == nil {
				t.Fatalf("after accept: %+v", req)
			}
			r := s.Must(http.StatusConflict, "POST", "/v1/offers/"+o.ID+"/accept", t0, nil, nil)
			if e := r.Err(t); e.Error.Reason != "offer_already_accepted" {
				t.Fatalf("accept twice: %+v", e.Error)
			}
			s.Must(http.StatusConflict, "POST", "/v1/jobs/"+req.ID+"/complete", t0, map[string]string{"outcome": "fixed"}, nil)
			s.Must(http.StatusOK, "POST", "/v1/jobs/"+req.ID+"/en-route", t0, nil, nil)
			s.Must(http.StatusOK, "POST", "/v1/me/location", t0, map[string]any{"lat": 47.3769, "lng": 8.5420}, nil)
			s.Must(http.StatusOK, "POST", "/v1/jobs/"+req.ID+"/arrived", t0, nil, nil)
			s.Must(http.StatusUnprocessableEntity, "POST", "/v1/jobs/"+req.ID+"/complete", t0, map[string]string{"outcome": "meh"}, nil)
			s.Must(http.StatusOK, "POST", "/v1/jobs/"+req.ID+"/complete", t0, map[string]string{"outcome": "fixed"}, &req)
			if req.State != "completed" || *req.Outcome != "fixed" {
				t.Fatalf("after complete: %+v", req)
			}
			var events struct {
				Items []struct {
					Type string         `json:"type"`
					Data map[string]any `json:"data"`
				}
			}
			s.Must(http.StatusOK, "GET", "/v1/requests/"+req.ID+"/events", ops, nil, &events)
			var types []string
			for _, e := range events.Items {
				types = append(types, e.Type)
				if e.Type == "offered" && (e.Data["eta_s"] == nil || e.Data["rank"] == nil || e.Data["distance_m"] == nil) {
					t.Fatalf("offered event lacks its reason: %v", e.Data)
				}
			}
			want := []string{"created", "offered", "assigned", "en_route", "on_site", "completed"}
			if len(types) != len(want) {
				t.Fatalf("events %v, want %v", types, want)
			}
			for i := range want {
				if types[i] != want[i] {
					t.Fatalf("events %v, want %v", types, want)
				}
			}
			// The deadline is an hour away: the arrival (23 m from the site)
			// is measured, the promise not judged yet.
			var k struct {
				Share      *float64 `json:"on_site_within_sla_share"`
				Pending    int      `json:"asap_pending"`
				P50        *int     `json:"time_to_site_p50_s"`
				Acceptance float64  `json:"acceptance_rate"`
				FTF        float64  `json:"first_time_fix_rate"`
				Flagged    int      `json:"flagged_arrivals"`
				Groups     []struct {
					Key string `json:"key"`
				} `json:"groups"`
			}
			s.Must(http.StatusOK, "GET", "/v1/kpis?group_by=skill&cell=871f8ed95ffffff", ops, nil, &k)
			if k.Share != nil || k.Pending != 1 || k.P50 == nil || k.Acceptance != 1 || k.FTF != 1 || k.Flagged != 0 ||
				len(k.Groups) != 1 || k.Groups[0].Key != "router_replace" {
				t.Fatalf("kpis %+v", k)
			}
			s.Must(http.StatusUnprocessableEntity, "GET", "/v1/kpis?from=yesterday", ops, nil, nil)

			// A decline cascades to the next technician, an unanswered offer
			// expires (after 2 s) and cascades to the one after.
			var second fullRequest
			s.Must(http.StatusCreated, "POST", "/v1/requests", cust, map[string]any{"skill": "router_replace", "lat": 47.3769, "lng": 8.5417}, &second)
			o1 := waitOffer(t, s, techs[0])
			s.Must(http.StatusOK, "POST", "/v1/offers/"+o1.ID+"/decline", t0, nil, nil)
			o2 := waitOffer(t, s, techs[1])
			if o2.RequestID != second.ID {
				t.Fatalf("cascade went to request %s", o2.RequestID)
			}
			o3 := waitOffer(t, s, techs[2])
			if o3.RequestID != second.ID {
				t.Fatalf("expiry cascade went to request %s", o3.RequestID)
			}
			r = s.Must(http.StatusConflict, "POST", "/v1/offers/"+o2.ID+"/accept", s.Token(auth.Technician, techs[1]), nil, nil)
			if e := r.Err(t); e.Error.Reason != "offer_expired" {
				t.Fatalf("late accept: %+v", e.Error)
			}
			// ops sees every offer with its reason and can take over by hand
			var offers struct {
				Items []struct {
					TechnicianID string         `json:"technician_id"`
					State        string         `json:"state"`
					Why          map[string]any `json:"why"`
				}
			}
			s.Must(http.StatusOK, "GET", "/v1/requests/"+second.ID+"/offers", ops, nil, &offers)
			if len(offers.Items) != 3 || offers.Items[0].State != "declined" || offers.Items[1].State != "expired" || offers.Items[2].Why["strategy"] != "sequential" {
				t.Fatalf("offers %+v", offers.Items)
			}
			s.Must(http.StatusOK, "POST", "/v1/requests/"+second.ID+"/assign", ops, map[string]string{"technician_id": techs[1]}, &second)
			if second.State != "assigned" || *second.TechnicianID != techs[1] {
				t.Fatalf("hand assignment: %+v", second)
			}
			s.Must(http.StatusUnprocessableEntity, "POST", "/v1/requests/"+second.ID+"/assign", ops, map[string]string{"technician_id": "nobody"}, nil)
			s.Must(http.StatusOK, "POST", "/v1/requests/"+second.ID+"/redispatch", ops, nil, &second)
			if second.State != "searching" {
				t.Fatalf("redispatch: %+v", second)
			}
			var jobs struct{ Items []fullRequest }
			s.Must(http.StatusOK, "GET", "/v1/me/jobs", t0, nil, &jobs)
			if len(jobs.Items) != 1 || jobs.Items[0].ID != req.ID {
				t.Fatalf("my jobs: %+v", jobs.Items)
			}
		})
	}
}

// TestAcceptRaceOverHTTP: 200 rounds of two technicians accepting a wave's
// offers for one request at the same instant; one wins, the other gets 409.
func TestAcceptRaceOverHTTP(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("200 rounds")
	}
	s := apitest.Start(t, "postgres", dbtest.RedisDBApp, apitest.Env("ONSITE_WORKERS", "false"),
		apitest.Env("ONSITE_OFFER_STRATEGY", "wave"), apitest.Env("ONSITE_WAVE_SIZE", "2"))
	techs := onboard(t, s, 1000, 1100)
	ops := s.Token(auth.Ops, "alice")
	cust := s.Token(auth.Customer, "carla")
	toks := []string{s.Token(auth.Technician, techs[0]), s.Token(auth.Technician, techs[1])}
	for round := range 200 {
		var req fullRequest
		s.Must(http.StatusCreated, "POST", "/v1/requests", cust, map[string]any{"skill": "router_replace", "lat": 47.3769, "lng": 8.5417}, &req)
		res, err := s.App.Dispatch.Match(t.Context(), req.ID)
		if err != nil || len(res.Offered) != 2 {
			t.Fatalf("round %d: match %+v %v", round, res, err)
		}
		offerOf := map[string]string{}
		for _, o := range res.Offered {
			offerOf[o.TechnicianID] = o.ID
		}
		statuses := make([]int, 2)
		reasons := make([]string, 2)
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				r := s.Call("POST", "/v1/offers/"+offerOf[techs[i]]+"/accept", toks[i], nil)
				statuses[i] = r.Status
				if r.Status == http.StatusConflict {
					reasons[i] = r.Err(t).Error.Reason
				}
			}(i)
		}
		wg.Wait()
		ok, conflict := 0, 0
		for i, st := range statuses {
			switch st {
			case http.StatusOK:
				ok++
			case http.StatusConflict:
				conflict++
				if reasons[i] != "offer_taken" && reasons[i] != "offer_withdrawn" {
					t.Fatalf("round %d: loser reason %q", round, reasons[i])
				}
			}
		}
		if ok != 1 || conflict != 1 {
			t.Fatalf("round %d: statuses %v", round, statuses)
		}
		var live int64
		s.App.DB.Table("assignments").Where("request_id = ? AND ended_at IS NULL", req.ID).Count(&live)
		if live != 1 {
			t.Fatalf("round %d: %d live assignments", round, live)
		}
		s.Must(http.StatusOK, "POST", "/v1/requests/"+req.ID+"/cancel", ops, map[string]string{"reason": "next round"}, nil)
	}
}

// TestBatchStrategyOverHTTP runs the default strategy, batch, through the
// periodic batch job (run under its lease by jobs.Runner): a new request
// gets its offer from the next round.
func TestBatchStrategyOverHTTP(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, "postgres", dbtest.RedisDBApp, apitest.Env("ONSITE_BATCH_WINDOW", "1s"))
	if s.App.Config.OfferStrategy != "batch" {
		t.Fatalf("default strategy %s, want batch", s.App.Config.OfferStrategy)
	}
	techs := onboard(t, s, 2000)
	var req fullRequest
	s.Must(http.StatusCreated, "POST", "/v1/requests", s.Token(auth.Customer, "carla"), map[string]any{"skill": "router_replace", "lat": 47.3769, "lng": 8.5417}, &req)
	o := waitOffer(t, s, techs[0])
	if o.RequestID != req.ID {
		t.Fatalf("offer for %s", o.RequestID)
	}
	s.Must(http.StatusOK, "POST", "/v1/offers/"+o.ID+"/accept", s.Token(auth.Technician, techs[0]), nil, &req)
	if req.State != "assigned" {
		t.Fatalf("state %s", req.State)
	}
}
