package sender

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/greentic/events/pkg/bus"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/natstest"
)

// replay republishes a dead letter as the admin API does: its data on its
// original subject, with its original headers but the dead-letter ones, the
// replay marker of its sequence and an id made of both. msgID, when set,
// replaces that id, as a replay past the duplicate window would.
func (h *harness) replay(dl *jetstream.RawStreamMsg, msgID string) (string, bus.Published) {
	h.t.Helper()
	marker := bus.ReplayMarker(dl.Sequence)
	hdr := nats.Header{}
	for k, v := range dl.Header {
		if !strings.HasPrefix(k, "Greentic-Dlq-") {
			hdr[k] = append([]string(nil), v...)
		}
	}
	hdr.Set(bus.HeaderReplay, marker)
	if msgID == "" {
		msgID = bus.ReplayMsgID(dl.Header.Get(bus.HeaderDLQOriginalMsgID), marker)
	}
	p, err := h.rt.Publisher.Publish(context.Background(), dl.Header.Get(bus.HeaderDLQOriginalSubject), msgID, dl.Data, hdr)
	if err != nil {
		h.t.Fatal(err)
	}
	return marker, p
}

// waitLetters waits for n dead letters of the email stage and returns them.
func (h *harness) waitLetters(n int) []*jetstream.RawStreamMsg {
	h.t.Helper()
	natstest.Eventually(h.t, 15*time.Second, "dead letters", func() bool { return len(h.letters()) >= n })
	return h.letters()
}

// outcomes lists the outcome events of tenant as "{type} {id}".
func (h *harness) outcomes(tenantID string) []string {
	h.t.Helper()
	var out []string
	for _, ev := range h.events(tenantID) {
		out = append(out, ev.EventType+" "+ev.Id)
	}
	return out
}

func sameList(got, want []string) bool {
	return strings.Join(got, "\n") == strings.Join(want, "\n")
}

// switchable rejects every send as the answer says, until fixed.
func switchable(fixed *atomic.Bool, failure error) *provider {
	return &provider{answer: func(n int, cmd *eventsv1.EmailCommand) (Receipt, error) {
		if fixed.Load() {
			return Receipt{ProviderID: "msg-" + cmd.Id, Status: "accepted"}, nil
		}
		return Receipt{}, failure
	}}
}

// A command rejected by the provider is dead-lettered; once the cause is
// fixed, replaying the dead letter sends it, once however often the same
// replay comes back.
func TestReplayAfterPermanentFailure(t *testing.T) {
	h := newHarness(t)
	var fixed atomic.Bool
	p := switchable(&fixed, &ProviderError{Status: 400, Code: "to", Message: "Does not contain a valid address."})
	h.start(p, testConfig(), Accounts{})
	cmd := command("acme", "ev1:welcome:mail")
	h.publish(cmd)
	first := h.waitLetters(1)[0]
	if n := p.count(cmd.Id); n != 1 {
		t.Fatalf("provider called %d times, want 1", n)
	}

	fixed.Store(true)
	marker, pub := h.replay(first, "")
	if pub.Duplicate {
		t.Fatal("the replay was taken for a duplicate")
	}
	evs := h.waitEvents("acme", 2)
	natstest.Eventually(t, 10*time.Second, "replay acknowledged", func() bool { return h.pending() == 0 })
	if n := p.count(cmd.Id); n != 2 {
		t.Fatalf("provider called %d times, want 2", n)
	}
	if want := []string{"email.failed ev1:welcome:mail:failed", "email.sent ev1:welcome:mail:sent"}; !sameList(h.outcomes("acme"), want) {
		t.Fatalf("outcome events %q, want %q", h.outcomes("acme"), want)
	}
	if pl := payload(t, evs[1]); pl["attempts"] != float64(1) || pl["replay"] != marker || pl["provider_message_id"] != "msg-"+cmd.Id {
		t.Errorf("sent payload %v", pl)
	}
	if r := h.record("acme", cmd.Id); r.State != StateSent || r.Replay != marker || r.Reason != "" || r.Error != "" {
		t.Errorf("record %+v", r)
	}

	// The same replay again: dropped by the stream within the duplicate
	// window, answered by the record past it.
	if _, pub := h.replay(first, ""); !pub.Duplicate {
		t.Fatalf("the same replay stored twice: %+v", pub)
	}
	h.replay(first, "past-the-window")
	natstest.Eventually(t, 10*time.Second, "replay acknowledged", func() bool { return h.pending() == 0 })
	if n := p.count(cmd.Id); n != 2 {
		t.Fatalf("provider called %d times after the replay came back, want 2", n)
	}
	if n := len(h.events("acme")); n != 2 {
		t.Errorf("%d outcome events, want 2", n)
	}
	if n := len(h.letters()); n != 1 {
		t.Errorf("%d dead letters, want 1", n)
	}
}

