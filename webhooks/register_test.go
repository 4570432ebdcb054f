package webhooks_test

import (
	"context"
	"testing"
	"time"

	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/dbtest"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/webhooks"
)

// TestRegistrationRefusesAddressesOnsiteDoesNotCall: an owner learns at
// registration (422 on url), not by missing deliveries, that a URL points
// where Onsite does not call; nothing is written.
func TestRegistrationRefusesAddressesOnsiteDoesNotCall(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := webhooks.NewService(d, nil, time.Now)
		ctx := context.Background()
		for _, u := range []string{"http://100.100.100.200/latest/meta-data", "https://[64:ff9b::a9fe:a9fe]/", "http://198.18.0.1/x",
			"http://127.0.0.1:8080/hook", "https://[::ffff:10.0.0.1]/", "http://240.0.0.1/", "https://localhost/hook"} {
			_, err := s.Register(ctx, "owner", u)
			if e, ok := errs.As(err); !ok || e.Code != errs.Invalid || e.Field != "url" {
				t.Errorf("%s: %v, want 422 on url", u, err)
			}
		}
		var n int64
		d.Table("webhook_endpoints").Count(&n)
		if n != 0 {
			t.Fatalf("%d endpoints written", n)
		}
		if _, err := s.Register(ctx, "owner", "https://93.184.216.34/hooks"); err != nil {
			t.Fatalf("a public address: %v", err)
		}
	})
}
