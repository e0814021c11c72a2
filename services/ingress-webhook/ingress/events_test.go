package ingress

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	ce "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/greentic/events/pkg/event"
	"github.com/greentic/events/pkg/natstest"
	"github.com/greentic/events/pkg/tenant"
	"github.com/greentic/events/pkg/tenant/tenantkv"
)

const ceToken = "ce-token-0123456789abcdef"

// withCloudEventsSource gives tenant demo a cloudevents source and waits
// until the ingress has it.
func withCloudEventsSource(t *testing.T, f *fixture) {
	t.Helper()
	store, err := tenantkv.Open(context.Background(), f.rt.JS, f.rt.Topology)
	if err != nil {
		t.Fatal(err)
	}
	src := tenant.Source{Tenant: "demo", Name: CloudEventsSource, Scheme: tenant.SchemeBearer, Secrets: []string{ceToken}}
	if _, err := store.PutSource(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 10*time.Second, "the cloudevents source to apply", func() bool {
		code, _, _ := f.post(t, "/v1/events/demo", []byte(`{}`), map[string]string{"Content-Type": "application/cloudevents+json"})
		return code == http.StatusUnauthorized
	})
}

func sdkEvent(id, typ string) ce.Event {
	e := ce.NewEvent()
	e.SetID(id)
	e.SetType(typ)
	e.SetSource("https://shop.example.com/orders")
	e.SetSubject("orders/" + id)
	e.SetTime(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	e.SetExtension("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	e.SetExtension("attempt", 2)
	_ = e.SetData(ce.ApplicationJSON, map[string]any{"order_id": id, "total": 42.5})
	return e
}

// TestCloudEventsRoute sends CloudEvents with the official SDK in binary and
// structured mode, and a batch, to the real route: each is stored 1:1, a
// resend is a duplicate, and the route needs the tenant's token.
func TestCloudEventsRoute(t *testing.T) {
	f := setup(t, 2*time.Second)
	withCloudEventsSource(t, f)

	client, err := ce.NewClientHTTP(cehttp.WithHeader("Authorization", "Bearer "+ceToken))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ce.ContextWithTarget(context.Background(), f.base+"/v1/events/demo")
	if res := client.Send(ctx, sdkEvent("ce-bin-1", "com.example.order.created")); !ce.IsACK(res) {
		t.Fatalf("binary mode: %v", res)
	}
	if res := client.Send(ce.WithEncodingStructured(ctx), sdkEvent("ce-str-1", "com.example.order.paid")); !ce.IsACK(res) {
		t.Fatalf("structured mode: %v", res)
	}
	for subject, id := range map[string]string{
		"greentic.events.dev.demo.com.example.order.created": "ce-bin-1",
		"greentic.events.dev.demo.com.example.order.paid":    "ce-str-1",
	} {
		msg, err := f.storedStream(t).GetLastMsgForSubject(context.Background(), subject)
		if err != nil {
			t.Fatalf("%s not stored: %v", subject, err)
		}
		ev, err := event.Unmarshal(msg.Data)
		if err != nil {
			t.Fatal(err)
		}
		var data map[string]any
		if err := json.Unmarshal(ev.Payload, &data); err != nil || data["order_id"] != id {
			t.Errorf("%s payload %s (%v)", id, ev.Payload, err)
		}
		if ev.Id != id || ev.Source != "https://shop.example.com/orders" || ev.Metadata["subject"] != "orders/"+id ||
			ev.Metadata["ce_attempt"] != "2" || ev.Timestamp != time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC).UnixMilli() ||
			!strings.HasPrefix(ev.Traceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-") {
			t.Errorf("stored event %v", ev)
		}
	}

	// Batch mode: the SDK's JSON form of each event in one array.
	var batch []json.RawMessage
	for _, id := range []string{"ce-b-1", "ce-b-2"} {
		raw, err := json.Marshal(sdkEvent(id, "com.example.order.shipped"))
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, raw)
	}
	body, _ := json.Marshal(batch)
	auth := map[string]string{"Content-Type": "application/cloudevents-batch+json", "Authorization": "Bearer " + ceToken}
	code, _, out := f.post(t, "/v1/events/demo", body, auth)
	events, _ := out["events"].([]any)
	if code != http.StatusAccepted || len(events) != 2 {
		t.Fatalf("batch answered %d %v, want 202 with 2 events", code, out)
	}
	if n := f.storedMsgs(t); n != 4 {
		t.Fatalf("%d events stored, want 4", n)
	}
	// The same batch again stores nothing and says so.
	code, _, out = f.post(t, "/v1/events/demo", body, auth)
	events, _ = out["events"].([]any)
	if code != http.StatusAccepted || len(events) != 2 || events[0].(map[string]any)["duplicate"] != true || events[1].(map[string]any)["duplicate"] != true {
		t.Fatalf("resent batch answered %d %v, want 202 with two duplicates", code, out)
	}
	if n := f.storedMsgs(t); n != 4 {
		t.Fatalf("%d events stored after a resend, want 4", n)
	}

	// Refusals.
	for _, tc := range []struct {
		name   string
		body   []byte
		hdr    map[string]string
		status int
		code   string
	}{
		{"no token", body, map[string]string{"Content-Type": "application/cloudevents-batch+json"}, 401, codeInvalidSignature},
		{"wrong token", body, map[string]string{"Content-Type": "application/cloudevents-batch+json", "Authorization": "Bearer not-the-token-at-all"}, 401, codeInvalidSignature},
		{"not a CloudEvent", []byte(`{"a":1}`), map[string]string{"Authorization": "Bearer " + ceToken}, 415, codeUnsupportedMedia},
		{"missing type", []byte(`{"specversion":"1.0","id":"x","source":"/s"}`), map[string]string{"Content-Type": "application/cloudevents+json", "Authorization": "Bearer " + ceToken}, 400, codeInvalidEvent},
		{"bad element of a batch", []byte(`[{"specversion":"1.0","id":"x","source":"/s","type":"a.b"},{"specversion":"0.3","id":"y","source":"/s","type":"a.b"}]`), map[string]string{"Content-Type": "application/cloudevents-batch+json", "Authorization": "Bearer " + ceToken}, 400, codeInvalidEvent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, out := f.post(t, "/v1/events/demo", tc.body, tc.hdr)
			if code != tc.status || errorCode(out) != tc.code {
				t.Fatalf("got %d %v, want %d %s", code, out, tc.status, tc.code)
			}
		})
	}
	if n := f.storedMsgs(t); n != 4 {
		t.Fatalf("%d events stored after refusals, want 4", n)
	}
	// A tenant without a cloudevents source has no CloudEvents route.
	code, _, out = f.post(t, "/v1/events/other", []byte(`{}`), map[string]string{"Content-Type": "application/cloudevents+json"})
	if code != http.StatusNotFound || errorCode(out) != codeUnknownSource || !bytes.Contains([]byte(out["error"].(map[string]any)["message"].(string)), []byte("cloudevents")) {
		t.Fatalf("tenant without a cloudevents source: %d %v", code, out)
	}
}
