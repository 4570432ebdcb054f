package notify

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"gorm.io/gorm"

	"github.com/onsite/onsite/internal/db"
)

// How sends are retried: a passing failure waits backoff(attempt) (1 s,
// 2 s, 4 s, … up to 5 minutes) and a message gives up after maxAttempts
// sends (about 20 minutes of failures).
const (
	maxAttempts = 10
	maxBackoff  = 5 * time.Minute
)

func backoff(attempt int) time.Duration {
	return min(time.Second<<min(max(attempt-1, 0), 10), maxBackoff)
}

// The messages of one request to one recipient form a lane: they leave in
// the order of their events (event_at, event_id), one at a time, and none
// while an earlier event of the request still owes its messages (the
// events.messages_owed mark dispatch writes with the event: until the worker
// has stored those rows, an earlier message may yet appear). The head of a
// lane is its first message not final; it is read in one statement with the
// owed check, so that a message stored concurrently is either seen or
// still owed.
const laneHead = `SELECT * FROM messages m
	WHERE m.request_id = ? AND m.recipient = ? AND m.state IN ('queued', 'sending')
	AND NOT EXISTS (SELECT 1 FROM events e WHERE e.request_id = m.request_id AND e.messages_owed
		AND (e.at < m.event_at OR (e.at = m.event_at AND e.id < m.event_id)))
	ORDER BY m.event_at, m.event_id LIMIT 1`

// SendMessage makes progress on message id: it sends the message if its
// turn has come, or else whatever comes first in its lane. It is the send
// task's handler: a wake-up, safe to run any number of times.
func (n *Notifier) SendMessage(ctx context.Context, id string) error {
	var m Message
	err := n.db.WithContext(ctx).Where("id = ?", id).First(&m).Error
	if err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil
		}
		return fmt.Errorf("load message %s: %w", id, err)
	}
	if Final(m.State) {
		return nil
	}
	if m.RequestID == nil {
		_, err := n.attempt(ctx, m, "")
		return err
	}
	return n.drain(ctx, *m.RequestID, m.Recipient)
}

// SendRequest sends, lane by lane, the messages of a request whose turn it
// is.
func (n *Notifier) SendRequest(ctx context.Context, requestID string) error {
	var recipients []string
	if err := n.db.WithContext(ctx).Model(&Message{}).Where("request_id = ? AND state IN ?", requestID, []string{StateQueued, StateSending}).
		Distinct().Pluck("recipient", &recipients).Error; err != nil {
		return fmt.Errorf("lanes of request %s: %w", requestID, err)
	}
	var errsSeen []error
	for _, r := range recipients {
		if err := n.drain(ctx, requestID, r); err != nil {
			errsSeen = append(errsSeen, err)
		}
	}
	return errors.Join(errsSeen...)
}

// drain sends a lane's messages one after the other until one is not final
// (waiting for a retry, held by another attempt) or the lane is empty.
func (n *Notifier) drain(ctx context.Context, requestID, recipient string) error {
	for {
		var heads []Message
		if err := n.db.WithContext(ctx).Raw(laneHead, requestID, recipient).Scan(&heads).Error; err != nil {
			return fmt.Errorf("next message of %s to %s: %w", requestID, recipient, err)
		}
		if len(heads) == 0 {
			return nil
		}
		state, err := n.attempt(ctx, heads[0], "")
		if err != nil || state == "" || !Final(state) {
			return err
		}
	}
}

// due reports whether a message may be attempted at now.
func due(m Message, now time.Time) bool {
	switch m.State {
	case StateQueued:
		return m.NextAttemptAt == nil || !m.NextAttemptAt.After(now)
	case StateSending:
		return m.LeaseUntil == nil || !m.LeaseUntil.After(now)
	}
	return false
}

