package dispatch

import (
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/onsite/onsite/internal/db"
)

// Task kinds that dispatch writes to the outbox. The jobs package relays them
// to asynq and runs them by calling back into the Service.
const (
	TaskMatch       = "dispatch:match"        // find candidates and send offers for a searching request
	TaskOfferExpire = "dispatch:offer_expire" // an offer's time is up
	TaskStartSearch = "dispatch:start_search" // a windowed request's search begins
	TaskDeadline    = "dispatch:deadline"     // check the give-up time of a searching request
	TaskNotify      = "notify:event"          // tell people about an event
	TaskLive        = "live:event"            // push the change to the live streams (handled by the relay itself; with Notify, the relay then queues TaskNotify)
	TaskWebhook     = "webhook:deliver"       // wake up a delivery to an owner's endpoint (webhook_deliveries holds the work)
)

// Queues, by urgency.
const (
	QueueCritical = "critical"
	QueueDefault  = "default"
	QueueLow      = "low"
)

// OutboxTask is a task written in the same transaction as the state change
// that implies it; a relay hands it to asynq after commit.
type OutboxTask struct {
	ID          string `gorm:"primaryKey"`
	Kind        string
	Payload     string
	TaskID      string
	Queue       string
	ProcessAt   time.Time
	CreatedAt   time.Time
	RelayedAt   *time.Time
	LockedUntil *time.Time
	Attempts    int
	LastError   *string
}

// TableName is the outbox table.
func (OutboxTask) TableName() string { return "outbox" }

// TaskPayload is the payload of every dispatch task.
type TaskPayload struct {
	RequestID  string `json:"request_id,omitempty"`
	OfferID    string `json:"offer_id,omitempty"`
	EventID    string `json:"event_id,omitempty"`
	EndpointID string `json:"endpoint_id,omitempty"`
	DeliveryID string `json:"delivery_id,omitempty"`
	Round      int    `json:"round,omitempty"`
	// Notify, on a TaskLive row, asks the relay to queue the event's
	// TaskNotify too: one outbox row per event instead of two.
	Notify bool `json:"notify,omitempty"`
	// Batch carries the payloads of one transaction's tasks of one kind in
	// one row (the live updates of every event; the expiries of the offers
	// due at one time): a batch round writes two rows, not a thousand.
	Batch []TaskPayload `json:"batch,omitempty"`
}

// Items are the payloads a row stands for: its batch, or itself.
func (p TaskPayload) Items() []TaskPayload {
	if len(p.Batch) > 0 {
		return p.Batch
	}
	return []TaskPayload{p}
}

// enqueue writes a task to the outbox inside tx. The row id becomes the asynq
// task id, so a relay that hands a row over twice enqueues it once.
func enqueue(tx *gorm.DB, kind, queue string, p TaskPayload, processAt, now time.Time) error {
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode %s task: %w", kind, err)
	}
	id := db.NewID()
	t := OutboxTask{ID: id, Kind: kind, Payload: string(body), TaskID: id, Queue: queue,
		ProcessAt: db.UTC(processAt), CreatedAt: now}
	if err := tx.Create(&t).Error; err != nil {
		return fmt.Errorf("write %s task to outbox: %w", kind, err)
	}
	return nil
}

// writes gathers events and outbox rows to insert together: a batch tick
// writes hundreds of each in a few statements. appendEvent uses it for one.
type writes struct {
	events []Event
	tasks  []pendingTask
	hooked []Event // events owners' webhooks hear of
}

// pendingTask is an outbox row before it is encoded.
type pendingTask struct {
	kind, queue    string
	payload        TaskPayload
	processAt, now time.Time
}

// batched are the task kinds whose rows of one transaction are written as
// one row per process time (their handlers take a batch).
var batched = map[string]bool{TaskLive: true, TaskOfferExpire: true}

