package webhooks

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestSafeClientRefusesPrivateAddresses(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	if _, err := SafeClient(false).Get(srv.URL); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("loopback reached: %v", err)
	}
	resp, err := SafeClient(true).Get(srv.URL + "/redirect")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("redirect followed: %d", resp.StatusCode)
	}
}

func TestSign(t *testing.T) {
	t.Parallel()
	at := time.Unix(1_800_000_000, 0)
	got := Sign("whsec_test", at, []byte(`{"id":"e1"}`))
	// echo -n '1800000000.{"id":"e1"}' | openssl dgst -sha256 -hmac whsec_test
	if got != "t=1800000000,v1=b42cea22ffdaf1260befffe780b65c2b4329084ba2ae2223eafc00daf6803b75" {
		t.Fatalf("signature %q", got)
	}
	if Sign("whsec_test", at, []byte(`{"id":"e2"}`)) == got {
		t.Fatal("the signature does not cover the body")
	}
}
