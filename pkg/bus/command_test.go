package bus

import (
	"testing"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
)

// TestPublishCommandOnce publishes the same email command three times, as
// a flow run retried after a crash would: the outbound stream holds it
// once, on the tenant's email subject, with its id and trace headers.
func TestPublishCommandOnce(t *testing.T) {
	b := newTestBus(t)
	id := CommandID("evt-1", "welcome", "send_mail")
	if id != "evt-1:welcome:send_mail" {
		t.Fatalf("CommandID = %q", id)
	}
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	cmd := &eventsv1.EmailCommand{
		Id:      id,
		Origin:  &eventsv1.CommandOrigin{Tenant: "acme", EventId: "evt-1", Flow: "welcome", Node: "send_mail", Traceparent: tp},
		From:    &eventsv1.EmailAddress{Email: "shop@example.com"},
		To:      []*eventsv1.EmailAddress{{Email: "ada@example.com", Name: "Ada"}},
		Subject: "Welcome",
		Text:    "Hello Ada",
	}
	for i := range 3 {
		p, err := b.pub.PublishCommand(b.ctx, "acme", ChannelEmail, id, tp, cmd)
		if err != nil {
			t.Fatal(err)
		}
		if p.Duplicate != (i > 0) || p.Stream != b.topo.OutboundStream() {
			t.Fatalf("publish %d = %+v, want duplicate=%v on %s", i, p, i > 0, b.topo.OutboundStream())
		}
	}
	st, err := b.js.Stream(b.ctx, b.topo.OutboundStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(b.ctx)
	if err != nil || info.State.Msgs != 1 {
		t.Fatalf("outbound stream holds %d messages (%v), want 1", info.State.Msgs, err)
	}
	m, err := st.GetLastMsgForSubject(b.ctx, "greentic.outbound.test.acme.email")
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get(HeaderCommandID) != id || m.Header.Get(HeaderTraceparent) != tp || m.Header.Get(HeaderMsgID) != "acme:"+id {
		t.Errorf("headers %v", m.Header)
	}
	var got eventsv1.EmailCommand
	if err := proto.Unmarshal(m.Data, &got); err != nil || !proto.Equal(&got, cmd) {
		t.Fatalf("stored command %v (%v), want %v", &got, err, cmd)
	}

	for _, tc := range []struct{ name, tenant, channel, id string }{
		{"unknown channel", "acme", "fax", id},
		{"bad tenant", "a b", ChannelSMS, id},
		{"empty id", "acme", ChannelSMS, ""},
	} {
		if _, err := b.pub.PublishCommand(b.ctx, tc.tenant, tc.channel, tc.id, "", &eventsv1.SmsCommand{}); err == nil {
			t.Errorf("%s: publish succeeded", tc.name)
		}
	}
}
