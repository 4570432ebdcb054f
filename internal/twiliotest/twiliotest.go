// Package twiliotest stands in for the Twilio API in tests: a local HTTP
// server that the real twilio-go client is pointed at, recording every
// message it is asked to send, and the webhook signature Twilio would put on
// a callback.
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
// message, GET Messages.json lists them, newest first, as Twilio does.
type Server struct {
	mu       sync.Mutex
	received []Received
	fail     int // answer every call with this status (0: succeed)
	lose     int // record the next sends but drop the connection instead of answering
	failed   int // calls answered with fail
	lost     int // answers dropped
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

const messagesPath = "/2010-04-01/Accounts/" + AccountSID + "/Messages.json"

func (f *Server) serve(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok || user != AccountSID || pass != AuthToken || r.URL.Path != messagesPath ||
		(r.Method != http.MethodPost && r.Method != http.MethodGet) {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if f.fail != 0 {
		f.failed++
		w.WriteHeader(f.fail)
		fmt.Fprintf(w, `{"code": 21211, "message": "The 'To' number is not a valid phone number.", "status": %d}`, f.fail)
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
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
	}
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

// FailWith makes the fake answer every call with status (0: succeed again).
func (f *Server) FailWith(status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = status
}

// LoseAnswers makes the fake accept the next n messages but drop the
// connection instead of answering, as when the network fails after Twilio
// took a message: the sender cannot know it went out.
func (f *Server) LoseAnswers(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lose = n
}

// Client returns an HTTP client that sends every request to the fake (the
// twilio-go client has no base-URL option).
func (f *Server) Client() *http.Client {
	target, _ := url.Parse(f.srv.URL)
	return &http.Client{Transport: rewrite{host: target.Host, scheme: target.Scheme}}
}

type rewrite struct{ host, scheme string }

func (rw rewrite) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host = rw.scheme, rw.host
	return http.DefaultTransport.RoundTrip(r)
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
