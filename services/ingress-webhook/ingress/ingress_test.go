package ingress

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/greentic/events/pkg/event"
	"github.com/greentic/events/pkg/natstest"
	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/pkg/signature"
	"github.com/greentic/events/pkg/tenant"
)

const secret = "demo-secret"

type fixture struct {
	base string
	rt   *service.Runtime
	srv  *natstest.Server
}

func genericSource(tenantID, name string) tenant.Source {
	return tenant.Source{
		Tenant: tenantID, Name: name, Scheme: tenant.SchemeHMACSHA256, Secrets: []string{secret},
		Signature:    tenant.Signature{Header: "X-Greentic-Signature", Encoding: "hex", Prefix: "sha256="},
		EventType:    tenant.ValueFrom{Field: "type"},
		EventID:      tenant.ValueFrom{Field: "id"},
		MaxBodyBytes: 1024,
	}
}

func setup(t *testing.T, publishTimeout time.Duration) *fixture {
	t.Helper()
	disabled := genericSource("demo", "off")
	disabled.Disabled = true
	return startIngress(t, publishTimeout,
		[]tenant.Tenant{{ID: "demo"}, {ID: "other"}, {ID: "frozen", Suspended: true}},
		genericSource("demo", "generic"), disabled, genericSource("frozen", "generic"))
}

// post sends a JSON body; a header given as "" is left out (Content-Type too).
func (f *fixture) post(t *testing.T, path string, body []byte, hdr map[string]string) (int, http.Header, map[string]any) {
	t.Helper()
	ct, set := hdr["Content-Type"]
	if !set {
		ct = "application/json"
	}
	rest := map[string]string{}
	for k, v := range hdr {
		if v != "" && k != "Content-Type" {
			rest[k] = v
		}
	}
	a := f.scSend(t, path, ct, body, rest)
	return a.status, a.header, a.body
}

func signed(body []byte) map[string]string {
	return map[string]string{"X-Greentic-Signature": "sha256=" + signature.SignHMACSHA256(body, secret, "hex")}
}

