// Package signin signs customers and technicians in by phone: a 6-digit code
// by SMS, then an access token and a refresh token. Codes and refresh tokens
// are stored hashed; codes expire after 5 minutes and allow 5 attempts;
// sending is limited per phone and per address. It also proves contact
// phones: a customer who wants texts about their requests at another phone
// than their sign-in phone confirms it with a code texted there (contacts.go).
package signin

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"time"

	"gorm.io/gorm"

	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/internal/phones"
	"github.com/onsite/onsite/notify"
	"github.com/onsite/onsite/technicians"
)

// Limits of the flow.
const (
	CodeTTL         = 5 * time.Minute
	MaxAttempts     = 5
	SendsPerPhone   = 3  // codes per phone per 10 minutes
	SendsPerAddress = 10 // codes per client address per 10 minutes
	sendWindow      = 10 * time.Minute
	AccessTTL       = time.Hour
	RefreshTTL      = 30 * 24 * time.Hour
)

// Sender delivers a code now (the notifier); a code its guards hold back is
// a *notify.WithheldError.
type Sender interface {
	DeliverNow(ctx context.Context, o notify.Outgoing) error
}

// Limiter counts calls per key atomically (shared by every process).
type Limiter interface {
	Allow(ctx context.Context, key string, limit int) (ok bool, retryAfter time.Duration, err error)
}

// Service runs the sign-in flow, and the proving of contact phones.
type Service struct {
	limit     Limiter // codes sent, per phone and per address, in 10-minute windows
	db        *db.DB
	issuer    *auth.Issuer
	sender    Sender
	secret    []byte           // keys the code hashes
	countries phones.Countries // the countries Onsite texts
	now       func() time.Time
}

// NewService returns the sign-in service; secret keys the stored hashes;
// codes go only to phones of countries.
func NewService(d *db.DB, issuer *auth.Issuer, sender Sender, limit Limiter, secret []byte, countries phones.Countries, now func() time.Time) *Service {
	return &Service{limit: limit, db: d, issuer: issuer, sender: sender, secret: secret, countries: countries, now: func() time.Time { return db.UTC(now()) }}
}

// checkPhone says whether phone can get a code: E.164, in a country Onsite
// texts.
func (s *Service) checkPhone(phone string) error {
	if !technicians.ValidPhone(phone) {
		return errs.InvalidField("phone", "phone must be in E.164 form, such as +41791234567")
	}
	if !s.countries.Allows(phone) {
		return errs.InvalidField("phone", "Onsite texts only numbers of %s", s.countries)
	}
	return nil
}

// untilTomorrow is the time from now to the next UTC midnight.
func untilTomorrow(now time.Time) time.Duration {
	y, m, d := now.UTC().Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC).Sub(now)
}

// minutes says a wait in whole minutes ("4 minutes", at least one).
func minutes(d time.Duration) string {
	n := max(1, int(math.Ceil(d.Minutes())))
	if n == 1 {
		return "1 minute"
	}
	return fmt.Sprintf("%d minutes", n)
}

// deliverCode sends a code now and turns what stopped it into an answer.
func (s *Service) deliverCode(ctx context.Context, o notify.Outgoing) error {
	err := s.sender.DeliverNow(ctx, o)
	var held *notify.WithheldError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &held) && held.Reason == notify.WithheldCountry:
		return errs.InvalidField("phone", "Onsite texts only numbers of %s", s.countries)
	case errors.As(err, &held):
		// The daily caps are counted per UTC day.
		return errs.Limited(untilTomorrow(s.now()), "too many texts to this phone or account today; try again tomorrow")
	}
	return errs.E(errs.Unavailable, "the code could not be sent; try again")
}

type otpCode struct {
	ID        string `gorm:"primaryKey"`
	Phone     string
	Role      string
	CodeHash  string
	Attempts  int
	ExpiresAt time.Time
	UsedAt    *time.Time
	IP        string `gorm:"column:ip"`
	CreatedAt time.Time
}

func (otpCode) TableName() string { return "otp_codes" }

type refreshToken struct {
	ID        string `gorm:"primaryKey"`
	FamilyID  string // the sign-in it was rotated from
	TokenHash string
	Role      string
	Subject   string
	ExpiresAt time.Time
	RevokedAt *time.Time
	CreatedAt time.Time
}

func (refreshToken) TableName() string { return "refresh_tokens" }

func parseRole(role string) (string, error) {
	switch role {
	case "", "customer":
		return "customer", nil
	case "technician":
		return role, nil
	}
	return "", errs.InvalidField("role", "role must be customer or technician")
}

func (s *Service) hash(parts ...string) string {
	m := hmac.New(sha256.New, s.secret)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return hex.EncodeToString(m.Sum(nil))
}

// CodeSent says how long the code lives.
type CodeSent struct {
	ExpiresIn int `json:"expires_in"`
}

