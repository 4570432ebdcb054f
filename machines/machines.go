// Package machines owns the API keys of machine customers: devices (a
// router, a car) that open requests for their owner. A key's secret is shown
// once, stored hashed, and presented by the device as its bearer token.
package machines

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/technicians"
)

// SecretPrefix starts every key secret, so a bearer token can be told apart
// from a JWT.
const SecretPrefix = "osk_"

// Key is a machine key as ops sees it.
type Key struct {
	ID          string     `json:"id" gorm:"primaryKey"`
	OwnerID     string     `json:"owner"`
	Name        string     `json:"name"`
	SecretHash  string     `json:"-"`
	AutoConfirm bool       `json:"auto_confirm"`
	CreatedAt   time.Time  `json:"created_at"`
	RevokedAt   *time.Time `json:"revoked_at"`
}

// TableName is the keys table.
func (Key) TableName() string { return "machine_keys" }

// NewKey is a created key with its secret, shown this once.
type NewKey struct {
	Key
	Secret string `json:"secret"`
}

// Service manages keys.
type Service struct {
	db  *db.DB
	now func() time.Time
}

// NewService returns the key service.
func NewService(d *db.DB, now func() time.Time) *Service {
	return &Service{db: d, now: func() time.Time { return db.UTC(now()) }}
}

func hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// CreateInput is what ops sends to create a key.
type CreateInput struct {
	Owner       string `json:"owner"`
	Name        string `json:"name"`
	AutoConfirm bool   `json:"auto_confirm"`
	OwnerPhone  string `json:"owner_phone"` // where to text the owner to confirm (E.164), optional
}

// Create makes a key for an owner customer.
func (s *Service) Create(ctx context.Context, in CreateInput) (NewKey, error) {
	owner, name := strings.TrimSpace(in.Owner), strings.TrimSpace(in.Name)
	if owner == "" || len(owner) > 200 {
		return NewKey{}, errs.InvalidField("owner", "owner (the customer id) is required")
	}
	if name == "" || len(name) > 100 {
		return NewKey{}, errs.InvalidField("name", "name must be 1-100 characters")
	}
	if in.OwnerPhone != "" && !technicians.ValidPhone(in.OwnerPhone) {
		return NewKey{}, errs.InvalidField("owner_phone", "owner_phone must be in E.164 form")
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return NewKey{}, fmt.Errorf("generate key: %w", err)
	}
	secret := SecretPrefix + base64.RawURLEncoding.EncodeToString(raw)
	now := s.now()
	k := Key{ID: db.NewID(), OwnerID: owner, Name: name, SecretHash: hash(secret), AutoConfirm: in.AutoConfirm, CreatedAt: now}
	err := s.db.WithContext(ctx).Exec(`INSERT INTO customers (id, name, locale, created_at) VALUES (?, '', 'en', ?) ON CONFLICT (id) DO NOTHING`, owner, now).Error
	if err != nil {
		return NewKey{}, fmt.Errorf("ensure owner: %w", err)
	}
	if in.OwnerPhone != "" {
		if err := s.db.WithContext(ctx).Exec(`UPDATE customers SET phone = ? WHERE id = ?`, in.OwnerPhone, owner).Error; err != nil {
			return NewKey{}, fmt.Errorf("set owner phone: %w", err)
		}
	}
	if err := s.db.WithContext(ctx).Create(&k).Error; err != nil {
		return NewKey{}, fmt.Errorf("create key: %w", err)
	}
	return NewKey{Key: k, Secret: secret}, nil
}

// Revoke stops a key working.
func (s *Service) Revoke(ctx context.Context, id string) error {
	res := s.db.WithContext(ctx).Model(&Key{}).Where("id = ? AND revoked_at IS NULL", id).Update("revoked_at", s.now())
	if res.Error != nil {
		return fmt.Errorf("revoke key: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return errs.NotFoundf("machine key %s not found", id)
	}
	return nil
}

// Resolve turns a presented secret into the machine principal of its owner;
// an error means the keys could not be read, not that the secret is wrong.
func (s *Service) Resolve(ctx context.Context, secret string) (auth.Principal, bool, error) {
	if !strings.HasPrefix(secret, SecretPrefix) {
		return auth.Principal{}, false, nil
	}
	var k Key
	err := s.db.WithContext(ctx).Where("secret_hash = ? AND revoked_at IS NULL", hash(secret)).First(&k).Error
	if db.IsNotFound(err) {
		return auth.Principal{}, false, nil
	}
	if err != nil {
		return auth.Principal{}, false, fmt.Errorf("look up machine key: %w", err)
	}
	return auth.Principal{Role: auth.Machine, Subject: k.OwnerID, KeyID: k.ID, AutoConfirm: k.AutoConfirm}, true, nil
}
