package signature

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
)

// maxSendGridSignatureLen bounds the X-Twilio-Email-Event-Webhook-Signature
// header: a DER ECDSA P-256 signature is at most 72 bytes, 96 in base64.
const maxSendGridSignatureLen = 256

// ParseSendGridPublicKey parses the verification key SendGrid shows for a
// signed Event Webhook: the standard base64 of a DER-encoded PKIX
// (SubjectPublicKeyInfo) public key, which must be an ECDSA key on P-256.
// Surrounding whitespace is ignored. The error says what is wrong and wraps
// ErrMalformed.
func ParseSendGridPublicKey(b64 string) (*ecdsa.PublicKey, error) {
	der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return nil, fmt.Errorf("sendgrid: public key is not valid base64: %w", ErrMalformed)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("sendgrid: public key is not a DER PKIX public key: %w", ErrMalformed)
	}
	key, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("sendgrid: public key is a %T, want an ECDSA P-256 key: %w", pub, ErrMalformed)
	}
	if key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("sendgrid: public key is on curve %s, want P-256: %w", key.Curve.Params().Name, ErrMalformed)
	}
	return key, nil
}

// SignSendGrid returns an X-Twilio-Email-Event-Webhook-Signature header value
// as SendGrid computes it: the standard base64 of the ASN.1 DER ECDSA
// signature over SHA-256(timestamp + body), where timestamp is the exact
// X-Twilio-Email-Event-Webhook-Timestamp header value (unix seconds). key
// must be a P-256 private key. ECDSA signatures are randomized, so two calls
// give different (equally valid) values.
func SignSendGrid(body []byte, timestamp string, key *ecdsa.PrivateKey) (string, error) {
	if key == nil || key.Curve != elliptic.P256() {
		return "", errors.New("sendgrid: signing key must be an ECDSA P-256 private key")
	}
	digest := sendGridDigest(timestamp, body)
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest)
	if err != nil {
		return "", fmt.Errorf("sendgrid: sign: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// VerifySendGrid checks a SendGrid signed Event Webhook request as SendGrid
// documents it. sigHeader is the X-Twilio-Email-Event-Webhook-Signature
// header (standard base64 of an ASN.1 DER ECDSA signature) and timestamp the
// X-Twilio-Email-Event-Webhook-Timestamp header (unix seconds); the signature
// covers SHA-256 of the timestamp string immediately followed by the raw body
// (including SendGrid's trailing CRLF). It is checked against every key
// (rotation); nil keys are skipped. The timestamp must lie within tolerance
// of now in both directions (tolerance <= 0 means DefaultTolerance; a zero
// now means time.Now()).
//
// Errors: ErrMissing when either header is empty; ErrMalformed for a
// timestamp that is not unix seconds or a signature that is not base64 DER;
// ErrExpired for a timestamp outside the tolerance (checked before the
// signature); ErrMismatch when no key verifies the signature (also when bytes
// follow the DER value, which sendgrid-go tolerates but a genuine signature
// never has).
func VerifySendGrid(body []byte, timestamp, sigHeader string, keys []*ecdsa.PublicKey, tolerance time.Duration, now time.Time) error {
	// The timestamp is signed verbatim, so it is not trimmed.
	if timestamp == "" {
		return fmt.Errorf("sendgrid: X-Twilio-Email-Event-Webhook-Timestamp header: %w", ErrMissing)
	}
	sv, err := headerValue("sendgrid: X-Twilio-Email-Event-Webhook-Signature", sigHeader)
	if err != nil {
		return err
	}
	ts, ok := parseUnixSeconds(timestamp)
	if !ok {
		return fmt.Errorf("sendgrid: X-Twilio-Email-Event-Webhook-Timestamp is not unix seconds: %w", ErrMalformed)
	}
	if len(sv) > maxSendGridSignatureLen {
		return fmt.Errorf("sendgrid: X-Twilio-Email-Event-Webhook-Signature longer than %d bytes: %w", maxSendGridSignatureLen, ErrMalformed)
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(sv)
	if err != nil || len(sig) < 8 || sig[0] != 0x30 {
		return fmt.Errorf("sendgrid: X-Twilio-Email-Event-Webhook-Signature is not a base64 DER signature: %w", ErrMalformed)
	}
	if err := checkTimestamp(time.Unix(ts, 0), tolerance, now); err != nil {
		return fmt.Errorf("sendgrid: %w", err)
	}
	digest := sendGridDigest(timestamp, body)
	verified := false
	for _, k := range keys {
		if k == nil || k.Curve != elliptic.P256() {
			continue
		}
		// Public-key verification: nothing secret to leak, but every key is
		// still tried.
		if ecdsa.VerifyASN1(k, digest, sig) {
			verified = true
		}
	}
	if !verified {
		return fmt.Errorf("sendgrid: %w", ErrMismatch)
	}
	return nil
}

func sendGridDigest(timestamp string, body []byte) []byte {
	h := sha256.New()
	h.Write([]byte(timestamp))
	h.Write(body)
	return h.Sum(nil)
}
