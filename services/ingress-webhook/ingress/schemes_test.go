package ingress

import (
	"context"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sendgrid/sendgrid-go/helpers/eventwebhook"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stripe/stripe-go/v84/webhook"
	twilioclient "github.com/twilio/twilio-go/client"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/signature"
	"github.com/greentic/events/pkg/tenant"
)

// The tests of this file send each provider's webhooks, as the provider
// signs them, through the whole intake (Serve on an embedded JetStream) and
// check the answer, the error code and what is stored.

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// invalid is a 401 invalid_signature naming the header.
func invalid(t *testing.T, a scAnswer, header string, secrets []string) {
	t.Helper()
	a.rejected(t, http.StatusUnauthorized, codeInvalidSignature, []string{header}, secrets...)
}

func expired(t *testing.T, a scAnswer, secrets []string) {
	t.Helper()
	a.rejected(t, http.StatusUnauthorized, codeSignatureExpired, []string{"tolerance"}, secrets...)
}

func TestSchemeHMACSHA256(t *testing.T) {
	f := setupSources(t, hmacSource())
	const path = "/v1/webhooks/demo/hmac"
	sign := func(body []byte, secret string) map[string]string {
		return map[string]string{"X-Signature": "sha256=" + signature.SignHMACSHA256(body, secret, "hex")}
	}
	body := []byte(`{"type":"order.created","id":"ord-1","total":12.5}`)

	a := f.scSend(t, path, mediaJSON, body, merge(sign(body, scHMACSecrets[0]),
		map[string]string{"Idempotency-Key": "idem-1", "X-Correlation-Id": "corr-1"}))
	// The event id is the source's name and the sender's id.
	const evID = "hmac:ord-1"
	a.accepted(t, evID, "order.created", false)
	ev := f.scEvent(t, evID)
	checkEvent(t, ev, "hmac", "order.created", body)
	if ev.Metadata[metadataDeliveryID] != "ord-1" || ev.Metadata[metadataIdempotency] != "idem-1" || ev.Metadata[metadataCorrelationID] != "corr-1" {
		t.Errorf("metadata %v", ev.Metadata)
	}
	f.wantDelivery(t, "hmac", "ord-1", evID)

	t.Run("tampered body", func(t *testing.T) {
		tampered := []byte(`{"type":"order.created","id":"ord-1","total":99.5}`)
		invalid(t, f.scSend(t, path, mediaJSON, tampered, sign(body, scHMACSecrets[0])), "X-Signature", scHMACSecrets)
	})
	t.Run("wrong secret", func(t *testing.T) {
		invalid(t, f.scSend(t, path, mediaJSON, body, sign(body, "not-the-secret-0123")), "X-Signature", scHMACSecrets)
	})
	t.Run("missing header", func(t *testing.T) {
		a := f.scSend(t, path, mediaJSON, body, nil)
		invalid(t, a, "X-Signature", scHMACSecrets)
		if !strings.Contains(a.message(), "missing") {
			t.Errorf("message %q does not say the header is missing", a.message())
		}
	})
	t.Run("signature in another header", func(t *testing.T) {
		h := sign(body, scHMACSecrets[0])
		invalid(t, f.scSend(t, path, mediaJSON, body, map[string]string{"X-Hub-Signature-256": h["X-Signature"]}), "X-Signature", scHMACSecrets)
	})
	t.Run("without the prefix", func(t *testing.T) {
		invalid(t, f.scSend(t, path, mediaJSON, body, map[string]string{"X-Signature": signature.SignHMACSHA256(body, scHMACSecrets[0], "hex")}), "X-Signature", scHMACSecrets)
	})
	t.Run("base64 where hex is configured", func(t *testing.T) {
		invalid(t, f.scSend(t, path, mediaJSON, body, map[string]string{"X-Signature": "sha256=" + signature.SignHMACSHA256(body, scHMACSecrets[0], "base64")}), "X-Signature", scHMACSecrets)
	})
	f.wantStored(t, 1)

	t.Run("replay", func(t *testing.T) {
		f.scSend(t, path, mediaJSON, body, sign(body, scHMACSecrets[0])).accepted(t, evID, "order.created", true)
		// The sender signs its retry with the other active secret.
		f.scSend(t, path, mediaJSON, body, sign(body, scHMACSecrets[1])).accepted(t, evID, "order.created", true)
		f.wantStored(t, 1)
	})
	t.Run("rotation: second secret", func(t *testing.T) {
		b := []byte(`{"type":"order.paid","id":"ord-2"}`)
		f.scSend(t, path, mediaJSON, b, sign(b, scHMACSecrets[1])).accepted(t, wantID("hmac", "ord-2"), "order.paid", false)
		checkEvent(t, f.scEvent(t, wantID("hmac", "ord-2")), "hmac", "order.paid", b)
		f.wantStored(t, 2)
	})
}

func swHeaders(t *testing.T, id string, ts time.Time, body []byte, secret string) map[string]string {
	t.Helper()
	sig, err := signature.SignStandardWebhooks(id, ts, body, secret)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"Webhook-Id": id, "Webhook-Timestamp": unix(ts), "Webhook-Signature": sig}
}

func TestSchemeStandardWebhooks(t *testing.T) {
	f := setupSources(t, swSource())
	const path = "/v1/webhooks/demo/sw"
	const id = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
	now := time.Now()
	body := []byte(`{"type":"contact.created","timestamp":"2022-11-03T20:26:10.344522Z","data":{"id":"1f81eb52-5198-4599-803e-771906343485"}}`)
	hdr := swHeaders(t, id, now, body, scSWSecrets[0])

	evID := wantID("sw", id)
	f.scSend(t, path, mediaJSON, body, hdr).accepted(t, evID, "contact.created", false)
	ev := f.scEvent(t, evID)
	checkEvent(t, ev, "sw", "contact.created", body)
	if ev.Metadata[metadataDeliveryID] != id {
		t.Errorf("metadata %v lacks the webhook-id", ev.Metadata)
	}
	f.wantDelivery(t, "sw", id, evID)

	t.Run("tampered body", func(t *testing.T) {
		invalid(t, f.scSend(t, path, mediaJSON, []byte(`{"type":"contact.deleted","data":{}}`), hdr), "Webhook-Signature", scSWSecrets)
	})
	t.Run("tampered webhook-id", func(t *testing.T) {
		invalid(t, f.scSend(t, path, mediaJSON, body, merge(hdr, map[string]string{"Webhook-Id": "msg_other"})), "Webhook-Signature", scSWSecrets)
	})
	t.Run("tampered timestamp", func(t *testing.T) {
		invalid(t, f.scSend(t, path, mediaJSON, body, merge(hdr, map[string]string{"Webhook-Timestamp": unix(now.Add(time.Second))})), "Webhook-Signature", scSWSecrets)
	})
	t.Run("wrong secret", func(t *testing.T) {
		other := "whsec_" + "b3RoZXItc2VjcmV0LWJ5dGVzLTEyMzQ="
		invalid(t, f.scSend(t, path, mediaJSON, body, swHeaders(t, id, now, body, other)), "Webhook-Signature", scSWSecrets)
	})
	for _, h := range []string{"Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"} {
		t.Run("missing "+h, func(t *testing.T) {
			m := merge(hdr)
			delete(m, h)
			a := f.scSend(t, path, mediaJSON, body, m)
			invalid(t, a, h, scSWSecrets)
			if !strings.Contains(a.message(), "missing") {
				t.Errorf("message %q does not say the header is missing", a.message())
			}
		})
	}
	t.Run("malformed signature", func(t *testing.T) {
		invalid(t, f.scSend(t, path, mediaJSON, body, merge(hdr, map[string]string{"Webhook-Signature": "v1"})), "Webhook-Signature", scSWSecrets)
	})
	for _, d := range []time.Duration{-10 * time.Minute, 10 * time.Minute} {
		t.Run("expired "+d.String(), func(t *testing.T) {
			expired(t, f.scSend(t, path, mediaJSON, body, swHeaders(t, "msg_expired", now.Add(d), body, scSWSecrets[0])), scSWSecrets)
		})
	}
	f.wantStored(t, 1)

	t.Run("replay", func(t *testing.T) {
		f.scSend(t, path, mediaJSON, body, hdr).accepted(t, evID, "contact.created", true)
		// A retry is signed again with a new timestamp: still the same delivery.
		f.scSend(t, path, mediaJSON, body, swHeaders(t, id, now.Add(3*time.Second), body, scSWSecrets[0])).accepted(t, evID, "contact.created", true)
		f.wantStored(t, 1)
	})
	t.Run("rotation: second secret", func(t *testing.T) {
		b := []byte(`{"type":"contact.updated","data":{}}`)
		f.scSend(t, path, mediaJSON, b, swHeaders(t, "msg_rotated", now, b, scSWSecrets[1])).accepted(t, wantID("sw", "msg_rotated"), "contact.updated", false)
		f.wantStored(t, 2)
	})
	t.Run("both signatures sent during a rotation", func(t *testing.T) {
		b := []byte(`{"type":"contact.updated","data":{"n":2}}`)
		h1 := swHeaders(t, "msg_both", now, b, "whsec_b3RoZXItc2VjcmV0LWJ5dGVzLTEyMzQ=")
		h2 := swHeaders(t, "msg_both", now, b, scSWSecrets[1])
		h1["Webhook-Signature"] += " " + h2["Webhook-Signature"]
		f.scSend(t, path, mediaJSON, b, h1).accepted(t, wantID("sw", "msg_both"), "contact.updated", false)
		f.wantStored(t, 3)
	})
	t.Run("signed by the Standard Webhooks library", func(t *testing.T) {
		wh, err := standardwebhooks.NewWebhook(scSWSecrets[0])
		if err != nil {
			t.Fatal(err)
		}
		b := []byte(`{"type":"invoice.paid","data":{"amount":100}}`)
		sig, err := wh.Sign("msg_library", now, b)
		if err != nil {
			t.Fatal(err)
		}
		f.scSend(t, path, mediaJSON, b, map[string]string{
			standardwebhooks.HeaderWebhookID: "msg_library", standardwebhooks.HeaderWebhookTimestamp: unix(now), standardwebhooks.HeaderWebhookSignature: sig,
		}).accepted(t, wantID("sw", "msg_library"), "invoice.paid", false)
		f.wantStored(t, 4)
	})
	t.Run("no type", func(t *testing.T) {
		b := []byte(`{"data":{}}`)
		f.scSend(t, path, mediaJSON, b, swHeaders(t, "msg_untyped", now, b, scSWSecrets[0])).rejected(t, http.StatusBadRequest, codeInvalidEvent, []string{`"type"`})
		f.wantStored(t, 4)
	})
}

