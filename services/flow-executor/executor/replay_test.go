package executor

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/greentic/events/pkg/bus"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/natstest"
	"github.com/greentic/events/pkg/service"
)

// mailThenFail sends an email, then fails for a reason of its own.
const mailThenFail = `
name: orders
version: "1"
nodes:
  - id: mail
    type: email
    config: { to: ada@example.com, from: shop@example.com, subject: "Order {{ event.payload.id }}", text: received }
    next: parse
  - { id: parse, type: script, config: { script: "int(event.payload.id)" } }
triggers:
  - { type: event, event_type: order.created, target: mail }
`

// mailThenRespond is mailThenFail fixed; flow.fixed events show that the
// executor has loaded it.
const mailThenRespond = `
name: orders
version: "1"
nodes:
  - id: mail
    type: email
    config: { to: ada@example.com, from: shop@example.com, subject: "Order {{ event.payload.id }}", text: received }
    next: done
  - { id: done, type: respond, config: { body: "fixed {{ event.payload.id }}" } }
triggers:
  - { type: event, event_type: order.created, target: mail }
  - { type: event, event_type: flow.fixed, target: done }
`

// resultAudit runs on the results of orders.
const resultAudit = `
name: audit
version: "1"
nodes:
  - { id: log, type: respond, config: { body: "{{ event.payload.status }} {{ event.payload.replay }}" } }
triggers:
  - { type: event, event_type: order.created.result, target: log }
`

// deadLetters returns the dead letters of the flow stage for tenant demo.
func deadLetters(t *testing.T, rt *service.Runtime) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	s, err := rt.JS.Stream(ctx, rt.Topology.DLQStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		if m, err := s.GetMsg(ctx, seq); err == nil && m.Subject == "greentic.dlq.dev.demo.flow" {
			out = append(out, m)
		}
	}
	return out
}

// replay republishes a dead letter as the admin API does: its data on its
// original subject, with its original headers but the dead-letter ones, the
// replay marker of its sequence, and an id made of both.
func replay(t *testing.T, rt *service.Runtime, dl *jetstream.RawStreamMsg) (string, bus.Published) {
	t.Helper()
	marker := bus.ReplayMarker(dl.Sequence)
	h := nats.Header{}
	for k, v := range dl.Header {
		if !strings.HasPrefix(k, "Greentic-Dlq-") {
			h[k] = append([]string(nil), v...)
		}
	}
	h.Set(bus.HeaderReplay, marker)
	msgID := bus.ReplayMsgID(dl.Header.Get(bus.HeaderDLQOriginalMsgID), marker)
	p, err := rt.Publisher.Publish(context.Background(), dl.Header.Get(bus.HeaderDLQOriginalSubject), msgID, dl.Data, h)
	if err != nil {
		t.Fatal(err)
	}
	return marker, p
}

// settled waits until the executor has acknowledged everything stored.
func settled(t *testing.T, rt *service.Runtime) {
	t.Helper()
	natstest.Eventually(t, 15*time.Second, "every message acked", func() bool {
		c, err := rt.JS.Consumer(context.Background(), rt.Topology.EventsStream(), rt.Topology.Durable(Name))
		if err != nil {
			return false
		}
		info, err := c.Info(context.Background())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
}

// describe lists results as "{flow} {event id} {status} {replay}".
func describe(rs []*eventsv1.FlowResult) []string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%s %s %s %s", r.Flow, r.EventId, statusLabel(r.Status), r.Replay))
	}
	return out
}

