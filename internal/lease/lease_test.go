package lease_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/dbtest"
	"github.com/onsite/onsite/internal/lease"
)

// clock is a fake clock the tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func mustAcquire(t *testing.T, s *lease.Store, name, owner string, ttl time.Duration) lease.Lease {
	t.Helper()
	l, ok, err := s.Acquire(context.Background(), name, owner, ttl)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatalf("%s could not acquire %s", owner, name)
	}
	return l
}

func mustNotAcquire(t *testing.T, s *lease.Store, name, owner string, ttl time.Duration) {
	t.Helper()
	l, ok, err := s.Acquire(context.Background(), name, owner, ttl)
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		t.Fatalf("%s acquired %s (token %d) while another owner held it", owner, name, l.Token)
	}
}

func TestAcquireRenewExpireTakeOver(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		clk := newClock()
		s := lease.NewStore(d, lease.WithClock(clk.Now))
		const ttl = 10 * time.Second

		a := mustAcquire(t, s, "batch:", "a", ttl)
		if a.Token != 1 || a.Owner != "a" || !a.ExpiresAt.Equal(clk.Now().Add(ttl)) {
			t.Fatalf("first acquire = %+v", a)
		}
		mustNotAcquire(t, s, "batch:", "b", ttl)

		// Renewal keeps the token and moves the expiry.
		clk.Add(6 * time.Second)
		a2 := mustAcquire(t, s, "batch:", "a", ttl)
		if a2.Token != 1 || !a2.ExpiresAt.Equal(clk.Now().Add(ttl)) {
			t.Fatalf("renewal = %+v", a2)
		}
		clk.Add(6 * time.Second) // past the first expiry, not the renewed one
		mustNotAcquire(t, s, "batch:", "b", ttl)

		// Expired: b takes over with a higher token.
		clk.Add(4 * time.Second) // exactly at the renewed expiry
		b := mustAcquire(t, s, "batch:", "b", ttl)
		if b.Token != 2 || b.Owner != "b" {
			t.Fatalf("takeover = %+v", b)
		}
		mustNotAcquire(t, s, "batch:", "a", ttl)
		got, ok, err := s.Get(context.Background(), "batch:")
		if err != nil || !ok || got.Owner != "b" || got.Token != 2 {
			t.Fatalf("stored = %+v, %v, %v", got, ok, err)
		}

		// Other names are other leases.
		if l := mustAcquire(t, s, "batch:zurich", "a", ttl); l.Token != 1 {
			t.Fatalf("second lease token %d", l.Token)
		}

		// Release hands over at once; a takes it back with token 3.
		if err := s.Release(context.Background(), b.Fence()); err != nil {
			t.Fatal(err)
		}
		if a3 := mustAcquire(t, s, "batch:", "a", ttl); a3.Token != 3 {
			t.Fatalf("after release: %+v", a3)
		}
		// A stale release (b no longer holds it) changes nothing.
		if err := s.Release(context.Background(), b.Fence()); err != nil {
			t.Fatal(err)
		}
		mustNotAcquire(t, s, "batch:", "b", ttl)

		// ReleaseAt shortens the tenure to the given time, never lengthens it.
		a4 := mustAcquire(t, s, "batch:", "a", ttl)
		if err := s.ReleaseAt(context.Background(), a4.Fence(), clk.Now().Add(2*time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := s.ReleaseAt(context.Background(), a4.Fence(), clk.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		clk.Add(time.Second)
		mustNotAcquire(t, s, "batch:", "b", ttl)
		clk.Add(time.Second)
		if b2 := mustAcquire(t, s, "batch:", "b", ttl); b2.Token != 4 {
			t.Fatalf("after ReleaseAt: %+v", b2)
		}

		if _, ok, err := s.Get(context.Background(), "missing"); ok || err != nil {
			t.Fatalf("Get(missing) = %v, %v", ok, err)
		}
	})
}

// TestFenceRefusesLateWrites: an owner paused past its lease writes after
// another process took over; its Check fails inside the write transaction,
// which is rolled back, so nothing it wrote lands.
func TestFenceRefusesLateWrites(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		clk := newClock()
		s := lease.NewStore(d, lease.WithClock(clk.Now))
		const ttl = 10 * time.Second
		a := mustAcquire(t, s, "sweep:", "a", ttl)

		write := func(f lease.Fence, id string) error {
			return d.Tx(ctx, func(tx *gorm.DB) error {
				if err := tx.Exec("INSERT INTO skills (code, name, created_at) VALUES (?, ?, ?)", id, id, db.UTC(clk.Now())).Error; err != nil {
					return err
				}
				return f.Check(tx)
			})
		}
		if err := write(a.Fence(), "while_held"); err != nil {
			t.Fatalf("write under a held lease: %v", err)
		}

		// a pauses; its lease expires (Check refuses even before anyone
		// takes over), then b takes it.
		clk.Add(ttl)
		if err := write(a.Fence(), "expired"); !errors.Is(err, lease.ErrLost) {
			t.Fatalf("write under an expired lease: %v, want ErrLost", err)
		}
		b := mustAcquire(t, s, "sweep:", "b", ttl)
		if err := write(a.Fence(), "late"); !errors.Is(err, lease.ErrLost) {
			t.Fatalf("late write of the old owner: %v, want ErrLost", err)
		}
		if err := write(b.Fence(), "new_owner"); err != nil {
			t.Fatalf("write of the new owner: %v", err)
		}
		// Same owner name, old token (a process that lost the lease and got
		// it back later must not use its first fence).
		clk.Add(ttl)
		a2 := mustAcquire(t, s, "sweep:", "a", ttl)
		if a2.Token != 3 {
			t.Fatalf("token %d, want 3", a2.Token)
		}
		if err := write(a.Fence(), "old_token"); !errors.Is(err, lease.ErrLost) {
			t.Fatalf("write with an old token of the same owner: %v, want ErrLost", err)
		}
		if err := write(lease.Fence{}, "zero"); !errors.Is(err, lease.ErrLost) {
			t.Fatalf("write with the zero fence: %v, want ErrLost", err)
		}

		var codes []string
		if err := d.Table("skills").Order("code").Pluck("code", &codes).Error; err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(codes) != "[new_owner while_held]" {
			t.Fatalf("rows written: %v, want only those under a held lease", codes)
		}
	})
}

