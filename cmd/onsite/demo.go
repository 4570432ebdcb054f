package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/auth"
)

// demo starts Onsite in embedded mode and feeds it a small simulated city
// through the real HTTP API: technicians who go on duty, report positions,
// answer offers and work their jobs, and customers who ask for help.
func demo(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	techCount := fs.Int("technicians", 30, "technicians in the city")
	perHour := fs.Float64("per-hour", 120, "customer requests per hour")
	a, err := start(ctx, fs, args, environ, io.Discard)
	if err != nil {
		return err
	}
	defer a.Close()
	if *techCount < 1 || *techCount > 500 || *perHour <= 0 || *perHour > 10_000 {
		return fmt.Errorf("demo: --technicians 1..500, --per-hour above 0")
	}
	cfg := a.Config
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx, ln) }()
	fmt.Fprintf(stdout, "Onsite demo on %s\n  dashboard: %s/  (any name, password %s)\n  feeding %d technicians and %.0f requests an hour; Ctrl-C stops\n",
		base, base, a.OpsPassword, *techCount, *perHour)
	c := &demoClient{base: base, http: &http.Client{Timeout: 10 * time.Second}, issuer: a.Issuer}
	if err := c.feed(ctx, *techCount, *perHour); err != nil && ctx.Err() == nil {
		cancel()
		<-served
		return err
	}
	cancel()
	return <-served
}

type demoClient struct {
	base   string
	http   *http.Client
	issuer *auth.Issuer
}

func (c *demoClient) token(role auth.Role, subject string) string {
	t, _ := c.issuer.Issue(auth.Principal{Role: role, Subject: subject}, 24*time.Hour)
	return t
}

// call sends JSON and decodes the answer into out (if not nil).
func (c *demoClient) call(ctx context.Context, method, path, token string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

var demoSkills = []string{"router_replace", "wifi_setup", "modem_install", "tv_setup"}

var zurich = geo.Point{Lat: 47.3769, Lng: 8.5417}

func around(rng *rand.Rand, km float64) geo.Point {
	return geo.Offset(zurich, (rng.Float64()*2-1)*km*1000, (rng.Float64()*2-1)*km*1000)
}

func (c *demoClient) feed(ctx context.Context, techCount int, perHour float64) error {
	ops := c.token(auth.Ops, "demo")
	for _, s := range demoSkills {
		_ = c.call(ctx, "POST", "/v1/skills", ops, map[string]string{"code": s, "name": s}, nil) // exists after a restart
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	var wg sync.WaitGroup
	for i := range techCount {
		var t struct{ ID string }
		err := c.call(ctx, "POST", "/v1/technicians", ops, map[string]any{"name": fmt.Sprintf("Demo Tech %02d", i+1), "phone": fmt.Sprintf("+4179900%04d", i)}, &t)
		if err != nil {
			continue // onboarded by an earlier demo run
		}
		for _, s := range demoSkills {
			if rng.Float64() < 0.6 {
				_ = c.call(ctx, "PUT", "/v1/technicians/"+t.ID+"/certifications/"+s, ops, map[string]any{"expires_at": time.Now().Add(365 * 24 * time.Hour)}, nil)
			}
		}
		wg.Add(1)
		go func(id string, seed uint64) {
			defer wg.Done()
			c.technician(ctx, id, rand.New(rand.NewPCG(seed, 2)))
		}(t.ID, rng.Uint64())
	}
	// Customers: Poisson arrivals.
	for n := 0; ctx.Err() == nil; n++ {
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(rng.ExpFloat64() / perHour * float64(time.Hour))):
			p := around(rng, 8)
			cust := c.token(auth.Customer, fmt.Sprintf("demo-customer-%d", n%50))
			_ = c.call(ctx, "POST", "/v1/requests", cust, map[string]any{"skill": demoSkills[rng.IntN(len(demoSkills))],
				"lat": p.Lat, "lng": p.Lng, "address": fmt.Sprintf("Demo street %d, Zürich", 1+rng.IntN(200))}, nil)
		}
	}
	wg.Wait()
	return nil
}

// technician is one technician's day: on duty, pinging, answering offers
// after a few seconds (most say yes), driving, working, finishing.
func (c *demoClient) technician(ctx context.Context, id string, rng *rand.Rand) {
	tok := c.token(auth.Technician, id)
	pos := around(rng, 8)
	goOnDuty := func() bool {
		return c.call(ctx, "PUT", "/v1/me/duty", tok, map[string]string{"status": "available"}, nil) == nil
	}
	onDuty := goOnDuty()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		pos = geo.Offset(pos, rng.NormFloat64()*80, rng.NormFloat64()*80)
		_ = c.call(ctx, "POST", "/v1/me/location", tok, map[string]any{"lat": pos.Lat, "lng": pos.Lng}, nil)
		if !onDuty {
			onDuty = goOnDuty() // a busy server refused it: again, until it holds
			continue
		}
		var offers struct {
			Items []struct {
				ID    string    `json:"id"`
				Place geo.Point `json:"place"`
			} `json:"items"`
		}
		if err := c.call(ctx, "GET", "/v1/me/offers", tok, nil, &offers); err != nil || len(offers.Items) == 0 {
			continue
		}
		o := offers.Items[0]
		if !sleep(ctx, time.Duration(2+rng.IntN(6))*time.Second) {
			return
		}
		if rng.Float64() > 0.8 {
			_ = c.call(ctx, "POST", "/v1/offers/"+o.ID+"/decline", tok, nil, nil)
			continue
		}
		var job struct{ ID string }
		if err := c.call(ctx, "POST", "/v1/offers/"+o.ID+"/accept", tok, nil, &job); err != nil {
			continue
		}
		_ = c.call(ctx, "POST", "/v1/jobs/"+job.ID+"/en-route", tok, nil, nil)
		// Drive there in 20 steps (sped up), reporting positions.
		from := pos
		for step := 1; step <= 20; step++ {
			if !sleep(ctx, time.Second) {
				return
			}
			f := float64(step) / 20
			pos = geo.Point{Lat: from.Lat + (o.Place.Lat-from.Lat)*f, Lng: from.Lng + (o.Place.Lng-from.Lng)*f}
			_ = c.call(ctx, "POST", "/v1/me/location", tok, map[string]any{"lat": pos.Lat, "lng": pos.Lng}, nil)
		}
		_ = c.call(ctx, "POST", "/v1/jobs/"+job.ID+"/arrived", tok, nil, nil)
		if !sleep(ctx, time.Duration(20+rng.IntN(40))*time.Second) {
			return
		}
		outcome := "fixed"
		if rng.Float64() < 0.15 {
			outcome = "needs_parts"
		}
		_ = c.call(ctx, "POST", "/v1/jobs/"+job.ID+"/complete", tok, map[string]string{"outcome": outcome}, nil)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
