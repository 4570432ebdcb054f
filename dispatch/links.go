package dispatch

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"time"

	"github.com/onsite/onsite/internal/errs"
)

// ShareLink is a tracking link anyone holding it may open.
type ShareLink struct {
	Token     string    `json:"token"`
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// shareTTL is how long a tracking link lives at most.
const shareTTL = 24 * time.Hour

// Share makes a signed, expiring tracking link for one open request.
func (s *Service) Share(ctx context.Context, c Caller, id string, key []byte, publicURL string) (ShareLink, error) {
	r, err := s.Get(ctx, c, id)
	if err != nil {
		return ShareLink{}, err
	}
	if c.Role == "ops" || c.Role == "technician" {
		return ShareLink{}, errNotFound("request", id)
	}
	if !r.State.Open() {
		return ShareLink{}, errs.ConflictReason("closed", "a %s request cannot be shared", r.State)
	}
	return TrackLink(key, publicURL, r, s.now()), nil
}

// TrackLink is a tracking link of one request made at now: what Share
// answers, and what a text to a customer carries. It lives a day, or until
// some hours after a later window ends.
func TrackLink(key []byte, publicURL string, r Request, now time.Time) ShareLink {
	exp := now.Add(shareTTL)
	if r.WindowEnd != nil && r.WindowEnd.Add(6*time.Hour).After(exp) {
		exp = r.WindowEnd.Add(6 * time.Hour)
	}
	exp = exp.Truncate(time.Second)
	tok := signShare(key, r.ID, exp)
	return ShareLink{Token: tok, URL: publicURL + "/track/" + tok, ExpiresAt: exp}
}

func signShare(key []byte, id string, exp time.Time) string {
	return signToken(key, "track", id, exp)
}

// signToken makes a signed, expiring token for one request and one purpose.
func signToken(key []byte, purpose, id string, exp time.Time) string {
	payload := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(payload, uint64(exp.Unix()))
	payload = append(payload, id...)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose + "\x00"))
	m.Write(payload)
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// openToken checks a token made by signToken and returns its request id.
func (s *Service) openToken(key []byte, purpose, token string) (string, bool) {
	id, _, ok := s.openTokenExp(key, purpose, token)
	return id, ok
}

func (s *Service) openTokenExp(key []byte, purpose, token string) (string, time.Time, bool) {
	p, sig, ok := strings.Cut(token, ".")
	if !ok {
		return "", time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil || len(payload) <= 8 {
		return "", time.Time{}, false
	}
	exp := time.Unix(int64(binary.BigEndian.Uint64(payload[:8])), 0).UTC()
	id := string(payload[8:])
	if !hmac.Equal([]byte(signToken(key, purpose, id, exp)), []byte(p+"."+sig)) || !s.now().Before(exp) {
		return "", time.Time{}, false
	}
	return id, exp, true
}

// rateTTL is how long the rating link of a completed job lives.
const rateTTL = 7 * 24 * time.Hour

// RateLink is the link texted when a job is done: it opens a page on which
// whoever holds it rates the job, once.
func RateLink(key []byte, publicURL, id string, now time.Time) string {
	return publicURL + "/rate/" + signToken(key, "rate", id, now.Add(rateTTL).Truncate(time.Second))
}

// RateByLink rates a completed job for whoever holds the link its customer
// was texted.
func (s *Service) RateByLink(ctx context.Context, key []byte, token string, in RatingInput) (Request, error) {
	id, ok := s.openToken(key, "rate", token)
	if !ok {
		return Request{}, errs.NotFoundf("this rating link is not valid any more")
	}
	r, err := load(s.db.WithContext(ctx), id)
	if err != nil {
		return Request{}, err
	}
	return s.Rate(ctx, Caller{Role: "customer", Subject: r.CustomerID}, id, in)
}

// ConfirmLink is the link texted to a device's owner to confirm its request.
func ConfirmLink(key []byte, publicURL, id string, now time.Time) string {
	return publicURL + "/confirm/" + signToken(key, "confirm", id, now.Add(shareTTL).Truncate(time.Second))
}

// ConfirmByLink confirms a device's request, as soon as possible, for whoever
// holds the link its owner was texted.
func (s *Service) ConfirmByLink(ctx context.Context, key []byte, token string) (Request, error) {
	id, ok := s.openToken(key, "confirm", token)
	if !ok {
		return Request{}, errs.NotFoundf("this confirmation link is not valid any more")
	}
	r, err := load(s.db.WithContext(ctx), id)
	if err != nil {
		return Request{}, err
	}
	return s.Confirm(ctx, Caller{Role: "customer", Subject: r.CustomerID}, id, ConfirmInput{})
}

// Tracked opens a tracking link: the request while it is open and the link
// has not expired, nothing otherwise.
func (s *Service) Tracked(ctx context.Context, key []byte, token string) (RequestView, error) {
	gone := errs.NotFoundf("this tracking link is not valid any more")
	id, exp, ok := s.openTokenExp(key, "track", token)
	if !ok {
		return RequestView{}, gone
	}
	v, err := s.View(ctx, Caller{Role: "ops"}, id)
	if err != nil {
		return RequestView{}, gone
	}
	if !v.State.Open() {
		return RequestView{}, gone
	}
	// Someone holding a link sees no notes, no customer id and no contact.
	v.CustomerID, v.Notes, v.Photos, v.ContactPhone, v.DeviceID = "", "", nil, nil, nil
	v.LinkExpires = exp
	return v, nil
}
