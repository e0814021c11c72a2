package signature

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
)

// SignTwilio returns the X-Twilio-Signature header value Twilio sends: the
// base64 HMAC-SHA1, keyed with the account auth token, of the full URL
// Twilio requested (scheme, host, path and query string exactly as
// configured) followed by every POST parameter name immediately followed by
// its value, with no delimiters, in order of name (byte order, which for
// UTF-8 is Unicode code point order). A name with several values contributes
// name+value once per distinct value, values sorted, as Twilio's Python, PHP
// and Node helper libraries compute it (twilio-go only supports one value per
// name, where all agree). Because of that, neither the order of repeated
// values nor a duplicated value is authenticated. For a GET request or a
// JSON body pass nil params.
func SignTwilio(fullURL string, params url.Values, authToken string) string {
	return base64.StdEncoding.EncodeToString(twilioMAC([]byte(authToken), twilioContent(fullURL, params)))
}

// VerifyTwilio checks an X-Twilio-Signature header for a request to fullURL
// with the given POST parameters (nil for GET), computed as SignTwilio
// describes, against every configured auth token (rotation: the primary and
// the secondary token). Like Twilio's helper libraries (twilio-go
// client.RequestValidator), it accepts the signature of the URL both with
// and without its port, because Twilio signs inconsistently: an URL without a
// port is also tried with the scheme's default port (:443 for https, :80
// otherwise), and an URL with a port is also tried with the port removed.
//
// fullURL must be the URL as Twilio requested it, including any basic-auth
// credentials Twilio was configured with and the query string; behind a proxy
// that is the public URL, not the one the server sees.
//
// Errors: ErrMissing for an empty header; ErrMalformed for a header that is
// not the base64 of 20 bytes; ErrMismatch otherwise.
func VerifyTwilio(fullURL string, params url.Values, header string, authTokens []string) error {
	sig, err := parseTwilioHeader(header)
	if err != nil {
		return err
	}
	if !twilioMatch(fullURL, params, sig, authTokens) {
		return fmt.Errorf("twilio: %w", ErrMismatch)
	}
	return nil
}

// VerifyTwilioJSON checks a Twilio request that carries a JSON (or any
// non-form) body. For such requests Twilio adds bodySHA256=<hex SHA-256 of
// the body> to the query string and signs the URL alone, without
// parameters. It verifies the URL signature as VerifyTwilio does (with nil
// params, all tokens, with and without port) and that bodySHA256 equals the
// SHA-256 of body, compared in constant time; both must hold.
//
// Errors: ErrMissing for an empty header; ErrMalformed for a malformed header
// or an URL that does not parse or lacks exactly one bodySHA256 of 64 hex
// digits; ErrMismatch when the signature or the body hash does not match.
func VerifyTwilioJSON(fullURL string, body []byte, header string, authTokens []string) error {
	sig, err := parseTwilioHeader(header)
	if err != nil {
		return err
	}
	u, err := url.Parse(fullURL)
	if err != nil {
		return fmt.Errorf("twilio: request URL does not parse: %w", ErrMalformed)
	}
	hashes := u.Query()["bodySHA256"]
	if len(hashes) != 1 {
		return fmt.Errorf("twilio: request URL must carry exactly one bodySHA256 parameter: %w", ErrMalformed)
	}
	want, err := hex.DecodeString(hashes[0])
	if err != nil || len(want) != sha256.Size {
		return fmt.Errorf("twilio: bodySHA256 is not a hex SHA-256: %w", ErrMalformed)
	}
	urlOK := twilioMatch(fullURL, nil, sig, authTokens)
	sum := sha256.Sum256(body)
	bodyOK := hmac.Equal(sum[:], want)
	switch {
	case !urlOK:
		return fmt.Errorf("twilio: %w", ErrMismatch)
	case !bodyOK:
		return fmt.Errorf("twilio: body does not match bodySHA256: %w", ErrMismatch)
	}
	return nil
}

// parseTwilioHeader decodes an X-Twilio-Signature header.
func parseTwilioHeader(header string) ([]byte, error) {
	v, err := headerValue("twilio: X-Twilio-Signature", header)
	if err != nil {
		return nil, err
	}
	sig, ok := decodeBase64Exact(v, sha1.Size)
	if !ok {
		return nil, fmt.Errorf("twilio: X-Twilio-Signature header is not the base64 of %d bytes: %w", sha1.Size, ErrMalformed)
	}
	return sig, nil
}

// twilioMatch reports whether sig is the signature of fullURL (with or without
// port) and params under any of tokens, trying every combination.
func twilioMatch(fullURL string, params url.Values, sig []byte, tokens []string) bool {
	var candidates []string
	withPort, withoutPort := twilioAddPort(fullURL), twilioRemovePort(fullURL)
	candidates = append(candidates, withPort)
	if withoutPort != withPort {
		candidates = append(candidates, withoutPort)
	}
	ok := 0
	for _, c := range candidates {
		content := twilioContent(c, params)
		for _, t := range tokens {
			if t == "" {
				continue
			}
			ok |= boolInt(hmac.Equal(twilioMAC([]byte(t), content), sig))
		}
	}
	return ok == 1
}

// twilioContent is the string Twilio signs: the URL, then name+value for
// every parameter sorted by name; the distinct values of one name sorted.
func twilioContent(fullURL string, params url.Values) []byte {
	names := make([]string, 0, len(params))
	n := len(fullURL)
	for k, vs := range params {
		names = append(names, k)
		for _, v := range vs {
			n += len(k) + len(v)
		}
	}
	slices.Sort(names)
	b := make([]byte, 0, n)
	b = append(b, fullURL...)
	for _, k := range names {
		vs := slices.Clone(params[k])
		slices.Sort(vs)
		vs = slices.Compact(vs)
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, v...)
		}
	}
	return b
}

func twilioMAC(key, content []byte) []byte {
	m := hmac.New(sha1.New, key)
	m.Write(content)
	return m.Sum(nil)
}

// twilioAddPort returns fullURL with the scheme's default port (:443 for
// https, :80 for anything else) when it has none, as twilio-go does; an URL
// that already has a port, or does not parse, is returned unchanged.
func twilioAddPort(fullURL string) string {
	u, err := url.Parse(fullURL)
	if err != nil || u.Host == "" || u.Port() != "" {
		return fullURL
	}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
	}
	u.Host = net.JoinHostPort(u.Hostname(), port)
	return u.String()
}

// twilioRemovePort returns fullURL without its port, whatever the port, as
// twilio-go does; an URL without a port, or that does not parse, is returned
// unchanged.
func twilioRemovePort(fullURL string) string {
	u, err := url.Parse(fullURL)
	if err != nil || u.Port() == "" {
		return fullURL
	}
	host := u.Hostname()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	u.Host = host
	return u.String()
}
