package auth

import (
	"testing"
	"time"
)

func TestIssueVerify(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	iss := NewIssuer([]byte("0123456789abcdef0123456789abcdef"))
	iss.now = func() time.Time { return now }
	tok, err := iss.Issue(Principal{Role: Ops, Subject: "alice"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		issuer  *Issuer
		token   string
		at      time.Time
		wantErr bool
	}{
		{"valid", iss, tok, now, false},
		{"expired", iss, tok, now.Add(2 * time.Hour), true},
		{"other key", NewIssuer([]byte("ffffffffffffffffffffffffffffffff")), tok, now, true},
		{"garbage", iss, "not.a.token", now, true},
		{"alg none", iss, "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJyb2xlIjoib3BzIiwic3ViIjoiYWxpY2UiLCJpc3MiOiJvbnNpdGUifQ.", now, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := tt.at
			tt.issuer.now = func() time.Time { return at }
			p, err := tt.issuer.Verify(tt.token)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("want error, got %+v", p)
				}
				return
			}
			if err != nil || p.Role != Ops || p.Subject != "alice" {
				t.Fatalf("got %+v, %v", p, err)
			}
		})
	}
}

func TestSecretIsKept(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, err := LoadOrCreateSecret(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreateSecret(dir)
	if err != nil || string(a) != string(b) || len(a) < 32 {
		t.Fatalf("secret not kept: %q %q %v", a, b, err)
	}
}

// TestVerifiedTokenStillExpires: a token remembered from an earlier check is
// refused once its time is up, and a tampered copy is not taken for it.
func TestVerifiedTokenStillExpires(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	iss := NewIssuer([]byte("0123456789abcdef0123456789abcdef"))
	iss.now = func() time.Time { return now }
	tok, err := iss.Issue(Principal{Role: Customer, Subject: "carla"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if p, err := iss.Verify(tok); err != nil || p.Subject != "carla" {
			t.Fatalf("got %+v, %v", p, err)
		}
	}
	if _, err := iss.Verify(tok[:len(tok)-2] + "xx"); err == nil {
		t.Fatal("a tampered token verified")
	}
	iss.now = func() time.Time { return now.Add(time.Minute) }
	if _, err := iss.Verify(tok); err == nil {
		t.Fatal("an expired token verified from memory")
	}
}