// TestFenceHoldsOffTakeover (PostgreSQL): after a passing Check the lease
// cannot change owner until the checking transaction ends, so its writes
// land before the new tenure.
func TestFenceHoldsOffTakeover(t *testing.T) {
	t.Parallel()
	d := dbtest.Postgres(t)
	ctx := context.Background()
	clk := newClock()
	s := lease.NewStore(d, lease.WithClock(clk.Now))
	a := mustAcquire(t, s, "batch:", "a", time.Second)

	checked := make(chan struct{})
	finish := make(chan struct{})
	txDone := make(chan error, 1)
	go func() {
		txDone <- d.Tx(ctx, func(tx *gorm.DB) error {
			if err := a.Fence().Check(tx); err != nil {
				return err
			}
			close(checked)
			<-finish
			return tx.Exec("INSERT INTO skills (code, name, created_at) VALUES ('late', 'late', ?)", db.UTC(clk.Now())).Error
		})
	}()
	<-checked
	clk.Add(time.Hour) // long expired
	acquired := make(chan lease.Lease, 1)
	go func() {
		l, ok, err := s.Acquire(ctx, "batch:", "b", time.Second)
		if err != nil || !ok {
			t.Errorf("takeover after the transaction: %v, %v", ok, err)
		}
		acquired <- l
	}()
	select {
	case l := <-acquired:
		t.Fatalf("took over (token %d) while a checked transaction was open", l.Token)
	case <-time.After(200 * time.Millisecond):
		// The takeover waits on the row lock; nothing is asserted on time.
	}
	close(finish)
	if err := <-txDone; err != nil {
		t.Fatal(err)
	}
	if l := <-acquired; l.Token != 2 || l.Owner != "b" {
		t.Fatalf("takeover = %+v", l)
	}
}

// TestAcquireRace: 50 goroutines race for a missing lease, then for an
// expired one: exactly one wins each time.
func TestAcquireRace(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		clk := newClock()
		s := lease.NewStore(d, lease.WithClock(clk.Now))
		race := func() []lease.Lease {
			var (
				mu  sync.Mutex
				won []lease.Lease
				wg  sync.WaitGroup
			)
			start := make(chan struct{})
			for i := range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					l, ok, err := s.Acquire(context.Background(), "race:", fmt.Sprintf("p%02d", i), time.Minute)
					if err != nil {
						t.Errorf("p%02d: %v", i, err)
						return
					}
					if ok {
						mu.Lock()
						won = append(won, l)
						mu.Unlock()
					}
				}()
			}
			close(start)
			wg.Wait()
			return won
		}
		won := race()
		if len(won) != 1 || won[0].Token != 1 {
			t.Fatalf("missing lease: winners %+v, want exactly one with token 1", won)
		}
		clk.Add(time.Minute)
		won2 := race()
		if len(won2) != 1 {
			t.Fatalf("expired lease: winners %+v, want exactly one", won2)
		}
		want := int64(2)
		if won2[0].Owner == won[0].Owner {
			want = 1 // the previous holder renewed
		}
		if won2[0].Token != want {
			t.Fatalf("expired lease: winner %+v, want token %d", won2[0], want)
		}
		if n := dbtest.Count(t, d, "leases"); n != 1 {
			t.Fatalf("%d lease rows, want 1", n)
		}
	})
}
