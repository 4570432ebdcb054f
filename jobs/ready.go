package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onsite/onsite/dispatch"
)

// QueueNames are the asynq queues Onsite uses, with prefix put before each.
func QueueNames(prefix string) []string {
	return []string{prefix + dispatch.QueueCritical, prefix + dispatch.QueueDefault, prefix + dispatch.QueueLow}
}

// QueuesWritable reports whether tasks can be queued: for each queue it writes
// a short-lived key whose hash tag is the queue name, so that it lands in the
// same cluster slot (and node) as asynq's own keys for that queue
// ("asynq:{<queue>}:pending", …). On a single server it is three writes; on a
// Redis Cluster it fails when the node owning a queue's slot is down, the
// slot is unassigned (CLUSTERDOWN) or the node refuses writes, which a PING
// of any one node would not notice.
func QueuesWritable(ctx context.Context, rc redis.UniversalClient, prefix string) error {
	pipe := rc.Pipeline()
	cmds := make(map[string]*redis.StatusCmd)
	for _, q := range QueueNames(prefix) {
		cmds[q] = pipe.Set(ctx, prefix+"ready:{"+q+"}", time.Now().UnixMilli(), 10*time.Second)
	}
	// A connection failure comes back from Exec alone (go-redis does not
	// set it on the commands of a single-server pipeline); a command
	// refused on one node of a cluster comes back on that command.
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("queues not writable: %w", err)
	}
	for _, q := range QueueNames(prefix) {
		if err := cmds[q].Err(); err != nil {
			return fmt.Errorf("queue %s not writable: %w", q, err)
		}
	}
	return nil
}
