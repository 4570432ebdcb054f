// Package webhooks lets owners (customers, and the machines acting for them)
// register URLs that hear about their requests' status changes. Each
// delivery is signed:
//
//	Onsite-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//
// so a receiver checks the HMAC with its secret and rejects old timestamps.
package webhooks

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
	"time"

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
}

// NewService returns the webhook service. client sends the deliveries; nil
// means SafeClient(false).
func NewService(d *db.DB, client *http.Client, now func() time.Time) *Service {
	if client == nil {
		client = SafeClient(false)
	}
	return &Service{db: d, client: client, now: func() time.Time { return db.UTC(now()) }}
}

// SafeClient returns the HTTP client for deliveries: it follows no redirects
// and, unless allowPrivate, refuses to connect to loopback, private,
// link-local or unspecified addresses (checked on the address it actually
// dials, so DNS cannot point it inside), so an owner's URL cannot reach
// services inside Onsite's network.
func SafeClient(allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, Control: func(network, address string, _ syscall.RawConn) error {
		if allowPrivate {
			return nil
		}
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		ip := net.ParseIP(host)
		if ip == nil || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified() || ip.IsMulticast() {
			return fmt.Errorf("webhook: refusing to connect to %s", host)
		}
		return nil
	}}
	transport := &http.Transport{DialContext: dialer.DialContext, TLSHandshakeTimeout: 5 * time.Second, MaxIdleConnsPerHost: 4}
	return &http.Client{Timeout: 10 * time.Second, Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Register adds an endpoint for an owner.
func (s *Service) Register(ctx context.Context, owner, rawURL string) (Registered, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(rawURL) > 2000 {
		return Registered{}, errs.InvalidField("url", "url must be an http(s) URL")
	}
	var n int64
	if err := s.db.WithContext(ctx).Model(&Endpoint{}).Where("owner_id = ? AND revoked_at IS NULL", owner).Count(&n).Error; err != nil {
		return Registered{}, fmt.Errorf("count endpoints: %w", err)
	}
	if n >= 10 {
		return Registered{}, errs.ConflictReason("too_many_endpoints", "at most 10 webhook endpoints per owner")
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
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

// Remove revokes an owner's endpoint.
func (s *Service) Remove(ctx context.Context, owner, id string) error {
	res := s.db.WithContext(ctx).Model(&Endpoint{}).Where("id = ? AND owner_id = ? AND revoked_at IS NULL", id, owner).Update("revoked_at", s.now())
	if res.Error != nil {
		return fmt.Errorf("remove endpoint: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return errs.NotFoundf("webhook endpoint %s not found", id)
	}
	return nil
}

// Sign returns the Onsite-Signature header value for body at time t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// Deliver posts one event to one endpoint. A revoked endpoint is skipped; an
// answer other than 2xx is an error, so the task is retried with backoff.
func (s *Service) Deliver(ctx context.Context, endpointID, eventID string, body []byte) error {
	var e Endpoint
	if err := s.db.WithContext(ctx).Where("id = ?", endpointID).First(&e).Error; err != nil {
		if db.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("load endpoint: %w", err)
	}
	if e.RevokedAt != nil {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Onsite-Webhooks/1")
	req.Header.Set("Onsite-Event-Id", eventID)
	req.Header.Set("Onsite-Signature", Sign(e.Secret, s.now(), body))
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("deliver to %s: %w", e.URL, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("deliver to %s: answered %d", e.URL, resp.StatusCode)
	}
	return nil
}