// A replay of a command that was sent sends nothing: the sent event is
// published again (and dropped as a duplicate).
func TestReplayOfASentCommand(t *testing.T) {
	h := newHarness(t)
	p := &provider{}
	h.start(p, testConfig(), Accounts{})
	cmd := command("acme", "ev2:welcome:mail")
	h.publish(cmd)
	h.waitEvents("acme", 1)

	subject, _ := bus.OutboundSubject(testEnv, "acme", bus.ChannelEmail)
	data := mustMarshal(t, cmd)
	hdr := nats.Header{}
	hdr.Set(bus.HeaderCommandID, cmd.Id)
	hdr.Set(bus.HeaderReplay, bus.ReplayMarker(41))
	if _, err := h.rt.Publisher.Publish(context.Background(), subject, bus.ReplayMsgID("acme:"+cmd.Id, bus.ReplayMarker(41)), data, hdr); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 10*time.Second, "replay acknowledged", func() bool { return h.pending() == 0 })
	if n := p.count(cmd.Id); n != 1 {
		t.Fatalf("provider called %d times, want 1", n)
	}
	if want := []string{"email.sent ev2:welcome:mail:sent"}; !sameList(h.outcomes("acme"), want) {
		t.Fatalf("outcome events %q, want %q", h.outcomes("acme"), want)
	}
	if r := h.record("acme", cmd.Id); r.State != StateSent || r.Replay != "" {
		t.Errorf("record %+v", r)
	}
	if n := len(h.letters()); n != 0 {
		t.Errorf("%d dead letters, want 0", n)
	}
}

