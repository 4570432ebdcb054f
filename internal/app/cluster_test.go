package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onsite/onsite/internal/apitest"
	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/redistest"
	"github.com/onsite/onsite/jobs"
)

// TestOnRedisCluster runs the whole server on a real 3-node Redis Cluster
// (redis-server processes started by the test): a customer's request gets
// an offer through the asynq workers and the batch round, the technician's
// live stream carries it, an Idempotency-Key replays, rate limits count, and
// /readyz is 200 while the cluster takes tasks and 503 once it cannot.
func TestOnRedisCluster(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	cluster := redistest.StartCluster(t, 3)
	const perCaller = 200
	s := apitest.Start(t, "postgres", 0, apitest.RedisURL(cluster.URL()),
		apitest.Env("ONSITE_BATCH_WINDOW", "1s"), apitest.Env("ONSITE_RATE_LIMIT_PRINCIPAL", "200"))
	if !s.App.Config.RedisCluster() {
		t.Fatalf("REDIS_URL %s not read as a cluster", s.App.Config.RedisURL)
	}
	s.Must(http.StatusOK, "GET", "/readyz", "", nil, nil)

	techs := onboard(t, s, 1000)
	techTok := s.Token(auth.Technician, techs[0])
	stream := s.Stream("/v1/me/stream", techTok, "")

	// An Idempotency-Key replays the first answer and creates one request.
	cust := s.Token(auth.Customer, "carla")
	body := map[string]any{"skill": "router_replace", "lat": 47.3769, "lng": 8.5417}
	var req fullRequest
	first := s.Must(http.StatusCreated, "POST", "/v1/requests", cust, body, &req, "Idempotency-Key", "cluster-1")
	again := s.Must(http.StatusCreated, "POST", "/v1/requests", cust, body, nil, "Idempotency-Key", "cluster-1")
	if string(again.Body) != string(first.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("resend answered %s (replayed %q), first %s", again.Body, again.Header.Get("Idempotent-Replayed"), first.Body)
	}
	if n := s.Rows("requests"); n != 1 {
		t.Fatalf("%d requests after a resend", n)
	}

	// The offer: outbox → asynq on the cluster → batch round → offer.
	var got offer
	apitest.Eventually(t, 30*time.Second, "an offer on the cluster", func() bool {
		var list struct{ Items []offer }
		s.Must(http.StatusOK, "GET", "/v1/me/offers", techTok, nil, &list)
		if len(list.Items) > 0 {
			got = list.Items[0]
			return true
		}
		time.Sleep(200 * time.Millisecond) // stay well under the per-caller limit
		return false
	})
	if got.RequestID != req.ID {
		t.Fatalf("offer for %s, want %s", got.RequestID, req.ID)
	}
	ev := next(t, stream, "the offer on the technician's live stream", func(ev apitest.SSE) bool { return ev.Event == "offer" })
	var oc struct {
		OfferID string `json:"offer_id"`
	}
	if _ = json.Unmarshal([]byte(ev.Data), &oc); oc.OfferID != got.ID {
		t.Fatalf("stream offer %s, want %s", ev.Data, got.ID)
	}
	s.Must(http.StatusOK, "POST", "/v1/offers/"+got.ID+"/accept", techTok, nil, &req)
	if req.State != "assigned" {
		t.Fatalf("state after accept: %s", req.State)
	}

	// Rate limits count on the cluster: a fresh caller gets 429 past its limit.
	rita := s.Token(auth.Ops, "rita")
	for i := range perCaller {
		if r := s.Call("GET", "/v1/skills", rita, nil); r.Status != http.StatusOK {
			t.Fatalf("call %d: %d %s", i+1, r.Status, r.Body)
		}
	}
	if r := s.Call("GET", "/v1/skills", rita, nil); r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("call %d: %d, want 429 with Retry-After", perCaller+1, r.Status)
	}

	// asynq's keys are on the cluster, spread by queue (hash tag {queue}).
	var found atomic.Int64
	rc := cluster.Client()
	err := rc.ForEachMaster(t.Context(), func(ctx context.Context, n *redis.Client) error {
		keys, err := n.Keys(ctx, "asynq:{"+s.App.Config.QueuePrefix+"*").Result()
		found.Add(int64(len(keys)))
		return err
	})
	if err != nil || found.Load() == 0 {
		t.Fatalf("asynq keys on the cluster: %d (%v)", found.Load(), err)
	}

	// /readyz writes where asynq writes: the same slot as each queue's keys.
	for _, q := range jobs.QueueNames(s.App.Config.QueuePrefix) {
		ours, _ := rc.ClusterKeySlot(t.Context(), s.App.Config.QueuePrefix+"ready:{"+q+"}").Result()
		theirs, _ := rc.ClusterKeySlot(t.Context(), "asynq:{"+q+"}:pending").Result()
		if ours != theirs {
			t.Fatalf("queue %s: readiness key in slot %d, asynq's keys in slot %d", q, ours, theirs)
		}
	}

	// No node, no tasks: /readyz says so.
	cluster.Stop()
	apitest.Eventually(t, 15*time.Second, "/readyz to answer 503 with the cluster down", func() bool {
		r := s.Call("GET", "/readyz", "", nil)
		return r.Status == http.StatusServiceUnavailable && strings.Contains(string(r.Body), `"redis":"unavailable"`)
	})
}

// TestReadyzWithoutRedis: on a single Redis too, /readyz is 503 once tasks
// cannot be queued.
func TestReadyzWithoutRedis(t *testing.T) {
	t.Parallel()
	r := redistest.StartServer(t)
	s := apitest.Start(t, "sqlite", 0, apitest.RedisURL(r.URL()), apitest.Env("ONSITE_WORKERS", "false"))
	s.Must(http.StatusOK, "GET", "/readyz", "", nil, nil)
	r.Stop()
	apitest.Eventually(t, 10*time.Second, "/readyz to answer 503 with Redis down", func() bool {
		res := s.Call("GET", "/readyz", "", nil)
		// which dependency is down, with Retry-After, and nothing of how
		// it is reached
		return res.Status == http.StatusServiceUnavailable && strings.Contains(string(res.Body), `"redis":"unavailable"`) &&
			res.Header.Get("Retry-After") != "" && !strings.Contains(string(res.Body), "127.0.0.1")
	})
	// Requests still go in (PostgreSQL owns them; Redis only wakes work),
	// and nothing answers a bare 500.
	ops := s.Token(auth.Ops, "alice")
	if res := s.Call("POST", "/v1/skills", ops, map[string]string{"code": "wifi_setup", "name": "Wi-Fi"}); res.Status >= 500 && res.Status != http.StatusServiceUnavailable {
		t.Fatalf("with Redis down: %d %s", res.Status, res.Body)
	}
	// Back without anyone's help.
	r.Restart()
	apitest.Eventually(t, 15*time.Second, "/readyz to answer 200 once Redis is back", func() bool {
		return s.Call("GET", "/readyz", "", nil).Status == http.StatusOK
	})
}