// attempt claims m, sends it and records the outcome; it returns the state m
// is left in ("" when it was not attempted: not due, or taken by another
// attempt). secret is the text of a secret message (its body is withheld).
//
// The claim is a conditional update that raises attempts, so two attempts
// never hold one message, and the outcome is recorded only for the attempt
// that claimed it (attempts is the fence). A message claimed from "sending"
// had an attempt whose outcome is unknown (a crash, or no answer from the
// provider): the provider is asked first, and the message is recorded sent
// if it has it.
func (n *Notifier) attempt(ctx context.Context, m Message, secret string) (string, error) {
	now := n.now()
	if !due(m, now) {
		return "", nil
	}
	res := n.db.WithContext(ctx).Model(&Message{}).
		Where("id = ? AND ((state = ? AND (next_attempt_at IS NULL OR next_attempt_at <= ?)) OR (state = ? AND (lease_until IS NULL OR lease_until <= ?)))",
			m.ID, StateQueued, now, StateSending, now).
		Updates(map[string]any{"state": StateSending, "lease_until": now.Add(n.lease), "attempts": gorm.Expr("attempts + 1"), "updated_at": now})
	if res.Error != nil {
		return "", fmt.Errorf("claim message %s: %w", m.ID, res.Error)
	}
	if res.RowsAffected == 0 {
		return "", nil // another attempt has it
	}
	a := sendAttempt{n: n, m: m, n1: m.Attempts + 1}
	if m.State == StateSending {
		sid, found, err := n.reconcile(ctx, m)
		switch {
		case err != nil && a.n1 > maxAttempts+2:
			return a.record(ctx, StateFailed, "", fmt.Sprintf("could not learn whether it was sent: %v", err))
		case err != nil:
			return a.record(ctx, StateSending, "", fmt.Sprintf("ask the provider: %v", err))
		case found:
			return a.record(ctx, StateSent, sid, "")
		}
	}
	if a.n1 > maxAttempts {
		return a.record(ctx, StateFailed, "", fmt.Sprintf("gave up after %d attempts: %s", maxAttempts, deref(m.Error)))
	}
	if n.check != nil {
		why, err := n.check(ctx, m)
		if err != nil {
			_, rerr := a.record(ctx, StateQueued, "", fmt.Sprintf("check: %v", err))
			return "", errors.Join(fmt.Errorf("check message %s: %w", m.ID, err), rerr)
		}
		if why != "" {
			return a.record(ctx, StateFailed, "", SupersededPrefix+why)
		}
	}
	if why, err := n.screenAtSend(ctx, m); err != nil || why != "" {
		if err != nil {
			_, rerr := a.record(ctx, StateQueued, "", fmt.Sprintf("guards: %v", err))
			return "", errors.Join(fmt.Errorf("screen message %s: %w", m.ID, err), rerr)
		}
		return a.record(ctx, StateFailed, "", WithheldPrefix+why)
	}
	text := m.Body
	if secret != "" {
		text = secret
	} else if m.Body == withheld {
		// A retry of a secret message: its text was never kept.
		return a.record(ctx, StateFailed, "", "secret message not retried")
	}
	sid, err := n.sender.Send(ctx, SMS{To: m.ToPhone, Body: text, StatusCallback: n.statusCallback(m.ID)})
	switch {
	case err == nil:
		return a.record(ctx, StateSent, sid, "")
	case errors.Is(err, ErrPermanent) || secret != "":
		n.log.WarnContext(ctx, "sms failed for good", "message", m.ID, "kind", m.Kind, "to", m.ToPhone, "err", err)
		return a.record(ctx, StateFailed, "", err.Error())
	case errors.Is(err, ErrNotAccepted) && a.n1 >= maxAttempts:
		n.log.WarnContext(ctx, "sms failed for good", "message", m.ID, "kind", m.Kind, "to", m.ToPhone, "attempts", a.n1, "err", err)
		return a.record(ctx, StateFailed, "", fmt.Sprintf("gave up after %d attempts: %v", a.n1, err))
	case errors.Is(err, ErrNotAccepted):
		return a.record(ctx, StateQueued, "", err.Error())
	default:
		// The provider may have taken it: ask before sending again.
		return a.record(ctx, StateSending, "", err.Error())
	}
}

// sendAttempt is one claimed attempt at a message: n1 is its attempt
// number, the fence of its writes.
type sendAttempt struct {
	n  *Notifier
	m  Message
	n1 int
}

