package dispatch

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/onsite/onsite/internal/db"
)

// hookBody is the JSON an owner's webhook endpoint receives for one event:
// the event and the request as the event left it (read inside the event's
// transaction), whenever the delivery is attempted.
type hookBody struct {
	ID      string    `json:"id"` // the delivery's id: the same on every attempt, for receivers to drop duplicates
	EventID string    `json:"event_id"`
	Type    string    `json:"type"`
	At      time.Time `json:"at"`
	Seq     int       `json:"seq"` // the request's webhook sequence number: 1, 2, 3… in event order
	Request Request   `json:"request"`
}

// hookDelivery is a new row of webhook_deliveries (the webhooks package
// delivers it, retries it and shows it to its owner).
type hookDelivery struct {
	ID            string
	EndpointID    string
	EventID       string
	RequestID     string
	EventType     string
	Seq           int
	Body          string
	State         string
	NextAttemptAt time.Time
	QueuedAt      time.Time
	CreatedAt     time.Time
}

// TableName is the deliveries table.
func (hookDelivery) TableName() string { return "webhook_deliveries" }

// numberedRequest is a request as an event left it, with the last webhook
// sequence number its events were given.
type numberedRequest struct {
	Request
	WebhookSeq int
}

// hookDeliveries makes one delivery per hooked event and live endpoint of
// the request's owner, inside the event's transaction: the events are
// numbered per request (requests.webhook_seq, whose row lock PostgreSQL holds
// until the commit, so numbers follow commit order), each body is the
// request as it is now, and each delivery gets a wake-up task in the outbox.
// It returns the rows to insert and the statements run: 1 with no endpoint
// to tell, 2 otherwise.
func (w *writes) hookDeliveries(tx *gorm.DB, now time.Time) ([]hookDelivery, int, error) {
	ids := make([]string, 0, len(w.hooked))
	for _, e := range w.hooked {
		ids = append(ids, e.RequestID)
	}
	var rows []struct{ RequestID, EndpointID string }
	if err := tx.Raw(`SELECT r.id AS request_id, w.id AS endpoint_id FROM webhook_endpoints w JOIN requests r ON r.customer_id = w.owner_id
		WHERE r.id IN ? AND w.revoked_at IS NULL ORDER BY w.id`, ids).Scan(&rows).Error; err != nil {
		return nil, 1, fmt.Errorf("find webhook endpoints: %w", err)
	}
	if len(rows) == 0 {
		return nil, 1, nil
	}
	endpoints := map[string][]string{}
	for _, r := range rows {
		endpoints[r.RequestID] = append(endpoints[r.RequestID], r.EndpointID)
	}
	events := map[string]int{}
	var told []string
	for _, e := range w.hooked {
		if len(endpoints[e.RequestID]) == 0 {
			continue
		}
		if events[e.RequestID] == 0 {
			told = append(told, e.RequestID)
		}
		events[e.RequestID]++
	}
	var q strings.Builder
	args := make([]any, 0, 2*len(told)+1)
	q.WriteString("UPDATE requests SET webhook_seq = webhook_seq + CASE id")
	for _, id := range told {
		q.WriteString(" WHEN ? THEN CAST(? AS INTEGER)")
		args = append(args, id, events[id])
	}
	q.WriteString(" END WHERE id IN ? RETURNING *")
	args = append(args, told)
	var reqs []numberedRequest
	if err := tx.Raw(q.String(), args...).Scan(&reqs).Error; err != nil {
		return nil, 2, fmt.Errorf("number webhook events: %w", err)
	}
	next := make(map[string]int, len(reqs))
	snapshot := make(map[string]Request, len(reqs))
	for _, r := range reqs {
		next[r.ID] = r.WebhookSeq - events[r.ID] + 1
		snapshot[r.ID] = r.Request
	}
	var out []hookDelivery
	for _, e := range w.hooked {
		eps := endpoints[e.RequestID]
		if len(eps) == 0 {
			continue
		}
		r, ok := snapshot[e.RequestID]
		if !ok {
			return nil, 2, fmt.Errorf("number webhook events: request %s not found", e.RequestID)
		}
		seq := next[e.RequestID]
		next[e.RequestID]++
		for _, ep := range eps {
			id := db.NewID()
			body, err := json.Marshal(hookBody{ID: id, EventID: e.ID, Type: e.Type, At: e.At, Seq: seq, Request: r})
			if err != nil {
				return nil, 2, fmt.Errorf("encode webhook body: %w", err)
			}
			out = append(out, hookDelivery{ID: id, EndpointID: ep, EventID: e.ID, RequestID: e.RequestID, EventType: e.Type,
				Seq: seq, Body: string(body), State: "pending", NextAttemptAt: now, QueuedAt: now, CreatedAt: e.At})
			w.task(TaskWebhook, QueueDefault, TaskPayload{DeliveryID: id, EventID: e.ID, RequestID: e.RequestID, EndpointID: ep}, now, now)
		}
	}
	return out, 2, nil
}

func insertDeliveries(tx *gorm.DB, ds []hookDelivery) error {
	n := len(ds)
	if n == 0 {
		return nil
	}
	id, ep, ev, req, typ, body, state := make([]string, n), make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n)
	seq := make([]int, n)
	next, queued, created := make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
	for i, d := range ds {
		id[i], ep[i], ev[i], req[i], typ[i], body[i], state[i] = d.ID, d.EndpointID, d.EventID, d.RequestID, d.EventType, d.Body, d.State
		seq[i], next[i], queued[i], created[i] = d.Seq, d.NextAttemptAt, d.QueuedAt, d.CreatedAt
	}
	return db.InsertColumns(tx, "webhook_deliveries", []db.Column{
		{Name: "id", Type: "text", Values: id}, {Name: "endpoint_id", Type: "text", Values: ep}, {Name: "event_id", Type: "text", Values: ev},
		{Name: "request_id", Type: "text", Values: req}, {Name: "event_type", Type: "text", Values: typ},
		{Name: "seq", Type: "integer", Values: seq}, {Name: "body", Type: "text", Values: body}, {Name: "state", Type: "text", Values: state},
		{Name: "next_attempt_at", Type: "timestamp", Values: next}, {Name: "queued_at", Type: "timestamp", Values: queued},
		{Name: "created_at", Type: "timestamp", Values: created},
	}, ds)
}
