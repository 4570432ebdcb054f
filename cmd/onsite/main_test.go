package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/twiliotest"
)

// syncBuffer is a bytes.Buffer safe to read while run writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeEmbedded is `make run` on a fresh machine: no settings at all but
// an address and a data directory, an SQLite file and the in-process Redis;
// it serves, is ready, and stops cleanly.
func TestServeEmbedded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve"}, []string{"ONSITE_ADDR=127.0.0.1:0", "ONSITE_DATA_DIR=" + dir}, &stdout, &stderr)
	}()
	re := regexp.MustCompile(`serving on (http://127\.0\.0\.1:\d+)`)
	var base string
	deadline := time.Now().Add(30 * time.Second)
	for base == "" {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			base = m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("not serving after 30 s; stderr:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(stdout.String(), "dashboard sign-in") || !strings.Contains(stderr.String(), "embedded single-node mode") {
		t.Errorf("stdout %q does not show the dashboard sign-in, or the log does not say embedded mode", stdout.String())
	}
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz %d %s", resp.StatusCode, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("did not stop")
	}
}

// TestServeRefusesCredentialsTwilioRefuses: `onsite serve` with a Twilio
// auth token that Twilio (the stand-in, through TWILIO_API_URL) answers 401
// for does not start, and says why.
func TestServeRefusesCredentialsTwilioRefuses(t *testing.T) {
	t.Parallel()
	tw := twiliotest.Start(t)
	var stdout, stderr syncBuffer
	err := run(t.Context(), []string{"serve"}, []string{"ONSITE_ADDR=127.0.0.1:0", "ONSITE_DATA_DIR=" + t.TempDir(),
		"TWILIO_ACCOUNT_SID=" + twiliotest.AccountSID, "TWILIO_AUTH_TOKEN=wrongtoken", "TWILIO_FROM=" + twiliotest.From,
		"TWILIO_API_URL=" + tw.URL()}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "Twilio refused TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN") || !strings.Contains(err.Error(), "not starting") {
		t.Fatalf("serve with a refused token: %v", err)
	}
	if strings.Contains(stdout.String(), "serving") {
		t.Fatalf("it served: %s", stdout.String())
	}
}

func TestCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := []string{"ONSITE_DATA_DIR=" + dir}
	tests := []struct {
		name    string
		args    []string
		env     []string
		wantErr string
		wantOut string
	}{
		{"no command", nil, env, "no command", ""},
		{"unknown command", []string{"fly"}, env, "unknown command", ""},
		{"help", []string{"help"}, env, "", "ONSITE_ADDR"},
		{"token", []string{"token", "--role", "ops", "--subject", "alice"}, env, "", "."},
		{"token bad role", []string{"token", "--role", "king", "--subject", "alice"}, env, "unknown role", ""},
		{"token no subject", []string{"token", "--role", "ops"}, env, "--subject", ""},
		{"migrate", []string{"migrate"}, env, "", ""},
		{"bad setting", []string{"serve"}, append(env, "ONSITE_ADDR=nowhere"), "ONSITE_ADDR", ""},
		{"unknown setting", []string{"serve"}, append(env, "ONSITE_COLOUR=red"), "ONSITE_COLOUR", ""},
		{"simulate without scenario", []string{"simulate"}, env, "--scenario", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), tt.args, tt.env, &out, &errOut)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Fatalf("output %q lacks %q", out.String(), tt.wantOut)
			}
		})
	}
}

// TestDemoFeedsTheCity runs the demo for a few seconds and checks that
// technicians went on duty and requests were opened and offered through the
// API.
func TestDemoFeedsTheCity(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Second)
	defer cancel()
	var stdout, stderr syncBuffer
	err := run(ctx, []string{"demo", "--technicians", "8", "--per-hour", "3600"}, []string{"ONSITE_ADDR=127.0.0.1:0", "ONSITE_DATA_DIR=" + dir, "ONSITE_BATCH_WINDOW=1s"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "dashboard:") {
		t.Fatalf("stdout %q", stdout.String())
	}
	// the data the demo left behind
	d, err := sqlOpen(dir)
	if err != nil {
		t.Fatal(err)
	}
	var techs, requests, offers int64
	d.Table("technicians").Where("duty_status <> 'offline'").Count(&techs)
	d.Table("requests").Count(&requests)
	d.Table("offers").Count(&offers)
	if techs < 4 || requests < 3 || offers < 1 {
		t.Fatalf("after the demo: %d technicians on duty, %d requests, %d offers", techs, requests, offers)
	}
}

func sqlOpen(dir string) (*db.DB, error) {
	return db.OpenSQLite(context.Background(), filepath.Join(dir, "onsite.db"))
}