// A dead letter replayed while its flow still fails is dead-lettered again
// as a new letter; replayed once the flow is fixed, it stores an ok result
// next to the error results; replayed twice, it stores nothing more. The
// email sent by the first attempt is never published again.
func TestReplayedDeadLetter(t *testing.T) {
	rt := startWith(t, testConfig(), map[string]string{"orders": mailThenFail, "audit": resultAudit})
	publish(t, rt, "demo", "o-1", "order.created")

	results1 := "greentic.events.dev.demo.order.created.result"
	results2 := "greentic.events.dev.demo.order.created.result.result"
	natstest.Eventually(t, 15*time.Second, "the error result and its dead letter", func() bool {
		return len(results(t, rt)[results1]) == 1 && len(deadLetters(t, rt)) == 1
	})

	// Replayed while the flow still fails: a second error result and a
	// second dead letter, itself replayable.
	first := deadLetters(t, rt)[0]
	marker1, p := replay(t, rt, first)
	if p.Duplicate {
		t.Fatal("the first replay was taken for a duplicate")
	}
	natstest.Eventually(t, 15*time.Second, "a new dead letter", func() bool { return len(deadLetters(t, rt)) == 2 })
	second := deadLetters(t, rt)[1]
	if second.Sequence == first.Sequence || second.Header.Get(bus.HeaderFlows) != "orders" ||
		second.Header.Get(bus.HeaderDLQOriginalMsgID) != bus.ReplayMsgID("demo:o-1", marker1) {
		t.Fatalf("second dead letter %d %v", second.Sequence, second.Header)
	}

	// Fix the flow and wait until the executor runs the fixed one.
	putFlow(t, rt, "demo", "orders", mailThenRespond)
	n := 0
	natstest.Eventually(t, 15*time.Second, "the fixed flow loaded", func() bool {
		n++
		publish(t, rt, "demo", fmt.Sprintf("probe-%d", n), "flow.fixed")
		time.Sleep(50 * time.Millisecond)
		return len(results(t, rt)["greentic.events.dev.demo.flow.fixed.result"]) > 0
	})

	marker2, p := replay(t, rt, second)
	if p.Duplicate {
		t.Fatal("the second replay was taken for a duplicate")
	}
	natstest.Eventually(t, 15*time.Second, "the ok result", func() bool { return len(results(t, rt)[results1]) == 3 })

	// The same replay again is dropped by the stream.
	if _, p := replay(t, rt, second); !p.Duplicate {
		t.Fatalf("replaying the same dead letter twice stored it twice: %+v", p)
	}
	settled(t, rt)
	time.Sleep(300 * time.Millisecond)
	settled(t, rt)

	r := results(t, rt)
	want := []string{"orders o-1 error ", "orders o-1 error " + marker1, "orders o-1 ok " + marker2}
	if got := describe(r[results1]); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("results %q, want %q", got, want)
	}
	if out := string(r[results1][2].Output); out != `"fixed o-1"` {
		t.Errorf("output of the replay %s", out)
	}
	// Each result of orders is an event of its own for the flows on
	// results: audit ran on all three, and saw which replay made them.
	want = []string{
		`o-1:orders "error "`,
		`o-1:orders/replay/` + marker1 + ` "error ` + marker1 + `"`,
		`o-1:orders/replay/` + marker2 + ` "ok ` + marker2 + `"`,
	}
	var got []string
	for _, a := range r[results2] {
		got = append(got, a.EventId+" "+string(a.Output))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("results of audit %q, want %q", got, want)
	}
	if n := len(deadLetters(t, rt)); n != 2 {
		t.Errorf("%d dead letters, want 2", n)
	}
	// The first attempt's email is not sent again by the replays.
	if n := count(t, rt, rt.Topology.OutboundStream(), "greentic.outbound.dev.demo.email"); n != 1 {
		t.Errorf("%d email commands, want 1", n)
	}
}

// A replay marker that cannot go into ids dead-letters the message.
func TestInvalidReplayMarker(t *testing.T) {
	rt := startWith(t, testConfig(), map[string]string{"handle_event": handleEvent})
	h := nats.Header{}
	h.Set(bus.HeaderReplay, "dlq 1")
	data := []byte{}
	if _, err := rt.Publisher.Publish(context.Background(), "greentic.events.dev.demo.order.created", "demo:o-1/replay/x", data, h); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 15*time.Second, "the dead letter", func() bool { return len(deadLetters(t, rt)) == 1 })
	if reason := deadLetters(t, rt)[0].Header.Get(bus.HeaderDLQReason); !strings.Contains(reason, "replay marker") {
		t.Errorf("dead letter reason %q", reason)
	}
}
