// Package safehttp builds HTTP clients for outbound calls whose destination a
// tenant controls: a flow's http node, outbound webhooks, anything that takes
// a URL from configuration a tenant can edit.
//
// # Threat model
//
// A tenant who can choose the URL of an outbound request can try server-side
// request forgery (SSRF): aiming the request at something that is reachable
// from our network but not from theirs. Typical targets are the cloud
// metadata service (169.254.169.254, fd00:ec2::254), which hands out
// credentials; loopback services (admin ports, NATS, databases); and private
// addresses of other internal systems. The response may leak back to the
// tenant through the flow, and even a blind request can change state.
//
// # Why the check happens at dial time
//
// Checking the URL alone is not enough. A host name can resolve to a private
// address, and DNS rebinding lets a name resolve to a public address when it
// is validated and to 127.0.0.1 a moment later when it is dialed. Redirects
// can send a request that started at a harmless URL anywhere. Address
// spellings such as "::ffff:10.0.0.1", "64:ff9b::a00:1" or "2002:a00:1::"
// reach private IPv4 hosts through IPv6 forms, and resolvers accept forms
// such as "127.1" that look like names.
//
// The Client returned by Policy.Client therefore checks the IP address that
// is actually being connected to, after DNS resolution, from the
// net.Dialer's Control hook, which runs for every address the dialer tries,
// just before connect(2). Nothing is resolved twice, so the address checked
// is the address dialed. In addition every request and every redirect target
// is checked with CheckURL before anything is dialed, redirects are limited
// in number and may not downgrade from https to http, and proxies from the
// environment are disabled, because a proxy would do the dialing and hide
// the destination from the check.
//
// By default only globally routable unicast addresses may be reached. The
// Policy can let operators allow private and loopback addresses (local
// development) or specific ranges (an internal API). Cloud metadata
// addresses are blocked even with AllowPrivate; only an AllowCIDRs entry
// that contains them unblocks them.
package safehttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Defaults used when the corresponding Policy field is zero.
const (
	DefaultTimeout          = 10 * time.Second
	DefaultMaxResponseBytes = 1 << 20
	DefaultMaxRedirects     = 5
)

// Policy says what outbound calls may reach. The zero value is the safe
// default: only public addresses, any port, default limits.
type Policy struct {
	// AllowPrivate lets calls reach private and loopback addresses
	// (operator opt-in, e.g. local development): RFC 1918, loopback,
	// shared/CGNAT 100.64.0.0/10, IPv6 unique local and site-local.
	// Link-local, unspecified, multicast, documentation, benchmarking and
	// reserved addresses stay blocked, and so do metadata addresses,
	// unless listed in AllowCIDRs.
	AllowPrivate bool
	// AllowCIDRs are extra ranges allowed even though they are blocked by
	// default (e.g. an internal API 10.1.2.0/24). An address inside any of
	// them is allowed, whatever its category, metadata included.
	AllowCIDRs []netip.Prefix
	// AllowedPorts, when non-empty, restricts destination ports
	// (default: any).
	AllowedPorts []int
	// Timeout bounds a whole request, including redirects and reading the
	// body (default 10s).
	Timeout time.Duration
	// MaxResponseBytes bounds the body read by ReadBody (default 1 MiB).
	MaxResponseBytes int64
	// MaxRedirects is the number of redirects followed (default 5); each
	// redirect target is checked again, and https->http downgrades are
	// refused. A negative value follows no redirects: the 3xx response is
	// returned to the caller as is.
	MaxRedirects int
}

// ErrResponseTooLarge is returned by ReadBody when the body is longer than
// the policy's MaxResponseBytes.
var ErrResponseTooLarge = errors.New("safehttp: response body too large")

// BlockedError says a destination was refused and why (e.g. "10.0.0.5 is a
// private address"). Errors from the client's Do, Get, ... wrap it (inside a
// *url.Error and possibly a *net.OpError), so use errors.As to find it.
type BlockedError struct {
	// Host is the host as named in the URL (a name or an IP literal).
	Host string
	// IP is the refused address; it is the zero Addr when the refusal is
	// not about an address (a disallowed port on a host name).
	IP netip.Addr
	// Reason is a human-readable explanation.
	Reason string
}

