package bus

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/greentic/events/pkg/event"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
)

const forwardedTP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestPublishEventStoresEventWithHeaders(t *testing.T) {
	b := newTestBus(t)
	ctx := testCtx(t)
	e := testEvent("acme", "evt-1")
	e.Metadata = map[string]string{"delivery": "abc"}
	p, err := b.pub.PublishEvent(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	if p.Stream != b.topo.EventsStream() || p.Sequence != 1 || p.Duplicate {
		t.Fatalf("published = %+v", p)
	}
	// The caller's event is completed in place.
	if e.Env != testEnv || e.Subject != "greentic.events.test.acme.order.created" || !event.ValidTraceparent(e.Traceparent) {
		t.Fatalf("event after publish: env=%q subject=%q traceparent=%q", e.Env, e.Subject, e.Traceparent)
	}

	st, err := b.js.Stream(ctx, b.topo.EventsStream())
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetMsg(ctx, p.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != e.Subject {
		t.Errorf("stored on %q, want %q", m.Subject, e.Subject)
	}
	for h, want := range map[string]string{
		HeaderMsgID:       "acme:evt-1", // MsgID(tenant, id)
		HeaderTraceparent: e.Traceparent,
		HeaderEventID:     "evt-1",
	} {
		if got := m.Header.Get(h); got != want {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}
	got, err := event.Unmarshal(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, e) {
		t.Fatalf("stored event = %v, want %v", got, e)
	}
}

func TestPublishEventDeduplicates(t *testing.T) {
	b := newTestBus(t)
	ctx := testCtx(t)

	first := b.publish(t, "acme", "same-id")
	retry, err := b.pub.PublishEvent(ctx, testEvent("acme", "same-id"))
	if err != nil {
		t.Fatal(err)
	}
	if first.Duplicate || !retry.Duplicate {
		t.Fatalf("first=%+v retry=%+v, want only the retry to be a duplicate", first, retry)
	}
	if retry.Sequence != first.Sequence {
		t.Errorf("duplicate points at sequence %d, want the original %d", retry.Sequence, first.Sequence)
	}
	if n := b.streamMsgs(t, b.topo.EventsStream()); n != 1 {
		t.Fatalf("stream holds %d messages after a duplicate publish, want 1", n)
	}

	// Ids are scoped by tenant: another tenant may use the same id.
	other := b.publish(t, "globex", "same-id")
	if other.Duplicate {
		t.Fatal("same id from another tenant reported as duplicate")
	}
	if n := b.streamMsgs(t, b.topo.EventsStream()); n != 2 {
		t.Fatalf("stream holds %d messages, want 2 (one per tenant)", n)
	}
}

func TestPublishEventRejectsInvalid(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*eventsv1.Event)
		want   string
	}{
		{"empty tenant", func(e *eventsv1.Event) { e.Tenant = "" }, "tenant"},
		{"tenant with space", func(e *eventsv1.Event) { e.Tenant = "ac me" }, "tenant"},
		{"tenant wildcard", func(e *eventsv1.Event) { e.Tenant = ">" }, "tenant"},
		{"empty type", func(e *eventsv1.Event) { e.EventType = "" }, "event_type"},
		{"type wildcard", func(e *eventsv1.Event) { e.EventType = "order.*" }, "event_type"},
		{"type reserved result", func(e *eventsv1.Event) { e.EventType = "order.result" }, "event_type"},
		{"type double dot", func(e *eventsv1.Event) { e.EventType = "order..created" }, "event_type"},
		{"empty id", func(e *eventsv1.Event) { e.Id = "" }, "event id"},
		{"id with space", func(e *eventsv1.Event) { e.Id = "a b" }, "event id"},
		{"id too long", func(e *eventsv1.Event) { e.Id = strings.Repeat("x", 300) }, "event id"},
		{"other env", func(e *eventsv1.Event) { e.Env = "prod" }, "env"},
	}
	b := newTestBus(t)
	ctx := testCtx(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := testEvent("acme", "evt-"+strings.ReplaceAll(tc.name, " ", "-"))
			tc.mutate(e)
			p, err := b.pub.PublishEvent(ctx, e)
			if err == nil {
				t.Fatalf("published %+v, want an error", p)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %s", err, tc.want)
			}
		})
	}
	if n := b.streamMsgs(t, b.topo.EventsStream()); n != 0 {
		t.Fatalf("invalid events stored %d messages", n)
	}
}