// SendCode texts a new code to phone, within the sending limits.
func (s *Service) SendCode(ctx context.Context, phone, role, ip string) (CodeSent, error) {
	role, err := parseRole(role)
	if err != nil {
		return CodeSent{}, err
	}
	if err := s.checkPhone(phone); err != nil {
		return CodeSent{}, err
	}
	now := s.now()
	locale := "en"
	// Atomic counters, so parallel requests cannot slip past the limits.
	for _, l := range []struct {
		key string
		max int
	}{{"otp:phone:" + phone, SendsPerPhone}, {"otp:ip:" + ip, SendsPerAddress}} {
		ok, retry, err := s.limit.Allow(ctx, l.key, l.max)
		if err != nil {
			return CodeSent{}, errs.E(errs.Unavailable, "sign-in is unavailable for a moment; try again")
		}
		if !ok {
			return CodeSent{}, errs.Limited(retry, "too many codes requested; try again in %s", minutes(retry))
		}
	}
	sent := CodeSent{ExpiresIn: int(CodeTTL.Seconds())}
	if role == "technician" {
		// Known or not, the answer is the same (after the limits): the
		// phones of technicians cannot be told from others. Only an
		// onboarded technician is texted a code.
		var t technicians.Technician
		err := s.db.WithContext(ctx).Select("id", "locale").Where("phone = ?", phone).First(&t).Error
		if db.IsNotFound(err) {
			return sent, nil
		}
		if err != nil {
			return CodeSent{}, fmt.Errorf("find technician: %w", err)
		}
		locale = t.Locale
	}
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return CodeSent{}, fmt.Errorf("generate code: %w", err)
	}
	code := fmt.Sprintf("%06d", n.Int64())
	c := otpCode{ID: db.NewID(), Phone: phone, Role: role, CodeHash: s.hash(phone, role, code), ExpiresAt: now.Add(CodeTTL), IP: ip, CreatedAt: now}
	if err := s.db.WithContext(ctx).Create(&c).Error; err != nil {
		return CodeSent{}, fmt.Errorf("store code: %w", err)
	}
	out := notify.Outgoing{DedupeKey: "otp:" + c.ID, Kind: notify.KindOTP, Recipient: role + ":" + phone, To: phone, Locale: locale, Data: notify.Data{Code: code}, Secret: true}
	if err := s.deliverCode(ctx, out); err != nil {
		return CodeSent{}, err
	}
	return sent, nil
}

// Tokens is a signed-in session.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
	Role         string `json:"role"`
	Subject      string `json:"subject"`
}

// Verify checks a code and signs in: the technician with that phone, or the
// customer (created on first sign-in).
func (s *Service) Verify(ctx context.Context, phone, role, code string) (Tokens, error) {
	role, err := parseRole(role)
	if err != nil {
		return Tokens{}, err
	}
	if !technicians.ValidPhone(phone) {
		return Tokens{}, errs.InvalidField("phone", "phone must be in E.164 form")
	}
	if len(code) != 6 {
		return Tokens{}, errs.InvalidField("code", "code must be 6 digits")
	}
	now := s.now()
	var c otpCode
	err = s.db.WithContext(ctx).Where("phone = ? AND role = ? AND used_at IS NULL AND expires_at > ?", phone, role, now).
		Order("created_at DESC").First(&c).Error
	if db.IsNotFound(err) {
		return Tokens{}, errs.E(errs.Unauthenticated, "no valid code for this phone; ask for a new one")
	}
	if err != nil {
		return Tokens{}, fmt.Errorf("find code: %w", err)
	}
	// Count the attempt before looking at the code, conditionally, so that
	// parallel guesses cannot go past the limit.
	res := s.db.WithContext(ctx).Model(&otpCode{}).Where("id = ? AND attempts < ?", c.ID, MaxAttempts).
		Update("attempts", gorm.Expr("attempts + 1"))
	if res.Error != nil {
		return Tokens{}, fmt.Errorf("count attempt: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return Tokens{}, errs.E(errs.RateLimited, "too many wrong codes; ask for a new one")
	}
	if !hmac.Equal([]byte(c.CodeHash), []byte(s.hash(phone, role, code))) {
		return Tokens{}, errs.E(errs.Unauthenticated, "wrong code")
	}
	var out Tokens
	err = s.db.Tx(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&otpCode{}).Where("id = ? AND used_at IS NULL", c.ID).Update("used_at", now)
		if res.Error != nil {
			return fmt.Errorf("use code: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return errs.E(errs.Unauthenticated, "this code was just used")
		}
		subject, err := subjectFor(tx, phone, role, now)
		if err != nil {
			return err
		}
		out, err = s.issue(tx, auth.Role(role), subject, now)
		return err
	})
	if err != nil {
		if _, ok := errs.As(err); ok {
			return Tokens{}, err
		}
		return Tokens{}, fmt.Errorf("verify code: %w", err)
	}
	return out, nil
}

