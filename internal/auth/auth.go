// Package auth issues and checks bearer tokens (HS256 JWT) and carries the
// calling principal through a request's context.
package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/onsite/onsite/internal/errs"
)

// Role is what a principal may do.
type Role string

// The roles of DESIGN.md.
const (
	Customer   Role = "customer"
	Technician Role = "technician"
	Ops        Role = "ops"
	Machine    Role = "machine"
)

// Roles lists every role, for tables that walk them.
var Roles = []Role{Customer, Technician, Ops, Machine}

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown role %q (want customer, technician, ops or machine)", s)
}

// Principal is who is calling: a role and a subject (the customer id,
// technician id, ops user name, or for a machine the owner customer id).
type Principal struct {
	Role    Role
	Subject string
	// KeyID and AutoConfirm are set for a device using a machine key.
	KeyID       string
	AutoConfirm bool
}

type claims struct {
	Role string `json:"role"`
	jwt.RegisteredClaims
}

// Issuer signs and verifies tokens with one HS256 key.
type Issuer struct {
	key []byte
	now func() time.Time

	// verified remembers tokens whose signature and claims were checked, by
	// their exact text: the same bytes under the same key verify the same
	// way, so only the times (exp, nbf) are checked again on each use.
	mu       sync.RWMutex
	verified map[string]verifiedToken
}

// verifiedToken is what a checked token says.
type verifiedToken struct {
	p        Principal
	exp, nbf time.Time // nbf zero when the token has none
}

// maxVerified bounds the remembered tokens; past it the memory starts over
// (entries are cheap to remake: one more signature check each).
const maxVerified = 50_000

// NewIssuer returns an issuer for the key.
func NewIssuer(key []byte) *Issuer {
	return &Issuer{key: key, now: time.Now, verified: map[string]verifiedToken{}}
}

// Issue signs a token for p that is valid for ttl.
func (i *Issuer) Issue(p Principal, ttl time.Duration) (string, error) {
	if p.Subject == "" {
		return "", errors.New("issue token: empty subject")
	}
	if _, err := ParseRole(string(p.Role)); err != nil {
		return "", fmt.Errorf("issue token: %w", err)
	}
	now := i.now()
	c := claims{
		Role: string(p.Role),
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   p.Subject,
			Issuer:    "onsite",
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(i.key)
	if err != nil {
		return "", fmt.Errorf("issue token: %w", err)
	}
	return s, nil
}

// Verify checks a token and returns its principal, or an unauthenticated error.
// A token verified before is not parsed again: its signature and issuer
// were checked then, and its validity times are checked now exactly as the
// parser would (valid from nbf, until before exp).
func (i *Issuer) Verify(token string) (Principal, error) {
	i.mu.RLock()
	v, ok := i.verified[token]
	i.mu.RUnlock()
	if ok {
		now := i.now()
		if !now.Before(v.exp) || (!v.nbf.IsZero() && now.Before(v.nbf)) {
			return Principal{}, errs.E(errs.Unauthenticated, "invalid or expired token")
		}
		return v.p, nil
	}
	p, c, err := i.verify(token)
	if err != nil {
		return Principal{}, err
	}
	v = verifiedToken{p: p, exp: c.ExpiresAt.Time}
	if c.NotBefore != nil {
		v.nbf = c.NotBefore.Time
	}
	i.mu.Lock()
	if i.verified == nil || len(i.verified) >= maxVerified {
		i.verified = map[string]verifiedToken{}
	}
	i.verified[token] = v
	i.mu.Unlock()
	return p, nil
}

// verify parses and checks a token in full.
func (i *Issuer) verify(token string) (Principal, claims, error) {
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return i.key, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer("onsite"), jwt.WithTimeFunc(i.now), jwt.WithExpirationRequired())
	if err != nil {
		return Principal{}, c, errs.E(errs.Unauthenticated, "invalid or expired token")
	}
	role, err := ParseRole(c.Role)
	if err != nil || c.Subject == "" {
		return Principal{}, c, errs.E(errs.Unauthenticated, "token has no valid role or subject")
	}
	return Principal{Role: role, Subject: c.Subject}, c, nil
}

// BearerToken extracts the token of an "Authorization: Bearer …" header.
func BearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// LoadOrCreateSecret returns the key kept in dir/jwt.secret, creating it with
// 32 random bytes the first time (embedded mode).
func LoadOrCreateSecret(dir string) ([]byte, error) {
	path := filepath.Join(dir, "jwt.secret")
	b, err := os.ReadFile(path)
	if err == nil && len(b) >= 32 {
		return []byte(strings.TrimSpace(string(b))), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("generate secret: %w", err)
	}
	secret := hex.EncodeToString(raw)
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return []byte(secret), nil
}

// LoadOrCreatePassword returns the ops password kept in dir/ops.password,
// creating a random one the first time (embedded mode).
func LoadOrCreatePassword(dir string) (string, error) {
	path := filepath.Join(dir, "ops.password")
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) >= 12 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	raw := make([]byte, 9)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generate password: %w", err)
	}
	pw := hex.EncodeToString(raw)
	if err := os.WriteFile(path, []byte(pw+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return pw, nil
}

type ctxKey struct{}

// WithPrincipal returns a context carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the principal of the context, if any.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}