// A replay that fails again gets attempts of its own, a failed event of its
// own and a new dead letter; that replay coming back is answered by the
// record. The new dead letter replayed once the provider is back sends the
// command.
func TestReplayFailsAgain(t *testing.T) {
	h := newHarness(t)
	var fixed atomic.Bool
	p := switchable(&fixed, &ProviderError{Status: 503, Message: "unavailable", Retryable: true})
	cfg := testConfig()
	cfg.MaxAttempts = 2
	h.start(p, cfg, Accounts{})
	cmd := command("acme", "ev3:welcome:mail")
	h.publish(cmd)
	first := h.waitLetters(1)[0]
	if n := p.count(cmd.Id); n != 2 {
		t.Fatalf("provider called %d times, want MaxAttempts 2", n)
	}

	marker1, _ := h.replay(first, "")
	letters := h.waitLetters(2)
	second := letters[1]
	if n := p.count(cmd.Id); n != 4 {
		t.Fatalf("provider called %d times, want 2 more for the replay", n)
	}
	want := []string{"email.failed ev3:welcome:mail:failed", "email.failed ev3:welcome:mail:failed/replay/" + marker1}
	natstest.Eventually(t, 10*time.Second, "the replay's failed event", func() bool { return sameList(h.outcomes("acme"), want) })
	if pl := payload(t, h.events("acme")[1]); pl["reason"] != ReasonExhausted || pl["attempts"] != float64(2) || pl["replay"] != marker1 {
		t.Errorf("failed payload of the replay %v", pl)
	}
	if second.Sequence == first.Sequence || second.Header.Get(bus.HeaderReplay) != marker1 ||
		!strings.HasPrefix(second.Header.Get(bus.HeaderDLQReason), ReasonExhausted) {
		t.Errorf("second dead letter %d %v", second.Sequence, second.Header)
	}
	if r := h.record("acme", cmd.Id); r.State != StateFailed || r.Replay != marker1 || r.Attempts != 2 {
		t.Errorf("record %+v", r)
	}

	// The same replay stored again (past the duplicate window): the record
	// answers it, nothing is sent.
	h.replay(first, "past-the-window")
	natstest.Eventually(t, 10*time.Second, "replay acknowledged", func() bool { return h.pending() == 0 })
	if n := p.count(cmd.Id); n != 4 {
		t.Fatalf("provider called %d times after the replay came back, want 4", n)
	}
	if got := h.outcomes("acme"); !sameList(got, want) {
		t.Fatalf("outcome events %q, want %q", got, want)
	}

	fixed.Store(true)
	marker2, _ := h.replay(second, "")
	want = append(want, "email.sent ev3:welcome:mail:sent")
	natstest.Eventually(t, 10*time.Second, "the sent event", func() bool { return sameList(h.outcomes("acme"), want) })
	if n := p.count(cmd.Id); n != 5 {
		t.Fatalf("provider called %d times, want 5", n)
	}
	if r := h.record("acme", cmd.Id); r.State != StateSent || r.Replay != marker2 || r.Attempts != 1 {
		t.Errorf("record %+v", r)
	}
}

// A command dead-lettered because its outcome is unknown (the sender
// stopped between the provider's answer and its record) is sent again when
// an operator replays it.
func TestReplayOfAnUnknownOutcome(t *testing.T) {
	h := newHarness(t)
	p := &provider{}
	cfg := testConfig()
	crashed := make(chan struct{})
	cfg.Faults = &Faults{AfterAnswer: func(ctx context.Context, id string) bool {
		close(crashed)
		<-ctx.Done()
		return true
	}}
	first := h.start(p, cfg, Accounts{})
	cmd := command("acme", "ev4:welcome:mail")
	h.publish(cmd)
	<-crashed
	first.kill()
	cfg.Faults = nil
	h.start(p, cfg, Accounts{})
	letter := h.waitLetters(1)[0]
	if r := h.record("acme", cmd.Id); r.State != StateFailed || r.Reason != ReasonUnknown {
		t.Fatalf("record %+v, want failed as %s", r, ReasonUnknown)
	}

	h.replay(letter, "")
	want := []string{"email.failed ev4:welcome:mail:failed", "email.sent ev4:welcome:mail:sent"}
	natstest.Eventually(t, 10*time.Second, "the sent event", func() bool { return sameList(h.outcomes("acme"), want) })
	if n := p.count(cmd.Id); n != 2 {
		t.Fatalf("provider called %d times, want 2", n)
	}
}

// A replay marker that cannot go into an event id dead-letters the command
// without sending it.
func TestInvalidReplayMarker(t *testing.T) {
	h := newHarness(t)
	p := &provider{}
	h.start(p, testConfig(), Accounts{})
	cmd := command("acme", "ev5:welcome:mail")
	subject, _ := bus.OutboundSubject(testEnv, "acme", bus.ChannelEmail)
	hdr := nats.Header{}
	hdr.Set(bus.HeaderReplay, "dlq 1")
	if _, err := h.rt.Publisher.Publish(context.Background(), subject, "bad-replay", mustMarshal(t, cmd), hdr); err != nil {
		t.Fatal(err)
	}
	l := h.waitLetters(1)[0]
	if reason := l.Header.Get(bus.HeaderDLQReason); !strings.Contains(reason, "replay marker") {
		t.Errorf("dead letter reason %q", reason)
	}
	if n := p.count(cmd.Id); n != 0 {
		t.Errorf("provider called %d times, want 0", n)
	}
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