// task adds an outbox row; its id becomes the asynq task id, so a relay
// that hands a row over twice enqueues it once.
func (w *writes) task(kind, queue string, p TaskPayload, processAt, now time.Time) {
	w.tasks = append(w.tasks, pendingTask{kind: kind, queue: queue, payload: p, processAt: db.UTC(processAt), now: now})
}

// rows encodes the gathered tasks, one row per task except for batched
// kinds: their tasks due at the same time share a row, in order.
func (w *writes) rows() ([]OutboxTask, error) {
	type key struct {
		kind string
		at   int64
	}
	var groups [][]pendingTask
	at := map[key]int{} // a batched kind and time → its group
	for _, t := range w.tasks {
		k := key{t.kind, t.processAt.UnixNano()}
		if i, ok := at[k]; ok {
			groups[i] = append(groups[i], t)
			continue
		}
		if batched[t.kind] {
			at[k] = len(groups)
		}
		groups = append(groups, []pendingTask{t})
	}
	out := make([]OutboxTask, 0, len(groups))
	for _, ts := range groups {
		p := ts[0].payload
		if len(ts) > 1 {
			p = TaskPayload{Batch: make([]TaskPayload, len(ts))}
			for i, t := range ts {
				p.Batch[i] = t.payload
			}
		}
		body, err := json.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("encode %s task: %w", ts[0].kind, err)
		}
		id := db.NewID()
		out = append(out, OutboxTask{ID: id, Kind: ts[0].kind, Payload: string(body), TaskID: id, Queue: ts[0].queue,
			ProcessAt: ts[0].processAt, CreatedAt: ts[0].now})
	}
	return out, nil
}

// event adds an audit event (invariant 4) with the live update and the
// message it implies.
func (w *writes) event(requestID, typ string, a Actor, data map[string]any, now time.Time) error {
	return w.eventTelling(requestID, typ, a, data, tells(typ, data), now)
}

// eventTelling is event for a caller that knows better than the event type
// whether anyone is told: a request created searching texts nobody, one
// created waiting for its owner's confirmation texts the owner.
func (w *writes) eventTelling(requestID, typ string, a Actor, data map[string]any, tells bool, now time.Time) error {
	body := "{}"
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			return fmt.Errorf("encode event: %w", err)
		}
		body = string(b)
	}
	w.add(requestID, typ, a, body, tells, now)
	return nil
}

// eventBody is event with its data already encoded as JSON.
func (w *writes) eventBody(requestID, typ string, a Actor, body string, now time.Time) {
	w.add(requestID, typ, a, body, notifiable[typ], now)
}

func (w *writes) add(requestID, typ string, a Actor, body string, tells bool, now time.Time) {
	e := Event{ID: db.NewID(), RequestID: requestID, Type: typ, ActorRole: a.Role, ActorID: a.ID, Data: body, At: now, MessagesOwed: tells}
	w.events = append(w.events, e)
	w.task(TaskLive, QueueCritical, TaskPayload{EventID: e.ID, RequestID: requestID, Notify: tells}, now, now)
	if hooked[typ] {
		w.hooked = append(w.hooked, e)
	}
}

// flush inserts what was gathered: the webhook deliveries of hooked events
// (hooks.go), then one statement each for the events, the deliveries and
// the outbox rows.
func (w *writes) flush(tx *gorm.DB, now time.Time) error {
	_, err := w.flushCounted(tx, now)
	return err
}

// flushCounted is flush, returning the statements it ran.
func (w *writes) flushCounted(tx *gorm.DB, now time.Time) (int, error) {
	n := 0
	var deliveries []hookDelivery
	if len(w.hooked) > 0 {
		var k int
		var err error
		deliveries, k, err = w.hookDeliveries(tx, now)
		n += k
		if err != nil {
			return n, err
		}
	}
	if len(w.events) > 0 {
		n++
		if err := insertEvents(tx, w.events); err != nil {
			return n, fmt.Errorf("append %d events: %w", len(w.events), err)
		}
	}
	if len(deliveries) > 0 {
		n++
		if err := insertDeliveries(tx, deliveries); err != nil {
			return n, fmt.Errorf("write %d webhook deliveries: %w", len(deliveries), err)
		}
	}
	rows, err := w.rows()
	if err != nil {
		return n, err
	}
	if len(rows) > 0 {
		n++
		if err := insertTasks(tx, rows); err != nil {
			return n, fmt.Errorf("write %d tasks to the outbox: %w", len(rows), err)
		}
	}
	*w = writes{}
	return n, nil
}

