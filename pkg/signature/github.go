package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// githubPrefix is the algorithm prefix of GitHub's X-Hub-Signature-256 header.
const githubPrefix = "sha256="

// SignGitHub returns the X-Hub-Signature-256 header value GitHub sends with a
// webhook delivery: "sha256=" followed by the lowercase hex HMAC-SHA256 of
// the raw request body, keyed with the webhook secret.
func SignGitHub(body []byte, secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return githubPrefix + hex.EncodeToString(m.Sum(nil))
}

// VerifyGitHub checks a GitHub X-Hub-Signature-256 header ("sha256=<hex>",
// the HMAC-SHA256 of the raw body) against every configured secret, so a
// secret can be rotated by configuring the old and the new one together.
// The legacy SHA-1 X-Hub-Signature header is not accepted. Empty secrets
// never match.
//
// It returns nil on a match, ErrMissing for an empty header, ErrMalformed for
// a header that is not "sha256=" and 64 hex digits, and ErrMismatch otherwise.
func VerifyGitHub(body []byte, header string, secrets []string) error {
	v, err := headerValue("github: X-Hub-Signature-256", header)
	if err != nil {
		return err
	}
	hexSig, ok := strings.CutPrefix(v, githubPrefix)
	if !ok {
		return fmt.Errorf("github: X-Hub-Signature-256 header does not start with %q: %w", githubPrefix, ErrMalformed)
	}
	if len(hexSig) != hex.EncodedLen(sha256.Size) {
		return fmt.Errorf("github: X-Hub-Signature-256 header is not %d hex digits: %w", hex.EncodedLen(sha256.Size), ErrMalformed)
	}
	sig, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("github: X-Hub-Signature-256 header is not hex: %w", ErrMalformed)
	}
	if !macAny(sha256.New, stringKeys(secrets), [][]byte{body}, [][]byte{sig}) {
		return fmt.Errorf("github: %w", ErrMismatch)
	}
	return nil
}
