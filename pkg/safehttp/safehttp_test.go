package safehttp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// loopback is the only range tests may reach, via AllowCIDRs.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

func okServer(t *testing.T, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// blocked asserts that err wraps a *BlockedError and returns it.
func blocked(t *testing.T, err error) *BlockedError {
	t.Helper()
	if err == nil {
		t.Fatal("request succeeded, want it refused")
	}
	var be *BlockedError
	if !errors.As(err, &be) {
		t.Fatalf("error %v (%T) does not wrap *BlockedError", err, err)
	}
	return be
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, error) {
	t.Helper()
	resp, err := c.Get(u)
	if err == nil {
		t.Cleanup(func() { resp.Body.Close() })
	}
	return resp, err
}

func TestClientRefusesLoopbackServer(t *testing.T) {
	srv := okServer(t, "secret")
	_, err := get(t, Policy{}.Client(), srv.URL)
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Fatalf("error %v is not a *url.Error", err)
	}
	be := blocked(t, err)
	if be.IP != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("BlockedError.IP = %v, want 127.0.0.1", be.IP)
	}
	if !strings.Contains(err.Error(), "127.0.0.1 is a loopback address") {
		t.Errorf("error %q does not name the IP and why", err)
	}
}

func TestClientAllowPrivateReachesLoopbackServer(t *testing.T) {
	srv := okServer(t, "hello")
	p := Policy{AllowPrivate: true}
	resp, err := get(t, p.Client(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := p.ReadBody(resp.Body)
	if err != nil || string(body) != "hello" {
		t.Fatalf("body %q, err %v", body, err)
	}
}

func TestClientAllowCIDRsReachesLoopbackServer(t *testing.T) {
	srv := okServer(t, "hello")
	if _, err := get(t, Policy{AllowCIDRs: loopback}.Client(), srv.URL); err != nil {
		t.Fatal(err)
	}
}

// A name that passes CheckURL but resolves to a blocked address is refused
// when the connection is made: this is what defeats DNS rebinding.
func TestClientRefusesNameResolvingToLoopback(t *testing.T) {
	srv := okServer(t, "secret")
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	u := "http://localhost:" + port + "/"

	var p Policy
	if _, err := p.CheckURL(u); err != nil {
		t.Fatalf("CheckURL(%s) = %v; a name is not resolved by CheckURL", u, err)
	}
	_, err := get(t, p.Client(), u)
	be := blocked(t, err)
	if be.Host != "localhost" || !be.IP.IsLoopback() {
		t.Errorf("BlockedError = %+v, want host localhost and a loopback IP", be)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "dial" {
		t.Errorf("want the refusal to come from the dialer, got %v", err)
	}
	if !strings.Contains(err.Error(), "localhost") || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("error %q should name the host and the reason", err)
	}

	// The same name is reachable when the operator allows private addresses.
	if _, err := get(t, Policy{AllowPrivate: true}.Client(), u); err != nil {
		t.Fatalf("AllowPrivate: %v", err)
	}
}

func TestClientRefusesBadURLsBeforeDialing(t *testing.T) {
	c := Policy{AllowCIDRs: loopback}.Client()
	srv := okServer(t, "x")
	withUser := strings.Replace(srv.URL, "http://", "http://user:pw@", 1)
	if _, err := get(t, c, withUser); err == nil || !strings.Contains(err.Error(), "userinfo") {
		t.Errorf("userinfo: err = %v", err)
	}
	_, err := get(t, c, "http://10.255.255.1/")
	if be := blocked(t, err); be.IP != netip.MustParseAddr("10.255.255.1") {
		t.Errorf("IP = %v", be.IP)
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		t.Errorf("10.255.255.1 was dialed: %v", err)
	}
}

func TestClientAllowedPorts(t *testing.T) {
	srv := okServer(t, "x")
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	_, err := get(t, Policy{AllowCIDRs: loopback, AllowedPorts: []int{443}}.Client(), srv.URL)
	if be := blocked(t, err); !strings.Contains(be.Reason, "port "+port) {
		t.Errorf("reason %q does not name port %s", be.Reason, port)
	}
	var n int
	fmt.Sscan(port, &n)
	if _, err := get(t, Policy{AllowCIDRs: loopback, AllowedPorts: []int{443, n}}.Client(), srv.URL); err != nil {
		t.Fatal(err)
	}
}

func redirectServer(t *testing.T, to string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, to, http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestRedirectToBlockedAddressRefused(t *testing.T) {
	tests := []struct{ target, ip string }{
		{"http://10.255.255.1/admin", "10.255.255.1"},
		{"http://[::1]:8080/", "::1"},
		{"http://169.254.169.254/latest/meta-data/", "169.254.169.254"},
		{"http://[::ffff:127.0.0.2]/", "::ffff:127.0.0.2"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			// The first server is allowed (exactly 127.0.0.1), the
			// redirect target is not.
			srv, hits := redirectServer(t, tt.target)
			_, err := get(t, Policy{AllowCIDRs: loopback}.Client(), srv.URL)
			be := blocked(t, err)
			if be.IP != netip.MustParseAddr(tt.ip) {
				t.Errorf("BlockedError.IP = %v, want %s", be.IP, tt.ip)
			}
			var oe *net.OpError
			if errors.As(err, &oe) {
				t.Errorf("redirect target was dialed: %v", err)
			}
			if hits.Load() != 1 {
				t.Errorf("first server hit %d times", hits.Load())
			}
		})
	}
}

// Allow decisions are about the address dialed, not the name in the URL:
// allowing 127.0.0.1 lets a redirect to "localhost" (127.0.0.1) through.
func TestAllowCIDRsApplyToResolvedNames(t *testing.T) {
	target := okServer(t, "ok")
	_, port, _ := net.SplitHostPort(target.Listener.Addr().String())
	srv, _ := redirectServer(t, "http://localhost:"+port+"/")
	if _, err := get(t, Policy{AllowCIDRs: loopback}.Client(), srv.URL); err != nil {
		t.Fatalf("redirect to a name resolving to an allowed address refused: %v", err)
	}
}

func TestRedirectLimit(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		http.Redirect(w, r, fmt.Sprintf("/hop%d", n), http.StatusFound)
	}))
	t.Cleanup(srv.Close)

	_, err := get(t, Policy{AllowCIDRs: loopback, MaxRedirects: 3}.Client(), srv.URL)
	if err == nil || !strings.Contains(err.Error(), "stopped after 3 redirects") {
		t.Fatalf("err = %v, want stop after 3 redirects", err)
	}
	if got := hits.Load(); got != 4 {
		t.Errorf("server hit %d times, want 4 (1 request + 3 redirects)", got)
	}

	hits.Store(0)
	_, err = get(t, Policy{AllowCIDRs: loopback}.Client(), srv.URL)
	if err == nil || !strings.Contains(err.Error(), "stopped after 5 redirects") {
		t.Fatalf("default: err = %v, want stop after 5 redirects", err)
	}
	if got := hits.Load(); got != 6 {
		t.Errorf("default: server hit %d times, want 6", got)
	}

	hits.Store(0)
	resp, err := get(t, Policy{AllowCIDRs: loopback, MaxRedirects: -1}.Client(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusFound || hits.Load() != 1 {
		t.Errorf("MaxRedirects -1: status %d after %d hits, want the 302 itself", resp.StatusCode, hits.Load())
	}
}

func TestRedirectWithinLimitFollowed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			http.Redirect(w, r, "/a", http.StatusFound)
		case "/a":
			http.Redirect(w, r, "/b", http.StatusMovedPermanently)
		default:
			io.WriteString(w, "done")
		}
	}))
	t.Cleanup(srv.Close)
	p := Policy{AllowCIDRs: loopback, MaxRedirects: 2}
	resp, err := get(t, p.Client(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := p.ReadBody(resp.Body); string(b) != "done" {
		t.Errorf("body %q", b)
	}
}

func TestRedirectHTTPSToHTTPRefused(t *testing.T) {
	plain, plainHits := redirectServer(t, "/never")
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/downgraded", http.StatusFound)
	}))
	t.Cleanup(tlsSrv.Close)

	c := Policy{AllowCIDRs: loopback}.Client()
	// Trust the test server's certificate.
	c.Transport.(*transport).base.TLSClientConfig = tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	_, err := get(t, c, tlsSrv.URL)
	if err == nil || !strings.Contains(err.Error(), "from https to http") {
		t.Fatalf("err = %v, want https->http refusal", err)
	}
	if plainHits.Load() != 0 {
		t.Error("plain http server was reached after a downgrade")
	}
}