// record stores the outcome of the attempt. A message left queued or
// sending waits backoff (queued: until due again; sending: until its lease
// ends, when the provider is asked whether it has it) and a wake-up is
// asked for then. The record must land even if the task's context is
// ending, and is tried again on a broken database connection.
func (a sendAttempt) record(ctx context.Context, state, sid, why string) (string, error) {
	now := a.n.now()
	upd := map[string]any{"state": state, "updated_at": now, "next_attempt_at": nil, "lease_until": nil}
	if why != "" {
		upd["error"] = why
	} else if state == StateSent {
		upd["error"] = nil
	}
	if sid != "" {
		upd["provider_sid"] = sid
	}
	retryAt := now.Add(backoff(a.n1))
	switch state {
	case StateQueued:
		upd["next_attempt_at"] = retryAt
	case StateSending:
		upd["lease_until"] = retryAt
	}
	ctx = context.WithoutCancel(ctx)
	var res *gorm.DB
	for try := range 3 {
		if try > 0 {
			time.Sleep(time.Duration(try) * 200 * time.Millisecond)
		}
		res = a.n.db.WithContext(ctx).Model(&Message{}).Where("id = ? AND state = ? AND attempts = ?", a.m.ID, StateSending, a.n1).
			Updates(upd)
		if res.Error == nil {
			break
		}
	}
	if res.Error != nil {
		// Left "sending": when the lease ends the provider is asked.
		return StateSending, fmt.Errorf("record attempt %d of message %s (%s): %w", a.n1, a.m.ID, state, res.Error)
	}
	if res.RowsAffected == 0 {
		return "", nil // settled meanwhile by a delivery report
	}
	if !Final(state) && a.n.wake != nil {
		if err := a.n.wake(ctx, a.m.ID, a.n1, retryAt); err != nil {
			a.n.log.WarnContext(ctx, "wake-up of a message not queued (the sweep will find it)", "message", a.m.ID, "err", err)
		}
	}
	return state, nil
}

// reconcile asks the provider whether an attempt whose outcome is unknown
// went out: a message to the same number with the same text, accepted since
// the message was created and not recorded for another message. Without a
// Finder it answers no (the message is sent again).
func (n *Notifier) reconcile(ctx context.Context, m Message) (string, bool, error) {
	f, ok := n.sender.(Finder)
	if !ok || m.Body == withheld {
		return "", false, nil
	}
	accepted, err := f.Accepted(ctx, m.ToPhone, m.CreatedAt.Add(-time.Minute))
	if err != nil {
		return "", false, err
	}
	for _, a := range accepted {
		if a.Body != m.Body {
			continue
		}
		var n2 int64
		if err := n.db.WithContext(ctx).Model(&Message{}).Where("provider_sid = ? AND id <> ?", a.SID, m.ID).Count(&n2).Error; err != nil {
			return "", false, fmt.Errorf("is %s recorded: %w", a.SID, err)
		}
		if n2 == 0 {
			n.log.InfoContext(ctx, "sms found at the provider after an unknown outcome", "message", m.ID, "sid", a.SID)
			return a.SID, true, nil
		}
	}
	return "", false, nil
}

// statusCallback is the status webhook for message id: the id lets a report
// find a message whose send answer was lost.
func (n *Notifier) statusCallback(id string) string {
	if n.callbackURL == "" {
		return ""
	}
	return n.callbackURL + "?message=" + url.QueryEscape(id)
}

// Due returns, for the sweep, the messages whose turn in their lane has come
// and that were due (queued) or whose attempt's lease ended (sending) before
// before, oldest first: their wake-up may have been lost.
func (n *Notifier) Due(ctx context.Context, before time.Time, limit int) ([]Message, error) {
	var out []Message
	err := n.db.WithContext(ctx).Raw(`SELECT m.id, m.attempts FROM messages m
		WHERE ((m.state = ? AND m.next_attempt_at < ?) OR (m.state = ? AND m.lease_until < ?))
		AND NOT EXISTS (SELECT 1 FROM messages p WHERE m.request_id IS NOT NULL AND p.request_id = m.request_id
			AND p.recipient = m.recipient AND p.state IN (?, ?)
			AND (p.event_at < m.event_at OR (p.event_at = m.event_at AND p.event_id < m.event_id)))
		ORDER BY m.event_at LIMIT ?`, StateQueued, db.UTC(before), StateSending, db.UTC(before), StateQueued, StateSending, limit).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("find due messages: %w", err)
	}
	return out, nil
}

// Stored reports which of the dedupe keys have been dealt with: they have a
// message, or the guards withheld them (sms_withheld), so the sweep does not
// wake their task again.
func (n *Notifier) Stored(ctx context.Context, keys []string) (map[string]bool, error) {
	out, err := n.inMessages(ctx, keys)
	if err != nil || len(keys) == 0 {
		return out, err
	}
	held, err := n.withheldBefore(ctx, keys)
	if err != nil {
		return nil, err
	}
	for k := range held {
		out[k] = true
	}
	return out, nil
}

// inMessages reports which of the dedupe keys have a message.
func (n *Notifier) inMessages(ctx context.Context, keys []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(keys) == 0 {
		return out, nil
	}
	var found []string
	if err := n.db.WithContext(ctx).Model(&Message{}).Where("dedupe_key IN ?", keys).Pluck("dedupe_key", &found).Error; err != nil {
		return nil, fmt.Errorf("find stored messages: %w", err)
	}
	for _, k := range found {
		out[k] = true
	}
	return out, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
