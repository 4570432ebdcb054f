package app_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/onsite/onsite/internal/apitest"
	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/dbtest"
)

func next(t *testing.T, ch <-chan apitest.SSE, what string, match func(apitest.SSE) bool) apitest.SSE {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("stream closed while waiting for %s", what)
			}
			if match(ev) {
				return ev
			}
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func requestEvent(id, state string) func(apitest.SSE) bool {
	return func(ev apitest.SSE) bool {
		if ev.Event != "request" {
			return false
		}
		var r fullRequest
		_ = json.Unmarshal([]byte(ev.Data), &r)
		return r.ID == id && r.State == state
	}
}

// TestStreamsAcrossInstances runs two servers on one database and one Redis:
// streams served by A see an accept made on B (whose workers publish), a
// technician's stream carries the offer, and a reconnect with Last-Event-ID
// resumes without loss.
func TestStreamsAcrossInstances(t *testing.T) {
	t.Parallel()
	prefix := "x" + time.Now().Format("150405_000000") + ":"
	b := apitest.Start(t, "postgres", dbtest.RedisDBApp, apitest.Env("ONSITE_QUEUE_PREFIX", prefix),
		apitest.Env("ONSITE_OFFER_STRATEGY", "sequential"), apitest.Env("ONSITE_OFFER_TIMEOUT", "5m"))
	a := apitest.Start(t, "postgres", dbtest.RedisDBApp, apitest.Env("ONSITE_QUEUE_PREFIX", prefix),
		apitest.Env("DATABASE_URL", b.App.Config.DatabaseURL), apitest.Env("ONSITE_WORKERS", "false"))
	techs := onboard(t, b, 1000)
	opsA := a.Token(auth.Ops, "alice")
	ops := a.Stream("/v1/ops/stream", opsA, "")
	techStream := a.Stream("/v1/me/stream", a.Token(auth.Technician, techs[0]), "")

	cust := b.Token(auth.Customer, "carla")
	var req fullRequest
	b.Must(http.StatusCreated, "POST", "/v1/requests", cust, map[string]any{"skill": "router_replace", "lat": 47.3769, "lng": 8.5417}, &req)
	customerStream := a.Stream("/v1/requests/"+req.ID+"/stream", a.Token(auth.Customer, "carla"), "")
	first := next(t, ops, "the new request on A's ops stream", requestEvent(req.ID, "searching"))
	offer := next(t, techStream, "the offer on the technician's stream", func(ev apitest.SSE) bool { return ev.Event == "offer" })
	var oc struct {
		Type    string `json:"type"`
		OfferID string `json:"offer_id"`
	}
	_ = json.Unmarshal([]byte(offer.Data), &oc)
	if oc.Type != "offered" || oc.OfferID == "" {
		t.Fatalf("offer event %s", offer.Data)
	}

	o := waitOffer(t, b, techs[0])
	b.Must(http.StatusOK, "POST", "/v1/offers/"+o.ID+"/accept", b.Token(auth.Technician, techs[0]), nil, nil)
	next(t, ops, "the accept made on B, on A's ops stream", requestEvent(req.ID, "assigned"))
	next(t, customerStream, "the accept on the customer's stream", requestEvent(req.ID, "assigned"))
	next(t, techStream, "the job on the technician's stream", func(ev apitest.SSE) bool { return ev.Event == "job" })

	// Resume from the first event: everything after it is replayed.
	resumed := a.Stream("/v1/ops/stream", opsA, first.ID)
	next(t, resumed, "the replayed accept after Last-Event-ID", requestEvent(req.ID, "assigned"))
	// someone else's request stream is not found; the token may come as a query parameter
	if st := a.Status("GET", "/v1/requests/"+req.ID+"/stream", a.Token(auth.Customer, "mallory")); st != http.StatusNotFound {
		t.Fatalf("another customer's stream: %d", st)
	}
	if st := a.Status("GET", "/v1/ops/stream?access_token="+opsA, ""); st != http.StatusOK {
		t.Fatalf("query token: %d", st)
	}
}

func TestOpsSignInAndMap(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, "sqlite", dbtest.RedisDBApp, apitest.Env("ONSITE_OPS_PASSWORD", "correct horse battery"),
		apitest.Env("ONSITE_TILE_URL", "https://tiles.example/{z}/{x}/{y}.png"))
	r := s.Must(http.StatusUnauthorized, "POST", "/v1/auth/ops", "", map[string]string{"name": "alice", "password": "wrong"}, nil)
	if r.Err(t).Error.Code != "unauthenticated" {
		t.Fatal(string(r.Body))
	}
	s.Must(http.StatusUnprocessableEntity, "POST", "/v1/auth/ops", "", map[string]string{"name": "", "password": "correct horse battery"}, nil)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	s.Must(http.StatusOK, "POST", "/v1/auth/ops", "", map[string]string{"name": "alice", "password": "correct horse battery"}, &tok)
	var cfg struct {
		TileURL string `json:"tile_url"`
	}
	s.Must(http.StatusOK, "GET", "/v1/ops/config", tok.AccessToken, nil, &cfg)
	if cfg.TileURL != "https://tiles.example/{z}/{x}/{y}.png" {
		t.Fatalf("config %+v", cfg)
	}
	techs := onboard(t, s, 500)
	var minted struct {
		AccessToken string `json:"access_token"`
	}
	s.Must(http.StatusCreated, "POST", "/v1/ops/tokens", tok.AccessToken, map[string]string{"role": "customer", "subject": "carla"}, &minted)
	s.Must(http.StatusUnprocessableEntity, "POST", "/v1/ops/tokens", tok.AccessToken, map[string]string{"role": "king", "subject": "x"}, nil)
	s.Must(http.StatusCreated, "POST", "/v1/requests", minted.AccessToken, map[string]any{"skill": "router_replace", "lat": 47.3769, "lng": 8.5417}, nil)
	var heat struct {
		Cells []struct {
			Cell      string      `json:"cell"`
			Boundary  [][]float64 `json:"boundary"`
			Open      int         `json:"open_requests"`
			Available int         `json:"available_technicians"`
		} `json:"cells"`
	}
	s.Must(http.StatusOK, "GET", "/v1/ops/heatmap", tok.AccessToken, nil, &heat)
	open, avail := 0, 0
	for _, c := range heat.Cells {
		if len(c.Boundary) < 5 {
			t.Fatalf("cell %s has %d corners", c.Cell, len(c.Boundary))
		}
		open += c.Open
		avail += c.Available
	}
	if open != 1 || avail != 1 || len(techs) != 1 {
		t.Fatalf("heatmap: %d open, %d available", open, avail)
	}
	s.Must(http.StatusUnprocessableEntity, "GET", "/v1/ops/heatmap?resolution=3", tok.AccessToken, nil, nil)
}
