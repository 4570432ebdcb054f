package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm/clause"

	"github.com/onsite/onsite/internal/apitest"
	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/dbtest"
	"github.com/onsite/onsite/technicians"
)

// BenchmarkPings sends location pings through HTTP into PostgreSQL (the
// whole path: token check, rate limits, validation, the conditional UPDATE,
// the live stream) from 10,000 technicians, 32 connections at once; single
// pings, and batches of 10 as an app sends after a gap.
func BenchmarkPings(b *testing.B) {
	s := apitest.Start(b, "postgres", dbtest.RedisDBApp, apitest.Env("ONSITE_WORKERS", "false"))
	const n = 10_000
	now := time.Now().UTC()
	techs := make([]technicians.Technician, n)
	tokens := make([]string, n)
	for i := range techs {
		techs[i] = technicians.Technician{ID: fmt.Sprintf("bench-%05d", i), Name: "T", Phone: fmt.Sprintf("+4178%07d", i), Locale: "en",
			DutyStatus: "available", TravelMode: "car", SpeedKmh: 25, RadiusKm: 30, Capacity: 1, CreatedAt: now, UpdatedAt: now}
		tokens[i] = s.Token(auth.Technician, techs[i].ID)
	}
	if err := s.App.DB.Omit(clause.Associations).CreateInBatches(techs, 1000).Error; err != nil {
		b.Fatal(err)
	}
	for _, batch := range []int{1, 10} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			start := time.Now()
			elapsed, p99 := load(b, 32, http.StatusOK, func(i int) *http.Request {
				tech := i % n
				at := start.Add(time.Duration(i) * time.Microsecond)
				var body []byte
				path := "/v1/me/location"
				if batch == 1 {
					body, _ = json.Marshal(map[string]any{"lat": 47.3 + float64(tech%100)/1000, "lng": 8.5, "at": at})
				} else {
					path = "/v1/me/locations"
					var pings []map[string]any
					for k := range batch {
						pings = append(pings, map[string]any{"lat": 47.3 + float64(k)/1000, "lng": 8.5, "at": at.Add(-time.Duration(batch-k) * time.Second)})
					}
					body, _ = json.Marshal(map[string]any{"pings": pings})
				}
				req, _ := http.NewRequest(http.MethodPost, s.URL+path, bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tokens[tech])
				return req
			})
			b.ReportMetric(float64(b.N*batch)/elapsed.Seconds(), "pings/s")
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "requests/s")
			b.ReportMetric(p99, "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// load sends b.N requests made by build over conns connections at once and
// returns how long it took and the p99 latency in ms; any other status than
// want fails the benchmark.
func load(b *testing.B, conns, want int, build func(i int) *http.Request) (time.Duration, float64) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * conns}}
	var next atomic.Int64
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				req := build(i)
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				resp, err := client.Do(req)
				lat[i] = time.Since(t0)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body) // so the connection is reused
				resp.Body.Close()
				if resp.StatusCode != want {
					b.Errorf("status %d, want %d", resp.StatusCode, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	return elapsed, float64(lat[len(lat)*99/100].Microseconds()) / 1000
}

// BenchmarkCreateRequest posts requests end to end on PostgreSQL: token,
// rate limits, idempotency key, validation, the insert with its event and
// outbox rows in one transaction, 16 connections at once.
func BenchmarkCreateRequest(b *testing.B) {
	s := apitest.Start(b, "postgres", dbtest.RedisDBApp, apitest.Env("ONSITE_WORKERS", "false"))
	ops := s.Token(auth.Ops, "bench")
	s.Must(http.StatusCreated, "POST", "/v1/skills", ops, map[string]string{"code": "wifi_setup", "name": "Wi-Fi"}, nil)
	tokens := make([]string, 100)
	for i := range tokens {
		tokens[i] = s.Token(auth.Customer, fmt.Sprintf("c%03d", i))
	}
	elapsed, p99 := load(b, 16, http.StatusCreated, func(i int) *http.Request {
		body, _ := json.Marshal(map[string]any{"skill": "wifi_setup", "lat": 47.3 + float64(i%100)/1000, "lng": 8.5, "address": "Bench street 1"})
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/v1/requests", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tokens[i%len(tokens)])
		req.Header.Set("Idempotency-Key", fmt.Sprintf("bench-%d", i))
		return req
	})
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "requests/s")
	b.ReportMetric(p99, "p99-ms")
	b.ReportMetric(0, "ns/op")
}
