// Package addrpolicy is the one policy for outbound calls to addresses a
// customer gave (owners' webhooks): only globally reachable unicast space,
// checked when the URL is registered and again on every dial, so neither a
// URL nor DNS can point Onsite inside its own network.
package addrpolicy

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"syscall"
)

// notGlobal are the IANA special-purpose blocks (IPv4 and IPv6 registries)
// that are not globally reachable, or that embed another address (6to4,
// Teredo, NAT64) which could lead back inside.
var notGlobal = func() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range []string{
		// IPv4 (RFC 6890 and its updates)
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
		"192.0.0.0/24", "192.0.2.0/24", "192.31.196.0/24", "192.52.193.0/24", "192.88.99.0/24", "192.168.0.0/16",
		"192.175.48.0/24", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
		"255.255.255.255/32",
		// IPv6: inside 2000::/3, the IETF protocol assignments (Teredo, ORCHID,
		// benchmarking…), documentation, 6to4 and the documentation range
		// 3fff::/20; outside it everything is refused anyway (loopback, ULA,
		// link-local, multicast, NAT64 64:ff9b::/96 and 64:ff9b:1::/48).
		"2001::/23", "2001:db8::/32", "2002::/16", "3fff::/20",
	} {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}()

var globalUnicast6 = netip.MustParsePrefix("2000::/3")

// Allowed reports whether Onsite may call ip: a globally reachable unicast
// address (an IPv4-mapped IPv6 address is judged as its IPv4 address).
func Allowed(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.Zone() != "" {
		return false
	}
	if ip.Is6() && !globalUnicast6.Contains(ip) {
		return false
	}
	for _, p := range notGlobal {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// Resolver looks up a host's addresses (net.DefaultResolver).
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// CheckURL refuses a URL whose host is, or resolves to, an address Onsite
// may not call. A host that does not resolve now is let through: every dial
// is checked again (Control).
func CheckURL(ctx context.Context, r Resolver, u *url.URL) error {
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		if !Allowed(ip) {
			return fmt.Errorf("%s is not a globally reachable address", host)
		}
		return nil
	}
	ips, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	for _, ip := range ips {
		if !Allowed(ip) {
			return fmt.Errorf("%s resolves to %s, which is not a globally reachable address", host, ip)
		}
	}
	return nil
}

// Control is a net.Dialer Control that refuses to connect to an address
// Onsite may not call: the address actually dialled, after DNS.
func Control(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !Allowed(ip) {
		return fmt.Errorf("refusing to connect to %s: not a globally reachable address", host)
	}
	return nil
}
