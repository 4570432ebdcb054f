package signin

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"fmt"
	"math/big"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/notify"
)

// Limits of contact codes.
const (
	ContactCodeTTL          = 10 * time.Minute
	ContactSendsPerPhone    = 3  // codes per phone per 10 minutes
	ContactSendsPerCustomer = 10 // codes per customer per 10 minutes
)

// Contact is a phone a customer may be texted at about their requests: their
// sign-in phone, or one they confirmed with a code (or are confirming).
type Contact struct {
	Phone       string     `json:"phone"`
	SignIn      bool       `json:"sign_in"` // the customer's own sign-in phone
	Confirmed   bool       `json:"confirmed"`
	ConfirmedAt *time.Time `json:"confirmed_at"`
	ExpiresIn   int        `json:"expires_in,omitempty"` // a code just sent: seconds it stays valid
}

type contactPhone struct {
	CustomerID  string `gorm:"primaryKey"`
	Phone       string `gorm:"primaryKey"`
	CodeHash    *string
	Attempts    int
	ExpiresAt   *time.Time
	ConfirmedAt *time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

func (contactPhone) TableName() string { return "contact_phones" }

// customerPhone is a customer's sign-in phone ("" when none) and locale.
func (s *Service) customerPhone(ctx context.Context, customerID string) (phone, locale string, err error) {
	var c struct {
		Phone  *string
		Locale string
	}
	err = s.db.WithContext(ctx).Table("customers").Select("phone", "locale").Where("id = ?", customerID).Take(&c).Error
	if db.IsNotFound(err) {
		return "", "en", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("load customer %s: %w", customerID, err)
	}
	if c.Phone != nil {
		phone = *c.Phone
	}
	return phone, c.Locale, nil
}

func (s *Service) contact(ctx context.Context, customerID, phone string) (contactPhone, bool, error) {
	var c contactPhone
	err := s.db.WithContext(ctx).Where("customer_id = ? AND phone = ?", customerID, phone).Take(&c).Error
	if db.IsNotFound(err) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("load contact phone: %w", err)
	}
	return c, true, nil
}

// SendContactCode texts a code to phone so that customerID can confirm it
// as a contact phone for texts about their requests; until then texts for
// it are withheld. A phone already proved gets no text (Confirmed is true).
func (s *Service) SendContactCode(ctx context.Context, customerID, phone string) (Contact, error) {
	if err := s.checkPhone(phone); err != nil {
		return Contact{}, err
	}
	own, locale, err := s.customerPhone(ctx, customerID)
	if err != nil {
		return Contact{}, err
	}
	if own == phone {
		return Contact{Phone: phone, SignIn: true, Confirmed: true}, nil
	}
	if c, ok, err := s.contact(ctx, customerID, phone); err != nil {
		return Contact{}, err
	} else if ok && c.ConfirmedAt != nil {
		return Contact{Phone: phone, Confirmed: true, ConfirmedAt: c.ConfirmedAt}, nil
	}
	for _, l := range []struct {
		key string
		max int
	}{{"contact:phone:" + phone, ContactSendsPerPhone}, {"contact:customer:" + customerID, ContactSendsPerCustomer}} {
		ok, retry, err := s.limit.Allow(ctx, l.key, l.max)
		if err != nil {
			return Contact{}, errs.E(errs.Unavailable, "codes cannot be sent for a moment; try again")
		}
		if !ok {
			return Contact{}, errs.Limited(retry, "too many codes requested for this phone; try again in %s", minutes(retry))
		}
	}
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return Contact{}, fmt.Errorf("generate code: %w", err)
	}
	code := fmt.Sprintf("%06d", n.Int64())
	now := s.now()
	hash, expires := s.hash("contact", customerID, phone, code), now.Add(ContactCodeTTL)
	row := contactPhone{CustomerID: customerID, Phone: phone, CodeHash: &hash, ExpiresAt: &expires, CreatedAt: now, UpdatedAt: now}
	// A new code replaces a pending one (and its attempts); a confirmed
	// phone stays confirmed.
	err = s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "customer_id"}, {Name: "phone"}},
		DoUpdates: clause.Assignments(map[string]any{"code_hash": hash, "attempts": 0, "expires_at": expires, "updated_at": now}),
		Where:     clause.Where{Exprs: []clause.Expression{clause.Expr{SQL: "contact_phones.confirmed_at IS NULL"}}},
	}).Create(&row).Error
	if err != nil {
		return Contact{}, fmt.Errorf("store contact code: %w", err)
	}
	out := notify.Outgoing{DedupeKey: "contact:" + db.NewID(), Kind: notify.KindContactCode, Recipient: "customer:" + customerID,
		To: phone, Locale: locale, Account: customerID, Data: notify.Data{Code: code}, Secret: true}
	if err := s.deliverCode(ctx, out); err != nil {
		return Contact{}, err
	}
	return Contact{Phone: phone, ExpiresIn: int(ContactCodeTTL.Seconds())}, nil
}

