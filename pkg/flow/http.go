package flow

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/greentic/events/pkg/safehttp"
)

// HTTPClient sends the requests of http nodes. *http.Client satisfies it;
// the flow-executor passes an SSRF-safe client (package safehttp).
type HTTPClient interface {
	Do(*http.Request) (*http.Response, error)
}

// ErrNoHTTP is the error of an http node run without Input.HTTP.
var ErrNoHTTP = errors.New("this run cannot make HTTP requests")

var httpKeys = []string{"method", "url", "headers", "body", "allowed_hosts", "fail_on_status"}

var httpMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}

type httpExec struct {
	method       string
	url          template
	headers      []httpHeader
	body         template // nil: no body
	allowed      []hostPattern
	failOnStatus bool
}

type httpHeader struct {
	name  string
	value template
}

// hostPattern is an entry of allowed_hosts: a host name or IP address, or
// "*.example.com" for any subdomain of example.com.
type hostPattern struct {
	host     string // lower case, without the "*."
	wildcard bool
}

func (p hostPattern) match(host string) bool {
	if p.wildcard {
		return strings.HasSuffix(host, "."+p.host)
	}
	return host == p.host
}

func compileHTTP(b *builder, _ *nodeDecl, cfg fields, at *yaml.Node, path string) executor {
	x := &httpExec{method: http.MethodGet, failOnStatus: true}
	before := len(b.problems.list)

	if kv, ok := cfg.get("method"); ok {
		p := joinPath(path, "method")
		if m, ok := b.stringValue(kv.value, p); ok {
			if !slices.Contains(httpMethods, m) {
				b.problems.add(kv.value, p, "method %q is not one of %s (the method cannot be a template)", m, strings.Join(httpMethods, ", "))
			}
			x.method = m
		}
	}

	if kv, ok := cfg.get("allowed_hosts"); ok {
		x.allowed = b.allowedHosts(kv.value, joinPath(path, "allowed_hosts"))
	}

	if kv, ok := cfg.get("url"); !ok {
		b.problems.add(at, joinPath(path, "url"), "missing required key \"url\" for an http node")
	} else {
		p := joinPath(path, "url")
		switch {
		case kv.value.Kind != yaml.ScalarNode || kv.value.ShortTag() != "!!str":
			b.stringValue(kv.value, p)
		case !strings.Contains(kv.value.Value, "{{"):
			if u, err := parseRequestURL(kv.value.Value); err != nil {
				b.problems.add(kv.value, p, "%v", err)
			} else if x.allowed != nil && !hostAllowed(x.allowed, u) {
				b.problems.add(kv.value, p, "host %q is not in allowed_hosts", u.Hostname())
			}
		}
		x.url = b.compileTemplate(kv.value, p)
	}

	if kv, ok := cfg.get("headers"); ok {
		p := joinPath(path, "headers")
		if hs, ok := b.mapping(kv.value, p); ok {
			for _, h := range hs.order {
				if !validHeaderName(h.name) {
					b.problems.add(h.key, joinPath(p, h.name), "%q is not a valid header name", h.name)
					continue
				}
				x.headers = append(x.headers, httpHeader{name: h.name, value: b.compileTemplate(h.value, joinPath(p, h.name))})
			}
		}
	}

	if kv, ok := cfg.get("body"); ok {
		x.body = b.compileTemplate(kv.value, joinPath(path, "body"))
	}

	if kv, ok := cfg.get("fail_on_status"); ok {
		if kv.value.Kind != yaml.ScalarNode || kv.value.ShortTag() != "!!bool" || kv.value.Decode(&x.failOnStatus) != nil {
			b.problems.add(kv.value, joinPath(path, "fail_on_status"), "fail_on_status must be true or false, not %s", describeKind(kv.value))
		}
	}

	if len(b.problems.list) > before {
		return nil
	}
	return x
}

