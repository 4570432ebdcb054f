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
	TaskLive        = "live:event"            // push the change to the live streams (handled by the relay itself)
	TaskWebhook     = "webhook:deliver"       // post a status change to an owner's endpoint
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
	Round      int    `json:"round,omitempty"`
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
