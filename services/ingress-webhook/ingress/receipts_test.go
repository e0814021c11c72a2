package ingress

import (
	"crypto/ecdsa"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sendgrid/sendgrid-go/helpers/eventwebhook"
	twilioclient "github.com/twilio/twilio-go/client"

	"github.com/greentic/events/pkg/event"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/signature"
)

// The tests of this file check that delivery receipts (SendGrid Event
// Webhook events, Twilio status callbacks) carry the ids that correlate them
// with the sender command they report on.

var correlationKeys = []string{event.MetaCommandID, event.MetaOriginEventID, event.MetaProviderMessageID}

// wantMetadata checks metadata keys: a key mapped to "" must be absent.
func wantMetadata(t *testing.T, ev *eventsv1.Event, want map[string]string) {
	t.Helper()
	for k, v := range want {
		got, ok := ev.Metadata[k]
		switch {
		case v == "" && ok:
			t.Errorf("event %s: metadata %s = %q, want none (metadata %v)", ev.Id, k, got, ev.Metadata)
		case v != "" && got != v:
			t.Errorf("event %s: metadata %s = %q, want %q (metadata %v)", ev.Id, k, got, v, ev.Metadata)
		}
	}
}

func sendGridHeaders(t *testing.T, body []byte, k *ecdsa.PrivateKey) map[string]string {
	t.Helper()
	ts := unix(time.Now())
	sig, err := signature.SignSendGrid(body, ts, k)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{eventwebhook.VerificationHTTPHeader: sig, eventwebhook.TimestampHTTPHeader: ts}
}

func TestReceiptsSendGrid(t *testing.T) {
	k := scKey(t)
	f := setupSources(t, sendgridSource(k))
	const path = "/v1/webhooks/demo/sendgrid"
	const (
		cmdID   = "01JD4Z8Q7W3N5X2V6B9C0M1K2L:onboarding:welcome_email"
		originE = "01JD4Z8Q7W3N5X2V6B9C0M1K2L"
		msgID   = "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"
	)
	// SendGrid returns the custom args as top-level fields of every event.
	delivered := `{"email":"a@example.com","timestamp":1700000000,"event":"delivered","sg_event_id":"rc-delivered-1","sg_message_id":"` + msgID + `","greentic_command_id":"` + cmdID + `","greentic_event_id":"` + originE + `","response":"250 OK"}`
	open := `{"email":"a@example.com","timestamp":1700000002,"event":"open","sg_event_id":"rc-open-1","sg_message_id":"14c5d75ce93.filter0002","greentic_command_id":"` + cmdID + `","greentic_event_id":"` + originE + `","useragent":"Mozilla/5.0"}`
	// A message not sent by the email sender: no custom args, and (like
	// some of SendGrid's events) no sg_message_id.
	foreign := `{"email":"b@example.com","timestamp":1700000003,"event":"bounce","sg_event_id":"rc-bounce-1","reason":"550 5.1.1 unknown user"}`
	body := sgBatch(delivered, open, foreign)
	hdr := merge(sendGridHeaders(t, body, k), map[string]string{"X-Request-Id": "req-1", "Idempotency-Key": "idem-1"})
	f.scSend(t, path, mediaJSON, body, hdr).acceptedBatch(t,
		Accepted{EventID: wantID("sendgrid", "rc-delivered-1"), EventType: "email.delivered"},
		Accepted{EventID: wantID("sendgrid", "rc-open-1"), EventType: "email.opened"},
		Accepted{EventID: wantID("sendgrid", "rc-bounce-1"), EventType: "email.bounced"})
	f.wantStored(t, 3)

	// The metadata every event carries is kept next to the correlation.
	common := func(delivery string) map[string]string {
		return map[string]string{
			metadataSource: "sendgrid", metadataDeliveryID: delivery,
			metadataCorrelationID: "req-1", metadataIdempotency: "idem-1",
		}
	}
	ev := f.scEvent(t, wantID("sendgrid", "rc-delivered-1"))
	checkEvent(t, ev, "sendgrid", "email.delivered", []byte(delivered))
	wantMetadata(t, ev, merge(common("rc-delivered-1"), map[string]string{
		event.MetaCommandID: cmdID, event.MetaOriginEventID: originE, event.MetaProviderMessageID: "14c5d75ce93",
	}))
	ev = f.scEvent(t, wantID("sendgrid", "rc-open-1"))
	checkEvent(t, ev, "sendgrid", "email.opened", []byte(open))
	wantMetadata(t, ev, merge(common("rc-open-1"), map[string]string{
		event.MetaCommandID: cmdID, event.MetaOriginEventID: originE, event.MetaProviderMessageID: "14c5d75ce93",
	}))
	ev = f.scEvent(t, wantID("sendgrid", "rc-bounce-1"))
	checkEvent(t, ev, "sendgrid", "email.bounced", []byte(foreign))
	wantMetadata(t, ev, common("rc-bounce-1"))
	for _, key := range correlationKeys {
		if v, ok := ev.Metadata[key]; ok {
			t.Errorf("event without custom args has metadata %s = %q", key, v)
		}
	}

	t.Run("empty, null and non-text values are left out", func(t *testing.T) {
		odd := `{"event":"processed","sg_event_id":"rc-odd-1","sg_message_id":".filter","greentic_command_id":"","greentic_event_id":null}`
		nested := `{"event":"deferred","sg_event_id":"rc-odd-2","sg_message_id":"plainid","greentic_command_id":{"id":"x"},"greentic_event_id":["y"]}`
		numeric := `{"event":"dropped","sg_event_id":"rc-odd-3","greentic_command_id":12345}`
		b := sgBatch(odd, nested, numeric)
		f.scSend(t, path, mediaJSON, b, sendGridHeaders(t, b, k)).acceptedBatch(t,
			Accepted{EventID: wantID("sendgrid", "rc-odd-1"), EventType: "email.processed"},
			Accepted{EventID: wantID("sendgrid", "rc-odd-2"), EventType: "email.deferred"},
			Accepted{EventID: wantID("sendgrid", "rc-odd-3"), EventType: "email.dropped"})
		none := map[string]string{event.MetaCommandID: "", event.MetaOriginEventID: "", event.MetaProviderMessageID: ""}
		wantMetadata(t, f.scEvent(t, wantID("sendgrid", "rc-odd-1")), none)
		// An sg_message_id without a filter part is the message id.
		wantMetadata(t, f.scEvent(t, wantID("sendgrid", "rc-odd-2")), merge(none, map[string]string{event.MetaProviderMessageID: "plainid"}))
		wantMetadata(t, f.scEvent(t, wantID("sendgrid", "rc-odd-3")), merge(none, map[string]string{event.MetaCommandID: "12345"}))
	})

	t.Run("long values are bounded", func(t *testing.T) {
		long := strings.Repeat("c", maxMetadataValue-1) + "é-tail"
		b := sgBatch(`{"event":"delivered","sg_event_id":"rc-long-1","greentic_command_id":"` + long + `"}`)
		f.scSend(t, path, mediaJSON, b, sendGridHeaders(t, b, k)).acceptedBatch(t,
			Accepted{EventID: wantID("sendgrid", "rc-long-1"), EventType: "email.delivered"})
		got := f.scEvent(t, wantID("sendgrid", "rc-long-1")).Metadata[event.MetaCommandID]
		if got != long[:maxMetadataValue-1] {
			t.Errorf("command_id %q (%d bytes), want the first %d bytes without the split character", got, len(got), maxMetadataValue-1)
		}
	})

	t.Run("custom args cannot be added after signing", func(t *testing.T) {
		b := sgBatch(`{"event":"delivered","sg_event_id":"rc-forged-1"}`)
		hdr := sendGridHeaders(t, b, k)
		forged := sgBatch(`{"event":"delivered","sg_event_id":"rc-forged-1","greentic_command_id":"forged"}`)
		invalid(t, f.scSend(t, path, mediaJSON, forged, hdr), headerSendGridSignature, nil)
	})
}

