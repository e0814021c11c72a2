package signature

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// standardWebhooksPrefix marks a serialized Standard Webhooks symmetric
// secret.
const standardWebhooksPrefix = "whsec_"

// minStandardWebhooksSecret is the shortest decoded secret that
// ValidStandardWebhooksSecret accepts, in bytes.
const minStandardWebhooksSecret = 16

// maxWebhookIDLen bounds the webhook-id header.
const maxWebhookIDLen = 1024

// standardWebhooksKey decodes a Standard Webhooks secret: base64 (standard
// alphabet, padded) after an optional "whsec_" prefix. The error never
// contains the secret.
func standardWebhooksKey(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, standardWebhooksPrefix))
	if err != nil {
		return nil, errors.New("standard webhooks: secret is not valid base64 after the whsec_ prefix")
	}
	if len(key) == 0 {
		return nil, errors.New("standard webhooks: secret is empty")
	}
	return key, nil
}

// ValidStandardWebhooksSecret checks a configured Standard Webhooks signing
// secret: it must be "whsec_" followed by standard padded base64 that decodes
// to at least 16 bytes. The error says which rule is broken and never echoes
// the secret. (The specification asks producers for at least 24 random
// bytes; 16 is the floor accepted here.)
func ValidStandardWebhooksSecret(secret string) error {
	rest, ok := strings.CutPrefix(secret, standardWebhooksPrefix)
	if !ok {
		return errors.New("standard webhooks: secret does not start with whsec_")
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return errors.New("standard webhooks: secret is not valid base64 after the whsec_ prefix")
	}
	if len(key) < minStandardWebhooksSecret {
		return fmt.Errorf("standard webhooks: secret decodes to %d bytes, want at least %d", len(key), minStandardWebhooksSecret)
	}
	return nil
}

// SignStandardWebhooks returns a webhook-signature header value ("v1," then
// the base64 HMAC-SHA256) for a message as the Standard Webhooks
// specification defines it: the signed content is "<id>.<unix seconds>.<body>"
// and the key is the secret base64-decoded after stripping an optional
// "whsec_" prefix. The caller sends id and t (as unix seconds) in the
// webhook-id and webhook-timestamp headers. It fails only when the secret is
// not valid base64.
func SignStandardWebhooks(id string, t time.Time, body []byte, secret string) (string, error) {
	key, err := standardWebhooksKey(secret)
	if err != nil {
		return "", err
	}
	m := hmacSHA256(key, []byte(id), []byte("."), []byte(strconv.FormatInt(t.Unix(), 10)), []byte("."), body)
	return "v1," + base64.StdEncoding.EncodeToString(m), nil
}

// VerifyStandardWebhooks checks a message signed as the Standard Webhooks
// specification defines it. id, timestamp and sigHeader are the values of
// the webhook-id, webhook-timestamp (unix seconds) and webhook-signature
// headers. The signature header is a space-separated list of
// "<version>,<base64>" entries; only v1 (HMAC-SHA256 of
// "<id>.<timestamp>.<body>") is checked, other versions such as the
// asymmetric v1a are ignored, and at least one v1 must match. Each secret is
// base64-decoded after stripping an optional "whsec_" prefix; all secrets are
// tried (rotation), and secrets that are empty or do not decode are skipped
// (validate
// them with ValidStandardWebhooksSecret at configuration time). The
// timestamp must lie within tolerance of now in both directions (tolerance
// <= 0 means DefaultTolerance; a zero now means time.Now()).
//
// Errors: ErrMissing when any of the three headers is empty; ErrMalformed for
// a timestamp that is not unix seconds, an entry without a comma, more than
// 16 entries, or no decodable v1 signature; ErrExpired for a timestamp
// outside the tolerance (checked before any HMAC); ErrMismatch otherwise.
func VerifyStandardWebhooks(id, timestamp, sigHeader string, body []byte, secrets []string, tolerance time.Duration, now time.Time) error {
	// net/http already trims optional whitespace around header values; the
	// id is signed verbatim, so it is not trimmed here.
	if id == "" {
		return fmt.Errorf("standard webhooks: webhook-id header: %w", ErrMissing)
	}
	if len(id) > maxWebhookIDLen {
		return fmt.Errorf("standard webhooks: webhook-id header longer than %d bytes: %w", maxWebhookIDLen, ErrMalformed)
	}
	tsv, err := headerValue("standard webhooks: webhook-timestamp", timestamp)
	if err != nil {
		return err
	}
	sv, err := headerValue("standard webhooks: webhook-signature", sigHeader)
	if err != nil {
		return err
	}
	ts, ok := parseUnixSeconds(tsv)
	if !ok {
		return fmt.Errorf("standard webhooks: webhook-timestamp is not unix seconds: %w", ErrMalformed)
	}
	sigs, err := parseStandardWebhooksSignatures(sv)
	if err != nil {
		return err
	}
	if err := checkTimestamp(time.Unix(ts, 0), tolerance, now); err != nil {
		return fmt.Errorf("standard webhooks: %w", err)
	}
	keys := make([][]byte, 0, len(secrets))
	for _, s := range secrets {
		if k, err := standardWebhooksKey(s); err == nil {
			keys = append(keys, k)
		}
	}
	msg := [][]byte{[]byte(id), []byte("."), []byte(strconv.FormatInt(ts, 10)), []byte("."), body}
	if !macAny(sha256.New, keys, msg, sigs) {
		return fmt.Errorf("standard webhooks: no v1 signature matches: %w", ErrMismatch)
	}
	return nil
}

// parseStandardWebhooksSignatures returns the decoded v1 signatures of a
// webhook-signature header.
func parseStandardWebhooksSignatures(v string) ([][]byte, error) {
	var sigs [][]byte
	n := 0
	for _, entry := range strings.Fields(v) {
		n++
		if n > maxSignatures {
			return nil, fmt.Errorf("standard webhooks: webhook-signature has more than %d entries: %w", maxSignatures, ErrMalformed)
		}
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version == "" {
			return nil, fmt.Errorf("standard webhooks: webhook-signature entry is not <version>,<signature>: %w", ErrMalformed)
		}
		if version != "v1" {
			continue
		}
		if b, ok := decodeBase64Exact(sig, sha256.Size); ok {
			sigs = append(sigs, b)
		}
	}
	if len(sigs) == 0 {
		return nil, fmt.Errorf("standard webhooks: webhook-signature has no valid v1 signature: %w", ErrMalformed)
	}
	return sigs, nil
}
