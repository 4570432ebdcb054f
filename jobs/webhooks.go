package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/internal/lease"
	"github.com/onsite/onsite/webhooks"
)

// TaskWebhookSweep is the periodic job that wakes the webhook deliveries
// that are due or whose lease lapsed (webhooks.Service.WakeDue).
const TaskWebhookSweep = "webhooks:sweep"

// Hooks runs owners' webhook deliveries. The work is in the
// webhook_deliveries table; a dispatch.TaskWebhook task only wakes one
// delivery up, so a task lost or run twice costs nothing.
type Hooks struct {
	hooks *webhooks.Service
	log   *slog.Logger
}

// NewHooks returns the webhook shell.
func NewHooks(h *webhooks.Service, log *slog.Logger) *Hooks { return &Hooks{hooks: h, log: log} }

// Deliver makes the attempt a task woke up.
func (h *Hooks) Deliver(ctx context.Context, p dispatch.TaskPayload) error {
	if p.DeliveryID == "" {
		// Queued by a version that kept deliveries only in Redis.
		return errs.NotFoundf("webhook task for event %s has no delivery", p.EventID)
	}
	return h.hooks.Attempt(ctx, p.DeliveryID)
}

// sweep wakes what is due; it runs once per window across processes.
func (h *Hooks) sweep(ctx context.Context, _ string, _ lease.Fence) error {
	n, err := h.hooks.WakeDue(ctx, 500)
	if n > 0 {
		h.log.Debug("webhook sweep woke deliveries", "woken", n)
	}
	return err
}

// HookWaker queues webhook wake-ups as asynq tasks (dispatch.TaskWebhook).
type HookWaker struct {
	client *asynq.Client
	prefix string
	log    *slog.Logger
}

var _ webhooks.Waker = (*HookWaker)(nil)

// NewHookWaker returns a webhook waker over the shared Redis client; prefix
// is put before queue names.
func NewHookWaker(rc redis.UniversalClient, prefix string, log *slog.Logger) *HookWaker {
	return &HookWaker{client: asynq.NewClientFromRedisClient(rc), prefix: prefix, log: log}
}

// wakePayload is a wake-up task's payload; Key makes wake-ups with the same
// key one (asynq's Unique) while the first waits, and for a minute after.
type wakePayload struct {
	dispatch.TaskPayload
	Key string `json:"key,omitempty"`
}

// Wake queues a wake-up; a failure is logged, not returned: the sweep wakes
// whatever is due.
func (k *HookWaker) Wake(ctx context.Context, w webhooks.Wake) {
	body, err := json.Marshal(wakePayload{TaskPayload: dispatch.TaskPayload{DeliveryID: w.DeliveryID}, Key: w.Key})
	if err != nil {
		k.log.Warn("webhook wake-up not queued", "delivery", w.DeliveryID, "err", err)
		return
	}
	opts := []asynq.Option{asynq.Queue(k.prefix + dispatch.QueueDefault), asynq.ProcessIn(w.In), asynq.MaxRetry(3), asynq.Timeout(30 * time.Second)}
	if w.Key != "" {
		opts = append(opts, asynq.Unique(time.Minute))
	}
	_, err = k.client.EnqueueContext(ctx, asynq.NewTask(dispatch.TaskWebhook, body), opts...)
	if err != nil && !errors.Is(err, asynq.ErrDuplicateTask) {
		k.log.Warn("webhook wake-up not queued; the sweep will wake it", "delivery", w.DeliveryID, "err", err)
	}
}
