package safehttp

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"http://example.com/",
		"https://example.com:8443/a?b=c#d",
		"http://10.0.0.1/",
		"http://[::ffff:10.0.0.1]:80/",
		"http://[fe80::1%25eth0]/",
		"http://user:pw@example.com/",
		"ftp://example.com/",
		"http:example.com",
		"http://127.1/",
		"http://0x7f.1/",
		"http://example.com:99999/",
		"HTTP://EXAMPLE.COM./",
		"//example.com/",
		"http://%31%30.0.0.1/",
		"http://[64:ff9b::a00:1]/",
		"",
	} {
		f.Add(s)
	}
	p := Policy{AllowedPorts: []int{80, 443, 8080}}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := p.CheckURL(raw)
		if err != nil {
			if u != nil {
				t.Fatalf("CheckURL(%q) returned both %v and %v", raw, u, err)
			}
			var be *BlockedError
			if errors.As(err, &be) && be.Reason == "" {
				t.Fatalf("CheckURL(%q): BlockedError without reason", raw)
			}
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			t.Fatalf("CheckURL(%q) accepted scheme %q", raw, u.Scheme)
		}
		host := u.Hostname()
		if host == "" {
			t.Fatalf("CheckURL(%q) accepted an empty host", raw)
		}
		if u.User != nil {
			t.Fatalf("CheckURL(%q) accepted userinfo", raw)
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			if ok, _ := p.Allowed(ip); !ok {
				t.Fatalf("CheckURL(%q) accepted blocked IP %s", raw, ip)
			}
		} else if strings.ContainsAny(host, ":%") {
			t.Fatalf("CheckURL(%q) accepted malformed host %q", raw, host)
		}
		// Checking the parsed URL again gives the same answer.
		if err := p.checkURL(u); err != nil {
			t.Fatalf("CheckURL(%q) accepted, checkURL(parsed) = %v", raw, err)
		}
	})
}
