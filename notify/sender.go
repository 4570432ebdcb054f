// Package notify sends SMS: a Sender with two implementations (Twilio through
// twilio-go, and a log sender when no credentials are configured), the
// message templates in four languages, the reading of technicians' replies,
// the webhook signature check, and the messages table, which owns every
// message until it is final and sends each once, in order per request and
// recipient (docs/messages.md). It is the only package that imports
// twilio-go.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
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

// ErrNotAccepted marks a passing failure after which the provider surely
// does not have the message (it answered "too many requests", or nothing
// was sent): it is retried as it is. Any other failure may have reached the
// provider (no answer, a server error), so the provider is asked before the
// message is sent again.
var ErrNotAccepted = errors.New("not accepted by the provider")

// Finder looks up the messages the provider accepted for a number, so a send
// whose outcome is unknown is not sent twice.
type Finder interface {
	Accepted(ctx context.Context, to string, since time.Time) ([]Accepted, error)
}

// Accepted is a message the provider has.
type Accepted struct {
	SID  string
	Body string
	At   time.Time // when the provider created it
}

// TwilioConfig is what the Twilio sender needs.
type TwilioConfig struct {
	AccountSID          string
	AuthToken           string
	From                string // a sending number, or
	MessagingServiceSID string // a messaging service
	// APIURL replaces https://api.twilio.com as the base of every call (a
	// stand-in in tests, a proxy in staging); empty for Twilio itself.
	APIURL     string
	HTTPClient *http.Client
}

// TwilioSender sends through the Twilio Messages API.
type TwilioSender struct {
	api  *api.ApiService
	sid  string
	from string
	msid string
}

var (
	_ Sender            = (*TwilioSender)(nil)
	_ Finder            = (*TwilioSender)(nil)
	_ Sender            = (*LogSender)(nil)
	_ client.BaseClient = apiBase{}
)

// NewTwilioSender returns a sender over the real twilio-go client.
func NewTwilioSender(cfg TwilioConfig) (*TwilioSender, error) {
	c := &client.Client{Credentials: client.NewCredentials(cfg.AccountSID, cfg.AuthToken), HTTPClient: cfg.HTTPClient}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	c.SetAccountSid(cfg.AccountSID)
	var base client.BaseClient = c
	if cfg.APIURL != "" {
		u, err := url.Parse(cfg.APIURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("twilio: API URL %q is not an http(s) URL", cfg.APIURL)
		}
		base = apiBase{Client: c, base: u}
	}
	// The handler is built here rather than by client.NewRequestHandler,
	// which reads TWILIO_EDGE and TWILIO_REGION from the environment
	// (internal/config is the only reader of it).
	h := &client.RequestHandler{Client: base}
	return &TwilioSender{api: api.NewApiService(h), sid: cfg.AccountSID, from: cfg.From, msid: cfg.MessagingServiceSID}, nil
}

// apiBase is the twilio-go client with another base URL: twilio-go builds
// every URL on https://api.twilio.com itself, so the scheme and host are
// replaced (and the base's path put in front) just before the real client
// signs and sends the call.
type apiBase struct {
	*client.Client
	base *url.URL
}

// SendRequest implements client.BaseClient.
func (a apiBase) SendRequest(method, rawURL string, data url.Values, headers map[string]any, body ...byte) (*http.Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("twilio: %w", err)
	}
	u.Scheme, u.Host = a.base.Scheme, a.base.Host
	u.Path = strings.TrimSuffix(a.base.Path, "/") + u.Path
	return a.Client.SendRequest(method, u.String(), data, headers, body...)
}

// ErrRejected marks credentials Twilio refuses (401 or 403): waiting will
// not make them work.
var ErrRejected = errors.New("twilio refused the credentials")

// CheckAccount fetches the account (GET /2010-04-01/Accounts/{sid}.json):
// nil when Twilio knows the credentials and the account is active, an error
// wrapping ErrRejected when it refuses them, any other error when Twilio
// cannot say (unreachable, a server error). twilio-go takes no context, so
// a call that ctx gives up on ends by the HTTP client's timeout.
func (s *TwilioSender) CheckAccount(ctx context.Context) error {
	type result struct {
		account *api.ApiV2010Account
		err     error
	}
	done := make(chan result, 1)
	go func() {
		a, err := s.api.FetchAccount(s.sid)
		done <- result{a, err}
	}()
	var r result
	select {
	case <-ctx.Done():
		return fmt.Errorf("twilio account %s: %w", s.sid, ctx.Err())
	case r = <-done:
	}
	var te *client.TwilioRestError
	switch {
	case errors.As(r.err, &te) && (te.Status == http.StatusUnauthorized || te.Status == http.StatusForbidden):
		return fmt.Errorf("twilio account %s: %d (code %d) %s: %w", s.sid, te.Status, te.Code, te.Message, ErrRejected)
	case r.err != nil:
		return fmt.Errorf("twilio account %s: %w", s.sid, r.err)
	case r.account.Status != nil && *r.account.Status != "active":
		return fmt.Errorf("twilio account %s is %s", s.sid, *r.account.Status)
	}
	return nil
}

// Send implements Sender. Twilio's 4xx answers (other than 429) are
// permanent, a 429 is ErrNotAccepted; anything else (a 5xx, no answer, an
// answer without a sid) may have created the message.
func (s *TwilioSender) Send(ctx context.Context, m SMS) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("twilio: %w: %w", err, ErrNotAccepted)
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
		switch {
		case errors.As(err, &te) && te.Status == http.StatusTooManyRequests:
			return "", fmt.Errorf("twilio %d (code %d): %s: %w", te.Status, te.Code, te.Message, ErrNotAccepted)
		case errors.As(err, &te) && te.Status >= 400 && te.Status < 500:
			return "", fmt.Errorf("twilio %d (code %d): %s: %w", te.Status, te.Code, te.Message, ErrPermanent)
		}
		return "", fmt.Errorf("twilio: %w", err)
	}
	if msg.Sid == nil {
		return "", errors.New("twilio: answer without a message sid")
	}
	return *msg.Sid, nil
}

// Accepted implements Finder: the newest messages to the number (at most
// 100) that Twilio created since since. It filters on the creation time
// rather than DateSent: a message Twilio still queues has no date_sent yet,
// and that is exactly the one a lost answer leaves unknown.
func (s *TwilioSender) Accepted(ctx context.Context, to string, since time.Time) ([]Accepted, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := &api.ListMessageParams{}
	p.SetTo(to).SetPageSize(50).SetLimit(100)
	msgs, err := s.api.ListMessage(p)
	if err != nil {
		return nil, fmt.Errorf("twilio: list messages to %s: %w", to, err)
	}
	var out []Accepted
	for _, m := range msgs {
		if m.Sid == nil || m.Body == nil || m.DateCreated == nil {
			continue
		}
		at, err := time.Parse(time.RFC1123Z, *m.DateCreated)
		if err != nil {
			return nil, fmt.Errorf("twilio: message %s: date_created %q: %w", *m.Sid, *m.DateCreated, err)
		}
		if at.Before(since) {
			continue
		}
		out = append(out, Accepted{SID: *m.Sid, Body: *m.Body, At: at})
	}
	return out, nil
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
