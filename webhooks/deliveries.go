package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/errs"
)

// Delivery states. Pending and delivering are owed; delivered and failed are
// final.
const (
	Pending    = "pending"    // waiting for its next attempt (next_at)
	Delivering = "delivering" // an attempt holds the lease; a lapsed lease is retried
	Delivered  = "delivered"  // the endpoint answered 2xx
	Failed     = "failed"     // given up (24 h of failures, or the endpoint removed); last_error says why
)

// states lists the delivery states.
func states() []string { return []string{Pending, Delivering, Delivered, Failed} }

// The retry policy.
const (
	RetryFor   = 24 * time.Hour   // a failing delivery is retried at least this long after it was queued
	FirstRetry = 10 * time.Second // the wait after the first failed attempt, doubling each time…
	MaxRetry   = time.Hour        // …up to this (each wait ±20 % jitter)
	leaseFor   = time.Minute      // longer than any attempt (the client gives up after 10 s)
	earlyBy    = 2 * time.Second  // asynq wakes to the whole second: this early counts as on time
)

// Backoff is the wait after the attempt-th failed attempt (1, 2, …): 10 s
// doubling up to an hour, scaled by 0.8 + 0.4 × jitter (jitter in [0, 1)) so
// that deliveries failed together do not come back together.
func Backoff(attempt int, jitter float64) time.Duration {
	d := MaxRetry
	if attempt < 1 {
		attempt = 1
	}
	if attempt < 20 {
		d = min(FirstRetry<<(attempt-1), MaxRetry)
	}
	return time.Duration(float64(d) * (0.8 + 0.4*jitter))
}

// Wake asks for an attempt at a delivery after In. Wake-ups with the same
// non-empty Key for the same delivery are one while the first waits.
type Wake struct {
	DeliveryID string
	In         time.Duration
	Key        string
}

// Waker queues wake-ups (asynq tasks). It is best effort and reports no
// error: whatever is due is woken again by WakeDue, so a lost wake-up only
// delays a delivery.
type Waker interface {
	Wake(ctx context.Context, w Wake)
}

// WithWaker sets how deliveries are woken up; without one only WakeDue and
// the callers of Attempt move them.
func (s *Service) WithWaker(w Waker) { s.waker = w }

func (s *Service) wake(ctx context.Context, w Wake) {
	if s.waker != nil {
		s.waker.Wake(ctx, w)
	}
}

// delivery is a row of webhook_deliveries: one event owed to one endpoint,
// written by dispatch in the event's transaction with the body as of the
// event.
type delivery struct {
	ID            string `gorm:"primaryKey"`
	EndpointID    string
	EventID       string
	RequestID     string
	EventType     string
	Seq           int
	Body          string
	State         string
	Attempts      int
	NextAttemptAt *time.Time
	LeaseUntil    *time.Time
	QueuedAt      time.Time
	LastStatus    *int
	LastError     *string
	CreatedAt     time.Time
	DeliveredAt   *time.Time
	FailedAt      *time.Time
}

// TableName is the deliveries table.
func (delivery) TableName() string { return "webhook_deliveries" }

// Delivery is one entry of an endpoint's delivery log.
type Delivery struct {
	ID          string          `json:"id"`
	EndpointID  string          `json:"endpoint_id"`
	EventID     string          `json:"event_id"`
	EventType   string          `json:"event_type"`
	RequestID   string          `json:"request_id"`
	Seq         int             `json:"seq"`
	State       string          `json:"state"`
	Attempts    int             `json:"attempts"`
	NextAt      *time.Time      `json:"next_attempt_at"` // null once final
	GiveUpAt    *time.Time      `json:"give_up_after"`   // while owed: failures after this are final
	LastStatus  *int            `json:"last_status"`
	LastError   *string         `json:"last_error"`
	CreatedAt   time.Time       `json:"created_at"`
	DeliveredAt *time.Time      `json:"delivered_at"`
	FailedAt    *time.Time      `json:"failed_at"`
	Body        json.RawMessage `json:"body"`
}

