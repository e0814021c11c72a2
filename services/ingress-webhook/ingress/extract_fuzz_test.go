package ingress

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/greentic/events/pkg/tenant"
)

// FuzzExtract feeds arbitrary bodies and provider headers to the mapping of
// every scheme (after verification): it must never panic, and whatever it
// maps must keep the body (or, for batches, each element) as the payload.
func FuzzExtract(f *testing.F) {
	seeds := []struct {
		scheme int
		body   string
		hdr    string
	}{
		{0, `{"type":"order.created","id":"o-1"}`, ""},
		{1, `{"action":"opened","issue":{}}`, "issues"},
		{1, `{"action":7}`, "push"},
		{2, `{"id":"evt_1","type":"payment_intent.succeeded"}`, ""},
		{2, `{"id":{},"type":"x"}`, ""},
		{3, `{"type":"invoice.paid","data":{}}`, "msg_1"},
		{4, `MessageSid=SM1&MessageStatus=delivered&To=%2B1`, ""},
		{4, `CallSid=CA1&CallStatus=in-progress`, "tok-1"},
		{4, `a=%zz`, ""},
		{4, `{"MessageSid":"SM1","MessageStatus":"sent"}`, ""},
		{5, `[{"event":"delivered","sg_event_id":"e1"},{"event":"open","sg_event_id":"e2"}]`, ""},
		{5, `[{"event":"bounce"},[],1]`, ""},
		{5, `[{"event":"open","sg_event_id":"e3","sg_message_id":"m1.f","greentic_command_id":"c:f:n","greentic_event_id":{}}]`, ""},
		{5, `[]`, ""},
		{5, `{"event":"x"}`, ""},
	}
	for _, s := range seeds {
		f.Add(uint8(s.scheme), []byte(s.body), s.hdr)
	}
	schemes := []tenant.Source{
		genericSource("demo", "generic"),
		{Tenant: "demo", Name: "github", Scheme: tenant.SchemeGitHub},
		{Tenant: "demo", Name: "stripe", Scheme: tenant.SchemeStripe},
		{Tenant: "demo", Name: "sw", Scheme: tenant.SchemeStandardWebhooks},
		{Tenant: "demo", Name: "twilio", Scheme: tenant.SchemeTwilio},
		{Tenant: "demo", Name: "sendgrid", Scheme: tenant.SchemeSendGrid},
	}
	h, err := NewHandler(Config{PublishTimeout: 1e9, MaxBodyBytes: 1 << 20, RetryAfter: 5e9, MaxEventsPerRequest: 10},
		Deps{Registry: tenant.NewRegistry(), Publisher: &recordingPublisher{}, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte, hdr string) {
		src := schemes[int(which)%len(schemes)]
		r := httptest.NewRequest(http.MethodPost, "/v1/webhooks/demo/"+src.Name, bytes.NewReader(body))
		r.Header.Set("X-GitHub-Event", hdr)
		r.Header.Set("X-GitHub-Delivery", hdr)
		r.Header.Set("Webhook-Id", hdr)
		r.Header.Set("I-Twilio-Idempotency-Token", hdr)
		kind := bodyJSON
		req := &request{r: r, src: src, body: body}
		if src.Scheme == tenant.SchemeTwilio && !json.Valid(body) {
			var aerr *apiError
			if req.form, aerr = parseForm(body); aerr != nil {
				return
			}
			kind = bodyForm
		}
		items, batch, aerr := h.extract(req, kind)
		if aerr != nil {
			if aerr.status < 400 || aerr.status > 499 || aerr.msg == "" {
				t.Fatalf("error %+v is not a 4xx with a message", aerr)
			}
			return
		}
		if len(items) == 0 {
			t.Fatalf("no error and no event for %q", body)
		}
		switch {
		case batch:
			var elems []json.RawMessage
			if err := json.Unmarshal(body, &elems); err != nil || len(elems) != len(items) {
				t.Fatalf("%d events from a batch of %d (%v)", len(items), len(elems), err)
			}
			for i, it := range items {
				if !bytes.Equal(it.ev.Payload, elems[i]) {
					t.Fatalf("event %d payload %q, want %q", i, it.ev.Payload, elems[i])
				}
			}
		case kind == bodyForm:
			if !json.Valid(items[0].ev.Payload) {
				t.Fatalf("form payload is not JSON: %q", items[0].ev.Payload)
			}
		default:
			if !bytes.Equal(items[0].ev.Payload, body) {
				t.Fatalf("payload %q, want the body %q", items[0].ev.Payload, body)
			}
		}
	})
}
