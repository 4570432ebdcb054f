// Package apitest runs the whole Onsite server on 127.0.0.1:0 against real
// databases (a fresh PostgreSQL schema or SQLite file) and real Redis, and
// calls it as any role.
package apitest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onsite/onsite/internal/app"
	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/config"
	"github.com/onsite/onsite/internal/dbtest"
)

// Engines are the database engines every HTTP test runs on.
var Engines = []string{"postgres", "sqlite"}

// Server is a running Onsite.
type Server struct {
	URL    string
	App    *app.App
	t      testing.TB
	client *http.Client
}

// Option changes the environment or the app options the server starts with.
type Option func(o *startOptions)

type startOptions struct {
	env  map[string]string
	opts []app.Option
	now  app.Clock
}

// Env sets one variable.
func Env(k, v string) Option { return func(o *startOptions) { o.env[k] = v } }

// RedisURL points the server at any Redis REDIS_URL takes, such as a Redis
// Cluster (redistest.StartCluster(t, 3).URL()); the DB number given to Start
// is then unused.
func RedisURL(url string) Option { return Env("REDIS_URL", url) }

// Clock runs the server on now instead of time.Now (the services' clock;
// tokens, rate limits, asynq and the periodic jobs' windows keep real time).
func Clock(now app.Clock) Option { return func(o *startOptions) { o.now = now } }

// With passes an app option.
func With(opt app.Option) Option { return func(o *startOptions) { o.opts = append(o.opts, opt) } }

// Start runs a server on the engine ("postgres" or "sqlite") with Redis DB
// redisDB of the test Redis (or the Redis of a RedisURL option), stopped at
// cleanup.
func Start(t testing.TB, engine string, redisDB int, opts ...Option) *Server {
	t.Helper()
	dir := t.TempDir()
	env := map[string]string{
		"ONSITE_ADDR":       "127.0.0.1:0",
		"ONSITE_DATA_DIR":   filepath.Join(dir, "data"),
		"ONSITE_JWT_SECRET": "test-secret-test-secret-test-secret!",
		"REDIS_URL":         dbtest.RedisURL(redisDB),
		"ONSITE_PING_FLUSH": "10ms",
		// Test receivers of webhooks listen on loopback.
		"ONSITE_WEBHOOK_ALLOW_PRIVATE": "true",
		// Tests make many calls quickly; rate-limit tests lower these.
		"ONSITE_RATE_LIMIT_IP":        "1000000",
		"ONSITE_RATE_LIMIT_PRINCIPAL": "1000000",
		// Servers that share a Redis DB must not take each other's tasks.
		"ONSITE_QUEUE_PREFIX": "t" + randomSuffix() + ":",
	}
	if engine == "postgres" {
		env["DATABASE_URL"] = dbtest.PostgresSchemaURL(t)
	}
	so := startOptions{env: env, now: time.Now}
	for _, o := range opts {
		o(&so)
	}
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	cfg, err := config.Load(environ)
	if err != nil {
		t.Fatal(err)
	}
	level := slog.LevelWarn
	if os.Getenv("ONSITE_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, log, so.now, so.opts...)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		a.Close()
	})
	return &Server{URL: "http://" + ln.Addr().String(), App: a, t: t, client: &http.Client{Timeout: 30 * time.Second}}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Token returns a bearer token for role and subject.
func (s *Server) Token(role auth.Role, subject string) string {
	s.t.Helper()
	tok, err := s.App.Issuer.Issue(auth.Principal{Role: role, Subject: subject}, time.Hour)
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// Response is an answer, read whole.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Decode unmarshals the body into v.
func (r Response) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// ErrorBody is the shared error shape.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
		Reason  string `json:"reason"`
	} `json:"error"`
}

// Err decodes the error shape.
func (r Response) Err(t testing.TB) ErrorBody {
	t.Helper()
	var e ErrorBody
	r.Decode(t, &e)
	if e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("not the error shape: %s", r.Body)
	}
	return e
}

// Call sends body (a string is sent as is, anything else as JSON) with the
// token, and optional header pairs.
func (s *Server) Call(method, path, token string, body any, header ...string) Response {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}
}

// Must calls and fails the test unless the status is want; it decodes the
// body into out when out is not nil.
func (s *Server) Must(want int, method, path, token string, body, out any, header ...string) Response {
	s.t.Helper()
	r := s.Call(method, path, token, body, header...)
	if r.Status != want {
		s.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Body)
	}
	if out != nil {
		r.Decode(s.t, out)
	}
	return r
}

// Status sends a request and returns only its status, closing the body at
// once (for streams that never end).
func (s *Server) Status(method, path, token string) int {
	s.t.Helper()
	req, err := http.NewRequest(method, s.URL+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Stream opens a Server-Sent Events stream and delivers its events until the
// test ends.
func (s *Server) Stream(path, token, lastEventID string) <-chan SSE {
	s.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s.t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		s.t.Fatalf("stream %s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan SSE, 256)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev SSE
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Event != "" {
					out <- ev
				}
				ev = SSE{}
			case strings.HasPrefix(line, "id: "):
				ev.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.Event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.Data = line[6:]
			}
		}
	}()
	return out
}

// SSE is one Server-Sent Event.
type SSE struct {
	ID, Event, Data string
}

// Rows counts the rows of a table.
func (s *Server) Rows(table string) int64 {
	s.t.Helper()
	var n int64
	if err := s.App.DB.Table(table).Count(&n).Error; err != nil {
		s.t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// Eventually polls cond until it holds or the deadline passes.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func randomSuffix() string {
	return strconv.FormatInt(time.Now().UnixNano()%1e12, 36) + strconv.Itoa(rand.IntN(1e6))
}