func TestSchemeGitHub(t *testing.T) {
	f := setupSources(t, githubSource())
	const path = "/v1/webhooks/demo/github"
	const delivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
	body := []byte(`{"action":"opened","number":2,"pull_request":{"id":1,"title":"Add ingress"},"repository":{"full_name":"greentic/events"}}`)
	headers := func(b []byte, secret, event, delivery string) map[string]string {
		return map[string]string{"X-Hub-Signature-256": signature.SignGitHub(b, secret), "X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "User-Agent": "GitHub-Hookshot/044aadd"}
	}
	hdr := headers(body, scGitHubSecrets[0], "pull_request", delivery)

	// GitHub signs only the body, so the delivery is identified by a digest
	// of it; X-GitHub-Delivery is kept in metadata.
	sum := sha256.Sum256(body)
	evID := "github:sha256-" + hex.EncodeToString(sum[:16])
	if got := githubID("github", body); got != evID {
		t.Fatalf("githubID = %s, want %s", got, evID)
	}
	f.scSend(t, path, mediaJSON, body, hdr).accepted(t, evID, "github.pull_request.opened", false)
	ev := f.scEvent(t, evID)
	checkEvent(t, ev, "github", "github.pull_request.opened", body)
	if ev.Metadata[metadataDeliveryID] != delivery {
		t.Errorf("metadata %v lacks the X-GitHub-Delivery", ev.Metadata)
	}
	f.wantDelivery(t, "github", bodyDigest(body), evID)
	if _, ok := f.scDelivery(t, "demo", "github", delivery); ok {
		t.Error("the deliveries bucket is keyed by the unsigned X-GitHub-Delivery")
	}

	t.Run("event without action", func(t *testing.T) {
		b := []byte(`{"zen":"Design for failure.","hook_id":12345}`)
		f.scSend(t, path, mediaJSON, b, headers(b, scGitHubSecrets[0], "ping", "0b989ba4-242f-11e5-81e1-c7b4bc1e9b6e")).
			accepted(t, githubID("github", b), "github.ping", false)
		if md := f.scEvent(t, githubID("github", b)).Metadata; md[metadataDeliveryID] != "0b989ba4-242f-11e5-81e1-c7b4bc1e9b6e" {
			t.Errorf("metadata %v lacks the X-GitHub-Delivery", md)
		}
		f.wantStored(t, 2)
	})
	t.Run("form content type", func(t *testing.T) {
		payload := `{"ref":"refs/heads/main","after":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"}`
		b := []byte(url.Values{"payload": {payload}}.Encode())
		// The delivery is the digest of the signed body: the form as sent.
		f.scSend(t, path, mediaForm, b, headers(b, scGitHubSecrets[0], "push", "9a3b6c4e-1d2f-11ee-8b7e-0242ac120002")).
			accepted(t, githubID("github", b), "github.push", false)
		// The event's payload is the JSON of the form, not the form.
		checkEvent(t, f.scEvent(t, githubID("github", b)), "github", "github.push", []byte(payload))
		f.wantStored(t, 3)
	})
	t.Run("tampered body", func(t *testing.T) {
		tampered := []byte(strings.Replace(string(body), "opened", "closed", 1))
		invalid(t, f.scSend(t, path, mediaJSON, tampered, hdr), "X-Hub-Signature-256", scGitHubSecrets)
	})
	t.Run("tampered form", func(t *testing.T) {
		b := []byte(url.Values{"payload": {`{"ref":"refs/heads/main"}`}}.Encode())
		h := headers(b, scGitHubSecrets[0], "push", "5c1a7c2e-0000-11ee-8b7e-0242ac120002")
		invalid(t, f.scSend(t, path, mediaForm, []byte(url.Values{"payload": {`{"ref":"refs/heads/evil"}`}}.Encode()), h), "X-Hub-Signature-256", scGitHubSecrets)
	})
	t.Run("wrong secret", func(t *testing.T) {
		invalid(t, f.scSend(t, path, mediaJSON, body, headers(body, "not-the-secret-0123", "pull_request", delivery)), "X-Hub-Signature-256", scGitHubSecrets)
	})
	t.Run("missing header", func(t *testing.T) {
		h := merge(hdr)
		delete(h, "X-Hub-Signature-256")
		a := f.scSend(t, path, mediaJSON, body, h)
		invalid(t, a, "X-Hub-Signature-256", scGitHubSecrets)
		if !strings.Contains(a.message(), "missing") {
			t.Errorf("message %q does not say the header is missing", a.message())
		}
	})
	t.Run("only the legacy SHA-1 header", func(t *testing.T) {
		m := hmac.New(sha1.New, []byte(scGitHubSecrets[0]))
		m.Write(body)
		h := merge(hdr, map[string]string{"X-Hub-Signature": "sha1=" + hex.EncodeToString(m.Sum(nil))})
		delete(h, "X-Hub-Signature-256")
		invalid(t, f.scSend(t, path, mediaJSON, body, h), "X-Hub-Signature-256", scGitHubSecrets)
	})
	t.Run("sha1 in the sha256 header", func(t *testing.T) {
		invalid(t, f.scSend(t, path, mediaJSON, body, merge(hdr, map[string]string{"X-Hub-Signature-256": "sha1=" + strings.Repeat("0", 40)})), "X-Hub-Signature-256", scGitHubSecrets)
	})
	t.Run("missing event header", func(t *testing.T) {
		h := merge(hdr, map[string]string{"X-GitHub-Delivery": "6f3f4e3a-0000-11ee-8b7e-0242ac120002"})
		delete(h, "X-GitHub-Event")
		f.scSend(t, path, mediaJSON, body, h).rejected(t, http.StatusBadRequest, codeInvalidEvent, []string{"X-GitHub-Event"})
	})
	f.wantStored(t, 3)

	t.Run("replay", func(t *testing.T) {
		f.scSend(t, path, mediaJSON, body, hdr).accepted(t, evID, "github.pull_request.opened", true)
		f.wantStored(t, 3)
	})
	t.Run("rotation: second secret", func(t *testing.T) {
		b := []byte(`{"action":"created","comment":{"id":7}}`)
		f.scSend(t, path, mediaJSON, b, headers(b, scGitHubSecrets[1], "issue_comment", "1d2e3f40-0000-11ee-8b7e-0242ac120002")).
			accepted(t, githubID("github", b), "github.issue_comment.created", false)
		f.wantStored(t, 4)
	})
}

func TestSchemeStripe(t *testing.T) {
	f := setupSources(t, stripeSource())
	const path = "/v1/webhooks/demo/stripe"
	const id = "evt_1NG8Du2eZvKYlo2CUI79vXWy"
	now := time.Now()
	body := []byte(`{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","api_version":"2022-11-15","type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","amount":2000}}}`)
	send := func(b []byte, header string) scAnswer {
		return f.scSend(t, path, mediaJSON, b, map[string]string{"Stripe-Signature": header})
	}
	header := signature.SignStripe(body, scStripeSecrets[0], now)

	// The event id is the source's name and the Stripe event id.
	const evID = "stripe:evt_1NG8Du2eZvKYlo2CUI79vXWy"
	send(body, header).accepted(t, evID, "stripe.payment_intent.succeeded", false)
	ev := f.scEvent(t, evID)
	checkEvent(t, ev, "stripe", "stripe.payment_intent.succeeded", body)
	if ev.Metadata[metadataDeliveryID] != id {
		t.Errorf("metadata %v lacks the Stripe event id", ev.Metadata)
	}
	f.wantDelivery(t, "stripe", id, evID)

	t.Run("tampered body", func(t *testing.T) {
		invalid(t, send([]byte(strings.Replace(string(body), "2000", "1", 1)), header), "Stripe-Signature", scStripeSecrets)
	})
	t.Run("tampered timestamp", func(t *testing.T) {
		v1 := header[strings.Index(header, ",v1="):]
		invalid(t, send(body, "t="+unix(now.Add(-time.Second))+v1), "Stripe-Signature", scStripeSecrets)
	})
	t.Run("wrong secret", func(t *testing.T) {
		invalid(t, send(body, signature.SignStripe(body, "whsec_not_the_secret_0123", now)), "Stripe-Signature", scStripeSecrets)
	})
	t.Run("missing header", func(t *testing.T) {
		a := f.scSend(t, path, mediaJSON, body, nil)
		invalid(t, a, "Stripe-Signature", scStripeSecrets)
		if !strings.Contains(a.message(), "missing") {
			t.Errorf("message %q does not say the header is missing", a.message())
		}
	})
	t.Run("malformed header", func(t *testing.T) {
		invalid(t, send(body, "t=abc,v1=00"), "Stripe-Signature", scStripeSecrets)
	})
	t.Run("only the test-mode v0", func(t *testing.T) {
		invalid(t, send(body, strings.Replace(header, "v1=", "v0=", 1)), "Stripe-Signature", scStripeSecrets)
	})
	for _, d := range []time.Duration{-10 * time.Minute, 10 * time.Minute} {
		t.Run("expired "+d.String(), func(t *testing.T) {
			b := []byte(`{"id":"evt_expired","object":"event","type":"charge.succeeded"}`)
			expired(t, send(b, signature.SignStripe(b, scStripeSecrets[0], now.Add(d))), scStripeSecrets)
		})
	}
	f.wantStored(t, 1)

	t.Run("replay", func(t *testing.T) {
		send(body, header).accepted(t, evID, "stripe.payment_intent.succeeded", true)
		// Stripe signs every retry anew, with a new timestamp.
		send(body, signature.SignStripe(body, scStripeSecrets[0], now.Add(2*time.Second))).accepted(t, evID, "stripe.payment_intent.succeeded", true)
		f.wantStored(t, 1)
	})
	t.Run("rotation: second secret", func(t *testing.T) {
		b := []byte(`{"id":"evt_rotated","object":"event","type":"customer.created"}`)
		send(b, signature.SignStripe(b, scStripeSecrets[1], now)).accepted(t, wantID("stripe", "evt_rotated"), "stripe.customer.created", false)
		f.wantStored(t, 2)
	})
	t.Run("during a rotation Stripe sends one v1 per secret", func(t *testing.T) {
		b := []byte(`{"id":"evt_two_v1","object":"event","type":"customer.updated"}`)
		old := signature.SignStripe(b, "whsec_retired_secret_0123456", now)
		cur := signature.SignStripe(b, scStripeSecrets[0], now)
		send(b, old+cur[strings.Index(cur, ",v1="):]).accepted(t, wantID("stripe", "evt_two_v1"), "stripe.customer.updated", false)
		f.wantStored(t, 3)
	})
	t.Run("stripe-go GenerateTestSignedPayload", func(t *testing.T) {
		b := []byte(`{"id":"evt_stripe_go","object":"event","type":"invoice.payment_failed"}`)
		signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: b, Secret: scStripeSecrets[0], Timestamp: now})
		send(b, signed.Header).accepted(t, wantID("stripe", "evt_stripe_go"), "stripe.invoice.payment_failed", false)
		f.wantStored(t, 4)
	})
	t.Run("no type", func(t *testing.T) {
		b := []byte(`{"id":"evt_untyped","object":"event"}`)
		send(b, signature.SignStripe(b, scStripeSecrets[0], now)).rejected(t, http.StatusBadRequest, codeInvalidEvent, []string{`"type"`})
		f.wantStored(t, 4)
	})
}