func subjectFor(tx *gorm.DB, phone, role string, now time.Time) (string, error) {
	if role == "technician" {
		var t technicians.Technician
		if err := tx.Select("id").Where("phone = ?", phone).First(&t).Error; err != nil {
			return "", errs.E(errs.Forbidden, "this phone is not an onboarded technician")
		}
		return t.ID, nil
	}
	var id string
	err := tx.Table("customers").Where("phone = ?", phone).Order("created_at").Limit(1).Pluck("id", &id).Error
	if err != nil {
		return "", fmt.Errorf("find customer: %w", err)
	}
	if id != "" {
		return id, nil
	}
	id = db.NewID()
	if err := tx.Table("customers").Create(map[string]any{"id": id, "phone": phone, "name": "", "locale": "en", "created_at": now}).Error; err != nil {
		return "", fmt.Errorf("create customer: %w", err)
	}
	return id, nil
}

// issue signs in anew: a new family of refresh tokens.
func (s *Service) issue(tx *gorm.DB, role auth.Role, subject string, now time.Time) (Tokens, error) {
	return s.issueIn(tx, db.NewID(), role, subject, now)
}

// issueIn issues an access token and a refresh token of family.
func (s *Service) issueIn(tx *gorm.DB, family string, role auth.Role, subject string, now time.Time) (Tokens, error) {
	access, err := s.issuer.Issue(auth.Principal{Role: role, Subject: subject}, AccessTTL)
	if err != nil {
		return Tokens{}, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return Tokens{}, fmt.Errorf("generate refresh token: %w", err)
	}
	refresh := base64.RawURLEncoding.EncodeToString(raw)
	rt := refreshToken{ID: db.NewID(), FamilyID: family, TokenHash: s.hash("refresh", refresh), Role: string(role), Subject: subject, ExpiresAt: now.Add(RefreshTTL), CreatedAt: now}
	if err := tx.Create(&rt).Error; err != nil {
		return Tokens{}, fmt.Errorf("store refresh token: %w", err)
	}
	return Tokens{AccessToken: access, RefreshToken: refresh, ExpiresIn: int(AccessTTL.Seconds()), Role: string(role), Subject: subject}, nil
}

// Refresh trades a refresh token for a new pair of the same family; the old
// one stops working. A rotated token used again means it was copied: the
// whole family is revoked, so the copy and the original both stop.
func (s *Service) Refresh(ctx context.Context, token string) (Tokens, error) {
	if token == "" {
		return Tokens{}, errs.InvalidField("refresh_token", "refresh_token is required")
	}
	now := s.now()
	var out Tokens
	reused := false
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		var rt refreshToken
		err := tx.Where("token_hash = ?", s.hash("refresh", token)).First(&rt).Error
		if db.IsNotFound(err) {
			return errs.E(errs.Unauthenticated, "unknown refresh token")
		}
		if err != nil {
			return fmt.Errorf("find refresh token: %w", err)
		}
		res := tx.Model(&refreshToken{}).Where("id = ? AND revoked_at IS NULL AND expires_at > ?", rt.ID, now).Update("revoked_at", now)
		if res.Error != nil {
			return fmt.Errorf("rotate refresh token: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			if rt.RevokedAt != nil && rt.ExpiresAt.After(now) {
				// Used again after it was rotated (or signed out): revoke the
				// family, and commit that before answering.
				reused = true
				return revokeFamily(tx, rt.FamilyID, now)
			}
			return errs.E(errs.Unauthenticated, "refresh token expired or already used")
		}
		out, err = s.issueIn(tx, rt.FamilyID, auth.Role(rt.Role), rt.Subject, now)
		return err
	})
	if reused && err == nil {
		return Tokens{}, errs.E(errs.Unauthenticated, "refresh token already used; every session of this sign-in is ended, sign in again")
	}
	if err != nil {
		if _, ok := errs.As(err); ok {
			return Tokens{}, err
		}
		return Tokens{}, fmt.Errorf("refresh: %w", err)
	}
	return out, nil
}

func revokeFamily(tx *gorm.DB, family string, now time.Time) error {
	if err := tx.Model(&refreshToken{}).Where("family_id = ? AND revoked_at IS NULL", family).Update("revoked_at", now).Error; err != nil {
		return fmt.Errorf("revoke refresh tokens: %w", err)
	}
	return nil
}

// SignOut ends the sign-in a refresh token belongs to: every refresh token
// of its family stops working. An unknown token is no error (signing out
// twice is fine).
func (s *Service) SignOut(ctx context.Context, token string) error {
	if token == "" {
		return errs.InvalidField("refresh_token", "refresh_token is required")
	}
	var rt refreshToken
	err := s.db.WithContext(ctx).Where("token_hash = ?", s.hash("refresh", token)).First(&rt).Error
	if db.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("find refresh token: %w", err)
	}
	return revokeFamily(s.db.WithContext(ctx), rt.FamilyID, s.now())
}
