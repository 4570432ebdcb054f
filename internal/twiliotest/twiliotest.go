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
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
)

// Account credentials the fake accepts.
const (
	AccountSID = "AC123"
	AuthToken  = "token"
	From       = "+41445550000"
)

// Server is the fake Twilio API.
type Server struct {
	mu       sync.Mutex
	received []url.Values
	fail     int
	down     bool
	fetches  int
	srv      *httptest.Server
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
	case r.Method == http.MethodGet && r.URL.Path == "/2010-04-01/Accounts/"+AccountSID+".json":
		f.mu.Lock()
		f.fetches++
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"sid": %q, "friendly_name": "Onsite test", "status": "active", "type": "Full"}`, AccountSID)
		return
	case r.Method == http.MethodPost && r.URL.Path == "/2010-04-01/Accounts/"+AccountSID+"/Messages.json":
	default:
		twilioError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	body, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(body))
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != 0 {
		twilioError(w, f.fail, 21211, "The 'To' number is not a valid phone number.")
		return
	}
	f.received = append(f.received, form)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"sid": "SM%030d", "status": "queued"}`, len(f.received))
}

// FailWith makes the fake answer every send with status (0: succeed again).
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

// AccountFetches counts the account fetches answered (the start-up check).
func (f *Server) AccountFetches() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fetches
}

// Messages returns the forms of every message sent so far.
func (f *Server) Messages() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]url.Values(nil), f.received...)
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