// twilioForm is a Twilio request with a form body: the signature covers
// the URL and the POST parameters.
func twilioForm(fullURL string, params url.Values, token string) ([]byte, map[string]string) {
	return []byte(params.Encode()), map[string]string{"X-Twilio-Signature": signature.SignTwilio(fullURL, params, token)}
}

func twilioStatus(sid, status string) url.Values {
	return url.Values{
		"AccountSid": {"AC00000000000000000000000000000000"}, "ApiVersion": {"2010-04-01"},
		"From": {"+15017122661"}, "To": {"+15558675310"},
		"MessageSid": {sid}, "SmsSid": {sid}, "MessageStatus": {status}, "SmsStatus": {status},
	}
}

func TestSchemeTwilioForm(t *testing.T) {
	f := setupSources(t, twilioSource())
	const path = "/v1/webhooks/demo/twilio"
	fullURL := f.base + path // what the ingress sees: http://127.0.0.1:port/...
	const sid = "SM1f0e8ae6ade43cb3c0ce4525424e404f"
	params := twilioStatus(sid, "delivered")
	body, hdr := twilioForm(fullURL, params, scTwilioTokens[0])

	// Twilio's own helper library accepts the request as we send it.
	rv := twilioclient.NewRequestValidator(scTwilioTokens[0])
	if !rv.ValidateBody(fullURL, body, hdr["X-Twilio-Signature"]) {
		t.Fatal("twilio-go RequestValidator rejects the request")
	}
	// The delivery is the signed sid and status.
	const evID = "twilio:SM1f0e8ae6ade43cb3c0ce4525424e404f.delivered"
	f.scSend(t, path, mediaForm, body, hdr).accepted(t, evID, "sms.delivered", false)
	ev := f.scEvent(t, evID)
	checkEvent(t, ev, "twilio", "sms.delivered", nil)
	if ev.Metadata[metadataDeliveryID] != sid+".delivered" {
		t.Errorf("metadata %v lacks the delivery id", ev.Metadata)
	}
	var payload map[string]string
	if err := json.Unmarshal(ev.Payload, &payload); err != nil {
		t.Fatalf("payload %q is not a JSON object of strings: %v", ev.Payload, err)
	}
	want := map[string]string{}
	for k, v := range params {
		want[k] = v[0]
	}
	if !reflect.DeepEqual(payload, want) {
		t.Errorf("payload %v, want the form fields %v", payload, want)
	}
	f.wantDelivery(t, "twilio", sid+".delivered", evID)

	t.Run("idempotency token", func(t *testing.T) {
		// The token is not signed: with a sid, the sid and status identify
		// the delivery, not the token.
		b, h := twilioForm(fullURL, twilioStatus(sid, "read"), scTwilioTokens[0])
		h[headerTwilioIdem] = "0f8e2c16-idem-token"
		readID := wantID("twilio", sid+".read")
		f.scSend(t, path, mediaForm, b, h).accepted(t, readID, "sms.read", false)
		// Twilio's retry carries the same token.
		f.scSend(t, path, mediaForm, b, h).accepted(t, readID, "sms.read", true)
		f.wantDelivery(t, "twilio", sid+".read", readID)
		if _, ok := f.scDelivery(t, "demo", "twilio", "0f8e2c16-idem-token"); ok {
			t.Error("the deliveries bucket is keyed by the unsigned idempotency token")
		}
		f.wantStored(t, 2)
	})
	t.Run("inbound message", func(t *testing.T) {
		p := url.Values{
			"AccountSid": {"AC00000000000000000000000000000000"}, "MessageSid": {"SM0000000000000000000000000000inbd"}, "SmsSid": {"SM0000000000000000000000000000inbd"},
			"SmsMessageSid": {"SM0000000000000000000000000000inbd"}, "SmsStatus": {"received"}, "Body": {"Hello & bye = ok?"}, "NumMedia": {"0"},
			"From": {"+15558675310"}, "To": {"+15017122661"},
		}
		b, h := twilioForm(fullURL, p, scTwilioTokens[0])
		f.scSend(t, path, mediaForm, b, h).accepted(t, wantID("twilio", "SM0000000000000000000000000000inbd.received"), "sms.received", false)
		ev := f.scEvent(t, wantID("twilio", "SM0000000000000000000000000000inbd.received"))
		if !strings.Contains(string(ev.Payload), `"Body":"Hello \u0026 bye = ok?"`) {
			t.Errorf("payload %s lacks the decoded Body", ev.Payload)
		}
		f.wantStored(t, 3)
	})
	t.Run("call status", func(t *testing.T) {
		p := url.Values{"AccountSid": {"AC00000000000000000000000000000000"}, "CallSid": {"CA0000000000000000000000000000call"}, "CallStatus": {"completed"}, "CallDuration": {"42"}}
		b, h := twilioForm(fullURL, p, scTwilioTokens[0])
		f.scSend(t, path, mediaForm, b, h).accepted(t, wantID("twilio", "CA0000000000000000000000000000call.completed"), "call.completed", false)
		f.wantStored(t, 4)
	})
	t.Run("tampered parameter", func(t *testing.T) {
		p := twilioStatus(sid, "delivered")
		p.Set("To", "+15550000000")
		invalid(t, f.scSend(t, path, mediaForm, []byte(p.Encode()), hdr), "X-Twilio-Signature", scTwilioTokens)
	})
	t.Run("added parameter", func(t *testing.T) {
		p := twilioStatus(sid, "delivered")
		p.Set("Extra", "1")
		invalid(t, f.scSend(t, path, mediaForm, []byte(p.Encode()), hdr), "X-Twilio-Signature", scTwilioTokens)
	})
	t.Run("tampered URL", func(t *testing.T) {
		b, h := twilioForm(fullURL+"?account=a", params, scTwilioTokens[0])
		invalid(t, f.scSend(t, path+"?account=b", mediaForm, b, h), "X-Twilio-Signature", scTwilioTokens)
		// The same request to the URL it was signed for passes (a duplicate).
		f.scSend(t, path+"?account=a", mediaForm, b, h).accepted(t, evID, "sms.delivered", true)
	})
	t.Run("signed for another host", func(t *testing.T) {
		b, h := twilioForm("https://attacker.example.com"+path, params, scTwilioTokens[0])
		invalid(t, f.scSend(t, path, mediaForm, b, h), "X-Twilio-Signature", scTwilioTokens)
	})
	t.Run("wrong token", func(t *testing.T) {
		b, h := twilioForm(fullURL, params, "00000000000000000000000000000000")
		invalid(t, f.scSend(t, path, mediaForm, b, h), "X-Twilio-Signature", scTwilioTokens)
	})
	t.Run("missing header", func(t *testing.T) {
		a := f.scSend(t, path, mediaForm, body, nil)
		invalid(t, a, "X-Twilio-Signature", scTwilioTokens)
		if !strings.Contains(a.message(), "missing") {
			t.Errorf("message %q does not say the header is missing", a.message())
		}
	})
	t.Run("malformed header", func(t *testing.T) {
		invalid(t, f.scSend(t, path, mediaForm, body, map[string]string{"X-Twilio-Signature": "not base64"}), "X-Twilio-Signature", scTwilioTokens)
	})
	f.wantStored(t, 4)

	t.Run("replay", func(t *testing.T) {
		f.scSend(t, path, mediaForm, body, hdr).accepted(t, evID, "sms.delivered", true)
		f.wantStored(t, 4)
	})
	t.Run("rotation: secondary auth token", func(t *testing.T) {
		b, h := twilioForm(fullURL, twilioStatus("SM00000000000000000000000000rotate", "sent"), scTwilioTokens[1])
		f.scSend(t, path, mediaForm, b, h).accepted(t, wantID("twilio", "SM00000000000000000000000000rotate.sent"), "sms.sent", false)
		f.wantStored(t, 5)
	})
	t.Run("form with a charset, as Twilio sends it", func(t *testing.T) {
		b, h := twilioForm(fullURL, twilioStatus("SM000000000000000000000000charset", "sent"), scTwilioTokens[0])
		f.scSend(t, path, "application/x-www-form-urlencoded; charset=UTF-8", b, h).accepted(t, wantID("twilio", "SM000000000000000000000000charset.sent"), "sms.sent", false)
		f.wantStored(t, 6)
	})
	t.Run("idempotency token without a sid", func(t *testing.T) {
		// No MessageSid, SmsSid or CallSid: only the token identifies the
		// delivery.
		p := url.Values{"AccountSid": {"AC00000000000000000000000000000000"}, "From": {"+15558675310"}, "Note": {"no sid"}}
		b, h := twilioForm(fullURL, p, scTwilioTokens[0])
		h[headerTwilioIdem] = "7c1d-idem-no-sid"
		const noSidID = "twilio:7c1d-idem-no-sid"
		f.scSend(t, path, mediaForm, b, h).accepted(t, noSidID, "twilio.webhook", false)
		f.scSend(t, path, mediaForm, b, h).accepted(t, noSidID, "twilio.webhook", true)
		f.wantDelivery(t, "twilio", "7c1d-idem-no-sid", noSidID)
		f.wantStored(t, 7)
	})
}

