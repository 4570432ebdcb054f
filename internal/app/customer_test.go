package app_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/onsite/onsite/internal/apitest"
	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/dbtest"
)

type customerView struct {
	ID         string   `json:"id"`
	State      string   `json:"state"`
	CustomerID string   `json:"customer_id"`
	Photos     []string `json:"photos"`
	Technician *struct {
		FirstName string                      `json:"first_name"`
		Rating    float64                     `json:"rating"`
		Position  *struct{ Lat, Lng float64 } `json:"position"`
	} `json:"technician"`
	ExpectedWait *struct {
		Minutes      int `json:"minutes"`
		Free         int `json:"free_technicians_near"`
		AheadInQueue int `json:"ahead_in_queue"`
	} `json:"expected_wait"`
	RatingStars *int `json:"rating_stars"`
}

// TestCustomerApp: the expected wait while searching, the technician's first
// name and rating once assigned and position while on the way, a tracking
// link that works without an account until the job is done, a rating once,
// and the history.
func TestCustomerApp(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, "postgres", dbtest.RedisDBApp, apitest.Env("ONSITE_WORKERS", "false"),
		apitest.Env("ONSITE_OFFER_STRATEGY", "sequential"), apitest.Env("ONSITE_OFFER_TIMEOUT", "5m"))
	techs := onboard(t, s, 2000)
	cust := s.Token(auth.Customer, "carla")
	var v customerView
	s.Must(http.StatusCreated, "POST", "/v1/requests", cust, map[string]any{"skill": "router_replace", "lat": 47.3769, "lng": 8.5417,
		"photos": []string{"https://img.example/router.jpg"}}, &v)
	s.Must(http.StatusUnprocessableEntity, "POST", "/v1/requests", cust, map[string]any{"skill": "router_replace", "lat": 47.3769, "lng": 8.5417,
		"photos": []string{"ftp://nope"}}, nil)
	s.Must(http.StatusOK, "GET", "/v1/requests/"+v.ID, cust, nil, &v)
	if v.ExpectedWait == nil || v.ExpectedWait.Free != 1 || v.ExpectedWait.Minutes < 2 || v.ExpectedWait.Minutes > 15 || len(v.Photos) != 1 {
		t.Fatalf("while searching: %+v %+v", v, v.ExpectedWait)
	}

	var link struct {
		Token, URL string
	}
	s.Must(http.StatusCreated, "POST", "/v1/requests/"+v.ID+"/share", cust, nil, &link)
	if !strings.HasSuffix(link.URL, "/track/"+link.Token) {
		t.Fatalf("link %+v", link)
	}
	s.Must(http.StatusNotFound, "POST", "/v1/requests/"+v.ID+"/share", s.Token(auth.Customer, "mallory"), nil, nil)
	var tracked customerView
	s.Must(http.StatusOK, "GET", "/v1/track/"+link.Token, "", nil, &tracked)
	if tracked.ID != v.ID || tracked.CustomerID != "" {
		t.Fatalf("tracked %+v", tracked)
	}
	if page := s.Must(http.StatusOK, "GET", "/track/"+link.Token, "", nil, nil); !strings.Contains(string(page.Body), "EventSource") {
		t.Fatal("no live status page")
	}
	s.Must(http.StatusNotFound, "GET", "/v1/track/"+link.Token+"x", "", nil, nil)

	res, err := s.App.Dispatch.Match(t.Context(), v.ID)
	if err != nil || len(res.Offered) != 1 {
		t.Fatalf("match %+v %v", res, err)
	}
	tok := s.Token(auth.Technician, techs[0])
	s.Must(http.StatusOK, "POST", "/v1/offers/"+res.Offered[0].ID+"/accept", tok, nil, nil)
	s.Must(http.StatusOK, "GET", "/v1/requests/"+v.ID, cust, nil, &v)
	if v.Technician == nil || v.Technician.FirstName != "Tech" || v.Technician.Position != nil || v.ExpectedWait != nil {
		t.Fatalf("assigned: %+v", v.Technician)
	}
	s.Must(http.StatusOK, "POST", "/v1/jobs/"+v.ID+"/en-route", tok, nil, nil)
	s.Must(http.StatusOK, "GET", "/v1/requests/"+v.ID, cust, nil, &v)
	if v.Technician == nil || v.Technician.Position == nil {
		t.Fatalf("en route without position: %+v", v.Technician)
	}
	s.Must(http.StatusConflict, "POST", "/v1/requests/"+v.ID+"/rating", cust, map[string]any{"stars": 5}, nil)
	s.Must(http.StatusOK, "POST", "/v1/jobs/"+v.ID+"/arrived", tok, nil, nil)
	s.Must(http.StatusOK, "POST", "/v1/jobs/"+v.ID+"/complete", tok, map[string]string{"outcome": "fixed"}, nil)
	s.Must(http.StatusNotFound, "GET", "/v1/track/"+link.Token, "", nil, nil)

	s.Must(http.StatusUnprocessableEntity, "POST", "/v1/requests/"+v.ID+"/rating", cust, map[string]any{"stars": 6}, nil)
	s.Must(http.StatusNotFound, "POST", "/v1/requests/"+v.ID+"/rating", s.Token(auth.Customer, "mallory"), map[string]any{"stars": 1}, nil)
	s.Must(http.StatusOK, "POST", "/v1/requests/"+v.ID+"/rating", cust, map[string]any{"stars": 4, "comment": "quick"}, &v)
	if v.RatingStars == nil || *v.RatingStars != 4 {
		t.Fatalf("rating %+v", v)
	}
	r := s.Must(http.StatusConflict, "POST", "/v1/requests/"+v.ID+"/rating", cust, map[string]any{"stars": 1}, nil)
	if r.Err(t).Error.Reason != "already_rated" {
		t.Fatal(string(r.Body))
	}
	var tech technician
	s.Must(http.StatusOK, "GET", "/v1/technicians/"+techs[0], s.Token(auth.Ops, "alice"), nil, &tech)
	var list struct{ Items []customerView }
	s.Must(http.StatusOK, "GET", "/v1/me/requests", cust, nil, &list)
	if len(list.Items) != 1 || list.Items[0].ID != v.ID {
		t.Fatalf("history %+v", list.Items)
	}
}