func insertEvents(tx *gorm.DB, evs []Event) error {
	n := len(evs)
	if n == 0 {
		return nil
	}
	id, req, typ, role, actor, data, at := make([]string, n), make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]time.Time, n)
	owed := make([]bool, n)
	for i, e := range evs {
		id[i], req[i], typ[i], role[i], actor[i], data[i], at[i] = e.ID, e.RequestID, e.Type, e.ActorRole, e.ActorID, e.Data, e.At
		owed[i] = e.MessagesOwed
	}
	return db.InsertColumns(tx, "events", []db.Column{
		{Name: "id", Type: "text", Values: id}, {Name: "request_id", Type: "text", Values: req}, {Name: "type", Type: "text", Values: typ},
		{Name: "actor_role", Type: "text", Values: role}, {Name: "actor_id", Type: "text", Values: actor},
		{Name: "data", Type: "text", Values: data}, {Name: "at", Type: "timestamp", Values: at},
		{Name: "messages_owed", Type: "boolean", Values: owed},
	}, evs)
}

func insertTasks(tx *gorm.DB, ts []OutboxTask) error {
	n := len(ts)
	if n == 0 {
		return nil
	}
	id, kind, payload, taskID, queue, processAt, created := make([]string, n), make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]time.Time, n), make([]time.Time, n)
	for i, t := range ts {
		id[i], kind[i], payload[i], taskID[i], queue[i], processAt[i], created[i] = t.ID, t.Kind, t.Payload, t.TaskID, t.Queue, t.ProcessAt, t.CreatedAt
	}
	return db.InsertColumns(tx, "outbox", []db.Column{
		{Name: "id", Type: "text", Values: id}, {Name: "kind", Type: "text", Values: kind}, {Name: "payload", Type: "text", Values: payload},
		{Name: "task_id", Type: "text", Values: taskID}, {Name: "queue", Type: "text", Values: queue},
		{Name: "process_at", Type: "timestamp", Values: processAt}, {Name: "created_at", Type: "timestamp", Values: created},
	}, ts)
}

func insertOffers(tx *gorm.DB, os []Offer) error {
	n := len(os)
	if n == 0 {
		return nil
	}
	id, req, tech, reason, state := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	rank, round, eta, dist := make([]int, n), make([]int, n), make([]int, n), make([]int, n)
	score := make([]float64, n)
	created, expires := make([]time.Time, n), make([]time.Time, n)
	for i, o := range os {
		id[i], req[i], tech[i], reason[i], state[i] = o.ID, o.RequestID, o.TechnicianID, o.Reason, string(o.State)
		rank[i], round[i], eta[i], dist[i], score[i] = o.Rank, o.Round, o.EtaSeconds, o.DistanceM, o.Score
		created[i], expires[i] = o.CreatedAt, o.ExpiresAt
	}
	return db.InsertColumns(tx, "offers", []db.Column{
		{Name: "id", Type: "text", Values: id}, {Name: "request_id", Type: "text", Values: req}, {Name: "technician_id", Type: "text", Values: tech},
		{Name: "rank", Type: "integer", Values: rank}, {Name: "round", Type: "integer", Values: round},
		{Name: "eta_seconds", Type: "integer", Values: eta}, {Name: "distance_m", Type: "integer", Values: dist},
		{Name: "score", Type: "double precision", Values: score}, {Name: "reason", Type: "text", Values: reason},
		{Name: "state", Type: "text", Values: state}, {Name: "created_at", Type: "timestamp", Values: created},
		{Name: "expires_at", Type: "timestamp", Values: expires},
	}, os)
}