// twilioJSON is a Twilio request with a JSON body: Twilio adds bodySHA256
// to the query string and signs the URL alone.
func twilioJSON(fullURL string, body []byte, token string) (string, map[string]string) {
	sum := sha256.Sum256(body)
	sep := "?"
	if strings.Contains(fullURL, "?") {
		sep = "&"
	}
	signed := fullURL + sep + "bodySHA256=" + hex.EncodeToString(sum[:])
	return signed, map[string]string{"X-Twilio-Signature": signature.SignTwilio(signed, nil, token)}
}

func TestSchemeTwilioJSON(t *testing.T) {
	f := setupSources(t, twilioSource())
	const path = "/v1/webhooks/demo/twilio"
	const sid = "SM2f0e8ae6ade43cb3c0ce4525424e404f"
	body := []byte(`{"MessageSid":"SM2f0e8ae6ade43cb3c0ce4525424e404f","MessageStatus":"sent","To":"+15558675310"}`)
	signedURL, hdr := twilioJSON(f.base+path, body, scTwilioTokens[0])
	rel := strings.TrimPrefix(signedURL, f.base)

	rv := twilioclient.NewRequestValidator(scTwilioTokens[0])
	if !rv.ValidateBody(signedURL, body, hdr["X-Twilio-Signature"]) {
		t.Fatal("twilio-go RequestValidator rejects the request")
	}
	evID := wantID("twilio", sid+".sent")
	f.scSend(t, rel, mediaJSON, body, hdr).accepted(t, evID, "sms.sent", false)
	checkEvent(t, f.scEvent(t, evID), "twilio", "sms.sent", body)
	f.wantDelivery(t, "twilio", sid+".sent", evID)

	t.Run("tampered body", func(t *testing.T) {
		tampered := []byte(strings.Replace(string(body), "sent", "failed", 1))
		if rv.ValidateBody(signedURL, tampered, hdr["X-Twilio-Signature"]) {
			t.Fatal("twilio-go accepts the tampered body")
		}
		invalid(t, f.scSend(t, rel, mediaJSON, tampered, hdr), "X-Twilio-Signature", scTwilioTokens)
	})
	t.Run("bodySHA256 of the tampered body", func(t *testing.T) {
		tampered := []byte(strings.Replace(string(body), "sent", "failed", 1))
		sum := sha256.Sum256(tampered)
		invalid(t, f.scSend(t, path+"?bodySHA256="+hex.EncodeToString(sum[:]), mediaJSON, tampered, hdr), "X-Twilio-Signature", scTwilioTokens)
	})
	t.Run("without bodySHA256", func(t *testing.T) {
		invalid(t, f.scSend(t, path, mediaJSON, body, map[string]string{"X-Twilio-Signature": signature.SignTwilio(f.base+path, nil, scTwilioTokens[0])}), "X-Twilio-Signature", scTwilioTokens)
	})
	t.Run("wrong token", func(t *testing.T) {
		_, h := twilioJSON(f.base+path, body, "00000000000000000000000000000000")
		invalid(t, f.scSend(t, rel, mediaJSON, body, h), "X-Twilio-Signature", scTwilioTokens)
	})
	t.Run("missing header", func(t *testing.T) {
		invalid(t, f.scSend(t, rel, mediaJSON, body, nil), "X-Twilio-Signature", scTwilioTokens)
	})
	t.Run("text/plain", func(t *testing.T) {
		f.scSend(t, rel, mediaText, body, hdr).rejected(t, http.StatusUnsupportedMediaType, codeUnsupportedMedia, []string{mediaForm})
	})
	f.wantStored(t, 1)

	t.Run("replay", func(t *testing.T) {
		f.scSend(t, rel, mediaJSON, body, hdr).accepted(t, evID, "sms.sent", true)
		f.wantStored(t, 1)
	})
	t.Run("rotation: secondary auth token", func(t *testing.T) {
		b := []byte(`{"CallSid":"CA0000000000000000000000000000json","CallStatus":"ringing"}`)
		u, h := twilioJSON(f.base+path, b, scTwilioTokens[1])
		f.scSend(t, strings.TrimPrefix(u, f.base), mediaJSON, b, h).accepted(t, wantID("twilio", "CA0000000000000000000000000000json.ringing"), "call.ringing", false)
		f.wantStored(t, 2)
	})
}

