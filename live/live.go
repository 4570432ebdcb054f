// Package live carries changes to the apps and the dashboard as Server-Sent
// Events. Changes go into Redis streams (one per topic: ops, request:<id>,
// technician:<id>), so a stream served by any process sees changes made by
// any other, and a client that reconnects with Last-Event-ID resumes where it
// left off.
package live

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Topics.
const (
	TopicOps = "ops"
)

// RequestTopic is the stream of one request (customer app, tracking link).
func RequestTopic(id string) string { return "request:" + id }

// TechnicianTopic is the stream of one technician's offers and jobs.
func TechnicianTopic(id string) string { return "technician:" + id }

// Hub publishes to and reads from the streams. On a Redis Cluster each
// topic's stream lives on the node owning its slot: a publish to several
// topics is a pipeline (split by node by the cluster client, no MULTI), and
// a stream is read with an XREAD of that one stream, so no command spans two
// slots and no hash tag is needed.
type Hub struct {
	closing   chan struct{}
	closeOnce sync.Once
	rdb       redis.UniversalClient // publishes
	reader    redis.UniversalClient // blocking reads of open streams: a pool of their own
	maxLife   time.Duration         // a stream ends after this; the client resumes with Last-Event-ID
	prefix    string
	maxLen    int64
	heartbeat time.Duration
	keep      time.Duration
}

// NewHub returns a hub that publishes through rdb and serves streams with
// reader, so open streams (each holding a connection in a blocking read)
// never starve the rest of the service; prefix keeps deployments sharing a
// Redis apart.
func NewHub(rdb, reader redis.UniversalClient, prefix string) *Hub {
	return &Hub{closing: make(chan struct{}), rdb: rdb, reader: reader, maxLife: 30 * time.Minute, prefix: prefix + "live:",
		maxLen: 10_000, heartbeat: 15 * time.Second, keep: 24 * time.Hour}
}

// Close ends every open stream (the server is shutting down; clients
// reconnect elsewhere and resume).
func (h *Hub) Close() { h.closeOnce.Do(func() { close(h.closing) }) }

func (h *Hub) key(topic string) string { return h.prefix + topic }

// Publish appends one event to each topic.
func (h *Hub) Publish(ctx context.Context, event string, data any, topics ...string) error {
	body, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("live: encode %s: %w", event, err)
	}
	pipe := h.rdb.Pipeline()
	for _, t := range topics {
		k := h.key(t)
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: k, MaxLen: h.maxLen, Approx: true, Values: map[string]any{"event": event, "data": body}})
		if t != TopicOps {
			pipe.Expire(ctx, k, h.keep)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("live: publish %s: %w", event, err)
	}
	return nil
}

// PublishEach appends one event per item to a topic, in one round trip.
func (h *Hub) PublishEach(ctx context.Context, event string, items []any, topic string) error {
	pipe := h.rdb.Pipeline()
	for _, it := range items {
		body, err := json.Marshal(it)
		if err != nil {
			return fmt.Errorf("live: encode %s: %w", event, err)
		}
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: h.key(topic), MaxLen: h.maxLen, Approx: true, Values: map[string]any{"event": event, "data": body}})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("live: publish %s: %w", event, err)
	}
	return nil
}

var streamID = regexp.MustCompile(`^[0-9]+-[0-9]+$`)

// Serve streams a topic to the client until it goes away: every event as an
// SSE message with its stream id, a comment line as heartbeat. It resumes
// after Last-Event-ID (header, or the last_event_id query parameter).
func (h *Hub) Serve(w http.ResponseWriter, r *http.Request, topic string) error {
	return h.ServeStream(w, r, topic, StreamOptions{})
}

// StreamOptions shape one stream.
type StreamOptions struct {
	// Redact sends events with only their name and id (for readers who may
	// know that something changed but not what, such as a tracking link,
	// which then reads what it may see).
	Redact bool
	// Until ends the stream with a final "end" event (reason
	// "link_expired") when set.
	Until time.Time
	// Ends, when set, is asked of every event (with its full data): a
	// reason ends the stream after the event with a final "end" event
	// carrying it (the subject is done: the job completed, cancelled).
	Ends func(event, data string) (reason string)
}

// Final writes the "end" event a stream closes with: nothing more will come
// for its subject, and the client should not reconnect.
func Final(w http.ResponseWriter, reason string) {
	b, _ := json.Marshal(map[string]string{"reason": reason})
	fmt.Fprintf(w, "event: end\ndata: %s\n\n", b)
	_ = http.NewResponseController(w).Flush()
}

// ServeRedacted is ServeStream with Redact and Until.
func (h *Hub) ServeRedacted(w http.ResponseWriter, r *http.Request, topic string, redact bool, until time.Time) error {
	return h.ServeStream(w, r, topic, StreamOptions{Redact: redact, Until: until})
}

// ServeStream is Serve with options. The stream ends with an "end" event
// when its subject ends (Ends) or at Until; after the hub's longest stream
// life it just closes: a client that may still read reconnects and is
// checked again.
func (h *Hub) ServeStream(w http.ResponseWriter, r *http.Request, topic string, o StreamOptions) error {
	redact, until := o.Redact, o.Until
	end := time.Now().Add(h.maxLife)
	if !until.IsZero() && until.Before(end) {
		end = until
	}
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("last_event_id")
	}
	if !streamID.MatchString(last) {
		last = "$" // only what comes from now on
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's write timeout
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Connection", "keep-alive")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": connected\nretry: 2000\n\n")
	if err := rc.Flush(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-h.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	key := h.key(topic)
	if last == "$" {
		// "$" would race with events published between two reads: pin the
		// current last id instead.
		if info, err := h.reader.XInfoStream(ctx, key).Result(); err == nil {
			last = info.LastGeneratedID
		} else {
			last = "0-0"
		}
	}
	lastWrite := time.Now()
	defer func() {
		if !until.IsZero() && !time.Now().Before(until) && ctx.Err() == nil {
			Final(w, "link_expired")
		}
	}()
	for time.Now().Before(end) {
		// go-redis does not end a blocking read when ctx is cancelled, so
		// block briefly and look at ctx between reads.
		res, err := h.reader.XRead(ctx, &redis.XReadArgs{Streams: []string{key, last}, Count: 100, Block: time.Second}).Result()
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, redis.Nil):
			if time.Since(lastWrite) < h.heartbeat {
				continue
			}
			fmt.Fprint(w, ": heartbeat\n\n")
		case err != nil:
			// Redis is away: tell the client to come back, it resumes.
			fmt.Fprintf(w, ": redis unavailable\n\n")
			_ = rc.Flush()
			return nil
		default:
			for _, s := range res {
				for _, m := range s.Messages {
					event, _ := m.Values["event"].(string)
					data, _ := m.Values["data"].(string)
					reason := ""
					if o.Ends != nil {
						reason = o.Ends(event, data)
					}
					if redact {
						data = "{}"
					}
					fmt.Fprintf(w, "id: %s\nevent: %s\ndata: %s\n\n", m.ID, event, data)
					last = m.ID
					if reason != "" {
						Final(w, reason)
						return nil
					}
				}
			}
		}
		lastWrite = time.Now()
		if err := rc.Flush(); err != nil {
			return nil
		}
	}
	return nil
}