// allowedHosts reads the literal list of allowed host patterns.
func (b *builder) allowedHosts(n *yaml.Node, path string) []hostPattern {
	items, ok := b.sequence(n, path)
	if !ok {
		return nil
	}
	if len(items) == 0 {
		b.problems.add(n, path, "allowed_hosts must not be empty (leave it out to allow any host)")
		return nil
	}
	out := make([]hostPattern, 0, len(items))
	for i, item := range items {
		p := fmt.Sprintf("%s[%d]", path, i)
		s, ok := b.stringValue(item, p)
		if !ok {
			continue
		}
		hp, err := parseHostPattern(s)
		if err != nil {
			b.problems.add(item, p, "%v", err)
			continue
		}
		out = append(out, hp)
	}
	return out
}

func parseHostPattern(s string) (hostPattern, error) {
	bad := func(why string) (hostPattern, error) {
		return hostPattern{}, fmt.Errorf("allowed host %q %s (write a host name such as \"api.example.com\", \"*.example.com\" or an IP address)", s, why)
	}
	h := strings.ToLower(strings.TrimSuffix(s, "."))
	if a, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		if a.Zone() != "" {
			return bad("has a zone")
		}
		return hostPattern{host: a.Unmap().String()}, nil
	}
	if h == "*" {
		return bad("would allow every host; leave allowed_hosts out instead")
	}
	wildcard := false
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		h, wildcard = rest, true
	}
	switch {
	case h == "":
		return bad("is empty")
	case strings.Contains(h, "://"):
		return bad("is a URL, not a host")
	case strings.ContainsAny(h, ":/?#@"):
		return bad("must not have a port, path or credentials")
	case strings.Contains(h, "*"):
		return bad("may only start with \"*.\"")
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return bad("is not a valid host name")
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return bad("is not a valid host name")
			}
		}
	}
	if wildcard && !strings.Contains(h, ".") {
		return bad("matches too much: name a domain such as \"*.example.com\"")
	}
	return hostPattern{host: h, wildcard: wildcard}, nil
}

// normalHost is a URL's host as allowed_hosts entries are compared with it.
func normalHost(u *url.URL) string {
	h := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap().String()
	}
	return h
}

func hostAllowed(allowed []hostPattern, u *url.URL) bool {
	h := normalHost(u)
	for _, p := range allowed {
		if p.match(h) {
			return true
		}
	}
	return false
}

// parseRequestURL checks that s is an absolute http(s) URL without
// credentials. Its errors show the URL without its query (see redactURL).
func parseRequestURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("url is not a valid URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("url %q is not an absolute http(s) URL", redactURL(u))
	}
	if u.User != nil {
		return nil, errors.New("url must not carry credentials; use headers")
	}
	return u, nil
}

// redactURL is what errors show of a request URL: scheme://host/path. The
// query, fragment and credentials may carry secrets and are left out.
func redactURL(u *url.URL) string {
	v := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return v.String()
}

