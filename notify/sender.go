// Package notify sends SMS: a Sender with two implementations (Twilio through
// twilio-go, and a log sender when no credentials are configured), the
// message templates in four languages, the reading of technicians' replies,
// the webhook signature check, and the messages table that makes each
// message go out at most once. It is the only package that imports
// twilio-go.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/twilio/twilio-go/client"
	api "github.com/twilio/twilio-go/rest/api/v2010"
)

// SMS is one text to send.
type SMS struct {
	To             string
	Body           string
	StatusCallback string // where the provider reports delivery; empty for none
}

// Sender sends one SMS and returns the provider's id for it.
type Sender interface {
	Send(ctx context.Context, m SMS) (string, error)
}

// ErrPermanent marks a send that will never succeed (a bad number, a
// blocked recipient): it is recorded, not retried.
var ErrPermanent = errors.New("permanent send failure")

// TwilioConfig is what the Twilio sender needs.
type TwilioConfig struct {
	AccountSID          string
	AuthToken           string
	From                string // a sending number, or
	MessagingServiceSID string // a messaging service
	HTTPClient          *http.Client
}

// TwilioSender sends through the Twilio Messages API.
type TwilioSender struct {
	api  *api.ApiService
	from string
	msid string
}

var (
	_ Sender = (*TwilioSender)(nil)
	_ Sender = (*LogSender)(nil)
)

// NewTwilioSender returns a sender over the real twilio-go client.
func NewTwilioSender(cfg TwilioConfig) *TwilioSender {
	c := &client.Client{Credentials: client.NewCredentials(cfg.AccountSID, cfg.AuthToken), HTTPClient: cfg.HTTPClient}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	c.SetAccountSid(cfg.AccountSID)
	return &TwilioSender{api: api.NewApiServiceWithClient(c), from: cfg.From, msid: cfg.MessagingServiceSID}
}

// Send implements Sender. Twilio's 4xx answers (other than 429) are
// permanent; anything else may succeed on a retry.
func (s *TwilioSender) Send(ctx context.Context, m SMS) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	p := &api.CreateMessageParams{}
	p.SetTo(m.To).SetBody(m.Body)
	if s.msid != "" {
		p.SetMessagingServiceSid(s.msid)
	} else {
		p.SetFrom(s.from)
	}
	if m.StatusCallback != "" {
		p.SetStatusCallback(m.StatusCallback)
	}
	msg, err := s.api.CreateMessage(p)
	if err != nil {
		var te *client.TwilioRestError
		if errors.As(err, &te) && te.Status >= 400 && te.Status < 500 && te.Status != http.StatusTooManyRequests {
			return "", fmt.Errorf("twilio %d (code %d): %s: %w", te.Status, te.Code, te.Message, ErrPermanent)
		}
		return "", fmt.Errorf("twilio: %w", err)
	}
	if msg.Sid == nil {
		return "", errors.New("twilio: answer without a message sid")
	}
	return *msg.Sid, nil
}

// LogSender writes messages to the log instead of sending them: the embedded
// mode's sender, used when no Twilio credentials are configured.
type LogSender struct {
	Log *slog.Logger
	n   atomic.Int64
}

// Send implements Sender.
func (s *LogSender) Send(ctx context.Context, m SMS) (string, error) {
	sid := fmt.Sprintf("LOG%013d%06d", time.Now().UnixMilli(), s.n.Add(1))
	s.Log.InfoContext(ctx, "sms (log sender, not sent)", "to", m.To, "body", m.Body, "sid", sid)
	return sid, nil
}