// twilioCallbackURL is a status callback URL as the SMS sender sets it.
func twilioCallbackURL(base, commandID string) string {
	return base + "?" + event.TwilioCallbackCommandID + "=" + url.QueryEscape(commandID)
}

func TestReceiptsTwilio(t *testing.T) {
	f := setupSources(t, twilioSource(), twilioPublicSource(), hmacSource())
	const path = "/v1/webhooks/demo/twilio"
	const cmdID = "01JD4Z8Q7W3N5X2V6B9C0M1K2L:onboarding:send sms"
	const sid = "SM3f0e8ae6ade43cb3c0ce4525424e404f"
	callback := twilioCallbackURL(f.base+path, cmdID)
	rel := strings.TrimPrefix(callback, f.base)
	params := twilioStatus(sid, "delivered")
	body, hdr := twilioForm(callback, params, scTwilioTokens[0])
	hdr["X-Correlation-Id"] = "corr-1"
	// Twilio's own helper library accepts the request as we send it.
	rv := twilioclient.NewRequestValidator(scTwilioTokens[0])
	if !rv.ValidateBody(callback, body, hdr["X-Twilio-Signature"]) {
		t.Fatal("twilio-go RequestValidator rejects the request")
	}
	evID := wantID("twilio", sid+".delivered")
	f.scSend(t, rel, mediaForm, body, hdr).accepted(t, evID, "sms.delivered", false)
	ev := f.scEvent(t, evID)
	checkEvent(t, ev, "twilio", "sms.delivered", nil)
	wantMetadata(t, ev, map[string]string{
		event.MetaCommandID: cmdID, event.MetaProviderMessageID: sid, event.MetaOriginEventID: "",
		metadataSource: "twilio", metadataDeliveryID: sid + ".delivered", metadataCorrelationID: "corr-1",
	})

	t.Run("command id altered after signing", func(t *testing.T) {
		b, h := twilioForm(twilioCallbackURL(f.base+path, "cmd-a"), twilioStatus(sid, "undelivered"), scTwilioTokens[0])
		altered := strings.TrimPrefix(twilioCallbackURL(f.base+path, "cmd-b"), f.base)
		invalid(t, f.scSend(t, altered, mediaForm, b, h), "X-Twilio-Signature", scTwilioTokens)
		// Added to a callback signed without one.
		b, h = twilioForm(f.base+path, twilioStatus(sid, "undelivered"), scTwilioTokens[0])
		invalid(t, f.scSend(t, altered, mediaForm, b, h), "X-Twilio-Signature", scTwilioTokens)
		f.wantStored(t, 1)
	})

	t.Run("callback without a command id", func(t *testing.T) {
		const other = "SM00000000000000000000000000nocmd"
		p := url.Values{"MessageStatus": {"sent"}, "SmsSid": {other}} // an SmsSid alone still names the message
		b, h := twilioForm(f.base+path, p, scTwilioTokens[0])
		id := wantID("twilio", other+".sent")
		f.scSend(t, path, mediaForm, b, h).accepted(t, id, "sms.sent", false)
		wantMetadata(t, f.scEvent(t, id), map[string]string{event.MetaCommandID: "", event.MetaProviderMessageID: other})
	})

	t.Run("JSON body", func(t *testing.T) {
		const jsid = "SM00000000000000000000000000json1"
		b := []byte(`{"MessageSid":"` + jsid + `","MessageStatus":"failed"}`)
		u, h := twilioJSON(twilioCallbackURL(f.base+path, cmdID), b, scTwilioTokens[0])
		id := wantID("twilio", jsid+".failed")
		f.scSend(t, strings.TrimPrefix(u, f.base), mediaJSON, b, h).accepted(t, id, "sms.failed", false)
		wantMetadata(t, f.scEvent(t, id), map[string]string{event.MetaCommandID: cmdID, event.MetaProviderMessageID: jsid})
	})

	t.Run("behind a proxy", func(t *testing.T) {
		const psid = "SM0000000000000000000000000proxy1"
		public := twilioCallbackURL(scTwilioPublicURL, cmdID)
		b, h := twilioForm(public, twilioStatus(psid, "delivered"), scTwilioTokens[0])
		query := public[strings.Index(public, "?"):]
		id := wantID("twilio-public", psid+".delivered")
		f.scSend(t, "/v1/webhooks/demo/twilio-public"+query, mediaForm, b, h).accepted(t, id, "sms.delivered", false)
		wantMetadata(t, f.scEvent(t, id), map[string]string{event.MetaCommandID: cmdID, event.MetaProviderMessageID: psid})
	})

	t.Run("other schemes ignore the query", func(t *testing.T) {
		b := []byte(`{"type":"sms.delivered","id":"h-1","MessageSid":"SMx"}`)
		mac := signature.SignHMACSHA256(b, scHMACSecrets[0], "hex")
		id := wantID("hmac", "h-1")
		f.scSend(t, "/v1/webhooks/demo/hmac?"+event.TwilioCallbackCommandID+"=x", mediaJSON, b, map[string]string{"X-Signature": "sha256=" + mac}).
			accepted(t, id, "sms.delivered", false)
		ev := f.scEvent(t, id)
		for _, key := range correlationKeys {
			if v, ok := ev.Metadata[key]; ok {
				t.Errorf("hmac event has metadata %s = %q", key, v)
			}
		}
	})
}

