package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/dispatch/match"
	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/apitest"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/dbtest"
	"github.com/onsite/onsite/jobs"
	"github.com/onsite/onsite/technicians"
)

// redisProcess is a real redis-server of the test's own, so the test can
// stop it and start it again on the same port.
type redisProcess struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
}

func startRedis(t *testing.T, port int) *redisProcess {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed")
	}
	r := &redisProcess{t: t, port: port}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *redisProcess) start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	apitest.Eventually(r.t, 10*time.Second, "redis to answer", func() bool {
		c, err := net.Dial("tcp", r.addr())
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

func (r *redisProcess) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

func (r *redisProcess) addr() string { return fmt.Sprintf("127.0.0.1:%d", r.port) }

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newServices(t *testing.T, d *db.DB) (*technicians.Service, *dispatch.Service) {
	t.Helper()
	techs := technicians.NewService(d, time.Now)
	svc := dispatch.NewService(d, dispatch.Config{SLA: time.Hour, GiveUp: time.Hour, WindowLead: time.Hour,
		OfferStrategy: match.Sequential, OfferTimeout: time.Minute, WaveSize: 1, MaxSearchKm: 40}, time.Now)
	if _, err := techs.CreateSkill(context.Background(), "wifi_setup", "Wi-Fi"); err != nil {
		t.Fatal(err)
	}
	// One technician per request the tests open: each holds one offer at a
	// time.
	ctx := context.Background()
	for i := range 8 {
		tech, err := techs.Create(ctx, technicians.NewTechnician{Name: "Tina", Phone: "+4179000111" + strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := techs.Certify(ctx, tech.ID, "wifi_setup", nil, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := techs.SetDuty(ctx, tech.ID, technicians.Available); err != nil {
			t.Fatal(err)
		}
		p := geo.Offset(geo.Point{Lat: 47.3769, Lng: 8.5417}, 1000+float64(i)*200, 0)
		if _, err := techs.UpdateLocation(ctx, tech.ID, technicians.Ping{Lat: &p.Lat, Lng: &p.Lng}); err != nil {
			t.Fatal(err)
		}
	}
	return techs, svc
}

func createRequest(t *testing.T, svc *dispatch.Service, n int) string {
	t.Helper()
	lat, lng := 47.3769, 8.5417
	out, err := svc.Create(context.Background(), dispatch.Caller{Role: "customer", Subject: "c" + strconv.Itoa(n)}, "",
		dispatch.NewRequest{Skill: "wifi_setup", Lat: &lat, Lng: &lng})
	if err != nil {
		t.Fatal(err)
	}
	return out.Request.ID
}

// TestNothingLostWhenRedisStops runs the real worker against a Redis the test
// stops in the middle and starts again: requests committed while Redis was
// down still get matched, and each task is enqueued once.
func TestNothingLostWhenRedisStops(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		rp := startRedis(t, freePort(t))
		_, svc := newServices(t, d)
		rc := redis.NewClient(&redis.Options{Addr: rp.addr(), MaxRetries: 1, DialTimeout: 200 * time.Millisecond})
		t.Cleanup(func() { _ = rc.Close() })
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- jobs.NewWorker(d, rc, svc, "", quiet()).Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })

		offered := func(id string) bool {
			var n int64
			d.Table("offers").Where("request_id = ?", id).Count(&n)
			return n > 0
		}
		first := createRequest(t, svc, 1)
		apitest.Eventually(t, 15*time.Second, "the first request to be offered", func() bool { return offered(first) })

		rp.stop()
		var during []string
		for i := range 5 {
			during = append(during, createRequest(t, svc, 10+i))
		}
		time.Sleep(300 * time.Millisecond) // let the relay try and fail
		var waiting int64
		d.Table("outbox").Where("relayed_at IS NULL").Count(&waiting)
		if waiting < 5 {
			t.Fatalf("only %d tasks waiting in the outbox while Redis is down", waiting)
		}
		rp.start()
		for _, id := range during {
			apitest.Eventually(t, 30*time.Second, "request "+id+" to be offered after Redis came back", func() bool { return offered(id) })
		}
		apitest.Eventually(t, 10*time.Second, "the outbox to drain", func() bool {
			var n int64
			d.Table("outbox").Where("relayed_at IS NULL AND process_at <= ?", time.Now().UTC()).Count(&n)
			return n == 0
		})
		// every request got exactly one round of offers (tasks ran once)
		for _, id := range append(during, first) {
			var rounds int64
			d.Table("offers").Where("request_id = ?", id).Distinct("round").Count(&rounds)
			if rounds != 1 {
				t.Errorf("request %s had %d rounds of offers", id, rounds)
			}
		}
	})
}

// TestRelayEnqueuesOnce hands the same rows to asynq twice: the task id (the
// outbox row id, or the event id for the notify task a live row queues) keeps
// asynq from holding two copies.
func TestRelayEnqueuesOnce(t *testing.T) {
	t.Parallel()
	d := dbtest.SQLite(t)
	_, svc := newServices(t, d)
	createRequest(t, svc, 1)
	opt, err := redis.ParseURL(dbtest.RedisURL(dbtest.RedisDBJobs))
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opt)
	t.Cleanup(func() { _ = rc.Close() })
	prefix := fmt.Sprintf("relay%d:", time.Now().UnixNano())
	relay := jobs.NewRelay(d, asynq.NewClientFromRedisClient(rc), prefix, quiet())
	n, err := relay.Once(context.Background())
	if err != nil || n != 3 { // match and deadline to asynq, the live update to the streams (a request created searching texts nobody: no notify task; TestRelayBatchedLiveRow queues those)
		t.Fatalf("first relay: %d %v", n, err)
	}
	if err := d.Exec("UPDATE outbox SET relayed_at = NULL, locked_until = NULL").Error; err != nil {
		t.Fatal(err)
	}
	if n, err := relay.Once(context.Background()); err != nil || n != 3 {
		t.Fatalf("second relay: %d %v", n, err)
	}
	insp := asynq.NewInspectorFromRedisClient(rc)
	critical, err := insp.GetQueueInfo(prefix + dispatch.QueueCritical)
	if err != nil {
		t.Fatal(err)
	}
	deflt, err := insp.GetQueueInfo(prefix + dispatch.QueueDefault)
	if err != nil {
		t.Fatal(err)
	}
	if critical.Size != 1 || deflt.Size != 1 {
		t.Fatalf("queues hold %d and %d tasks, want 1 and 1", critical.Size, deflt.Size)
	}
	for _, q := range []string{prefix + dispatch.QueueCritical, prefix + dispatch.QueueDefault} {
		_ = insp.DeleteQueue(q, true)
	}
}