func (e *BlockedError) Error() string {
	if e.Host != "" && (!e.IP.IsValid() || e.Host != e.IP.String()) {
		return fmt.Sprintf("safehttp: destination %s refused: %s", e.Host, e.Reason)
	}
	return "safehttp: destination refused: " + e.Reason
}

func (p Policy) timeout() time.Duration {
	if p.Timeout > 0 {
		return p.Timeout
	}
	return DefaultTimeout
}

func (p Policy) maxResponseBytes() int64 {
	if p.MaxResponseBytes > 0 {
		return p.MaxResponseBytes
	}
	return DefaultMaxResponseBytes
}

func (p Policy) maxRedirects() int {
	switch {
	case p.MaxRedirects > 0:
		return p.MaxRedirects
	case p.MaxRedirects < 0:
		return -1
	}
	return DefaultMaxRedirects
}

// ParseCIDRs parses a comma-separated list of ranges for configuration, such
// as "10.0.0.0/8, fd00::/8". A bare address ("10.1.2.3") means that single
// address. Empty entries are ignored; the error names the first bad entry.
func ParseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		var pfx netip.Prefix
		var err error
		if strings.Contains(entry, "/") {
			pfx, err = netip.ParsePrefix(entry)
		} else {
			var a netip.Addr
			a, err = netip.ParseAddr(entry)
			if err == nil && a.Zone() != "" {
				err = errors.New("zones are not allowed")
			}
			if err == nil {
				pfx = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			return nil, fmt.Errorf("safehttp: bad CIDR %q (entry %d): %w", entry, i+1, err)
		}
		out = append(out, pfx.Masked())
	}
	return out, nil
}

// Client returns an *http.Client enforcing the policy. It has its own
// Transport (proxies from the environment are disabled, because a proxy
// would hide the destination), checks every request URL and redirect target
// with CheckURL, and checks every address dialed with Allowed. Requests are
// bounded by the policy's Timeout. HTTP/1.1 and HTTP/2 are both supported.
//
// Create one Client per policy and reuse it: it keeps a connection pool.
func (p Policy) Client() *http.Client {
	// Take a private copy so later changes to the caller's slices do not
	// change the behaviour of a client already handed out.
	p.AllowCIDRs = slices.Clone(p.AllowCIDRs)
	p.AllowedPorts = slices.Clone(p.AllowedPorts)

	timeout := p.timeout()
	base := &http.Transport{
		Proxy:                  nil, // never: a proxy would dial on our behalf, unchecked
		DialContext:            p.dialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    10,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    min(timeout, 10*time.Second),
		ResponseHeaderTimeout:  timeout,
		ExpectContinueTimeout:  1 * time.Second,
		MaxResponseHeaderBytes: 1 << 20,
	}
	return &http.Client{
		Transport:     &transport{policy: p, base: base},
		CheckRedirect: p.checkRedirect,
		Timeout:       timeout,
	}
}

// transport checks each request URL before handing it to the base
// transport, so that a request made with the client is refused before any
// network activity when its URL is not acceptable.
type transport struct {
	policy Policy
	base   *http.Transport
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.policy.checkURL(req.URL); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return t.base.RoundTrip(req)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// pool.
func (t *transport) CloseIdleConnections() { t.base.CloseIdleConnections() }

func (p Policy) checkRedirect(req *http.Request, via []*http.Request) error {
	limit := p.maxRedirects()
	if limit < 0 {
		return http.ErrUseLastResponse
	}
	if len(via) > limit {
		return fmt.Errorf("safehttp: stopped after %d redirects", limit)
	}
	if prev := via[len(via)-1]; prev.URL.Scheme == "https" && req.URL.Scheme != "https" {
		return fmt.Errorf("safehttp: refusing redirect from https to %s (%s)", req.URL.Scheme, req.URL.Redacted())
	}
	return p.checkURL(req.URL)
}

// dialContext dials through a net.Dialer whose Control hook checks the
// resolved address right before each connection attempt.
func (p Policy) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	d := net.Dialer{
		Timeout:   p.timeout(),
		KeepAlive: 30 * time.Second,
		ControlContext: func(_ context.Context, network, address string, _ syscall.RawConn) error {
			return p.checkDial(host, network, address)
		},
	}
	return d.DialContext(ctx, network, addr)
}