func TestPublishEventTraceparent(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		wantKept  bool
		wantValid bool
	}{
		{"valid forwarded is kept", forwardedTP, true, true},
		{"missing gets a new one", "", false, true},
		{"garbage is replaced", "not-a-traceparent", false, true},
		{"uppercase is replaced", strings.ToUpper(forwardedTP), false, true},
		{"zero trace id is replaced", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", false, true},
	}
	b := newTestBus(t)
	ctx := testCtx(t)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := testEvent("acme", "tp-"+strings.Repeat("x", i+1))
			e.Traceparent = tc.in
			p, err := b.pub.PublishEvent(ctx, e)
			if err != nil {
				t.Fatal(err)
			}
			st, _ := b.js.Stream(ctx, b.topo.EventsStream())
			m, err := st.GetMsg(ctx, p.Sequence)
			if err != nil {
				t.Fatal(err)
			}
			h := m.Header.Get(HeaderTraceparent)
			stored, _ := event.Unmarshal(m.Data)
			if h != stored.GetTraceparent() {
				t.Errorf("header %q and body %q disagree", h, stored.GetTraceparent())
			}
			if !event.ValidTraceparent(h) {
				t.Fatalf("stored traceparent %q is not valid", h)
			}
			if kept := h == tc.in; kept != tc.wantKept {
				t.Fatalf("stored traceparent %q for forwarded %q, kept=%v want %v", h, tc.in, kept, tc.wantKept)
			}
		})
	}
}

