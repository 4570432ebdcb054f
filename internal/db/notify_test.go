package db_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/dbtest"
)

// TestUpdateNotify: an update that changes a row is heard once, by this
// process's subscribers and (on PostgreSQL) by another process's listener;
// one that changes nothing is not heard at all.
func TestUpdateNotify(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) { testUpdateNotify(t, dbtest.SQLite(t), nil) })
	t.Run("postgres", func(t *testing.T) {
		u := dbtest.PostgresSchemaURL(t)
		ctx := context.Background()
		var handles []*db.DB
		for range 2 { // two processes on one database
			d, err := db.OpenPostgres(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = d.Close() })
			handles = append(handles, d)
		}
		if err := db.Migrate(ctx, handles[0], slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
			t.Fatal(err)
		}
		testUpdateNotify(t, handles[0], handles[1])
	})
}

func testUpdateNotify(t *testing.T, d, other *db.DB) {
	ctx := context.Background()
	if err := d.Exec(`INSERT INTO skills (code, name, created_at) VALUES ('s1', 'S', ?)`, time.Now().UTC()).Error; err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var local, remote []string
	d.Subscribe("test", func(p string) { mu.Lock(); local = append(local, p); mu.Unlock() })
	if other != nil {
		lctx, stop := context.WithCancel(ctx)
		t.Cleanup(stop)
		listening := make(chan struct{})
		var once sync.Once
		go other.Listen(lctx, "test", func(p string) { mu.Lock(); remote = append(remote, p); mu.Unlock() },
			func() { once.Do(func() { close(listening) }) })
		<-listening
	}
	for _, tc := range []struct {
		name, code string
		changed    int64
	}{{"a row changes", "s1", 1}, {"nothing changes", "nope", 0}} {
		var rows []struct{ Code string }
		n, err := d.UpdateNotify(ctx, &rows, "test", "moved "+tc.code, `UPDATE skills SET name = ? WHERE code = ? RETURNING code`, "T", tc.code)
		if err != nil || n != tc.changed || len(rows) != int(tc.changed) {
			t.Fatalf("%s: %d rows %+v, %v", tc.name, n, rows, err)
		}
	}
	want := 1
	if other == nil {
		want = 0 // one process: nobody else listens
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		heard := [2][]string{append([]string(nil), local...), append([]string(nil), remote...)}
		mu.Unlock()
		if len(heard[0]) == 1 && len(heard[1]) == want {
			if heard[0][0] != "moved s1" || (want == 1 && heard[1][0] != "moved s1") {
				t.Fatalf("heard %v", heard)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("heard %v", heard)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // and nothing more arrives
	mu.Lock()
	defer mu.Unlock()
	if len(local) != 1 || len(remote) != want {
		t.Fatalf("heard %v and %v", local, remote)
	}
}