// checkDial checks one resolved address the dialer is about to connect to.
func (p Policy) checkDial(host, network, address string) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return &BlockedError{Host: host, Reason: fmt.Sprintf("network %q is not allowed", network)}
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &BlockedError{Host: host, Reason: fmt.Sprintf("cannot parse dialed address %q", address)}
	}
	if ok, reason := p.Allowed(ap.Addr()); !ok {
		return &BlockedError{Host: host, IP: ap.Addr(), Reason: reason}
	}
	if !p.portAllowed(int(ap.Port())) {
		return &BlockedError{Host: host, IP: ap.Addr(), Reason: fmt.Sprintf("port %d is not allowed", ap.Port())}
	}
	return nil
}

func (p Policy) portAllowed(port int) bool {
	return len(p.AllowedPorts) == 0 || slices.Contains(p.AllowedPorts, port)
}

// CheckURL validates a URL before any network activity: scheme http or
// https only, host present, no userinfo, port valid and allowed; if the host
// is an IP literal, it is checked with Allowed too. Host names are not
// resolved here (the client checks the resolved addresses when it dials),
// but numeric hosts that resolvers may read as IPv4 addresses ("127.1",
// "0x7f.1", "2130706433") are refused as ambiguous. It returns a
// *BlockedError when the policy refuses the destination and a plain error
// naming what is wrong otherwise.
func (p Policy) CheckURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("safehttp: invalid URL: %w", err)
	}
	if err := p.checkURL(u); err != nil {
		return nil, err
	}
	return u, nil
}

func (p Policy) checkURL(u *url.URL) error {
	if u == nil {
		return errors.New("safehttp: missing URL")
	}
	scheme := strings.ToLower(u.Scheme)
	switch scheme {
	case "http", "https":
	case "":
		return errors.New("safehttp: URL has no scheme (want http or https)")
	default:
		return fmt.Errorf("safehttp: URL scheme %q is not allowed (want http or https)", u.Scheme)
	}
	if u.Opaque != "" {
		return errors.New("safehttp: URL has no host (opaque URL)")
	}
	if u.User != nil {
		return errors.New("safehttp: URL must not contain userinfo (user:password@)")
	}
	host := u.Hostname()
	if host == "" {
		return errors.New("safehttp: URL has no host")
	}
	port := 80
	if scheme == "https" {
		port = 443
	}
	if ps := u.Port(); ps != "" {
		n, err := strconv.Atoi(ps)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("safehttp: URL port %q is invalid", ps)
		}
		port = n
	} else if strings.HasSuffix(u.Host, ":") {
		return errors.New("safehttp: URL has an empty port")
	}

	var ip netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		ip = a
		if ok, reason := p.Allowed(a); !ok {
			return &BlockedError{Host: host, IP: a, Reason: reason}
		}
	} else if strings.Contains(host, ":") || strings.Contains(host, "%") {
		return fmt.Errorf("safehttp: URL host %q is not a valid IP address or name", host)
	} else if looksNumeric(host) {
		return fmt.Errorf("safehttp: URL host %q is an ambiguous numeric address; write it as a dotted-quad IP", host)
	}
	if !p.portAllowed(port) {
		return &BlockedError{Host: host, IP: ip, Reason: fmt.Sprintf("port %d is not allowed", port)}
	}
	return nil
}

// looksNumeric reports whether a host name ends in a numeric label, which
// URL parsers and resolvers (inet_aton) may interpret as an IPv4 address in
// decimal, octal or hex ("127.1", "0x7f.0.0.1", "2130706433").
func looksNumeric(host string) bool {
	host = strings.TrimSuffix(host, ".")
	last := host[strings.LastIndexByte(host, '.')+1:]
	if last == "" {
		return false
	}
	if rest, ok := strings.CutPrefix(strings.ToLower(last), "0x"); ok {
		for _, c := range rest {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
		return true
	}
	for _, c := range last {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// ReadBody reads at most MaxResponseBytes of a response body. If the body is
// longer, it returns the first MaxResponseBytes bytes and
// ErrResponseTooLarge. It does not close r.
func (p Policy) ReadBody(r io.Reader) ([]byte, error) {
	limit := p.maxResponseBytes()
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if int64(len(b)) > limit {
		return b[:limit], ErrResponseTooLarge
	}
	return b, err
}