func (f *fixture) storedStream(t *testing.T) jetstream.Stream {
	t.Helper()
	s, err := f.rt.JS.Stream(context.Background(), f.rt.Topology.EventsStream())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fixture) storedMsgs(t *testing.T) uint64 {
	t.Helper()
	s, err := f.rt.JS.Stream(context.Background(), f.rt.Topology.EventsStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func errorCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	c, _ := e["code"].(string)
	m, _ := e["message"].(string)
	if m == "" {
		return ""
	}
	return c
}

func TestWebhookAccepted(t *testing.T) {
	f := setup(t, 2*time.Second)
	body := []byte(`{"type":"order.created","id":"o-1","total":12.50}`)
	hdr := signed(body)
	hdr["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	hdr["Idempotency-Key"] = "key-1"
	code, _, out := f.post(t, "/v1/webhooks/demo/generic", body, hdr)
	// The event id is the sender's id scoped by the source.
	if code != http.StatusAccepted || out["event_id"] != "generic:o-1" || out["duplicate"] != false {
		t.Fatalf("got %d %v, want 202 with event_id generic:o-1", code, out)
	}
	s, err := f.rt.JS.Stream(context.Background(), f.rt.Topology.EventsStream())
	if err != nil {
		t.Fatal(err)
	}
	msg, err := s.GetLastMsgForSubject(context.Background(), "greentic.events.dev.demo.order.created")
	if err != nil {
		t.Fatalf("event not stored: %v", err)
	}
	ev, err := event.Unmarshal(msg.Data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ev.Payload, body) {
		t.Errorf("payload %q, want the raw body %q", ev.Payload, body)
	}
	if ev.Id != "generic:o-1" || ev.Metadata["delivery_id"] != "o-1" || ev.EventType != "order.created" || ev.Tenant != "demo" || ev.Env != "dev" || ev.Source != "webhook/generic" {
		t.Errorf("event %+v", ev)
	}
	if !strings.HasPrefix(ev.Traceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-") {
		t.Errorf("forwarded traceparent not kept: %s", ev.Traceparent)
	}
	if ev.Metadata["idempotency_key"] != "key-1" {
		t.Errorf("metadata %v lacks the idempotency key", ev.Metadata)
	}

	// The provider redelivers: same id, no second event, same answer.
	code, _, out = f.post(t, "/v1/webhooks/demo/generic", body, signed(body))
	if code != http.StatusAccepted || out["event_id"] != "generic:o-1" || out["duplicate"] != true {
		t.Fatalf("redelivery got %d %v, want 202 duplicate", code, out)
	}
	if n := f.storedMsgs(t); n != 1 {
		t.Fatalf("%d events stored after a redelivery, want 1", n)
	}

	// A delivery id that is no valid event id is kept in metadata; the event
	// id is a digest of it, the same on every redelivery.
	odd := []byte(`{"type":"order.paid","id":"order 7 / paid"}`)
	code, _, out = f.post(t, "/v1/webhooks/demo/generic", odd, signed(odd))
	oddID, _ := out["event_id"].(string)
	if code != http.StatusAccepted || !strings.HasPrefix(oddID, "generic:d-") {
		t.Fatalf("got %d %v, want 202 with a derived id", code, out)
	}
	if code, _, out = f.post(t, "/v1/webhooks/demo/generic", odd, signed(odd)); out["event_id"] != oddID || out["duplicate"] != true {
		t.Fatalf("redelivery got %d %v, want the same id %s as a duplicate", code, out, oddID)
	}
	msg, err = s.GetLastMsgForSubject(context.Background(), "greentic.events.dev.demo.order.paid")
	if err != nil {
		t.Fatal(err)
	}
	if ev, err = event.Unmarshal(msg.Data); err != nil || ev.Metadata["delivery_id"] != "order 7 / paid" {
		t.Fatalf("event %v (%v): metadata lacks the delivery id", ev, err)
	}

	// Without an id the ingress assigns one.
	body2 := []byte(`{"type":"order.shipped"}`)
	code, _, out = f.post(t, "/v1/webhooks/demo/generic", body2, signed(body2))
	if id, _ := out["event_id"].(string); code != http.StatusAccepted || event.ValidateID(id) != nil {
		t.Fatalf("got %d %v, want 202 with a generated id", code, out)
	}
}

func TestWebhookRejected(t *testing.T) {
	f := setup(t, 2*time.Second)
	good := []byte(`{"type":"order.created","id":"o-2"}`)
	big := []byte(`{"type":"order.created","pad":"` + strings.Repeat("x", 2000) + `"}`)
	tests := []struct {
		name   string
		path   string
		body   []byte
		hdr    map[string]string
		status int
		code   string
	}{
		{"wrong signature", "/v1/webhooks/demo/generic", good, map[string]string{"X-Greentic-Signature": "sha256=" + signature.SignHMACSHA256(good, "wrong-secret", "")}, 401, "invalid_signature"},
		{"missing signature", "/v1/webhooks/demo/generic", good, nil, 401, "invalid_signature"},
		{"malformed signature", "/v1/webhooks/demo/generic", good, map[string]string{"X-Greentic-Signature": "abc"}, 401, "invalid_signature"},
		{"unknown tenant", "/v1/webhooks/nobody/generic", good, signed(good), 404, "unknown_tenant"},
		{"unknown source", "/v1/webhooks/demo/nope", good, signed(good), 404, "unknown_source"},
		{"source of another tenant", "/v1/webhooks/other/generic", good, signed(good), 404, "unknown_source"},
		{"suspended tenant", "/v1/webhooks/frozen/generic", good, signed(good), 403, "tenant_suspended"},
		{"disabled source", "/v1/webhooks/demo/off", good, signed(good), 403, "source_disabled"},
		{"malformed JSON", "/v1/webhooks/demo/generic", []byte(`{"type":`), signed([]byte(`{"type":`)), 400, "malformed_json"},
		{"JSON array", "/v1/webhooks/demo/generic", []byte(`[1]`), signed([]byte(`[1]`)), 400, "malformed_json"},
		{"missing type", "/v1/webhooks/demo/generic", []byte(`{"id":"x"}`), signed([]byte(`{"id":"x"}`)), 400, "invalid_event"},
		{"wildcard type", "/v1/webhooks/demo/generic", []byte(`{"type":"order.*"}`), signed([]byte(`{"type":"order.*"}`)), 400, "invalid_event"},
		{"type with space", "/v1/webhooks/demo/generic", []byte(`{"type":"order created"}`), signed([]byte(`{"type":"order created"}`)), 400, "invalid_event"},
		{"reserved result type", "/v1/webhooks/demo/generic", []byte(`{"type":"order.result"}`), signed([]byte(`{"type":"order.result"}`)), 400, "invalid_event"},
		{"object type", "/v1/webhooks/demo/generic", []byte(`{"type":{}}`), signed([]byte(`{"type":{}}`)), 400, "invalid_event"},
		{"body too large", "/v1/webhooks/demo/generic", big, signed(big), 413, "body_too_large"},
		{"not JSON content type", "/v1/webhooks/demo/generic", good, map[string]string{"Content-Type": "text/plain", "X-Greentic-Signature": signed(good)["X-Greentic-Signature"]}, 415, "unsupported_media_type"},
		{"unknown route", "/v1/other", good, signed(good), 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, out := f.post(t, tt.path, tt.body, tt.hdr)
			if code != tt.status || errorCode(out) != tt.code {
				t.Fatalf("got %d %v, want %d with error code %s and a message", code, out, tt.status, tt.code)
			}
		})
	}
	if n := f.storedMsgs(t); n != 0 {
		t.Fatalf("%d events stored by rejected requests, want 0", n)
	}
}

func TestWebhookBusUnavailable(t *testing.T) {
	f := setup(t, 300*time.Millisecond)
	f.srv.Stop()
	body := []byte(`{"type":"order.created","id":"o-3"}`)
	code, hdr, out := f.post(t, "/v1/webhooks/demo/generic", body, signed(body))
	if code != http.StatusServiceUnavailable || errorCode(out) != "bus_unavailable" || hdr.Get("Retry-After") != "5" {
		t.Fatalf("got %d %v Retry-After=%q, want 503 bus_unavailable with Retry-After 5", code, out, hdr.Get("Retry-After"))
	}
	// Once the bus is back the same delivery is accepted and stored.
	if err := f.srv.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _, out = f.post(t, "/v1/webhooks/demo/generic", body, signed(body))
		if code == http.StatusAccepted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d %v after the bus came back", code, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := f.rt.JS.Stream(context.Background(), f.rt.Topology.EventsStream()); err != nil {
		t.Fatal(err)
	}
	if n := f.storedMsgs(t); n != 1 {
		t.Fatalf("%d events stored, want 1", n)
	}
}
