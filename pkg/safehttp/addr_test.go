package safehttp

import (
	"net/netip"
	"strings"
	"testing"
)

func TestAllowedDefaultPolicy(t *testing.T) {
	tests := []struct {
		ip      string
		allowed bool
		reason  string // substring of the reason when refused
	}{
		// Public addresses.
		{"1.1.1.1", true, ""},
		{"8.8.8.8", true, ""},
		{"2606:4700:4700::1111", true, ""},
		{"2001:4860:4860::8888", true, ""},
		{"::ffff:1.1.1.1", true, ""},
		{"64:ff9b::101:101", true, ""}, // NAT64 of 1.1.1.1
		{"2002:101:101::", true, ""},   // 6to4 of 1.1.1.1

		// Loopback.
		{"127.0.0.1", false, "127.0.0.1 is a loopback address"},
		{"127.255.255.254", false, "loopback"},
		{"::1", false, "::1 is a loopback address"},

		// RFC 1918.
		{"10.0.0.5", false, "10.0.0.5 is a private address"},
		{"10.255.255.255", false, "private"},
		{"172.16.0.1", false, "private"},
		{"172.31.255.255", false, "private"},
		{"192.168.1.1", false, "private"},
		{"172.32.0.1", true, ""}, // just outside 172.16/12
		{"172.15.255.255", true, ""},

		// Link-local and metadata.
		{"169.254.169.254", false, "169.254.169.254 is a cloud metadata address"},
		{"169.254.170.2", false, "metadata"},
		{"169.254.1.1", false, "link-local"},
		{"fd00:ec2::254", false, "fd00:ec2::254 is a cloud metadata address"},
		{"fe80::1", false, "fe80::1 is a link-local address"},
		{"fe80::1%eth0", false, "link-local"},

		// Unique local.
		{"fc00::1", false, "unique local"},
		{"fd12:3456:789a::1", false, "unique local"},

		// CGNAT, benchmarking, documentation, reserved.
		{"100.64.0.1", false, "100.64.0.1 is a shared (CGNAT) address"},
		{"100.127.255.255", false, "CGNAT"},
		{"100.128.0.1", true, ""},
		{"100.100.100.200", false, "metadata"},
		{"198.18.0.1", false, "benchmarking"},
		{"198.19.255.255", false, "benchmarking"},
		{"192.0.2.1", false, "documentation"},
		{"198.51.100.1", false, "documentation"},
		{"203.0.113.1", false, "documentation"},
		{"2001:db8::1", false, "documentation"},
		{"192.0.0.8", false, "reserved"},
		{"240.0.0.1", false, "reserved"},
		{"255.255.255.255", false, "broadcast"},
		{"100::1", false, "discard"},
		{"2001::1", false, "Teredo"},
		{"4000::1", false, "not global unicast"},

		// Unspecified and multicast.
		{"0.0.0.0", false, "unspecified"},
		{"0.1.2.3", false, "unspecified"},
		{"::", false, ":: is the unspecified address"},
		{"224.0.0.1", false, "224.0.0.1 is a multicast address"},
		{"239.255.255.250", false, "multicast"},
		{"ff02::1", false, "multicast"},

		// IPv4 in IPv6 forms of blocked addresses.
		{"::ffff:10.0.0.1", false, "IPv4-mapped form of 10.0.0.1; 10.0.0.1 is a private address"},
		{"::ffff:127.0.0.1", false, "loopback"},
		{"::ffff:169.254.169.254", false, "metadata"},
		{"64:ff9b::a00:1", false, "NAT64 form of 10.0.0.1; 10.0.0.1 is a private address"},
		{"64:ff9b::a9fe:a9fe", false, "metadata"},
		{"64:ff9b:1::a00:1", false, "local-use NAT64"},
		{"2002:a00:1::", false, "6to4 form of 10.0.0.1; 10.0.0.1 is a private address"},
		{"2002:7f00:1::1", false, "loopback"},
		{"::a00:1", false, "IPv4-compatible"},
	}
	var p Policy
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			ok, reason := p.Allowed(netip.MustParseAddr(tt.ip))
			if ok != tt.allowed {
				t.Fatalf("Allowed(%s) = %v (%q), want %v", tt.ip, ok, reason, tt.allowed)
			}
			if ok && reason != "" {
				t.Errorf("allowed with reason %q", reason)
			}
			if !ok && !strings.Contains(reason, tt.reason) {
				t.Errorf("reason %q does not contain %q", reason, tt.reason)
			}
		})
	}
}