// TestRelayBatchedLiveRow relays a live row that carries a batch round's
// events (one row for hundreds of offers): every event that asks for a
// message gets its notify task, once however often the row is relayed.
func TestRelayBatchedLiveRow(t *testing.T) {
	t.Parallel()
	d := dbtest.SQLite(t)
	payload, err := json.Marshal(dispatch.TaskPayload{Batch: []dispatch.TaskPayload{
		{EventID: "e1", RequestID: "r1", Notify: true}, {EventID: "e2", RequestID: "r2"}, {EventID: "e3", RequestID: "r3", Notify: true}}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := d.Create(&dispatch.OutboxTask{ID: "row1", Kind: dispatch.TaskLive, Payload: string(payload), TaskID: "row1",
		Queue: dispatch.QueueCritical, ProcessAt: now, CreatedAt: now}).Error; err != nil {
		t.Fatal(err)
	}
	opt, err := redis.ParseURL(dbtest.RedisURL(dbtest.RedisDBJobs))
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opt)
	t.Cleanup(func() { _ = rc.Close() })
	prefix := fmt.Sprintf("relaybatch%d:", time.Now().UnixNano())
	relay := jobs.NewRelay(d, asynq.NewClientFromRedisClient(rc), prefix, quiet())
	for range 2 {
		if n, err := relay.Once(context.Background()); err != nil || n != 1 {
			t.Fatalf("relay: %d %v", n, err)
		}
		if err := d.Exec("UPDATE outbox SET relayed_at = NULL, locked_until = NULL").Error; err != nil {
			t.Fatal(err)
		}
	}
	insp := asynq.NewInspectorFromRedisClient(rc)
	t.Cleanup(func() { _ = insp.DeleteQueue(prefix+dispatch.QueueDefault, true) })
	tasks, err := insp.ListPendingTasks(prefix + dispatch.QueueDefault)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, task := range tasks {
		got = append(got, task.ID)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"e1-notify", "e3-notify"}) {
		t.Fatalf("notify tasks %v, want e1-notify and e3-notify", got)
	}
}