func TestPublishResult(t *testing.T) {
	b := newTestBus(t)
	ctx := testCtx(t)
	result := func(eventID, flow string) *eventsv1.FlowResult {
		return &eventsv1.FlowResult{
			EventId: eventID, EventType: "order.created", Tenant: "acme", Flow: flow,
			Status: eventsv1.FlowStatus(1), Output: []byte(`{"ok":true}`), Traceparent: forwardedTP,
		}
	}

	r := result("evt-1", "handle_order")
	p, err := b.pub.PublishResult(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if p.Duplicate {
		t.Fatal("first result reported as duplicate")
	}
	st, _ := b.js.Stream(ctx, b.topo.EventsStream())
	m, err := st.GetMsg(ctx, p.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if want := "greentic.events.test.acme.order.created.result"; m.Subject != want {
		t.Fatalf("result stored on %q, want %q", m.Subject, want)
	}
	for h, want := range map[string]string{
		HeaderEventID:     "evt-1",
		HeaderTraceparent: forwardedTP,
	} {
		if got := m.Header.Get(h); got != want {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}
	var stored eventsv1.FlowResult
	if err := proto.Unmarshal(m.Data, &stored); err != nil {
		t.Fatal(err)
	}
	if stored.Env != testEnv || stored.Flow != "handle_order" || string(stored.Output) != `{"ok":true}` {
		t.Fatalf("stored result = %v", &stored)
	}

	// Once per (event, flow): a retry is a duplicate, another flow or event is not.
	again, err := b.pub.PublishResult(ctx, result("evt-1", "handle_order"))
	if err != nil || !again.Duplicate {
		t.Fatalf("retried result = %+v, %v; want a duplicate", again, err)
	}
	for _, r := range []*eventsv1.FlowResult{result("evt-1", "audit"), result("evt-2", "handle_order")} {
		p, err := b.pub.PublishResult(ctx, r)
		if err != nil || p.Duplicate {
			t.Fatalf("result %s/%s = %+v, %v; want stored", r.EventId, r.Flow, p, err)
		}
	}
	// A result never collides with an event of the same id.
	if ep := b.publish(t, "acme", "evt-1"); ep.Duplicate {
		t.Fatal("event deduplicated against a result")
	}
	// Nor with an event whose id looks like a result's de-duplication id.
	for _, id := range []string{"evt-1:handle_order:result", "handle_order/evt-1", "acme/handle_order/evt-1"} {
		if ep := b.publish(t, "acme", id); ep.Duplicate {
			t.Fatalf("event %q deduplicated against a result", id)
		}
	}
	if n := b.streamMsgs(t, b.topo.EventsStream()); n != 7 {
		t.Fatalf("stream holds %d messages, want 7", n)
	}
}

// The result of a replayed event is stored next to the failed attempt's
// result, once per replay.
func TestPublishResultOfAReplay(t *testing.T) {
	b := newTestBus(t)
	ctx := testCtx(t)
	result := func(replay string) *eventsv1.FlowResult {
		return &eventsv1.FlowResult{EventId: "evt-1", EventType: "order.created", Tenant: "acme", Flow: "handle_order", Replay: replay}
	}
	st, _ := b.js.Stream(ctx, b.topo.EventsStream())
	for _, tc := range []struct {
		replay    string
		duplicate bool
		msgID     string
	}{
		{"", false, "acme/handle_order/evt-1"},
		{"dlq-7", false, "acme/handle_order/evt-1/replay/dlq-7"},
		{"dlq-7", true, ""},
		{"dlq-9", false, "acme/handle_order/evt-1/replay/dlq-9"},
	} {
		p, err := b.pub.PublishResult(ctx, result(tc.replay))
		if err != nil || p.Duplicate != tc.duplicate {
			t.Fatalf("result with replay %q = %+v, %v; want duplicate=%v", tc.replay, p, err, tc.duplicate)
		}
		if tc.duplicate {
			continue
		}
		m, err := st.GetMsg(ctx, p.Sequence)
		if err != nil {
			t.Fatal(err)
		}
		var stored eventsv1.FlowResult
		if err := proto.Unmarshal(m.Data, &stored); err != nil {
			t.Fatal(err)
		}
		if got := m.Header.Get(HeaderMsgID); got != tc.msgID || stored.Replay != tc.replay {
			t.Errorf("stored with id %q and replay %q, want %q and %q", got, stored.Replay, tc.msgID, tc.replay)
		}
	}
	for _, bad := range []string{"dlq 7", strings.Repeat("x", 65)} {
		if _, err := b.pub.PublishResult(ctx, result(bad)); err == nil || !strings.Contains(err.Error(), "replay marker") {
			t.Errorf("replay %q: %v, want an error naming the replay marker", bad, err)
		}
	}
	if n := b.streamMsgs(t, b.topo.EventsStream()); n != 3 {
		t.Fatalf("stream holds %d messages, want 3", n)
	}
}

func TestPublishResultRejectsInvalid(t *testing.T) {
	tests := []struct {
		name string
		r    *eventsv1.FlowResult
		want string
	}{
		{"bad tenant", &eventsv1.FlowResult{EventId: "e1", EventType: "order.created", Tenant: "a.b", Flow: "f"}, "tenant"},
		{"bad type", &eventsv1.FlowResult{EventId: "e1", EventType: "order.*", Tenant: "acme", Flow: "f"}, "event_type"},
		{"missing event id", &eventsv1.FlowResult{EventType: "order.created", Tenant: "acme", Flow: "f"}, "event id"},
		{"missing flow", &eventsv1.FlowResult{EventId: "e1", EventType: "order.created", Tenant: "acme"}, "flow"},
	}
	b := newTestBus(t)
	ctx := testCtx(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := b.pub.PublishResult(ctx, tc.r)
			if err == nil {
				t.Fatalf("published %+v, want an error", p)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %s", err, tc.want)
			}
		})
	}
	if n := b.streamMsgs(t, b.topo.EventsStream()); n != 0 {
		t.Fatalf("invalid results stored %d messages", n)
	}
}

func TestPublishRequiresMsgID(t *testing.T) {
	b := newTestBus(t)
	if _, err := b.pub.Publish(testCtx(t), "greentic.outbound.test.acme.email", "", []byte("x"), nil); err == nil {
		t.Fatal("publish without a message id succeeded")
	}
	p, err := b.pub.Publish(testCtx(t), "greentic.outbound.test.acme.email", MsgID("acme", "e1", "send_email"), []byte("x"), nil)
	if err != nil || p.Stream != b.topo.OutboundStream() {
		t.Fatalf("publish outbound = %+v, %v", p, err)
	}
	if got := MsgID("acme", "e1", "send_email"); got != "acme:e1:send_email" {
		t.Fatalf("MsgID = %q", got)
	}
}
