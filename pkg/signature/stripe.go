package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SignStripe returns a Stripe-Signature header value for body signed at t
// with an endpoint secret, as Stripe builds it: "t=<unix seconds>,v1=<hex>"
// where the v1 signature is the HMAC-SHA256 of "<t>.<body>" keyed with the
// whole secret string (the "whsec_..." value used as raw bytes, not
// decoded).
func SignStripe(body []byte, secret string, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// VerifyStripe checks a Stripe-Signature header as Stripe documents it: a
// comma-separated list of key=value pairs with exactly one t (unix seconds)
// and one or more v1 signatures, each the hex HMAC-SHA256 of "<t>.<body>"
// keyed with the endpoint secret used as raw bytes. Other schemes (such as
// the v0 that test-mode events carry) are ignored; v1 values that are not
// 32 bytes of hex are ignored as Stripe's own libraries do. At least one v1
// must match one of secrets (all secrets are tried for rotation; empty
// secrets never match), and t must
// lie within tolerance of now in both directions (tolerance <= 0 means
// DefaultTolerance; a zero now means time.Now()).
//
// It returns the signed timestamp on success. Errors: ErrMissing for an empty
// header; ErrMalformed for an unparsable header, a header without t or
// without any usable v1, or with more than 16 v1 values; ErrExpired when t
// is outside the tolerance; ErrMismatch when no v1 matches. The timestamp is
// checked before any HMAC is computed.
func VerifyStripe(body []byte, header string, secrets []string, tolerance time.Duration, now time.Time) (time.Time, error) {
	ts, sigs, err := parseStripeHeader(header)
	if err != nil {
		return time.Time{}, err
	}
	t := time.Unix(ts, 0)
	if err := checkTimestamp(t, tolerance, now); err != nil {
		return time.Time{}, fmt.Errorf("stripe: %w", err)
	}
	msg := [][]byte{[]byte(strconv.FormatInt(ts, 10)), []byte("."), body}
	if !macAny(sha256.New, stringKeys(secrets), msg, sigs) {
		return time.Time{}, fmt.Errorf("stripe: no v1 signature matches: %w", ErrMismatch)
	}
	return t, nil
}

// parseStripeHeader splits a Stripe-Signature header into its timestamp and
// the decoded v1 signatures.
func parseStripeHeader(header string) (int64, [][]byte, error) {
	v, err := headerValue("stripe: Stripe-Signature", header)
	if err != nil {
		return 0, nil, err
	}
	var (
		ts      int64
		haveTS  bool
		sigs    [][]byte
		nV1     int
		rest    = v
		hasMore = true
	)
	for hasMore {
		var pair string
		pair, rest, hasMore = strings.Cut(rest, ",")
		pair = strings.TrimSpace(pair)
		key, value, ok := strings.Cut(pair, "=")
		if !ok || key == "" || strings.Contains(value, "=") {
			return 0, nil, fmt.Errorf("stripe: Stripe-Signature header has an element that is not key=value: %w", ErrMalformed)
		}
		switch key {
		case "t":
			if haveTS {
				return 0, nil, fmt.Errorf("stripe: Stripe-Signature header has more than one t: %w", ErrMalformed)
			}
			if ts, haveTS = parseUnixSeconds(value); !haveTS {
				return 0, nil, fmt.Errorf("stripe: Stripe-Signature header t is not unix seconds: %w", ErrMalformed)
			}
		case "v1":
			nV1++
			if nV1 > maxSignatures {
				return 0, nil, fmt.Errorf("stripe: Stripe-Signature header has more than %d v1 signatures: %w", maxSignatures, ErrMalformed)
			}
			if len(value) != hex.EncodedLen(sha256.Size) {
				continue // cannot match; ignored like any invalid signature
			}
			sig, err := hex.DecodeString(value)
			if err != nil {
				continue
			}
			sigs = append(sigs, sig)
		}
	}
	if !haveTS {
		return 0, nil, fmt.Errorf("stripe: Stripe-Signature header has no t: %w", ErrMalformed)
	}
	if len(sigs) == 0 {
		return 0, nil, fmt.Errorf("stripe: Stripe-Signature header has no v1 signature: %w", ErrMalformed)
	}
	return ts, sigs, nil
}
