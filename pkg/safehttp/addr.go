package safehttp

import (
	"fmt"
	"net/netip"
	"slices"
)

// category classifies a blocked range.
type category struct {
	prefix netip.Prefix
	// what completes "<ip> is ...".
	what string
	// private ranges may be reached when Policy.AllowPrivate is set.
	private bool
}

func cat(prefix, what string, private bool) category {
	return category{prefix: netip.MustParsePrefix(prefix), what: what, private: private}
}

// metadataAddrs are cloud instance metadata and credential endpoints. They
// are blocked even with AllowPrivate.
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"), // AWS, GCP, Azure, OCI, DigitalOcean, ... IMDS
	netip.MustParseAddr("169.254.170.2"),   // AWS ECS task credentials
	netip.MustParseAddr("169.254.170.23"),  // AWS EKS pod identity
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud metadata
	netip.MustParseAddr("fd00:ec2::254"),   // AWS IMDS over IPv6
	netip.MustParseAddr("fd00:ec2::23"),    // AWS EKS pod identity over IPv6
	netip.MustParseAddr("fd20:ce::254"),    // GCP metadata over IPv6
}

// v4Blocked lists IPv4 ranges that are not globally reachable unicast
// (IANA special-purpose registry), most specific first.
var v4Blocked = []category{
	cat("255.255.255.255/32", "the broadcast address", false),
	cat("0.0.0.0/8", "an unspecified (\"this network\") address", false),
	cat("10.0.0.0/8", "a private address", true),
	cat("100.64.0.0/10", "a shared (CGNAT) address", true),
	cat("127.0.0.0/8", "a loopback address", true),
	cat("169.254.0.0/16", "a link-local address", false),
	cat("172.16.0.0/12", "a private address", true),
	cat("192.0.0.0/24", "a reserved (IETF protocol assignment) address", false),
	cat("192.0.2.0/24", "a documentation address", false),
	cat("192.31.196.0/24", "a reserved (AS112) address", false),
	cat("192.52.193.0/24", "a reserved (AMT) address", false),
	cat("192.88.99.0/24", "a reserved (6to4 relay anycast) address", false),
	cat("192.168.0.0/16", "a private address", true),
	cat("192.175.48.0/24", "a reserved (AS112) address", false),
	cat("198.18.0.0/15", "a benchmarking address", false),
	cat("198.51.100.0/24", "a documentation address", false),
	cat("203.0.113.0/24", "a documentation address", false),
	cat("224.0.0.0/4", "a multicast address", false),
	cat("240.0.0.0/4", "a reserved address", false),
}

// v6Blocked lists IPv6 ranges that are blocked. IPv4-mapped, NAT64 and 6to4
// addresses are handled before this list, by checking the IPv4 address they
// embed. Anything outside 2000::/3 that is not listed here is also blocked.
var v6Blocked = []category{
	cat("::/128", "the unspecified address", false),
	cat("::1/128", "a loopback address", true),
	cat("::/96", "a reserved (deprecated IPv4-compatible) address", false),
	cat("64:ff9b:1::/48", "a reserved (local-use NAT64) address", false),
	cat("100::/64", "a reserved (discard-only) address", false),
	cat("2001::/32", "a Teredo tunnel address", false),
	cat("2001:2::/48", "a benchmarking address", false),
	cat("2001::/23", "a reserved (IETF protocol assignment) address", false),
	cat("2001:db8::/32", "a documentation address", false),
	cat("3fff::/20", "a documentation address", false),
	cat("5f00::/16", "a reserved (SRv6 SID) address", false),
	cat("fc00::/7", "a private (unique local) address", true),
	cat("fe80::/10", "a link-local address", false),
	cat("fec0::/10", "a private (deprecated site-local) address", true),
	cat("ff00::/8", "a multicast address", false),
}

var (
	nat64Prefix   = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour     = netip.MustParsePrefix("2002::/16")
	globalUnicast = netip.MustParsePrefix("2000::/3")
)

// Allowed reports whether an address may be dialed under the policy, with
// the reason when not (e.g. "10.0.0.5 is a private address").
//
// Addresses inside Policy.AllowCIDRs are always allowed. Otherwise cloud
// metadata addresses are refused; IPv4-mapped (::ffff:a.b.c.d), NAT64
// (64:ff9b::/96) and 6to4 (2002::/16) addresses are judged by the IPv4
// address they embed; private, loopback and CGNAT addresses are allowed only
// with AllowPrivate; and every other special-purpose address (link-local,
// unspecified, multicast, broadcast, documentation, benchmarking, reserved,
// IPv6 outside 2000::/3) is refused.
func (p Policy) Allowed(ip netip.Addr) (bool, string) {
	if !ip.IsValid() {
		return false, "invalid IP address"
	}
	ip = ip.WithZone("")
	if p.inAllowCIDRs(ip) {
		return true, ""
	}
	if ip.Is4In6() {
		return p.embedded(ip, ip.Unmap(), "IPv4-mapped")
	}
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64Prefix.Contains(ip):
			return p.embedded(ip, netip.AddrFrom4([4]byte(b[12:16])), "NAT64")
		case sixToFour.Contains(ip):
			return p.embedded(ip, netip.AddrFrom4([4]byte(b[2:6])), "6to4")
		}
	}
	if isMetadata(ip) {
		return false, fmt.Sprintf("%s is a cloud metadata address", ip)
	}
	list := v4Blocked
	if ip.Is6() {
		list = v6Blocked
	}
	for _, c := range list {
		if c.prefix.Contains(ip) {
			if c.private && p.AllowPrivate {
				return true, ""
			}
			return false, fmt.Sprintf("%s is %s", ip, c.what)
		}
	}
	if ip.Is6() && !globalUnicast.Contains(ip) {
		return false, fmt.Sprintf("%s is a reserved (not global unicast) address", ip)
	}
	return true, ""
}

// embedded judges an IPv6 address by the IPv4 address it embeds.
func (p Policy) embedded(ip, v4 netip.Addr, form string) (bool, string) {
	if ok, reason := p.Allowed(v4); !ok {
		return false, fmt.Sprintf("%s is the %s form of %s; %s", ip, form, v4, reason)
	}
	return true, ""
}

func (p Policy) inAllowCIDRs(ip netip.Addr) bool {
	for _, pfx := range p.AllowCIDRs {
		if pfx.Contains(ip) || (ip.Is4In6() && pfx.Contains(ip.Unmap())) {
			return true
		}
	}
	return false
}

func isMetadata(ip netip.Addr) bool { return slices.Contains(metadataAddrs, ip) }