func TestClientIgnoresProxyFromEnvironment(t *testing.T) {
	c := Policy{}.Client()
	tr, ok := c.Transport.(*transport)
	if !ok {
		t.Fatalf("Transport is %T", c.Transport)
	}
	if tr.base.Proxy != nil {
		t.Error("Transport.Proxy is set; a proxy would hide the real destination")
	}
	if c.Timeout != DefaultTimeout {
		t.Errorf("Timeout = %v, want %v", c.Timeout, DefaultTimeout)
	}
	if c := (Policy{Timeout: time.Second}).Client(); c.Timeout != time.Second {
		t.Errorf("Timeout = %v, want 1s", c.Timeout)
	}
}

func TestClientTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	start := time.Now()
	_, err := get(t, Policy{AllowCIDRs: loopback, Timeout: 200 * time.Millisecond}.Client(), srv.URL)
	if err == nil {
		t.Fatal("slow server: request succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("request took %v despite a 200ms timeout", d)
	}
}

func TestCheckURL(t *testing.T) {
	p := Policy{AllowedPorts: []int{80, 443, 8443}}
	good := []string{
		"http://example.com/",
		"https://example.com:8443/path?q=1#f",
		"HTTPS://Example.COM/",
		"http://localhost/",
		"http://1.1.1.1/",
		"http://[2606:4700:4700::1111]/",
		"http://example.com./",
	}
	for _, u := range good {
		got, err := p.CheckURL(u)
		if err != nil {
			t.Errorf("CheckURL(%q) = %v", u, err)
			continue
		}
		if got.Hostname() == "" {
			t.Errorf("CheckURL(%q) returned no host", u)
		}
	}

	tests := []struct {
		url     string
		want    string // substring of the error
		blocked bool   // a *BlockedError
	}{
		{"ftp://example.com/file", `scheme "ftp"`, false},
		{"file:///etc/passwd", `scheme "file"`, false},
		{"gopher://example.com/", `scheme "gopher"`, false},
		{"example.com/path", "no scheme", false},
		{"http://", "no host", false},
		{"http:///path", "no host", false},
		{"http:example.com", "no host", false},
		{"http://:80/", "no host", false},
		{"http://user:pass@example.com/", "userinfo", false},
		{"http://user@example.com/", "userinfo", false},
		{"http://example.com:22/", "port 22 is not allowed", true},
		{"https://example.com:0/", "invalid", false},
		{"https://example.com:99999/", "invalid", false},
		{"http://example.com:/", "empty port", false},
		{"http://10.0.0.5/", "10.0.0.5 is a private address", true},
		{"http://127.0.0.1/", "loopback", true},
		{"http://[::1]/", "loopback", true},
		{"http://[::ffff:10.0.0.1]/", "private", true},
		{"http://[fe80::1%25eth0]/", "link-local", true},
		{"http://169.254.169.254/latest/meta-data/", "metadata", true},
		{"http://0.0.0.0/", "unspecified", true},
		{"http://127.1/", "ambiguous numeric", false},
		{"http://2130706433/", "ambiguous numeric", false},
		{"http://0x7f.0.0.1/", "ambiguous numeric", false},
		{"http://%zz/", "invalid URL", false},
		{"http://exa mple.com/", "invalid URL", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			u, err := p.CheckURL(tt.url)
			if err == nil {
				t.Fatalf("accepted as %v", u)
			}
			if u != nil {
				t.Errorf("returned URL %v with error", u)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			var be *BlockedError
			if errors.As(err, &be) != tt.blocked {
				t.Errorf("error %q: *BlockedError = %v, want %v", err, !tt.blocked, tt.blocked)
			}
		})
	}

	// AllowPrivate and AllowCIDRs apply to IP literals in CheckURL too.
	if _, err := (Policy{AllowPrivate: true}).CheckURL("http://10.0.0.5/"); err != nil {
		t.Errorf("AllowPrivate: %v", err)
	}
	if _, err := (Policy{AllowPrivate: true}).CheckURL("http://169.254.169.254/"); err == nil {
		t.Error("AllowPrivate let the metadata address through")
	}
}