// ConfirmContact checks the code texted to phone and, when it is right,
// makes phone a confirmed contact phone of customerID.
func (s *Service) ConfirmContact(ctx context.Context, customerID, phone, code string) (Contact, error) {
	if err := s.checkPhone(phone); err != nil {
		return Contact{}, err
	}
	if len(code) != 6 {
		return Contact{}, errs.InvalidField("code", "code must be 6 digits")
	}
	now := s.now()
	c, ok, err := s.contact(ctx, customerID, phone)
	if err != nil {
		return Contact{}, err
	}
	if ok && c.ConfirmedAt != nil {
		return Contact{Phone: phone, Confirmed: true, ConfirmedAt: c.ConfirmedAt}, nil
	}
	if !ok || c.CodeHash == nil || c.ExpiresAt == nil || !c.ExpiresAt.After(now) {
		return Contact{}, errs.InvalidField("code", "no code is pending for this phone (or it expired); ask for a new one")
	}
	// Count the attempt first, conditionally, so parallel guesses cannot go
	// past the limit.
	res := s.db.WithContext(ctx).Model(&contactPhone{}).
		Where("customer_id = ? AND phone = ? AND code_hash = ? AND attempts < ?", customerID, phone, *c.CodeHash, MaxAttempts).
		Update("attempts", gorm.Expr("attempts + 1"))
	if res.Error != nil {
		return Contact{}, fmt.Errorf("count attempt: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return Contact{}, errs.E(errs.RateLimited, "too many wrong codes; ask for a new one")
	}
	if !hmac.Equal([]byte(*c.CodeHash), []byte(s.hash("contact", customerID, phone, code))) {
		return Contact{}, errs.InvalidField("code", "wrong code")
	}
	res = s.db.WithContext(ctx).Model(&contactPhone{}).
		Where("customer_id = ? AND phone = ? AND code_hash = ? AND confirmed_at IS NULL", customerID, phone, *c.CodeHash).
		Updates(map[string]any{"confirmed_at": now, "code_hash": nil, "expires_at": nil, "updated_at": now})
	if res.Error != nil {
		return Contact{}, fmt.Errorf("confirm contact phone: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return Contact{}, errs.ConflictReason("code_replaced", "a new code was asked for meanwhile; use that one")
	}
	return Contact{Phone: phone, Confirmed: true, ConfirmedAt: &now}, nil
}

// Contacts lists the phones customerID may be texted at, and those with a
// code pending.
func (s *Service) Contacts(ctx context.Context, customerID string) ([]Contact, error) {
	own, _, err := s.customerPhone(ctx, customerID)
	if err != nil {
		return nil, err
	}
	out := []Contact{}
	if own != "" {
		out = append(out, Contact{Phone: own, SignIn: true, Confirmed: true})
	}
	var rows []contactPhone
	err = s.db.WithContext(ctx).Where("customer_id = ? AND (confirmed_at IS NOT NULL OR expires_at > ?)", customerID, s.now()).
		Order("created_at").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list contact phones: %w", err)
	}
	for _, r := range rows {
		if r.Phone != own {
			out = append(out, Contact{Phone: r.Phone, Confirmed: r.ConfirmedAt != nil, ConfirmedAt: r.ConfirmedAt})
		}
	}
	return out, nil
}
