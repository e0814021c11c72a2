package ingress

import (
	"crypto/ecdsa"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/greentic/events/pkg/signature"
	"github.com/greentic/events/pkg/tenant"
)

// Headers of the providers' signatures.
const (
	headerGitHubSignature   = "X-Hub-Signature-256"
	headerStripeSignature   = "Stripe-Signature"
	headerSWID              = "Webhook-Id"
	headerSWTimestamp       = "Webhook-Timestamp"
	headerSWSignature       = "Webhook-Signature"
	headerTwilioSignature   = "X-Twilio-Signature"
	headerSendGridSignature = "X-Twilio-Email-Event-Webhook-Signature"
	headerSendGridTimestamp = "X-Twilio-Email-Event-Webhook-Timestamp"
	headerAuthorization     = "Authorization"
)

// request is one intake request while it is worked on.
type request struct {
	r    *http.Request
	src  tenant.Source
	body []byte
	form url.Values // form bodies (twilio, github), parsed once
}

// verify checks the request's signature by the source's scheme. Messages
// say which header failed and how, never a secret or the expected value.
func (h *Handler) verify(req *request) *apiError {
	src, r := req.src, req.r
	// Secrets being rotated out stay accepted until their deadline.
	secrets := src.AcceptedSecrets(h.now())
	var err error
	header := ""
	switch src.Scheme {
	case tenant.SchemeNone:
		return nil
	case tenant.SchemeHMACSHA256:
		header = src.Signature.Header
		err = signature.VerifyHMACSHA256(req.body, r.Header.Get(header), src.Signature.Prefix, src.Signature.Encoding, secrets)
	case tenant.SchemeGitHub:
		header = headerGitHubSignature
		err = signature.VerifyGitHub(req.body, r.Header.Get(header), secrets)
	case tenant.SchemeStripe:
		header = headerStripeSignature
		_, err = signature.VerifyStripe(req.body, r.Header.Get(header), secrets, src.EffectiveTolerance(), h.now())
	case tenant.SchemeStandardWebhooks:
		header = headerSWSignature
		if missing := missingHeader(r, headerSWID, headerSWTimestamp); missing != "" {
			header, err = missing, signature.ErrMissing
			break
		}
		err = signature.VerifyStandardWebhooks(r.Header.Get(headerSWID), r.Header.Get(headerSWTimestamp), r.Header.Get(header), req.body, secrets, src.EffectiveTolerance(), h.now())
	case tenant.SchemeTwilio:
		header = headerTwilioSignature
		u := twilioURL(src, r)
		if req.form != nil {
			err = signature.VerifyTwilio(u, req.form, r.Header.Get(header), secrets)
		} else {
			err = signature.VerifyTwilioJSON(u, req.body, r.Header.Get(header), secrets)
		}
	case tenant.SchemeSendGrid:
		header = headerSendGridSignature
		if missing := missingHeader(r, headerSendGridTimestamp); missing != "" {
			header, err = missing, signature.ErrMissing
			break
		}
		err = signature.VerifySendGrid(req.body, r.Header.Get(headerSendGridTimestamp), r.Header.Get(header), h.keys.get(src.PublicKeys), src.EffectiveTolerance(), h.now())
	case tenant.SchemeBearer:
		header = headerAuthorization
		err = signature.VerifyBearer(r.Header.Get(header), secrets)
	default:
		return fail(http.StatusForbidden, codeSourceDisabled, "source %q has scheme %q, which this ingress cannot verify", src.Name, src.Scheme)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, signature.ErrMissing):
		return fail(http.StatusUnauthorized, codeInvalidSignature, "header %s is missing (source %q uses scheme %s)", header, src.Name, src.Scheme)
	case errors.Is(err, signature.ErrExpired):
		return fail(http.StatusUnauthorized, codeSignatureExpired, "the signed timestamp is outside the %s tolerance (scheme %s); check the sender's clock or resend", src.EffectiveTolerance(), src.Scheme)
	case errors.Is(err, signature.ErrMalformed):
		return fail(http.StatusUnauthorized, codeInvalidSignature, "header %s is malformed for scheme %s", header, src.Scheme)
	default:
		return fail(http.StatusUnauthorized, codeInvalidSignature, "header %s does not match the request (scheme %s)", header, src.Scheme)
	}
}

func missingHeader(r *http.Request, names ...string) string {
	for _, n := range names {
		if r.Header.Get(n) == "" {
			return n
		}
	}
	return ""
}

// twilioURL is the URL Twilio signed: the source's configured public URL,
// or the URL as received with the scheme and host a proxy in front of the
// ingress forwarded. The query string is always the received one.
func twilioURL(src tenant.Source, r *http.Request) string {
	if src.URL != "" {
		base, _, _ := strings.Cut(src.URL, "?")
		if r.URL.RawQuery != "" {
			return base + "?" + r.URL.RawQuery
		}
		return base
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := firstValue(r.Header.Get("X-Forwarded-Proto")); p == "http" || p == "https" {
		scheme = p
	}
	host := r.Host
	if fh := firstValue(r.Header.Get("X-Forwarded-Host")); fh != "" {
		host = fh
	}
	return scheme + "://" + host + r.URL.RequestURI()
}

func firstValue(v string) string {
	first, _, _ := strings.Cut(v, ",")
	return strings.TrimSpace(first)
}

// keyCache keeps parsed SendGrid public keys; sources hold them as base64.
type keyCache struct{ m sync.Map } // base64 -> *ecdsa.PublicKey

func (c *keyCache) get(encoded []string) []*ecdsa.PublicKey {
	out := make([]*ecdsa.PublicKey, 0, len(encoded))
	for _, e := range encoded {
		if k, ok := c.m.Load(e); ok {
			out = append(out, k.(*ecdsa.PublicKey))
			continue
		}
		k, err := signature.ParseSendGridPublicKey(e)
		if err != nil {
			continue // sources are validated when written; a bad key verifies nothing
		}
		c.m.Store(e, k)
		out = append(out, k)
	}
	return out
}
