package addrpolicy

import (
	"context"
	"net/netip"
	"net/url"
	"testing"
)

func TestAllowed(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		ip   string
		want bool
	}{
		{"8.8.8.8", true}, {"1.1.1.1", true}, {"2606:4700:4700::1111", true}, {"2a00:1450:4001:82b::200e", true},
		// the ranges the review reached, and the ones refused already
		{"100.100.100.200", false}, {"100.64.0.1", false}, {"192.0.0.170", false}, {"198.18.0.1", false}, {"198.19.255.255", false},
		{"240.0.0.1", false}, {"255.255.255.255", false}, {"64:ff9b::a9fe:a9fe", false}, {"64:ff9b:1::1", false},
		{"127.0.0.1", false}, {"10.1.2.3", false}, {"172.16.0.1", false}, {"192.168.1.1", false}, {"169.254.169.254", false},
		{"0.0.0.0", false}, {"224.0.0.1", false}, {"192.0.2.1", false}, {"198.51.100.1", false}, {"203.0.113.9", false},
		{"::1", false}, {"::", false}, {"fc00::1", false}, {"fd12::1", false}, {"fe80::1", false}, {"ff02::1", false},
		{"::ffff:127.0.0.1", false}, {"::ffff:8.8.8.8", true}, {"2001:db8::1", false}, {"2002:7f00:1::1", false},
		{"2001:0:4136:e378::1", false}, {"3fff::1", false}, {"fe80::1%eth0", false},
	} {
		if got := Allowed(netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.ip, got, tt.want)
		}
	}
}

// fixed resolves every host to the same addresses.
type fixed []netip.Addr

func (f fixed) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) { return f, nil }

func TestCheckURL(t *testing.T) {
	t.Parallel()
	public, private := fixed{netip.MustParseAddr("93.184.216.34")}, fixed{netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("10.0.0.5")}
	for _, tt := range []struct {
		url  string
		r    Resolver
		fine bool
	}{
		{"https://hooks.example.com/x", public, true},
		{"https://hooks.example.com/x", private, false}, // one address inside is enough to refuse
		{"http://[::ffff:169.254.169.254]/latest", public, false},
		{"http://100.100.100.200/", public, false},
		{"https://8.8.8.8/", public, true},
	} {
		u, _ := url.Parse(tt.url)
		if err := CheckURL(context.Background(), tt.r, u); (err == nil) != tt.fine {
			t.Errorf("%s: %v, want fine %v", tt.url, err, tt.fine)
		}
	}
	if err := Control("tcp", "100.64.1.1:443", nil); err == nil {
		t.Error("Control let 100.64.1.1 through")
	}
	if err := Control("tcp", "8.8.8.8:443", nil); err != nil {
		t.Errorf("Control refused 8.8.8.8: %v", err)
	}
}