// validHeaderName reports whether s is an HTTP token (RFC 9110).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue refuses control characters (CR and LF above all) other
// than tab.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func (x *httpExec) exec(r *run) (step, error) {
	client := r.in.HTTP
	if client == nil {
		return step{}, ErrNoHTTP
	}
	limit := r.p.limits.MaxOutputBytes

	v, err := x.url.render(r)
	if err != nil {
		return step{}, fmt.Errorf("url: %w", err)
	}
	raw, ok := v.(string)
	if !ok {
		return step{}, fmt.Errorf("url: must be a string, got %s", kindOf(v))
	}
	u, err := parseRequestURL(raw)
	if err != nil {
		return step{}, err
	}
	if x.allowed != nil && !hostAllowed(x.allowed, u) {
		return step{}, fmt.Errorf("%s %s: host %q is not in allowed_hosts", x.method, redactURL(u), u.Hostname())
	}

	header := http.Header{}
	for _, h := range x.headers {
		v, err := h.value.render(r)
		if err != nil {
			return step{}, fmt.Errorf("headers.%s: %w", h.name, err)
		}
		s, err := stringify(v, limit)
		if err != nil {
			return step{}, fmt.Errorf("headers.%s: %w", h.name, err)
		}
		if !validHeaderValue(s) {
			// The value itself may be a secret: it is not shown.
			return step{}, fmt.Errorf("headers.%s: the value contains control characters", h.name)
		}
		header.Set(h.name, s)
	}

	var body []byte
	if x.body != nil {
		v, err := x.body.render(r)
		if err != nil {
			return step{}, fmt.Errorf("body: %w", err)
		}
		switch t := v.(type) {
		case nil:
		case string:
			body = []byte(t)
		default:
			if body, err = encodeJSON(v, limit); err != nil {
				return step{}, fmt.Errorf("body: %w", err)
			}
			if header.Get("Content-Type") == "" {
				header.Set("Content-Type", "application/json")
			}
		}
	}

	var reqBody io.Reader
	if body != nil {
		reqBody = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(r.ctx, x.method, u.String(), reqBody)
	if err != nil {
		return step{}, fmt.Errorf("%s %s: %v", x.method, redactURL(u), scrub(err, u))
	}
	req.Header = header

	resp, err := client.Do(req)
	if err != nil {
		return step{}, x.transportError(u, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	if err != nil {
		return step{}, transient(fmt.Errorf("%s %s: reading the response: %v", x.method, redactURL(u), scrub(err, u)))
	}
	if len(data) > limit {
		return step{}, fmt.Errorf("%s %s: response body larger than %d bytes", x.method, redactURL(u), limit)
	}

	if x.failOnStatus && resp.StatusCode >= 400 {
		err := fmt.Errorf("%s %s: status %d", x.method, redactURL(u), resp.StatusCode)
		switch c := resp.StatusCode; {
		case c == http.StatusRequestTimeout, c == http.StatusTooManyRequests, c >= 500:
			return step{}, transient(err)
		}
		return step{}, err
	}
	return step{out: map[string]any{
		"status":  resp.StatusCode,
		"headers": responseHeaders(resp.Header),
		"body":    responseBody(resp.Header.Get("Content-Type"), data),
	}}, nil
}

// transportError names the request (without its query) and the cause.
// Failures to reach the server are transient; a destination refused by the
// client's policy (safehttp's *BlockedError) is not.
func (x *httpExec) transportError(u *url.URL, err error) error {
	cause := err
	var ue *url.Error
	if errors.As(err, &ue) {
		cause = ue.Err // url.Error repeats the URL with its query
	}
	out := fmt.Errorf("%s %s: %s", x.method, redactURL(u), scrub(cause, u))
	if isBlocked(err) {
		return out
	}
	return transient(out)
}

// isBlocked reports whether the client's policy refused the destination
// (safehttp wraps its *BlockedError in a *url.Error).
func isBlocked(err error) bool {
	var b *safehttp.BlockedError
	return errors.As(err, &b)
}

// scrub removes the request's query string from an error message, in case
// the error repeats it.
func scrub(err error, u *url.URL) string {
	msg := err.Error()
	if u.RawQuery != "" {
		msg = strings.ReplaceAll(msg, u.RawQuery, "…")
	}
	if u.Fragment != "" {
		msg = strings.ReplaceAll(msg, u.EscapedFragment(), "…")
	}
	return msg
}

// responseHeaders maps lower-case names to their values joined with ", ".
func responseHeaders(h http.Header) map[string]any {
	out := make(map[string]any, len(h))
	for _, k := range slices.Sorted(maps.Keys(h)) {
		name := strings.ToLower(k)
		v := strings.Join(h[k], ", ")
		if prev, ok := out[name].(string); ok {
			v = prev + ", " + v
		}
		out[name] = v
	}
	return out
}

// responseBody decodes a JSON response; anything else (or JSON that does
// not parse) is kept as text.
func responseBody(contentType string, data []byte) any {
	if isJSONType(contentType) {
		if v, err := decodeJSON(data); err == nil {
			return v
		}
	}
	return string(data)
}

func isJSONType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}