func TestAllowedInvalidAddress(t *testing.T) {
	if ok, reason := (Policy{}).Allowed(netip.Addr{}); ok || reason == "" {
		t.Fatalf("zero Addr: got %v %q", ok, reason)
	}
}

func TestAllowedAllowPrivate(t *testing.T) {
	p := Policy{AllowPrivate: true}
	allowed := []string{
		"127.0.0.1", "::1", "10.0.0.5", "172.16.0.1", "192.168.1.1",
		"100.64.0.1", "fc00::1", "::ffff:10.0.0.1", "64:ff9b::a00:1",
		"2002:a00:1::", "1.1.1.1",
	}
	for _, s := range allowed {
		if ok, reason := p.Allowed(netip.MustParseAddr(s)); !ok {
			t.Errorf("AllowPrivate: %s refused: %s", s, reason)
		}
	}
	blocked := []string{
		// Metadata stays blocked even though it is link-local / ULA / CGNAT.
		"169.254.169.254", "fd00:ec2::254", "100.100.100.200", "::ffff:169.254.169.254",
		"64:ff9b::a9fe:a9fe",
		// Not "private": still blocked.
		"169.254.1.1", "fe80::1", "0.0.0.0", "::", "224.0.0.1", "192.0.2.1", "198.18.0.1",
	}
	for _, s := range blocked {
		if ok, _ := p.Allowed(netip.MustParseAddr(s)); ok {
			t.Errorf("AllowPrivate: %s allowed, want blocked", s)
		}
	}
	if _, reason := p.Allowed(netip.MustParseAddr("169.254.169.254")); !strings.Contains(reason, "metadata") {
		t.Errorf("metadata reason = %q", reason)
	}
}

func TestAllowedAllowCIDRs(t *testing.T) {
	p := Policy{AllowCIDRs: []netip.Prefix{
		netip.MustParsePrefix("10.1.2.0/24"),
		netip.MustParsePrefix("fd00:1::/32"),
		netip.MustParsePrefix("169.254.169.254/32"),
	}}
	for _, s := range []string{"10.1.2.3", "::ffff:10.1.2.3", "fd00:1::5", "169.254.169.254"} {
		if ok, reason := p.Allowed(netip.MustParseAddr(s)); !ok {
			t.Errorf("%s refused although in AllowCIDRs: %s", s, reason)
		}
	}
	for _, s := range []string{"10.1.3.1", "127.0.0.1", "fd00:2::1", "192.168.0.1", "fd00:ec2::254"} {
		if ok, _ := p.Allowed(netip.MustParseAddr(s)); ok {
			t.Errorf("%s allowed, want blocked", s)
		}
	}
	// An allowed range does not open up other ranges of the same kind.
	p = Policy{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	if ok, _ := p.Allowed(netip.MustParseAddr("127.0.0.2")); ok {
		t.Error("127.0.0.2 allowed by 127.0.0.1/32")
	}
}

func TestParseCIDRs(t *testing.T) {
	got, err := ParseCIDRs(" 10.0.0.0/8, fd00::/8 ,,10.1.2.3, 192.168.1.77/24,")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "fd00::/8", "10.1.2.3/32", "192.168.1.0/24"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("entry %d = %s, want %s", i, got[i], want[i])
		}
	}

	if got, err := ParseCIDRs("  "); err != nil || len(got) != 0 {
		t.Errorf("empty: %v, %v", got, err)
	}
	for _, bad := range []string{"10.0.0.0/33", "10.0.0.0/8, nonsense", "fe80::1%eth0", "10.0.0/8"} {
		_, err := ParseCIDRs(bad)
		if err == nil {
			t.Errorf("ParseCIDRs(%q) succeeded", bad)
			continue
		}
		last := strings.TrimSpace(bad[strings.LastIndex(bad, ",")+1:])
		if !strings.Contains(err.Error(), last) {
			t.Errorf("error %q does not name the bad entry %q", err, last)
		}
	}
}