func (d delivery) view() Delivery {
	v := Delivery{ID: d.ID, EndpointID: d.EndpointID, EventID: d.EventID, EventType: d.EventType, RequestID: d.RequestID,
		Seq: d.Seq, State: d.State, Attempts: d.Attempts, NextAt: d.NextAttemptAt, LastStatus: d.LastStatus, LastError: d.LastError,
		CreatedAt: d.CreatedAt, DeliveredAt: d.DeliveredAt, FailedAt: d.FailedAt, Body: json.RawMessage(d.Body)}
	if d.State == Pending || d.State == Delivering {
		t := d.QueuedAt.Add(RetryFor)
		v.GiveUpAt = &t
	}
	return v
}

// firstInLine holds for a delivery (the row of webhook_deliveries in the
// statement) when no earlier delivery of its request to the same endpoint
// is still owed: each endpoint hears of a request's events in sequence.
const firstInLine = `NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.endpoint_id = webhook_deliveries.endpoint_id
	AND p.request_id = webhook_deliveries.request_id AND p.seq < webhook_deliveries.seq AND p.state IN ('pending', 'delivering'))`

// errRemoved fails a delivery at once: its endpoint was removed.
var errRemoved = errors.New("endpoint removed")

// Attempt makes one attempt at delivery id if it is due (or its lease
// lapsed) and first in line, and records the outcome: delivered; pending
// again after Backoff; or failed for good once an attempt fails RetryFor
// after the delivery was queued. It then wakes the retry, or the next
// delivery in line. A delivery that is not due, not first in line, final,
// or leased by another attempt is left alone.
func (s *Service) Attempt(ctx context.Context, id string) error {
	d, ok, err := s.claim(ctx, id, s.now())
	if err != nil || !ok {
		return err
	}
	status, sendErr := s.send(ctx, d)
	// The outcome is recorded even when ctx ended during the attempt.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return s.finish(wctx, d, status, sendErr)
}

// claim takes the lease on a due delivery that is first in line and counts
// the attempt; the attempt number fences the outcome's write.
func (s *Service) claim(ctx context.Context, id string, now time.Time) (delivery, bool, error) {
	var rows []delivery
	err := s.db.WithContext(ctx).Raw(`UPDATE webhook_deliveries SET state = ?, attempts = attempts + 1, lease_until = ?
		WHERE id = ? AND ((state = ? AND next_attempt_at <= ?) OR (state = ? AND lease_until <= ?)) AND `+firstInLine+`
		RETURNING *`, Delivering, now.Add(leaseFor), id, Pending, now.Add(earlyBy), Delivering, now).Scan(&rows).Error
	if err != nil {
		return delivery{}, false, fmt.Errorf("claim webhook delivery %s: %w", id, err)
	}
	if len(rows) == 0 {
		return delivery{}, false, nil
	}
	return rows[0], true, nil
}