func TestMetadataValue(t *testing.T) {
	long := strings.Repeat("a", maxMetadataValue+10)
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"cmd-1", "cmd-1"},
		{long, long[:maxMetadataValue]},
		{strings.Repeat("a", maxMetadataValue-2) + "€", strings.Repeat("a", maxMetadataValue-2)},
		{"a\xffb", "a\uFFFDb"},
	} {
		got := metadataValue(tt.in)
		if got != tt.want || len(got) > maxMetadataValue || !utf8.ValidString(got) {
			t.Errorf("metadataValue(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestMetadataCutInsideACharacter: a header value whose cut at the
// metadata limit falls inside a character, or that is not UTF-8 at all,
// still gives a stored event (protobuf refuses invalid UTF-8 strings, which
// answered 503 on every retry).
func TestMetadataCutInsideACharacter(t *testing.T) {
	f := setup(t, 2*time.Second)
	for i, key := range []string{strings.Repeat("k", maxMetadataValue-1) + "é", "bad\xffkey"} {
		body := []byte(`{"type":"order.created","id":"utf8-` + strconv.Itoa(i) + `"}`)
		hdr := signed(body)
		hdr["Idempotency-Key"] = key
		if code, _, out := f.post(t, "/v1/webhooks/demo/generic", body, hdr); code != http.StatusAccepted {
			t.Fatalf("key %d: got %d %v, want 202", i, code, out)
		}
	}
}
