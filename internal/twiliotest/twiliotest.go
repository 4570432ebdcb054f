// Package twiliotest stands in for the Twilio API in tests: a local HTTP
// server that the real twilio-go client is pointed at (TWILIO_API_URL, or
// notify.TwilioConfig.APIURL, set to URL()), recording every message it is
// asked to send, answering the account fetch of the start-up check (401 for
// wrong credentials, as Twilio does), and the webhook signature Twilio would
// put on a callback.
package twiliotest

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Account credentials the fake accepts.
const (
	AccountSID = "AC123"
	AuthToken  = "token"
	From       = "+41445550000"
)

// Server is the fake Twilio API: POST Messages.json sends (records) a
// message, GET Messages.json lists them, newest first, as Twilio does, and
// GET Accounts/{sid}.json answers the account check.
type Server struct {
	mu       sync.Mutex
	received []Received
	fail     int  // answer every call but the account fetch with this status (0: succeed)
	down     bool // drop every connection unanswered
	fetches  int  // account fetches answered
	lose     int  // record the next sends but drop the connection instead of answering
	failed   int  // calls answered with fail
	lost     int  // answers dropped
	srv      *httptest.Server
}

// Received is one message the fake accepted.
type Received struct {
	SID  string
	Form url.Values // To, From, Body, StatusCallback, …
	At   time.Time
}

// Start runs a fake Twilio API until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	f := &Server{}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the fake's base URL, for TWILIO_API_URL (the real twilio-go client
// then sends every call here).
func (f *Server) URL() string { return f.srv.URL }

// twilioError writes an error the way Twilio does (twilio-go decodes it into
// a *client.TwilioRestError).
func twilioError(w http.ResponseWriter, status, code int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"code": %d, "message": %q, "more_info": "https://www.twilio.com/docs/errors/%d", "status": %d}`, code, message, code, status)
}

const (
	accountPath  = "/2010-04-01/Accounts/" + AccountSID + ".json"
	messagesPath = "/2010-04-01/Accounts/" + AccountSID + "/Messages.json"
)

func (f *Server) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	down := f.down
	f.mu.Unlock()
	if down {
		// Unreachable: the connection drops without an answer.
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = conn.Close()
		}
		return
	}
	user, pass, ok := r.BasicAuth()
	if !ok || user != AccountSID || pass != AuthToken {
		twilioError(w, http.StatusUnauthorized, 20003, "Authenticate")
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == accountPath:
		f.mu.Lock()
		f.fetches++
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"sid": %q, "friendly_name": "Onsite test", "status": "active", "type": "Full"}`, AccountSID)
		return
	case (r.Method == http.MethodPost || r.Method == http.MethodGet) && r.URL.Path == messagesPath:
	default:
		twilioError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != 0 {
		f.failed++
		twilioError(w, f.fail, 21211, "The 'To' number is not a valid phone number.")
		return
	}
	if r.Method == http.MethodGet {
		f.list(w, r)
		return
	}
	form, _ := url.ParseQuery(string(body))
	m := Received{SID: fmt.Sprintf("SM%030d", len(f.received)+1), Form: form, At: time.Now()}
	f.received = append(f.received, m)
	if f.lose > 0 {
		f.lose--
		f.lost++
		// Twilio has the message, the client never hears so.
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(message(m))
}

// list answers GET Messages.json: To, From and DateSent>/DateSent< filter
// (the fake's messages are sent when created), PageSize and Page page.
func (f *Server) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var match []map[string]any
	for i := len(f.received) - 1; i >= 0; i-- {
		m := f.received[i]
		if to := q.Get("To"); to != "" && m.Form.Get("To") != to {
			continue
		}
		if from := q.Get("From"); from != "" && m.Form.Get("From") != from {
			continue
		}
		if after, err := time.Parse(time.RFC3339, q.Get("DateSent>")); err == nil && m.At.Before(after) {
			continue
		}
		if before, err := time.Parse(time.RFC3339, q.Get("DateSent<")); err == nil && m.At.After(before) {
			continue
		}
		match = append(match, message(m))
	}
	size, err := strconv.Atoi(q.Get("PageSize"))
	if err != nil || size <= 0 {
		size = 50
	}
	page, _ := strconv.Atoi(q.Get("Page"))
	start := min(page*size, len(match))
	end := min(start+size, len(match))
	out := map[string]any{"messages": match[start:end], "page": page, "page_size": size, "start": start, "end": end,
		"uri": r.URL.RequestURI(), "next_page_uri": nil}
	if end < len(match) {
		next := *r.URL
		nq := next.Query()
		nq.Set("Page", strconv.Itoa(page+1))
		nq.Set("PageSize", strconv.Itoa(size))
		next.RawQuery = nq.Encode()
		out["next_page_uri"] = next.RequestURI()
	}
	_ = json.NewEncoder(w).Encode(out)
}

// message is a message resource as Twilio encodes it.
func message(m Received) map[string]any {
	created := m.At.UTC().Format(time.RFC1123Z)
	return map[string]any{"sid": m.SID, "account_sid": AccountSID, "to": m.Form.Get("To"), "from": m.Form.Get("From"),
		"body": m.Form.Get("Body"), "status": "sent", "direction": "outbound-api", "date_created": created, "date_sent": created,
		"date_updated": created, "uri": "/2010-04-01/Accounts/" + AccountSID + "/Messages/" + m.SID + ".json"}
}

// FailWith makes the fake answer every message call (sends and lists, not
// the account fetch) with status (0: succeed again).
func (f *Server) FailWith(status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = status
}

// SetDown makes the fake unreachable (every connection dropped unanswered)
// or reachable again.
func (f *Server) SetDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

// LoseAnswers makes the fake accept the next n messages but drop the
// connection instead of answering, as when the network fails after Twilio
// took a message: the sender cannot know it went out.
func (f *Server) LoseAnswers(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lose = n
}

// AccountFetches counts the account fetches answered (the start-up check).
func (f *Server) AccountFetches() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fetches
}

// Faults returns how many calls were answered with the FailWith status and
// how many answers LoseAnswers dropped.
func (f *Server) Faults() (failed, lost int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed, f.lost
}

// Messages returns the forms of every message sent so far.
func (f *Server) Messages() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]url.Values, len(f.received))
	for i, m := range f.received {
		out[i] = m.Form
	}
	return out
}

// Received returns every message sent so far, in the order they arrived.
func (f *Server) Received() []Received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Received(nil), f.received...)
}

// To returns the bodies sent to one number.
func (f *Server) To(phone string) []string {
	var out []string
	for _, m := range f.Messages() {
		if m.Get("To") == phone {
			out = append(out, m.Get("Body"))
		}
	}
	return out
}

// Sign computes X-Twilio-Signature as Twilio documents it: HMAC-SHA1 with
// the auth token over the full URL followed by every POST parameter sorted
// by name (name then value), base64-encoded.
func Sign(token, fullURL string, form url.Values) string {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(fullURL)
	for _, k := range keys {
		b.WriteString(k + form.Get(k))
	}
	mac := hmac.New(sha1.New, []byte(token))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