// send posts the delivery's body to its endpoint and returns the status
// answered (0 for none).
func (s *Service) send(ctx context.Context, d delivery) (int, error) {
	var e Endpoint
	if err := s.db.WithContext(ctx).Where("id = ?", d.EndpointID).First(&e).Error; err != nil {
		if db.IsNotFound(err) {
			return 0, errRemoved
		}
		return 0, fmt.Errorf("load endpoint: %w", err)
	}
	if e.RevokedAt != nil {
		return 0, errRemoved
	}
	body := []byte(d.Body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Onsite-Webhooks/1")
	req.Header.Set("Onsite-Delivery-Id", d.ID)
	req.Header.Set("Onsite-Event-Id", d.EventID)
	req.Header.Set("Onsite-Attempt", strconv.Itoa(d.Attempts))
	req.Header.Set("Onsite-Signature", Sign(e.Secret, s.now(), body))
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err // a *url.Error: it names the method and URL
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("%s answered %d", e.URL, resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// finish records an attempt's outcome, unless the delivery changed hands
// meanwhile (redelivered, or its lease lapsed and another attempt took it).
func (s *Service) finish(ctx context.Context, d delivery, status int, sendErr error) error {
	now := s.now()
	set := map[string]any{"lease_until": nil, "last_status": nil}
	if status != 0 {
		set["last_status"] = status
	}
	var retryAt time.Time
	switch {
	case sendErr == nil:
		set["state"], set["delivered_at"], set["next_attempt_at"], set["last_error"] = Delivered, now, nil, nil
	case errors.Is(sendErr, errRemoved):
		set["state"], set["failed_at"], set["next_attempt_at"], set["last_error"] = Failed, now, nil, errRemoved.Error()
	case !now.Before(d.QueuedAt.Add(RetryFor)):
		reason := fmt.Sprintf("gave up after %d attempts over %s: %v", d.Attempts, now.Sub(d.QueuedAt).Round(time.Minute), sendErr)
		set["state"], set["failed_at"], set["next_attempt_at"], set["last_error"] = Failed, now, nil, reason
	default:
		retryAt = now.Add(Backoff(d.Attempts, s.jitter()))
		set["state"], set["next_attempt_at"], set["last_error"] = Pending, retryAt, sendErr.Error()
	}
	res := s.db.WithContext(ctx).Model(&delivery{}).Where("id = ? AND state = ? AND attempts = ?", d.ID, Delivering, d.Attempts).Updates(set)
	if res.Error != nil {
		return fmt.Errorf("record webhook delivery %s: %w", d.ID, res.Error)
	}
	if res.RowsAffected == 0 {
		return nil // the attempt that holds it now records its own outcome
	}
	if !retryAt.IsZero() {
		s.wake(ctx, Wake{DeliveryID: d.ID, In: retryAt.Sub(now)})
		return nil
	}
	return s.wakeNext(ctx, d, now)
}

// wakeNext wakes the next delivery owed to d's endpoint for d's request.
func (s *Service) wakeNext(ctx context.Context, d delivery, now time.Time) error {
	var next []delivery
	if err := s.db.WithContext(ctx).Where("endpoint_id = ? AND request_id = ? AND state = ?", d.EndpointID, d.RequestID, Pending).
		Order("seq").Limit(1).Find(&next).Error; err != nil {
		return fmt.Errorf("next webhook delivery after %s: %w", d.ID, err)
	}
	if len(next) == 1 && next[0].NextAttemptAt != nil {
		s.wake(ctx, Wake{DeliveryID: next[0].ID, In: max(0, next[0].NextAttemptAt.Sub(now))})
	}
	return nil
}

// WakeDue wakes up to limit deliveries that are due and first in line, and
// those whose lease lapsed (the attempt died with its process): the sweep
// under lost wake-ups. It returns how many it woke.
func (s *Service) WakeDue(ctx context.Context, limit int) (int, error) {
	now := s.now()
	var ids []string
	if err := s.db.WithContext(ctx).Raw(`SELECT id FROM webhook_deliveries
		WHERE ((state = ? AND next_attempt_at <= ?) OR (state = ? AND lease_until <= ?)) AND `+firstInLine+`
		ORDER BY next_attempt_at LIMIT ?`, Pending, now, Delivering, now, limit).Scan(&ids).Error; err != nil {
		return 0, fmt.Errorf("find due webhook deliveries: %w", err)
	}
	for _, id := range ids {
		s.wake(ctx, Wake{DeliveryID: id, Key: "sweep"})
	}
	return len(ids), nil
}

// LogFilter selects a page of a delivery log.
type LogFilter struct {
	State  string // "" for every state
	Limit  int
	Offset int
}

// DeliveryLog is a page of an endpoint's deliveries, newest first, and how
// many match the filter in all.
type DeliveryLog struct {
	Items []Delivery `json:"items"`
	Total int64      `json:"total"`
}

// Log lists the deliveries of one of owner's live endpoints, newest first.
func (s *Service) Log(ctx context.Context, owner, endpointID string, f LogFilter) (DeliveryLog, error) {
	if f.State != "" && !slices.Contains(states(), f.State) {
		return DeliveryLog{}, errs.InvalidField("state", "state must be one of %s", strings.Join(states(), ", "))
	}
	q := s.db.WithContext(ctx)
	if err := ownEndpoint(q, owner, endpointID); err != nil {
		return DeliveryLog{}, err
	}
	sel := q.Model(&delivery{}).Where("endpoint_id = ?", endpointID)
	if f.State != "" {
		sel = sel.Where("state = ?", f.State)
	}
	var total int64
	if err := sel.Count(&total).Error; err != nil {
		return DeliveryLog{}, fmt.Errorf("count webhook deliveries: %w", err)
	}
	var rows []delivery
	if err := sel.Order("created_at DESC, id DESC").Limit(f.Limit).Offset(f.Offset).Find(&rows).Error; err != nil {
		return DeliveryLog{}, fmt.Errorf("list webhook deliveries: %w", err)
	}
	out := DeliveryLog{Items: make([]Delivery, len(rows)), Total: total}
	for i, d := range rows {
		out.Items[i] = d.view()
	}
	return out, nil
}

// Redeliver queues one of owner's deliveries again now, whatever its state
// (a delivered or failed one too), with a fresh RetryFor of retries. A
// delivery whose attempt is under way answers conflict.
func (s *Service) Redeliver(ctx context.Context, owner, endpointID, deliveryID string) (Delivery, error) {
	now := s.now()
	var out delivery
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		if err := ownEndpoint(tx, owner, endpointID); err != nil {
			return err
		}
		var d delivery
		if err := tx.Where("id = ? AND endpoint_id = ?", deliveryID, endpointID).First(&d).Error; err != nil {
			if db.IsNotFound(err) {
				return errs.NotFoundf("webhook delivery %s not found", deliveryID)
			}
			return fmt.Errorf("load webhook delivery: %w", err)
		}
		if d.State == Delivering && d.LeaseUntil != nil && d.LeaseUntil.After(now) {
			return errs.ConflictReason("delivery_in_progress", "delivery %s is being attempted right now; try again in a minute", deliveryID)
		}
		res := tx.Model(&delivery{}).Where("id = ? AND state = ? AND attempts = ?", d.ID, d.State, d.Attempts).Updates(map[string]any{
			"state": Pending, "next_attempt_at": now, "queued_at": now, "lease_until": nil, "delivered_at": nil, "failed_at": nil})
		if res.Error != nil {
			return fmt.Errorf("redeliver %s: %w", deliveryID, res.Error)
		}
		if res.RowsAffected == 0 {
			return errs.ConflictReason("changed_concurrently", "delivery %s changed at the same time; try again", deliveryID)
		}
		if err := tx.Where("id = ?", d.ID).First(&out).Error; err != nil {
			return fmt.Errorf("reload webhook delivery %s: %w", d.ID, err)
		}
		return nil
	})
	if err != nil {
		return Delivery{}, err
	}
	s.wake(ctx, Wake{DeliveryID: out.ID})
	return out.view(), nil
}

// ownEndpoint answers not found unless id is one of owner's live endpoints.
func ownEndpoint(q *gorm.DB, owner, id string) error {
	var n int64
	if err := q.Model(&Endpoint{}).Where("id = ? AND owner_id = ? AND revoked_at IS NULL", id, owner).Count(&n).Error; err != nil {
		return fmt.Errorf("load endpoint %s: %w", id, err)
	}
	if n == 0 {
		return errs.NotFoundf("webhook endpoint %s not found", id)
	}
	return nil
}
