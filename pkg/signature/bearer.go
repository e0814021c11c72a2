package signature

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strings"
)

// VerifyBearer checks an Authorization header of the form "Bearer <token>"
// (RFC 6750; the scheme name is case-insensitive, one or more spaces follow
// it) against every configured token. The comparison is over the SHA-256 of
// the presented token and of each configured token, in constant time, so
// neither the content nor the length of a configured token leaks through
// timing; all tokens are always compared. Empty configured tokens never
// match.
//
// Errors: ErrMissing for an empty header; ErrMalformed for another scheme,
// an empty token, a token containing whitespace or ASCII control characters,
// or a header over 4 KiB; ErrMismatch when no token matches.
func VerifyBearer(authorization string, tokens []string) error {
	v, err := headerValue("bearer: Authorization", authorization)
	if err != nil {
		return err
	}
	scheme, token, _ := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return fmt.Errorf("bearer: Authorization scheme is not Bearer: %w", ErrMalformed)
	}
	token = strings.TrimLeft(token, " ")
	if token == "" {
		return fmt.Errorf("bearer: Authorization header has no token: %w", ErrMalformed)
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; c <= ' ' || c == 0x7f {
			return fmt.Errorf("bearer: token contains whitespace or a control character: %w", ErrMalformed)
		}
	}
	got := sha256.Sum256([]byte(token))
	ok := 0
	for _, t := range tokens {
		if t == "" {
			continue
		}
		want := sha256.Sum256([]byte(t))
		ok |= subtle.ConstantTimeCompare(got[:], want[:])
	}
	if ok == 0 {
		return fmt.Errorf("bearer: %w", ErrMismatch)
	}
	return nil
}
