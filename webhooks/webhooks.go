// Package webhooks lets owners (customers, and the machines acting for them)
// register URLs that hear about their requests' status changes, and
// delivers them. Each status change owed to an endpoint is a row of
// webhook_deliveries (written by dispatch in the event's transaction, with
// the body as of the event and the request's sequence number); PostgreSQL
// keeps it until it is final, and asynq tasks only wake it up
// (deliveries.go). Each attempt is signed:
//
//	Onsite-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//
// so a receiver checks the HMAC with its secret and rejects old timestamps.
package webhooks

import (
	"context"
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"gorm.io/gorm"

	"github.com/onsite/onsite/internal/addrpolicy"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/errs"
)

// Endpoint is a registered URL.
type Endpoint struct {
	ID        string     `json:"id" gorm:"primaryKey"`
	OwnerID   string     `json:"owner"`
	URL       string     `json:"url" gorm:"column:url"`
	Secret    string     `json:"-"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at"`
}

// TableName is the endpoints table.
func (Endpoint) TableName() string { return "webhook_endpoints" }

// Registered is a new endpoint with its signing secret, shown this once.
type Registered struct {
	Endpoint
	Secret string `json:"secret"`
}

// Service registers endpoints and delivers to them.
type Service struct {
	db     *db.DB
	client *http.Client
	now    func() time.Time
	jitter func() float64 // in [0, 1), spreads retries (Backoff)
	waker  Waker
	// allowPrivate skips the address policy at registration (tests, labs).
	allowPrivate bool
}

// NewService returns the webhook service. client sends the deliveries; nil
// means SafeClient(false).
func NewService(d *db.DB, client *http.Client, now func() time.Time) *Service {
	if client == nil {
		client = SafeClient(false)
	}
	return &Service{db: d, client: client, now: func() time.Time { return db.UTC(now()) }, jitter: rand.Float64}
}

// SafeClient returns the HTTP client for deliveries: it follows no redirects
// and, unless allowPrivate, connects only to globally reachable unicast
// addresses (addrpolicy, checked on the address it actually dials, so DNS
// cannot point it inside), so an owner's URL cannot reach services inside
// Onsite's network.
func SafeClient(allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	if !allowPrivate {
		dialer.Control = addrpolicy.Control
	}
	transport := &http.Transport{DialContext: dialer.DialContext, TLSHandshakeTimeout: 5 * time.Second, MaxIdleConnsPerHost: 4}
	return &http.Client{Timeout: 10 * time.Second, Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// AllowPrivate lets owners register URLs of any address (tests, labs; with
// SafeClient(true)); call it before use.
func (s *Service) AllowPrivate() { s.allowPrivate = true }

// Register adds an endpoint for an owner.
func (s *Service) Register(ctx context.Context, owner, rawURL string) (Registered, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(rawURL) > 2000 {
		return Registered{}, errs.InvalidField("url", "url must be an http(s) URL")
	}
	if !s.allowPrivate {
		if err := addrpolicy.CheckURL(ctx, net.DefaultResolver, u); err != nil {
			return Registered{}, errs.InvalidField("url", "Onsite calls only public internet addresses: %v", err)
		}
	}
	var n int64
	if err := s.db.WithContext(ctx).Model(&Endpoint{}).Where("owner_id = ? AND revoked_at IS NULL", owner).Count(&n).Error; err != nil {
		return Registered{}, fmt.Errorf("count endpoints: %w", err)
	}
	if n >= 10 {
		return Registered{}, errs.ConflictReason("too_many_endpoints", "at most 10 webhook endpoints per owner")
	}
	raw := make([]byte, 24)
	if _, err := crand.Read(raw); err != nil {
		return Registered{}, fmt.Errorf("generate secret: %w", err)
	}
	e := Endpoint{ID: db.NewID(), OwnerID: owner, URL: rawURL, Secret: "whsec_" + hex.EncodeToString(raw), CreatedAt: s.now()}
	if err := s.db.WithContext(ctx).Create(&e).Error; err != nil {
		return Registered{}, fmt.Errorf("register endpoint: %w", err)
	}
	return Registered{Endpoint: e, Secret: e.Secret}, nil
}

// List returns an owner's live endpoints.
func (s *Service) List(ctx context.Context, owner string) ([]Endpoint, error) {
	out := []Endpoint{}
	if err := s.db.WithContext(ctx).Where("owner_id = ? AND revoked_at IS NULL", owner).Order("created_at").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	return out, nil
}

// Remove revokes an owner's endpoint; what it was still owed fails with
// the reason "endpoint removed".
func (s *Service) Remove(ctx context.Context, owner, id string) error {
	now := s.now()
	return s.db.Tx(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&Endpoint{}).Where("id = ? AND owner_id = ? AND revoked_at IS NULL", id, owner).Update("revoked_at", now)
		if res.Error != nil {
			return fmt.Errorf("remove endpoint: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return errs.NotFoundf("webhook endpoint %s not found", id)
		}
		if err := tx.Model(&delivery{}).Where("endpoint_id = ? AND state IN ?", id, []string{Pending, Delivering}).Updates(map[string]any{
			"state": Failed, "failed_at": now, "next_attempt_at": nil, "lease_until": nil, "last_error": errRemoved.Error()}).Error; err != nil {
			return fmt.Errorf("drop deliveries of endpoint %s: %w", id, err)
		}
		return nil
	})
}

// Sign returns the Onsite-Signature header value for body at time t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}
