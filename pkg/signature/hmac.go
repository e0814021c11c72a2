// Package signature verifies webhook signatures: a generic HMAC-SHA256
// header, GitHub, Stripe, Standard Webhooks, Twilio, SendGrid signed Event
// Webhooks and bearer tokens, each exactly as the provider documents it, and
// signs them the same way for tests and tools. Every comparison is
// constant-time, and every scheme accepts several active secrets (or keys)
// so they can be rotated without downtime. Failures wrap ErrMissing,
// ErrMalformed, ErrExpired or ErrMismatch and never contain secret material.
package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
)

// Errors of a failed verification. They never contain secret material.
var (
	ErrMissing   = errors.New("signature missing")
	ErrMalformed = errors.New("signature malformed")
	ErrMismatch  = errors.New("signature does not match")
	// ErrExpired reports a signed timestamp that is too old or too far in
	// the future (outside the tolerance, in either direction).
	ErrExpired = errors.New("signature timestamp outside the tolerance")
)

// Encoding of a signature value.
const (
	EncodingHex    = "hex"
	EncodingBase64 = "base64"
)

// SignHMACSHA256 returns the HMAC-SHA256 of body with secret in the given
// encoding (hex when empty), without prefix.
func SignHMACSHA256(body []byte, secret, encoding string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	sum := m.Sum(nil)
	if encoding == EncodingBase64 {
		return base64.StdEncoding.EncodeToString(sum)
	}
	return hex.EncodeToString(sum)
}

// VerifyHMACSHA256 checks header value got (with optional prefix such as
// "sha256=") against the HMAC-SHA256 of body under each secret. The digest
// comparison is constant-time; every secret is tried so timing does not tell
// which one matched.
func VerifyHMACSHA256(body []byte, got, prefix, encoding string, secrets []string) error {
	got = strings.TrimSpace(got)
	if got == "" {
		return ErrMissing
	}
	if prefix != "" {
		if len(got) < len(prefix) || !strings.EqualFold(got[:len(prefix)], prefix) {
			return ErrMalformed
		}
		got = got[len(prefix):]
	}
	var want []byte
	var err error
	switch encoding {
	case EncodingBase64:
		want, err = base64.StdEncoding.DecodeString(got)
	case "", EncodingHex:
		want, err = hex.DecodeString(got)
	default:
		return ErrMalformed
	}
	if err != nil || len(want) != sha256.Size {
		return ErrMalformed
	}
	ok := 0
	for _, s := range secrets {
		m := hmac.New(sha256.New, []byte(s))
		m.Write(body)
		ok |= boolInt(hmac.Equal(m.Sum(nil), want))
	}
	if ok == 0 {
		return ErrMismatch
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