func TestBlockedErrorMessage(t *testing.T) {
	e := &BlockedError{Host: "10.0.0.5", IP: netip.MustParseAddr("10.0.0.5"), Reason: "10.0.0.5 is a private address"}
	if got, want := e.Error(), "safehttp: destination refused: 10.0.0.5 is a private address"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	e = &BlockedError{Host: "internal.example", IP: netip.MustParseAddr("10.0.0.5"), Reason: "10.0.0.5 is a private address"}
	if got, want := e.Error(), "safehttp: destination internal.example refused: 10.0.0.5 is a private address"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestReadBody(t *testing.T) {
	p := Policy{MaxResponseBytes: 10}
	b, err := p.ReadBody(strings.NewReader("0123456789"))
	if err != nil || string(b) != "0123456789" {
		t.Errorf("exactly at limit: %q, %v", b, err)
	}
	b, err = p.ReadBody(strings.NewReader("0123456789X"))
	if !errors.Is(err, ErrResponseTooLarge) {
		t.Errorf("over limit: err = %v", err)
	}
	if string(b) != "0123456789" {
		t.Errorf("over limit: got %q, want the first 10 bytes", b)
	}

	// Default limit is 1 MiB.
	big := bytes.Repeat([]byte("a"), DefaultMaxResponseBytes+1)
	if _, err := (Policy{}).ReadBody(bytes.NewReader(big)); !errors.Is(err, ErrResponseTooLarge) {
		t.Errorf("default limit: err = %v", err)
	}
	if b, err := (Policy{}).ReadBody(bytes.NewReader(big[:DefaultMaxResponseBytes])); err != nil || len(b) != DefaultMaxResponseBytes {
		t.Errorf("default limit exactly: %d bytes, %v", len(b), err)
	}

	// Read errors are passed through.
	boom := errors.New("boom")
	if _, err := p.ReadBody(io.MultiReader(strings.NewReader("ab"), &errReader{boom})); !errors.Is(err, boom) {
		t.Errorf("read error: %v", err)
	}
}

type errReader struct{ err error }

func (r *errReader) Read([]byte) (int, error) { return 0, r.err }

// Changing the caller's slices after Client does not change the client.
func TestClientCopiesPolicy(t *testing.T) {
	srv := okServer(t, "x")
	cidrs := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	c := Policy{AllowCIDRs: cidrs}.Client()
	cidrs[0] = netip.MustParsePrefix("192.0.2.0/24")
	if _, err := get(t, c, srv.URL); err != nil {
		t.Fatal(err)
	}
}