// TestSchemeTwilioBehindProxy: Twilio signs the URL it calls, which behind a
// proxy is not the one the ingress sees.
func TestSchemeTwilioBehindProxy(t *testing.T) {
	f := setupSources(t, twilioSource(), twilioPublicSource())

	t.Run("configured public URL", func(t *testing.T) {
		params := twilioStatus("SM0000000000000000000000000public", "delivered")
		body, hdr := twilioForm(scTwilioPublicURL+"?src=proxy", params, scTwilioTokens[0])
		rv := twilioclient.NewRequestValidator(scTwilioTokens[0])
		if !rv.ValidateBody(scTwilioPublicURL+"?src=proxy", body, hdr["X-Twilio-Signature"]) {
			t.Fatal("twilio-go RequestValidator rejects the request")
		}
		f.scSend(t, "/v1/webhooks/demo/twilio-public?src=proxy", mediaForm, body, hdr).
			accepted(t, wantID("twilio-public", "SM0000000000000000000000000public.delivered"), "sms.delivered", false)
		// Signed over the URL the ingress sees: not what Twilio signs.
		local, lhdr := twilioForm(f.base+"/v1/webhooks/demo/twilio-public?src=proxy", params, scTwilioTokens[0])
		invalid(t, f.scSend(t, "/v1/webhooks/demo/twilio-public?src=proxy", mediaForm, local, lhdr), "X-Twilio-Signature", scTwilioTokens)
		// The query string is the one received.
		invalid(t, f.scSend(t, "/v1/webhooks/demo/twilio-public?src=other", mediaForm, body, hdr), "X-Twilio-Signature", scTwilioTokens)
	})
	t.Run("configured public URL, JSON body", func(t *testing.T) {
		b := []byte(`{"MessageSid":"SM000000000000000000000000pubjson","MessageStatus":"queued"}`)
		u, h := twilioJSON(scTwilioPublicURL, b, scTwilioTokens[0])
		q := u[strings.Index(u, "?"):]
		f.scSend(t, "/v1/webhooks/demo/twilio-public"+q, mediaJSON, b, h).accepted(t, wantID("twilio-public", "SM000000000000000000000000pubjson.queued"), "sms.queued", false)
	})
	t.Run("X-Forwarded-Proto and X-Forwarded-Host", func(t *testing.T) {
		const public = "https://public.example.com/v1/webhooks/demo/twilio"
		params := twilioStatus("SM000000000000000000000000forward", "delivered")
		fwdID := wantID("twilio", "SM000000000000000000000000forward.delivered")
		body, hdr := twilioForm(public, params, scTwilioTokens[0])
		rv := twilioclient.NewRequestValidator(scTwilioTokens[0])
		if !rv.ValidateBody(public, body, hdr["X-Twilio-Signature"]) {
			t.Fatal("twilio-go RequestValidator rejects the request")
		}
		// Without the proxy's headers the URL differs.
		invalid(t, f.scSend(t, "/v1/webhooks/demo/twilio", mediaForm, body, hdr), "X-Twilio-Signature", scTwilioTokens)
		fwd := merge(hdr, map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example.com"})
		f.scSend(t, "/v1/webhooks/demo/twilio", mediaForm, body, fwd).accepted(t, fwdID, "sms.delivered", false)
		// A chain of proxies: the first (client-facing) values count.
		chain := merge(hdr, map[string]string{"X-Forwarded-Proto": "https, http", "X-Forwarded-Host": "public.example.com, internal.lb"})
		f.scSend(t, "/v1/webhooks/demo/twilio", mediaForm, body, chain).accepted(t, fwdID, "sms.delivered", true)
		// Twilio signing with the default port is accepted too, like twilio-go.
		withPort, phdr := twilioForm("https://public.example.com:443/v1/webhooks/demo/twilio", params, scTwilioTokens[0])
		f.scSend(t, "/v1/webhooks/demo/twilio", mediaForm, withPort, merge(phdr, map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example.com"})).
			accepted(t, fwdID, "sms.delivered", true)
	})
	f.wantStored(t, 3)
}

// sgBatch is a SendGrid Event Webhook body: a JSON array, then CRLF.
func sgBatch(events ...string) []byte {
	return []byte("[" + strings.Join(events, ",") + "]\r\n")
}

func TestSchemeSendGrid(t *testing.T) {
	k1, k2 := scKey(t), scKey(t)
	f := setupSources(t, sendgridSource(k1, k2))
	const path = "/v1/webhooks/demo/sendgrid"
	pub1 := sendgridSource(k1).PublicKeys[0]
	now := time.Now()
	sign := func(body []byte, ts string, k *ecdsa.PrivateKey) map[string]string {
		t.Helper()
		sig, err := signature.SignSendGrid(body, ts, k)
		if err != nil {
			t.Fatal(err)
		}
		return map[string]string{eventwebhook.VerificationHTTPHeader: sig, eventwebhook.TimestampHTTPHeader: ts}
	}
	delivered := `{"email":"a@example.com","timestamp":1700000000,"event":"delivered","sg_event_id":"sg-delivered-1","sg_message_id":"m1.filter","response":"250 OK"}`
	bounce := `{"email":"b@example.com","timestamp":1700000001,"event":"bounce","sg_event_id":"sg-bounce-1","sg_message_id":"m2.filter","reason":"550 5.1.1 unknown user","type":"bounce"}`
	open := `{"email":"a@example.com","timestamp":1700000002,"event":"open","sg_event_id":"sg-open-1","sg_message_id":"m1.filter","useragent":"Mozilla/5.0"}`
	body := sgBatch(delivered, bounce, open)
	hdr := sign(body, unix(now), k1)

	// SendGrid's helper library verifies what we send.
	key, err := eventwebhook.ConvertPublicKeyBase64ToECDSA(pub1)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := eventwebhook.VerifySignature(key, body, hdr[eventwebhook.VerificationHTTPHeader], hdr[eventwebhook.TimestampHTTPHeader]); !ok || err != nil {
		t.Fatalf("sendgrid-go VerifySignature = %v, %v", ok, err)
	}
	// Each event's id is the source's name and its sg_event_id.
	f.scSend(t, path, mediaJSON, body, hdr).acceptedBatch(t,
		Accepted{EventID: "sendgrid:sg-delivered-1", EventType: "email.delivered"},
		Accepted{EventID: "sendgrid:sg-bounce-1", EventType: "email.bounced"},
		Accepted{EventID: "sendgrid:sg-open-1", EventType: "email.opened"})
	f.wantStored(t, 3)
	for id, want := range map[string]struct{ typ, payload string }{
		"sg-delivered-1": {"email.delivered", delivered}, "sg-bounce-1": {"email.bounced", bounce}, "sg-open-1": {"email.opened", open},
	} {
		ev := f.scEvent(t, wantID("sendgrid", id))
		checkEvent(t, ev, "sendgrid", want.typ, []byte(want.payload))
		if ev.Metadata[metadataDeliveryID] != id {
			t.Errorf("event %s: metadata %v lacks sg_event_id", ev.Id, ev.Metadata)
		}
		f.wantDelivery(t, "sendgrid", id, wantID("sendgrid", id))
	}
	// Events keep the batch order in the stream.
	var order []string
	for _, ev := range f.scEvents(t) {
		order = append(order, ev.Id)
	}
	if !reflect.DeepEqual(order, []string{"sendgrid:sg-delivered-1", "sendgrid:sg-bounce-1", "sendgrid:sg-open-1"}) {
		t.Errorf("stream order %v", order)
	}

	const sigHeader, tsHeader = "X-Twilio-Email-Event-Webhook-Signature", "X-Twilio-Email-Event-Webhook-Timestamp"
	t.Run("tampered body", func(t *testing.T) {
		tampered := sgBatch(delivered, bounce)
		invalid(t, f.scSend(t, path, mediaJSON, tampered, hdr), sigHeader, nil)
	})
	t.Run("trailing CRLF dropped", func(t *testing.T) {
		invalid(t, f.scSend(t, path, mediaJSON, body[:len(body)-2], hdr), sigHeader, nil)
	})
	t.Run("tampered timestamp", func(t *testing.T) {
		invalid(t, f.scSend(t, path, mediaJSON, body, merge(hdr, map[string]string{tsHeader: unix(now.Add(time.Second))})), sigHeader, nil)
	})
	t.Run("unknown key", func(t *testing.T) {
		invalid(t, f.scSend(t, path, mediaJSON, body, sign(body, unix(now), scKey(t))), sigHeader, nil)
	})
	for _, h := range []string{sigHeader, tsHeader} {
		t.Run("missing "+h, func(t *testing.T) {
			m := merge(hdr)
			delete(m, h)
			a := f.scSend(t, path, mediaJSON, body, m)
			invalid(t, a, h, nil)
			if !strings.Contains(a.message(), "missing") {
				t.Errorf("message %q does not say the header is missing", a.message())
			}
		})
	}
	t.Run("malformed signature", func(t *testing.T) {
		invalid(t, f.scSend(t, path, mediaJSON, body, merge(hdr, map[string]string{sigHeader: "bm90IGEgc2lnbmF0dXJl"})), sigHeader, nil)
	})
	for _, d := range []time.Duration{-10 * time.Minute, 10 * time.Minute} {
		t.Run("expired "+d.String(), func(t *testing.T) {
			b := sgBatch(`{"event":"processed","sg_event_id":"sg-expired"}`)
			expired(t, f.scSend(t, path, mediaJSON, b, sign(b, unix(now.Add(d)), k1)), nil)
		})
	}
	f.wantStored(t, 3)

	t.Run("replay", func(t *testing.T) {
		dup := []Accepted{
			{EventID: wantID("sendgrid", "sg-delivered-1"), EventType: "email.delivered", Duplicate: true},
			{EventID: wantID("sendgrid", "sg-bounce-1"), EventType: "email.bounced", Duplicate: true},
			{EventID: wantID("sendgrid", "sg-open-1"), EventType: "email.opened", Duplicate: true},
		}
		f.scSend(t, path, mediaJSON, body, hdr).acceptedBatch(t, dup...)
		// SendGrid signs a retried batch again, with a new timestamp.
		f.scSend(t, path, mediaJSON, body, sign(body, unix(now.Add(2*time.Second)), k1)).acceptedBatch(t, dup...)
		f.wantStored(t, 3)
	})
	t.Run("batch overlapping an earlier one", func(t *testing.T) {
		click := `{"email":"a@example.com","timestamp":1700000003,"event":"click","sg_event_id":"sg-click-1","url":"https://example.com"}`
		b := sgBatch(open, click)
		f.scSend(t, path, mediaJSON, b, sign(b, unix(now), k1)).acceptedBatch(t,
			Accepted{EventID: wantID("sendgrid", "sg-open-1"), EventType: "email.opened", Duplicate: true},
			Accepted{EventID: wantID("sendgrid", "sg-click-1"), EventType: "email.clicked"})
		f.wantStored(t, 4)
	})
	t.Run("rotation: second key", func(t *testing.T) {
		b := sgBatch(`{"email":"c@example.com","timestamp":1700000004,"event":"processed","sg_event_id":"sg-processed-1"}`)
		f.scSend(t, path, mediaJSON, b, sign(b, unix(now), k2)).acceptedBatch(t, Accepted{EventID: wantID("sendgrid", "sg-processed-1"), EventType: "email.processed"})
		f.wantStored(t, 5)
	})
	t.Run("not an array", func(t *testing.T) {
		b := []byte(delivered)
		f.scSend(t, path, mediaJSON, b, sign(b, unix(now), k1)).rejected(t, http.StatusBadRequest, codeMalformedJSON, []string{"array"})
		f.wantStored(t, 5)
	})
}

func TestSchemeBearer(t *testing.T) {
	f := setupSources(t, bearerSource())
	const path = "/v1/webhooks/demo/bearer"
	body := []byte(`{"invoice":"inv-1","amount":100}`)
	hdr := map[string]string{"Authorization": "Bearer " + scBearerTokens[0], "X-Event-Type": "invoice.paid", "X-Event-Id": "inv-1"}

	evID := wantID("bearer", "inv-1")
	f.scSend(t, path, mediaJSON, body, hdr).accepted(t, evID, "invoice.paid", false)
	checkEvent(t, f.scEvent(t, evID), "bearer", "invoice.paid", body)
	f.wantDelivery(t, "bearer", "inv-1", evID)

	// A bearer token authenticates the sender, not the body: there is no
	// tampered-body case, and no timestamp to expire.
	t.Run("wrong token", func(t *testing.T) {
		const presented = "presented-but-wrong-token-0123"
		invalid(t, f.scSend(t, path, mediaJSON, body, merge(hdr, map[string]string{"Authorization": "Bearer " + presented})), "Authorization", append([]string{presented}, scBearerTokens...))
	})
	t.Run("token prefix", func(t *testing.T) {
		invalid(t, f.scSend(t, path, mediaJSON, body, merge(hdr, map[string]string{"Authorization": "Bearer " + scBearerTokens[0][:10]})), "Authorization", scBearerTokens)
	})
	t.Run("missing header", func(t *testing.T) {
		h := merge(hdr)
		delete(h, "Authorization")
		a := f.scSend(t, path, mediaJSON, body, h)
		invalid(t, a, "Authorization", scBearerTokens)
		if !strings.Contains(a.message(), "missing") {
			t.Errorf("message %q does not say the header is missing", a.message())
		}
	})
	t.Run("basic auth", func(t *testing.T) {
		invalid(t, f.scSend(t, path, mediaJSON, body, merge(hdr, map[string]string{"Authorization": "Basic " + scBearerTokens[0]})), "Authorization", scBearerTokens)
	})
	t.Run("missing event type header", func(t *testing.T) {
		h := merge(hdr, map[string]string{"X-Event-Id": "inv-untyped"})
		delete(h, "X-Event-Type")
		f.scSend(t, path, mediaJSON, body, h).rejected(t, http.StatusBadRequest, codeInvalidEvent, []string{"X-Event-Type"})
	})
	f.wantStored(t, 1)

	t.Run("replay", func(t *testing.T) {
		f.scSend(t, path, mediaJSON, body, hdr).accepted(t, evID, "invoice.paid", true)
		f.wantStored(t, 1)
	})
	t.Run("rotation: second token, scheme name in lower case", func(t *testing.T) {
		h := merge(hdr, map[string]string{"Authorization": "bearer " + scBearerTokens[1], "X-Event-Id": "inv-2"})
		f.scSend(t, path, mediaJSON, body, h).accepted(t, wantID("bearer", "inv-2"), "invoice.paid", false)
		f.wantStored(t, 2)
	})
	t.Run("delivery id that makes no valid event id", func(t *testing.T) {
		// "bearer:inv 3" has a space: the event id is a digest of the
		// delivery id, still prefixed by the source.
		const raw = "inv 3"
		sum := sha256.Sum256([]byte(raw))
		evID := "bearer:d-" + hex.EncodeToString(sum[:16])
		if got := wantID("bearer", raw); got != evID {
			t.Fatalf("wantID = %s, want %s", got, evID)
		}
		h := merge(hdr, map[string]string{"X-Event-Id": raw})
		f.scSend(t, path, mediaJSON, body, h).accepted(t, evID, "invoice.paid", false)
		if md := f.scEvent(t, evID).Metadata; md[metadataDeliveryID] != raw {
			t.Errorf("metadata %v lacks the raw delivery id", md)
		}
		f.wantDelivery(t, "bearer", raw, evID)
		f.scSend(t, path, mediaJSON, body, h).accepted(t, evID, "invoice.paid", true)
		f.wantStored(t, 3)
	})
}

func TestSchemeNone(t *testing.T) {
	f := setupSources(t, noneSource())
	const path = "/v1/webhooks/demo/none"
	body := []byte(`{"id":"sub-1","email":"someone@example.com"}`)

	evID := wantID("none", "sub-1")
	f.scSend(t, path, mediaJSON, body, nil).accepted(t, evID, "form.submitted", false)
	checkEvent(t, f.scEvent(t, evID), "none", "form.submitted", body)
	f.wantDelivery(t, "none", "sub-1", evID)

	t.Run("credentials are ignored", func(t *testing.T) {
		b := []byte(`{"id":"sub-2"}`)
		f.scSend(t, path, mediaJSON, b, map[string]string{"Authorization": "Bearer whatever", "X-Hub-Signature-256": "sha256=00"}).accepted(t, wantID("none", "sub-2"), "form.submitted", false)
		f.wantStored(t, 2)
	})
	t.Run("replay", func(t *testing.T) {
		f.scSend(t, path, mediaJSON, body, nil).accepted(t, evID, "form.submitted", true)
		f.wantStored(t, 2)
	})
	t.Run("without an id every request is new", func(t *testing.T) {
		b := []byte(`{"email":"x@example.com"}`)
		id1 := f.scSend(t, path, mediaJSON, b, nil).eventID(t)
		id2 := f.scSend(t, path, mediaJSON, b, nil).eventID(t)
		if id1 == id2 {
			t.Fatalf("two requests without an id got the same event id %s", id1)
		}
		f.wantStored(t, 4)
	})
	t.Run("malformed JSON", func(t *testing.T) {
		f.scSend(t, path, mediaJSON, []byte(`{"id":`), nil).rejected(t, http.StatusBadRequest, codeMalformedJSON, nil)
		f.wantStored(t, 4)
	})
}

// TestSchemeContentTypes: twilio takes forms and JSON, github JSON and its
// form with a payload field, every other scheme JSON only.
func TestSchemeContentTypes(t *testing.T) {
	k := scKey(t)
	f := setupSources(t, hmacSource(), swSource(), githubSource(), stripeSource(), twilioSource(), sendgridSource(k), bearerSource(), noneSource())
	now := time.Now()
	form := []byte("payload=%7B%22type%22%3A%22x%22%7D&id=1")
	tests := []struct {
		source string
		ct     string
		hdr    map[string]string
		status int
	}{
		{"hmac", mediaForm, map[string]string{"X-Signature": "sha256=" + signature.SignHMACSHA256(form, scHMACSecrets[0], "hex")}, 415},
		{"hmac", mediaText, map[string]string{"X-Signature": "sha256=" + signature.SignHMACSHA256(form, scHMACSecrets[0], "hex")}, 415},
		{"hmac", "", map[string]string{"X-Signature": "sha256=" + signature.SignHMACSHA256(form, scHMACSecrets[0], "hex")}, 415},
		{"sw", mediaForm, swHeaders(t, "msg_form", now, form, scSWSecrets[0]), 415},
		{"stripe", mediaForm, map[string]string{"Stripe-Signature": signature.SignStripe(form, scStripeSecrets[0], now)}, 415},
		{"stripe", "text/xml", map[string]string{"Stripe-Signature": signature.SignStripe(form, scStripeSecrets[0], now)}, 415},
		{"sendgrid", mediaForm, nil, 415},
		{"bearer", mediaForm, map[string]string{"Authorization": "Bearer " + scBearerTokens[0], "X-Event-Type": "x"}, 415},
		{"none", mediaForm, nil, 415},
		{"none", "multipart/form-data; boundary=x", nil, 415},
		{"github", mediaText, map[string]string{"X-Hub-Signature-256": signature.SignGitHub(form, scGitHubSecrets[0]), "X-GitHub-Event": "push"}, 415},
		{"twilio", mediaText, map[string]string{"X-Twilio-Signature": signature.SignTwilio(f.base+"/v1/webhooks/demo/twilio", nil, scTwilioTokens[0])}, 415},
		{"twilio", "application/xml", nil, 415},
	}
	for _, tt := range tests {
		t.Run(tt.source+" "+tt.ct, func(t *testing.T) {
			a := f.scSend(t, "/v1/webhooks/demo/"+tt.source, tt.ct, form, tt.hdr)
			a.rejected(t, tt.status, codeUnsupportedMedia, []string{"Content-Type"})
		})
	}
	t.Run("github form without payload", func(t *testing.T) {
		b := []byte("ref=refs%2Fheads%2Fmain")
		f.scSend(t, "/v1/webhooks/demo/github", mediaForm, b, map[string]string{
			"X-Hub-Signature-256": signature.SignGitHub(b, scGitHubSecrets[0]), "X-GitHub-Event": "push", "X-GitHub-Delivery": "ct-1",
		}).rejected(t, http.StatusBadRequest, codeMalformedForm, []string{"payload"})
	})
	t.Run("github form with a payload that is not JSON", func(t *testing.T) {
		b := []byte("payload=not+json")
		f.scSend(t, "/v1/webhooks/demo/github", mediaForm, b, map[string]string{
			"X-Hub-Signature-256": signature.SignGitHub(b, scGitHubSecrets[0]), "X-GitHub-Event": "push", "X-GitHub-Delivery": "ct-2",
		}).rejected(t, http.StatusBadRequest, codeMalformedJSON, []string{"payload"})
	})
	t.Run("github malformed form, unsigned", func(t *testing.T) {
		// A GitHub form is parsed only once verified: an unsigned request
		// learns nothing about its body.
		b := []byte("payload=%zz")
		f.scSend(t, "/v1/webhooks/demo/github", mediaForm, b, map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": "ct-3"}).
			rejected(t, http.StatusUnauthorized, codeInvalidSignature, []string{"X-Hub-Signature-256"}, scGitHubSecrets...)
		f.scSend(t, "/v1/webhooks/demo/github", mediaForm, b, map[string]string{
			"X-Hub-Signature-256": signature.SignGitHub(b, "not-the-secret-0123"), "X-GitHub-Event": "push", "X-GitHub-Delivery": "ct-3",
		}).rejected(t, http.StatusUnauthorized, codeInvalidSignature, []string{"X-Hub-Signature-256"}, scGitHubSecrets...)
	})
	t.Run("github malformed form, signed", func(t *testing.T) {
		b := []byte("payload=%zz")
		f.scSend(t, "/v1/webhooks/demo/github", mediaForm, b, map[string]string{
			"X-Hub-Signature-256": signature.SignGitHub(b, scGitHubSecrets[0]), "X-GitHub-Event": "push", "X-GitHub-Delivery": "ct-4",
		}).rejected(t, http.StatusBadRequest, codeMalformedForm, []string{"form"})
	})
	f.wantStored(t, 0)
	t.Run("JSON with parameters and +json", func(t *testing.T) {
		b := []byte(`{"id":"evt_ct","object":"event","type":"charge.refunded"}`)
		f.scSend(t, "/v1/webhooks/demo/stripe", "application/json; charset=utf-8", b, map[string]string{"Stripe-Signature": signature.SignStripe(b, scStripeSecrets[0], now)}).
			accepted(t, wantID("stripe", "evt_ct"), "stripe.charge.refunded", false)
		b2 := []byte(`{"id":"ct-json"}`)
		f.scSend(t, "/v1/webhooks/demo/none", "application/vnd.example+json", b2, nil).accepted(t, wantID("none", "ct-json"), "form.submitted", false)
		f.wantStored(t, 2)
	})
}

// TestSchemeRateLimit: a tenant's token bucket counts only authenticated
// requests.
func TestSchemeRateLimit(t *testing.T) {
	limited := hmacSource()
	limited.Tenant = "limited"
	f := setupTenants(t, []tenant.Tenant{{ID: "demo"}, {ID: "limited", RateLimit: tenant.RateLimit{PerSecond: 1, Burst: 2}}}, limited, hmacSource())
	const path = "/v1/webhooks/limited/hmac"
	sign := func(b []byte) map[string]string {
		return map[string]string{"X-Signature": "sha256=" + signature.SignHMACSHA256(b, scHMACSecrets[0], "hex")}
	}
	for i := range 5 {
		b := []byte(`{"type":"order.created","id":"forged-` + strconv.Itoa(i) + `"}`)
		f.scSend(t, path, mediaJSON, b, map[string]string{"X-Signature": "sha256=" + signature.SignHMACSHA256(b, "forger-secret-0123", "hex")}).
			rejected(t, http.StatusUnauthorized, codeInvalidSignature, nil)
	}
	for i := range 2 {
		b := []byte(`{"type":"order.created","id":"ok-` + strconv.Itoa(i) + `"}`)
		f.scSend(t, path, mediaJSON, b, sign(b)).accepted(t, wantID("hmac", "ok-"+strconv.Itoa(i)), "order.created", false)
	}
	third := []byte(`{"type":"order.created","id":"ok-2"}`)
	a := f.scSend(t, path, mediaJSON, third, sign(third))
	a.rejected(t, http.StatusTooManyRequests, codeRateLimited, []string{"limited"})
	if ra, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After = %q, want a whole number of seconds >= 1", a.header.Get("Retry-After"))
	}
	f.wantStored(t, 2)
	if _, ok := f.scDelivery(t, "limited", "hmac", "ok-2"); ok {
		t.Error("the refused delivery was recorded")
	}
	// Another tenant has its own bucket.
	other := []byte(`{"type":"order.created","id":"demo-1"}`)
	f.scSend(t, "/v1/webhooks/demo/hmac", mediaJSON, other, sign(other)).accepted(t, wantID("hmac", "demo-1"), "order.created", false)
	// The refused delivery is accepted once a token is back.
	deadline := time.Now().Add(5 * time.Second)
	for {
		a := f.scSend(t, path, mediaJSON, third, sign(third))
		if a.status == http.StatusAccepted {
			a.accepted(t, wantID("hmac", "ok-2"), "order.created", false)
			break
		}
		a.rejected(t, http.StatusTooManyRequests, codeRateLimited, nil)
		if time.Now().After(deadline) {
			t.Fatal("still rate limited after 5s at 1 request/s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	f.wantStored(t, 4)
}

func TestSchemeMetrics(t *testing.T) {
	k := scKey(t)
	f := setupSources(t, hmacSource(), sendgridSource(k))
	sign := func(b []byte) map[string]string {
		return map[string]string{"X-Signature": "sha256=" + signature.SignHMACSHA256(b, scHMACSecrets[0], "hex")}
	}
	body := []byte(`{"type":"order.created","id":"m-1"}`)
	f.scSend(t, "/v1/webhooks/demo/hmac", mediaJSON, body, sign(body)).accepted(t, wantID("hmac", "m-1"), "order.created", false)
	f.scSend(t, "/v1/webhooks/demo/hmac", mediaJSON, body, sign(body)).accepted(t, wantID("hmac", "m-1"), "order.created", true)
	for range 2 {
		f.scSend(t, "/v1/webhooks/demo/hmac", mediaJSON, body, nil).rejected(t, http.StatusUnauthorized, codeInvalidSignature, nil)
	}
	f.scSend(t, "/v1/webhooks/nobody/hmac", mediaJSON, body, sign(body)).rejected(t, http.StatusNotFound, codeUnknownTenant, nil)
	f.scSend(t, "/v1/webhooks/demo/nosuch", mediaJSON, body, sign(body)).rejected(t, http.StatusNotFound, codeUnknownSource, nil)
	batch := sgBatch(`{"event":"delivered","sg_event_id":"m-sg-1"}`, `{"event":"open","sg_event_id":"m-sg-2"}`)
	ts := unix(time.Now())
	sig, err := signature.SignSendGrid(batch, ts, k)
	if err != nil {
		t.Fatal(err)
	}
	f.scSend(t, "/v1/webhooks/demo/sendgrid", mediaJSON, batch, map[string]string{eventwebhook.VerificationHTTPHeader: sig, eventwebhook.TimestampHTTPHeader: ts}).
		acceptedBatch(t, Accepted{EventID: wantID("sendgrid", "m-sg-1"), EventType: "email.delivered"}, Accepted{EventID: wantID("sendgrid", "m-sg-2"), EventType: "email.opened"})

	for _, c := range []struct {
		metric                  string
		tenant, source, outcome string
		want                    float64
	}{
		{"greentic_ingress_requests_total", "demo", "hmac", "accepted", 1},
		{"greentic_ingress_requests_total", "demo", "hmac", "duplicate", 1},
		{"greentic_ingress_requests_total", "demo", "hmac", "invalid_signature", 2},
		{"greentic_ingress_requests_total", "_unknown", "_unknown", "unknown_tenant", 1},
		{"greentic_ingress_requests_total", "demo", "_unknown", "unknown_source", 1},
		{"greentic_ingress_requests_total", "demo", "sendgrid", "accepted", 1},
		{"greentic_ingress_events_total", "demo", "hmac", "accepted", 1},
		{"greentic_ingress_events_total", "demo", "hmac", "duplicate", 1},
		{"greentic_ingress_events_total", "demo", "sendgrid", "accepted", 2},
	} {
		got, ok := counterValue(t, f, c.metric, map[string]string{"tenant": c.tenant, "source": c.source, "outcome": c.outcome})
		if !ok || got != c.want {
			t.Errorf("%s{tenant=%q,source=%q,outcome=%q} = %v (present %v), want %v", c.metric, c.tenant, c.source, c.outcome, got, ok, c.want)
		}
	}
	// The unknown tenant's and source's names make no labels.
	for _, name := range []string{"nobody", "nosuch"} {
		mfs, err := f.rt.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetValue() == name {
						t.Errorf("%s has a label %s=%s", mf.GetName(), l.GetName(), name)
					}
				}
			}
		}
	}
}

// TestGitHubDocsVector sends the example of GitHub's "Validating webhook
// deliveries" page: it is correctly signed but not JSON, so it passes
// verification and is refused as malformed JSON.
func TestGitHubDocsVector(t *testing.T) {
	const docSecret = "It's a Secret to Everybody"
	const docSignature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	body := []byte("Hello, World!")
	if got := signature.SignGitHub(body, docSecret); got != docSignature {
		t.Fatalf("SignGitHub = %s, want the documented %s", got, docSignature)
	}
	src := githubSource()
	src.Secrets = []string{docSecret}
	f := setupSources(t, src)
	hdr := map[string]string{"X-Hub-Signature-256": docSignature, "X-GitHub-Event": "push", "X-GitHub-Delivery": "doc-vector"}
	f.scSend(t, "/v1/webhooks/demo/github", mediaJSON, body, hdr).rejected(t, http.StatusBadRequest, codeMalformedJSON, nil, docSecret)
	// One digit changed: refused by the signature, before the body is read as JSON.
	bad := merge(hdr, map[string]string{"X-Hub-Signature-256": docSignature[:len(docSignature)-1] + "f"})
	invalid(t, f.scSend(t, "/v1/webhooks/demo/github", mediaJSON, body, bad), "X-Hub-Signature-256", []string{docSecret})
	f.wantStored(t, 0)
}

// TestStandardWebhooksSpecVector sends the signing vector of the Standard
// Webhooks reference library (libraries/go/webhook_test.go, TestWebhookSign)
// to a handler whose clock is the vector's time.
func TestStandardWebhooksSpecVector(t *testing.T) {
	const (
		vSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		vID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		vTimestamp = 1614265330
		vPayload   = `{"test": 2432232314}`
		vSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	wh, err := standardwebhooks.NewWebhook(vSecret)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := wh.Sign(vID, time.Unix(vTimestamp, 0), []byte(vPayload))
	if err != nil || sig != vSignature {
		t.Fatalf("library Sign = %q, %v; want %q", sig, err, vSignature)
	}
	// The vector's payload has no "type": the source names the event type.
	src := tenant.Source{Tenant: "demo", Name: "sw", Scheme: tenant.SchemeStandardWebhooks, Secrets: []string{vSecret}, EventType: tenant.ValueFrom{Value: "test.vector"}}
	var clock atomic.Int64
	clock.Store(vTimestamp)
	f := setupDirect(t, func() time.Time { return time.Unix(clock.Load(), 0) }, src)
	hdr := map[string]string{"webhook-id": vID, "webhook-timestamp": strconv.Itoa(vTimestamp), "webhook-signature": sig}
	f.scSend(t, "/v1/webhooks/demo/sw", mediaJSON, []byte(vPayload), hdr).accepted(t, wantID("sw", vID), "test.vector", false)
	ev := f.scEvent(t, wantID("sw", vID))
	checkEvent(t, ev, "sw", "test.vector", []byte(vPayload))
	if ev.Timestamp != vTimestamp*1000 {
		t.Errorf("event timestamp %d, want the handler's clock %d", ev.Timestamp, vTimestamp*1000)
	}
	// Five minutes and a second later the same request is refused as expired.
	clock.Store(vTimestamp + 301)
	expired(t, f.scSend(t, "/v1/webhooks/demo/sw", mediaJSON, []byte(vPayload), hdr), []string{vSecret})
	f.wantStored(t, 1)
}

// TestStripeGoVector sends stripe-go's GenerateTestSignedPayload at a fixed
// time to a handler whose clock is that time.
func TestStripeGoVector(t *testing.T) {
	const at = 1_700_000_000
	var clock atomic.Int64
	clock.Store(at)
	f := setupDirect(t, func() time.Time { return time.Unix(clock.Load(), 0) }, stripeSource())
	body := []byte(`{"id":"evt_3OD1Zs2eZvKYlo2C1oVjAxyz","object":"event","type":"checkout.session.completed","data":{"object":{}}}`)
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: scStripeSecrets[1], Timestamp: time.Unix(at, 0)})
	if want := signature.SignStripe(body, scStripeSecrets[1], time.Unix(at, 0)); signed.Header != want {
		t.Fatalf("stripe-go header %q, SignStripe %q", signed.Header, want)
	}
	hdr := map[string]string{"Stripe-Signature": signed.Header}
	f.scSend(t, "/v1/webhooks/demo/stripe", mediaJSON, body, hdr).accepted(t, wantID("stripe", "evt_3OD1Zs2eZvKYlo2C1oVjAxyz"), "stripe.checkout.session.completed", false)
	checkEvent(t, f.scEvent(t, wantID("stripe", "evt_3OD1Zs2eZvKYlo2C1oVjAxyz")), "stripe", "stripe.checkout.session.completed", body)
	// A captured request replayed after the tolerance is refused by its
	// timestamp, not answered as a duplicate.
	clock.Store(at + 301)
	expired(t, f.scSend(t, "/v1/webhooks/demo/stripe", mediaJSON, body, hdr), scStripeSecrets)
	clock.Store(at - 301)
	expired(t, f.scSend(t, "/v1/webhooks/demo/stripe", mediaJSON, body, hdr), scStripeSecrets)
	f.wantStored(t, 1)
}

// TestSendGridLibraryVector sends the signed Event Webhook of sendgrid-go's
// helpers/eventwebhook tests to a handler whose clock is its timestamp.
func TestSendGridLibraryVector(t *testing.T) {
	const (
		vPublicKey = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
		vSignature = "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM="
		vTimestamp = "1600112502"
		vEventID   = "ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA"
	)
	// The payload exactly as generateTestPayload builds it: keys sorted,
	// HTML not escaped, CRLF at the end.
	element := `{"email":"hello@world.com","event":"dropped","reason":"Bounced Address","sg_event_id":"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA","sg_message_id":"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0","smtp-id":"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>","timestamp":1600112492}`
	body := sgBatch(element)
	key, err := eventwebhook.ConvertPublicKeyBase64ToECDSA(vPublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := eventwebhook.VerifySignature(key, body, vSignature, vTimestamp); !ok || err != nil {
		t.Fatalf("the vector does not verify with sendgrid-go: %v %v", ok, err)
	}
	src := tenant.Source{Tenant: "demo", Name: "sendgrid", Scheme: tenant.SchemeSendGrid, PublicKeys: []string{vPublicKey}}
	at, _ := strconv.ParseInt(vTimestamp, 10, 64)
	var clock atomic.Int64
	clock.Store(at)
	f := setupDirect(t, func() time.Time { return time.Unix(clock.Load(), 0) }, src)
	hdr := map[string]string{eventwebhook.VerificationHTTPHeader: vSignature, eventwebhook.TimestampHTTPHeader: vTimestamp}
	evID := wantID("sendgrid", vEventID)
	f.scSend(t, "/v1/webhooks/demo/sendgrid", mediaJSON, body, hdr).acceptedBatch(t, Accepted{EventID: evID, EventType: "email.dropped"})
	checkEvent(t, f.scEvent(t, evID), "sendgrid", "email.dropped", []byte(element))
	f.wantDelivery(t, "sendgrid", vEventID, evID)
	// Replayed within the tolerance: a duplicate.
	clock.Store(at + 60)
	f.scSend(t, "/v1/webhooks/demo/sendgrid", mediaJSON, body, hdr).acceptedBatch(t, Accepted{EventID: evID, EventType: "email.dropped", Duplicate: true})
	// Replayed today: expired.
	clock.Store(time.Now().Unix())
	expired(t, f.scSend(t, "/v1/webhooks/demo/sendgrid", mediaJSON, body, hdr), nil)
	f.wantStored(t, 1)
}

// TestSchemeConcurrentRedeliveries: a provider that sends the same delivery
// several times at once gets one event stored and the same event id in
// every answer, exactly one of them not a duplicate.
func TestSchemeConcurrentRedeliveries(t *testing.T) {
	f := setupSources(t, stripeSource())
	body := []byte(`{"id":"evt_concurrent","object":"event","type":"charge.succeeded"}`)
	now := time.Now()
	const n = 8
	answers := make([]scAnswer, n)
	var wg sync.WaitGroup
	for i := range n {
		// Each retry signed anew, as Stripe does.
		hdr := map[string]string{"Stripe-Signature": signature.SignStripe(body, scStripeSecrets[i%2], now.Add(time.Duration(i)*time.Second))}
		wg.Go(func() { answers[i] = f.scSend(t, "/v1/webhooks/demo/stripe", mediaJSON, body, hdr) })
	}
	wg.Wait()
	fresh := 0
	for _, a := range answers {
		if a.status != http.StatusAccepted || a.body["event_id"] != wantID("stripe", "evt_concurrent") {
			t.Fatalf("got %d %s, want 202 for %s", a.status, a.raw, wantID("stripe", "evt_concurrent"))
		}
		if a.body["duplicate"] == false {
			fresh++
		}
	}
	if fresh != 1 {
		t.Errorf("%d answers say the event is new, want exactly 1", fresh)
	}
	f.wantStored(t, 1)
	f.wantDelivery(t, "stripe", "evt_concurrent", wantID("stripe", "evt_concurrent"))
}

// TestSchemeDeduplicationLayers proves each of the two de-duplications on
// its own: the stream's Nats-Msg-Id window (the deliveries bucket has
// forgotten the delivery) and the deliveries bucket (the stream has
// forgotten the message id, as after its duplicate window).
func TestSchemeDeduplicationLayers(t *testing.T) {
	f := setupSources(t, swSource())
	ctx := context.Background()
	const path, id = "/v1/webhooks/demo/sw", "msg_layers"
	body := []byte(`{"type":"user.created","data":{"id":"u1"}}`)
	send := func(at time.Time) scAnswer {
		return f.scSend(t, path, mediaJSON, body, swHeaders(t, id, at, body, scSWSecrets[0]))
	}
	evID := wantID("sw", id)
	now := time.Now()
	send(now).accepted(t, evID, "user.created", false)
	f.wantDelivery(t, "sw", id, evID)

	t.Run("stream window alone", func(t *testing.T) {
		kv, err := f.rt.Topology.KeyValue(ctx, f.rt.JS, bus.BucketDeliveries)
		if err != nil {
			t.Fatal(err)
		}
		if err := kv.Delete(ctx, deliveryKey("demo", "sw", id)); err != nil {
			t.Fatal(err)
		}
		send(now.Add(time.Second)).accepted(t, evID, "user.created", true)
		f.wantStored(t, 1)
		// The redelivery is remembered again.
		f.wantDelivery(t, "sw", id, evID)
	})
	t.Run("deliveries bucket alone", func(t *testing.T) {
		// A new stream has no memory of the message id, as after its
		// duplicate window has passed.
		if err := f.rt.JS.DeleteStream(ctx, f.rt.Topology.EventsStream()); err != nil {
			t.Fatal(err)
		}
		if err := f.rt.Topology.Ensure(ctx, f.rt.JS); err != nil {
			t.Fatal(err)
		}
		f.wantStored(t, 0)
		send(now.Add(2*time.Second)).accepted(t, evID, "user.created", true)
		f.wantStored(t, 0)
		// A new delivery is stored in the new stream.
		b := []byte(`{"type":"user.created","data":{"id":"u2"}}`)
		f.scSend(t, path, mediaJSON, b, swHeaders(t, "msg_layers_2", now, b, scSWSecrets[0])).accepted(t, wantID("sw", "msg_layers_2"), "user.created", false)
		f.wantStored(t, 1)
	})
}

// TestSchemeDeliveryIDScope: delivery ids are unique per source only (the
// deliveries bucket's key is tenant, source and delivery id), so a webhook
// event's id carries its source's name and two sources of a tenant that
// happen to use the same id send two events. A CloudEvent keeps its own id,
// which must be unique per tenant: another event reusing it is refused.
func TestSchemeDeliveryIDScope(t *testing.T) {
	shop, crm := hmacSource(), hmacSource()
	shop.Name, crm.Name = "shop", "crm"
	ce := tenant.Source{Tenant: "demo", Name: CloudEventsSource, Scheme: tenant.SchemeNone}
	f := setupSources(t, shop, crm, ce)
	sign := func(b []byte) map[string]string {
		return map[string]string{"X-Signature": "sha256=" + signature.SignHMACSHA256(b, scHMACSecrets[0], "hex")}
	}

	t.Run("two webhook sources", func(t *testing.T) {
		a := []byte(`{"type":"order.created","id":"1001"}`)
		b := []byte(`{"type":"contact.created","id":"1001"}`)
		f.scSend(t, "/v1/webhooks/demo/shop", mediaJSON, a, sign(a)).accepted(t, "shop:1001", "order.created", false)
		f.wantStored(t, 1)
		if _, ok := f.scDelivery(t, "demo", "crm", "1001"); ok {
			t.Fatal("crm's delivery 1001 is recorded before crm sent it")
		}
		f.scSend(t, "/v1/webhooks/demo/crm", mediaJSON, b, sign(b)).accepted(t, "crm:1001", "contact.created", false)
		f.wantStored(t, 2)
		checkEvent(t, f.scEvent(t, "shop:1001"), "shop", "order.created", a)
		checkEvent(t, f.scEvent(t, "crm:1001"), "crm", "contact.created", b)
		f.wantDelivery(t, "shop", "1001", "shop:1001")
		f.wantDelivery(t, "crm", "1001", "crm:1001")
		// Each source's redelivery is a duplicate of its own event.
		f.scSend(t, "/v1/webhooks/demo/shop", mediaJSON, a, sign(a)).accepted(t, "shop:1001", "order.created", true)
		f.scSend(t, "/v1/webhooks/demo/crm", mediaJSON, b, sign(b)).accepted(t, "crm:1001", "contact.created", true)
		f.wantStored(t, 2)
	})
	t.Run("two CloudEvents sources", func(t *testing.T) {
		send := func(source, typ string) scAnswer {
			b := []byte(`{"specversion":"1.0","id":"42","source":"` + source + `","type":"` + typ + `","data":{}}`)
			return f.scSend(t, "/v1/events/demo", "application/cloudevents+json", b, nil)
		}
		before := f.storedMsgs(t)
		send("/billing", "invoice.created").accepted(t, "42", "invoice.created", false)
		f.wantStored(t, before+1)
		// Another event with the same id: refused, not acknowledged and
		// dropped as a duplicate.
		send("/shipping", "parcel.sent").rejected(t, http.StatusConflict, codeEventIDConflict, []string{`"42"`, "/billing"})
		f.wantStored(t, before+1)
		// The same type from another source is another event too.
		send("/shipping", "invoice.created").rejected(t, http.StatusConflict, codeEventIDConflict, []string{`"42"`})
		f.wantStored(t, before+1)
		// The first event's redelivery is still a duplicate.
		send("/billing", "invoice.created").accepted(t, "42", "invoice.created", true)
		f.wantStored(t, before+1)
	})
}

// TestSchemeReplayWithChangedUnsignedHeader: a captured, correctly signed
// request replayed with only an unsigned header changed is still the same
// delivery ("a replayed one never stored twice"). Twilio and GitHub sign no
// timestamp, so de-duplication is their only replay protection, and their
// delivery id headers (I-Twilio-Idempotency-Token, X-GitHub-Delivery) are
// not covered by the signature: the delivery is identified by what is
// signed (Twilio's sid and status, GitHub's body).
func TestSchemeReplayWithChangedUnsignedHeader(t *testing.T) {
	f := setupSources(t, twilioSource(), githubSource())

	t.Run("twilio idempotency token", func(t *testing.T) {
		const sid = "SM00000000000000000000000000replay"
		body, hdr := twilioForm(f.base+"/v1/webhooks/demo/twilio", twilioStatus(sid, "delivered"), scTwilioTokens[0])
		hdr[headerTwilioIdem] = "token-original"
		evID := wantID("twilio", sid+".delivered")
		f.scSend(t, "/v1/webhooks/demo/twilio", mediaForm, body, hdr).accepted(t, evID, "sms.delivered", false)
		f.wantStored(t, 1)
		hdr[headerTwilioIdem] = "token-forged"
		f.scSend(t, "/v1/webhooks/demo/twilio", mediaForm, body, hdr).accepted(t, evID, "sms.delivered", true)
		delete(hdr, headerTwilioIdem)
		f.scSend(t, "/v1/webhooks/demo/twilio", mediaForm, body, hdr).accepted(t, evID, "sms.delivered", true)
		f.wantStored(t, 1)
		f.wantDelivery(t, "twilio", sid+".delivered", evID)
	})
	t.Run("github delivery id", func(t *testing.T) {
		body := []byte(`{"action":"deleted","repository":{"full_name":"greentic/events"}}`)
		hdr := map[string]string{"X-Hub-Signature-256": signature.SignGitHub(body, scGitHubSecrets[0]), "X-GitHub-Event": "repository", "X-GitHub-Delivery": "a0000000-0000-11ee-8b7e-0242ac120002"}
		evID := githubID("github", body)
		before := f.storedMsgs(t)
		f.scSend(t, "/v1/webhooks/demo/github", mediaJSON, body, hdr).accepted(t, evID, "github.repository.deleted", false)
		f.wantStored(t, before+1)
		hdr["X-GitHub-Delivery"] = "b0000000-0000-11ee-8b7e-0242ac120002"
		f.scSend(t, "/v1/webhooks/demo/github", mediaJSON, body, hdr).accepted(t, evID, "github.repository.deleted", true)
		delete(hdr, "X-GitHub-Delivery")
		f.scSend(t, "/v1/webhooks/demo/github", mediaJSON, body, hdr).accepted(t, evID, "github.repository.deleted", true)
		f.wantStored(t, before+1)
		// The stored event keeps the original X-GitHub-Delivery.
		if md := f.scEvent(t, evID).Metadata; md[metadataDeliveryID] != "a0000000-0000-11ee-8b7e-0242ac120002" {
			t.Errorf("metadata %v, want the original X-GitHub-Delivery", md)
		}
		f.wantDelivery(t, "github", bodyDigest(body), evID)
	})
}
