// Package webhooksend builds webhook requests signed the way each provider
// signs them, for a configured source. The webhook-send command uses it to
// try a source by hand, and tests use it to prove the example bundle works.
package webhooksend

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/greentic/events/pkg/signature"
	"github.com/greentic/events/pkg/tenant"
)

// Request says what to send.
type Request struct {
	// BaseURL of the ingress, e.g. http://127.0.0.1:8080.
	BaseURL string
	Source  tenant.Source
	// Body is JSON, or for twilio a form (a=1&b=2).
	Body []byte
	// Now is the signing time (stripe, standard-webhooks, sendgrid).
	Now time.Time
	// DeliveryID is the provider's delivery id (github, standard-webhooks);
	// a random one when empty.
	DeliveryID string
	// GitHubEvent is X-GitHub-Event (github); "issues" when empty.
	GitHubEvent string
	// SendGridKey signs for a sendgrid source.
	SendGridKey *ecdsa.PrivateKey
}

// Build returns the signed HTTP request.
func Build(r Request) (*http.Request, error) {
	src := r.Source
	if r.Now.IsZero() {
		r.Now = time.Now()
	}
	if r.DeliveryID == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		r.DeliveryID = hex.EncodeToString(b)
	}
	path := "/v1/webhooks/" + url.PathEscape(src.Tenant) + "/" + url.PathEscape(src.Name)
	contentType := "application/json"
	if src.Name == tenant.CloudEventsSource {
		path = "/v1/events/" + url.PathEscape(src.Tenant)
		contentType = "application/cloudevents+json"
	}
	fullURL := strings.TrimRight(r.BaseURL, "/") + path
	req, err := http.NewRequest(http.MethodPost, fullURL, bytes.NewReader(r.Body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	secret := ""
	if len(src.Secrets) > 0 {
		secret = src.Secrets[0]
	}
	switch src.Scheme {
	case tenant.SchemeNone:
	case tenant.SchemeHMACSHA256:
		req.Header.Set(src.Signature.Header, src.Signature.Prefix+signature.SignHMACSHA256(r.Body, secret, src.Signature.Encoding))
	case tenant.SchemeGitHub:
		event := r.GitHubEvent
		if event == "" {
			event = "issues"
		}
		req.Header.Set("X-GitHub-Event", event)
		req.Header.Set("X-GitHub-Delivery", r.DeliveryID)
		req.Header.Set("X-Hub-Signature-256", signature.SignGitHub(r.Body, secret))
	case tenant.SchemeStripe:
		req.Header.Set("Stripe-Signature", signature.SignStripe(r.Body, secret, r.Now))
	case tenant.SchemeStandardWebhooks:
		sig, err := signature.SignStandardWebhooks(r.DeliveryID, r.Now, r.Body, secret)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Webhook-Id", r.DeliveryID)
		req.Header.Set("Webhook-Timestamp", strconv.FormatInt(r.Now.Unix(), 10))
		req.Header.Set("Webhook-Signature", sig)
	case tenant.SchemeTwilio:
		form, err := url.ParseQuery(string(r.Body))
		if err != nil {
			return nil, fmt.Errorf("twilio body must be a form (a=1&b=2): %w", err)
		}
		signed := fullURL
		if src.URL != "" {
			signed = src.URL
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", signature.SignTwilio(signed, form, secret))
	case tenant.SchemeSendGrid:
		if r.SendGridKey == nil {
			return nil, errors.New("a sendgrid source needs the private key to sign with")
		}
		ts := strconv.FormatInt(r.Now.Unix(), 10)
		sig, err := signature.SignSendGrid(r.Body, ts, r.SendGridKey)
		if err != nil {
			return nil, err
		}
		req.Header.Set("X-Twilio-Email-Event-Webhook-Timestamp", ts)
		req.Header.Set("X-Twilio-Email-Event-Webhook-Signature", sig)
	case tenant.SchemeBearer:
		req.Header.Set("Authorization", "Bearer "+secret)
	default:
		return nil, fmt.Errorf("scheme %q cannot be signed", src.Scheme)
	}
	return req, nil
}

// ParsePrivateKey reads an ECDSA private key from PEM (PKCS#8 or SEC 1).
func ParsePrivateKey(pemBytes []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		ec, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, errors.New("the key is not an ECDSA key")
		}
		return ec, nil
	}
	return x509.ParseECPrivateKey(block.Bytes)
}

// DeliveryIDFor is a stable delivery id for a body, so sending the same
// file twice shows the ingress's de-duplication.
func DeliveryIDFor(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:16])
}
