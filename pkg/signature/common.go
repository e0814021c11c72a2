package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"strings"
	"time"
)

// DefaultTolerance is the timestamp tolerance used by the timestamped schemes
// (Stripe, Standard Webhooks, SendGrid) when the caller passes a tolerance
// of zero or less. Five minutes is what Stripe and the Standard Webhooks
// libraries use.
const DefaultTolerance = 5 * time.Minute

// Limits that keep a hostile header from costing CPU or memory. Every
// verifier rejects a longer header with ErrMalformed before doing any
// cryptography.
const (
	// maxSignatures is the largest number of candidate signatures taken from
	// one header; a header with more is rejected as malformed.
	maxSignatures = 16
	// maxHeaderLen is the longest signature header accepted, in bytes.
	maxHeaderLen = 4096
	// maxTimestampDigits bounds a unix-seconds timestamp: 18 digits cannot
	// overflow int64 and are far beyond any real date.
	maxTimestampDigits = 18
)

// parseUnixSeconds parses a timestamp made only of ASCII digits (no sign, no
// spaces), as every provider sends it.
func parseUnixSeconds(s string) (int64, bool) {
	if len(s) == 0 || len(s) > maxTimestampDigits {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// checkTimestamp returns ErrExpired when ts lies more than tolerance before
// or after now. A tolerance of zero or less means DefaultTolerance and a zero
// now means time.Now().
func checkTimestamp(ts time.Time, tolerance time.Duration, now time.Time) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if now.IsZero() {
		now = time.Now()
	}
	// Time.Sub saturates instead of overflowing, so absurd timestamps still
	// compare correctly.
	d := now.Sub(ts)
	if d > tolerance {
		return fmt.Errorf("timestamp %d is %s old: %w", ts.Unix(), d.Truncate(time.Second), ErrExpired)
	}
	if d < -tolerance {
		return fmt.Errorf("timestamp %d is %s in the future: %w", ts.Unix(), (-d).Truncate(time.Second), ErrExpired)
	}
	return nil
}

// macAny reports whether any of candidates equals the MAC of msg under any of
// keys. Every key is tried against every candidate and the results are
// OR-ed, so the time taken does not depend on which pair (if any) matched.
// Empty keys are skipped: a MAC under an empty key proves nothing.
func macAny(newHash func() hash.Hash, keys [][]byte, msg [][]byte, candidates [][]byte) bool {
	ok := 0
	for _, k := range keys {
		if len(k) == 0 {
			continue
		}
		m := hmac.New(newHash, k)
		for _, part := range msg {
			m.Write(part)
		}
		sum := m.Sum(nil)
		for _, c := range candidates {
			ok |= boolInt(hmac.Equal(sum, c))
		}
	}
	return ok == 1
}

// stringKeys converts secrets to keys, as raw bytes.
func stringKeys(secrets []string) [][]byte {
	keys := make([][]byte, len(secrets))
	for i, s := range secrets {
		keys[i] = []byte(s)
	}
	return keys
}

// decodeBase64Exact decodes standard, padded base64 that must encode exactly
// n bytes. Unlike base64.StdEncoding.DecodeString it does not silently skip
// line breaks, so one signature has exactly one accepted spelling.
func decodeBase64Exact(s string, n int) ([]byte, bool) {
	if len(s) != base64.StdEncoding.EncodedLen(n) {
		return nil, false
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != n {
		return nil, false
	}
	return b, true
}

// headerValue trims the optional whitespace around a header value and applies
// the length limit: "" means missing.
func headerValue(name, v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", fmt.Errorf("%s header: %w", name, ErrMissing)
	}
	if len(v) > maxHeaderLen {
		return "", fmt.Errorf("%s header longer than %d bytes: %w", name, maxHeaderLen, ErrMalformed)
	}
	return v, nil
}

// hmacSHA256 returns the HMAC-SHA256 of the concatenation of parts.
func hmacSHA256(key []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}
