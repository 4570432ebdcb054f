// Package twiliotest stands in for the Twilio API in tests: a local HTTP
// server that the real twilio-go client is pointed at, recording every
// message it is asked to send, and the webhook signature Twilio would put on
// a callback.
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

func (f *Server) serve(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok || user != AccountSID || pass != AuthToken || r.Method != http.MethodPost ||
		r.URL.Path != "/2010-04-01/Accounts/"+AccountSID+"/Messages.json" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	body, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(body))
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if f.fail != 0 {
		w.WriteHeader(f.fail)
		fmt.Fprintf(w, `{"code": 21211, "message": "The 'To' number is not a valid phone number.", "status": %d}`, f.fail)
		return
	}
	f.received = append(f.received, form)
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"sid": "SM%030d", "status": "queued"}`, len(f.received))
}

// FailWith makes the fake answer every send with status (0: succeed again).
func (f *Server) FailWith(status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = status
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
