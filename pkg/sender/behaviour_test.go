package sender

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/event"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/natstest"
	"github.com/greentic/events/pkg/tenant"
)

func TestSentOnceAndReported(t *testing.T) {
	h := newHarness(t)
	p := &provider{}
	h.start(p, testConfig(), Accounts{Default: map[string]string{"api_key": "k"}})
	cmd := command("acme", "ev1:welcome:mail")
	h.publish(cmd)
	evs := h.waitEvents("acme", 1)
	if len(evs) != 1 || evs[0].EventType != "email.sent" {
		t.Fatalf("events = %v, want one email.sent", evs)
	}
	ev := evs[0]
	if ev.Id != "ev1:welcome:mail:sent" || ev.Source != "greentic/email-sender" {
		t.Errorf("id %q source %q", ev.Id, ev.Source)
	}
	if ev.Metadata[event.MetaCommandID] != cmd.Id || ev.Metadata[event.MetaOriginEventID] != "ev1" || ev.Metadata[event.MetaProviderMessageID] != "msg-"+cmd.Id {
		t.Errorf("metadata = %v", ev.Metadata)
	}
	pl := payload(t, ev)
	if pl["provider_message_id"] != "msg-"+cmd.Id || pl["flow"] != "welcome" || pl["attempts"] != float64(1) {
		t.Errorf("payload = %v", pl)
	}
	if to, _ := pl["to"].([]any); len(to) != 1 || to[0] != "ann@example.com" {
		t.Errorf("payload to = %v", pl["to"])
	}
	if r := h.record("acme", cmd.Id); r.State != StateSent || r.ProviderID != "msg-"+cmd.Id {
		t.Errorf("record = %+v", r)
	}

	// The same command again (a replay, or a publish outside the duplicate
	// window): acknowledged, not sent.
	h.redeliver(cmd, "acme")
	natstest.Eventually(t, 10*time.Second, "redelivered command acknowledged", func() bool { return h.pending() == 0 })
	if n := p.count(cmd.Id); n != 1 {
		t.Fatalf("provider called %d times, want 1", n)
	}
	if evs := h.events("acme"); len(evs) != 1 {
		t.Errorf("%d outcome events after the redelivery, want 1", len(evs))
	}
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	h := newHarness(t)
	p := &provider{answer: func(n int, cmd *eventsv1.EmailCommand) (Receipt, error) {
		if n == 1 {
			return Receipt{}, &ProviderError{Status: 429, Message: "too many requests", RetryAfter: 1500 * time.Millisecond, Retryable: true}
		}
		return Receipt{ProviderID: "m2"}, nil
	}}
	h.start(p, testConfig(), Accounts{})
	h.publish(command("acme", "ev2:welcome:mail"))
	evs := h.waitEvents("acme", 1)
	if evs[0].EventType != "email.sent" || payload(t, evs[0])["attempts"] != float64(2) {
		t.Fatalf("event %s %s", evs[0].EventType, evs[0].Payload)
	}
	calls := p.snapshot()
	if len(calls) != 2 {
		t.Fatalf("%d calls, want 2", len(calls))
	}
	if gap := calls[1].at.Sub(calls[0].at); gap < 1400*time.Millisecond {
		t.Errorf("retried after %s, before the provider's Retry-After of 1.5s", gap)
	}
}

func TestPermanentFailureDeadLetters(t *testing.T) {
	h := newHarness(t)
	p := &provider{answer: func(int, *eventsv1.EmailCommand) (Receipt, error) {
		return Receipt{}, &ProviderError{Status: 400, Code: "to", Message: "Does not contain a valid address."}
	}}
	h.start(p, testConfig(), Accounts{})
	cmd := command("acme", "ev3:welcome:mail")
	h.publish(cmd)
	evs := h.waitEvents("acme", 1)
	if evs[0].EventType != "email.failed" {
		t.Fatalf("event type %s", evs[0].EventType)
	}
	pl := payload(t, evs[0])
	if pl["reason"] != ReasonRejected || !strings.Contains(pl["error"].(string), "Does not contain a valid address.") {
		t.Errorf("payload = %v", pl)
	}
	var letters int
	natstest.Eventually(t, 10*time.Second, "dead letter", func() bool { letters = len(h.letters()); return letters > 0 })
	l := h.letters()[0]
	if reason := l.Header.Get(bus.HeaderDLQReason); !strings.Contains(reason, "provider answered 400") || !strings.Contains(reason, "valid address") {
		t.Errorf("dead letter reason %q", reason)
	}
	if n := p.count(cmd.Id); n != 1 {
		t.Errorf("provider called %d times, want 1", n)
	}
}

func TestRetriesExhausted(t *testing.T) {
	h := newHarness(t)
	p := &provider{answer: func(int, *eventsv1.EmailCommand) (Receipt, error) {
		return Receipt{}, &ProviderError{Status: 503, Message: "unavailable", Retryable: true}
	}}
	cfg := testConfig()
	cfg.MaxAttempts = 3
	h.start(p, cfg, Accounts{})
	cmd := command("acme", "ev4:welcome:mail")
	h.publish(cmd)
	evs := h.waitEvents("acme", 1)
	if pl := payload(t, evs[0]); evs[0].EventType != "email.failed" || pl["reason"] != ReasonExhausted {
		t.Fatalf("event %s %v", evs[0].EventType, pl)
	}
	natstest.Eventually(t, 10*time.Second, "dead letter", func() bool { return len(h.letters()) == 1 })
	if n := p.count(cmd.Id); n != 3 {
		t.Errorf("provider called %d times, want MaxAttempts 3", n)
	}
}

// TestCrashAfterRecord: the sender dies after recording the send, before
// the ack. The command comes back to another replica, which does not send
// it again but reports it.
func TestCrashAfterRecord(t *testing.T) {
	h := newHarness(t)
	p := &provider{}
	cfg := testConfig()
	crashed := make(chan struct{})
	cfg.Faults = &Faults{AfterRecord: func(ctx context.Context, id string) bool {
		close(crashed)
		<-ctx.Done()
		return true
	}}
	first := h.start(p, cfg, Accounts{})
	cmd := command("acme", "ev5:welcome:mail")
	h.publish(cmd)
	<-crashed
	first.kill()
	if r := h.record("acme", cmd.Id); r.State != StateSent {
		t.Fatalf("record after the crash = %+v", r)
	}
	if evs := h.events("acme"); len(evs) != 0 {
		t.Fatalf("outcome published before the crash point: %v", evs)
	}
	h.start(p, testConfig(), Accounts{})
	evs := h.waitEvents("acme", 1)
	if evs[0].EventType != "email.sent" {
		t.Fatalf("event %s", evs[0].EventType)
	}
	natstest.Eventually(t, 10*time.Second, "command acknowledged", func() bool { return h.pending() == 0 })
	if n := p.count(cmd.Id); n != 1 {
		t.Fatalf("provider called %d times, want 1", n)
	}
}

// TestCrashAfterAnswer: the sender dies after the provider accepted the
// message, before recording it. Whether it was sent is unknown; the
// policy decides.
func TestCrashAfterAnswer(t *testing.T) {
	for _, policy := range []string{UnknownDeadLetter, UnknownSend} {
		t.Run(policy, func(t *testing.T) {
			h := newHarness(t)
			p := &provider{}
			cfg := testConfig()
			cfg.UnknownOutcome = policy
			crashed := make(chan struct{})
			cfg.Faults = &Faults{AfterAnswer: func(ctx context.Context, id string) bool {
				close(crashed)
				<-ctx.Done()
				return true
			}}
			first := h.start(p, cfg, Accounts{})
			cmd := command("acme", "ev6:welcome:mail")
			h.publish(cmd)
			<-crashed
			first.kill()
			if r := h.record("acme", cmd.Id); r.State != StateSending {
				t.Fatalf("record after the crash = %+v", r)
			}
			cfg.Faults = nil
			h.start(p, cfg, Accounts{})
			evs := h.waitEvents("acme", 1)
			natstest.Eventually(t, 10*time.Second, "command settled", func() bool { return h.pending() == 0 })
			switch policy {
			case UnknownDeadLetter:
				if pl := payload(t, evs[0]); evs[0].EventType != "email.failed" || pl["reason"] != ReasonUnknown {
					t.Fatalf("event %s %v, want email.failed outcome_unknown", evs[0].EventType, pl)
				}
				letters := h.letters()
				if len(letters) != 1 || !strings.HasPrefix(letters[0].Header.Get(bus.HeaderDLQReason), ReasonUnknown) {
					t.Fatalf("dead letters: %d", len(letters))
				}
				if n := p.count(cmd.Id); n != 1 {
					t.Fatalf("provider called %d times, want 1", n)
				}
			case UnknownSend:
				if evs[0].EventType != "email.sent" || payload(t, evs[0])["attempts"] != float64(2) {
					t.Fatalf("event %s %s", evs[0].EventType, evs[0].Payload)
				}
				if n := p.count(cmd.Id); n != 2 {
					t.Fatalf("provider called %d times, want 2 (sent again by policy)", n)
				}
			}
		})
	}
}

func TestTenantIsolationAndAccounts(t *testing.T) {
	h := newHarness(t,
		tenant.Tenant{ID: "acme", Accounts: map[string]tenant.Account{"marketing": {Provider: tenant.ProviderSendGrid, SecretRef: "acme-mkt"}, "sms": {Provider: tenant.ProviderTwilio, SecretRef: "acme-sms"}}},
		tenant.Tenant{ID: "globex"},
		tenant.Tenant{ID: "initech", Suspended: true})
	p := &provider{}
	secrets := map[string]string{"GREENTIC_SECRET_ACME_MKT_API_KEY": "acme-key"}
	h.start(p, testConfig(), Accounts{Default: map[string]string{"api_key": "deployment-key"}, Fields: []string{"api_key"},
		Lookup: func(n string) (string, bool) { v, ok := secrets[n]; return v, ok }})

	own := command("acme", "a1:welcome:mail")
	own.Account = "marketing"
	h.publish(own)
	other := command("globex", "g1:welcome:mail")
	other.Account = "marketing" // acme's account: globex has none
	h.publish(other)
	wrongKind := command("acme", "a2:welcome:mail")
	wrongKind.Account = "sms"
	h.publish(wrongKind)
	suspended := command("initech", "i1:welcome:mail")
	h.publish(suspended)
	// A command on acme's subject that claims to be globex's.
	forged := command("globex", "f1:welcome:mail")
	b, _ := proto.Marshal(forged)
	subject, _ := bus.OutboundSubject(testEnv, "acme", bus.ChannelEmail)
	if _, err := h.rt.Publisher.Publish(context.Background(), subject, "forged", b, nil); err != nil {
		t.Fatal(err)
	}

	natstest.Eventually(t, 15*time.Second, "every command settled", func() bool { return h.pending() == 0 })
	calls := p.snapshot()
	if len(calls) != 1 || calls[0].id != own.Id {
		t.Fatalf("provider calls %+v, want only acme's own command", calls)
	}
	if c := calls[0].account; c.Key != "acme/marketing" || c.Credentials["api_key"] != "acme-key" {
		t.Errorf("account = %+v", c)
	}
	reasons := map[string]string{}
	for _, tn := range []string{"acme", "globex", "initech"} {
		for _, ev := range h.events(tn) {
			reasons[ev.Metadata[event.MetaCommandID]] = fmt.Sprint(ev.EventType, " ", payload(t, ev)["reason"])
		}
	}
	want := map[string]string{
		other.Id:     "email.failed " + ReasonInvalidCommand,
		wrongKind.Id: "email.failed " + ReasonInvalidCommand,
		suspended.Id: "email.failed " + ReasonTenant,
	}
	for id, w := range want {
		if reasons[id] != w {
			t.Errorf("%s: %q, want %q", id, reasons[id], w)
		}
	}
	if len(h.letters()) != 4 {
		t.Errorf("%d dead letters, want 4 (three failed commands and the forged one)", len(h.letters()))
	}
}

func TestTenantRateLimit(t *testing.T) {
	h := newHarness(t, tenant.Tenant{ID: "acme"}, tenant.Tenant{ID: "globex"})
	p := &provider{}
	cfg := testConfig()
	cfg.TenantRate = RateLimit{PerSecond: 4, Burst: 1}
	h.start(p, cfg, Accounts{})
	for i := range 5 {
		h.publish(command("acme", "a"+string(rune('0'+i))+":welcome:mail"))
	}
	h.publish(command("globex", "g0:welcome:mail"))
	natstest.Eventually(t, 15*time.Second, "all sent", func() bool { return len(p.snapshot()) == 6 })
	var first, last, globex time.Time
	for _, c := range p.snapshot() {
		switch {
		case strings.HasPrefix(c.id, "g"):
			globex = c.at
		case first.IsZero():
			first, last = c.at, c.at
		default:
			last = c.at
		}
	}
	// Five sends at 4/s with a burst of 1 take at least a second.
	if span := last.Sub(first); span < 900*time.Millisecond {
		t.Errorf("acme's 5 sends took %s, faster than its limit of 4/s", span)
	}
	if !globex.Before(last) {
		t.Errorf("globex's send waited behind acme's limit")
	}
}

func TestRecordClaimIsExclusive(t *testing.T) {
	h := newHarness(t)
	kv, err := h.rt.Topology.KeyValue(context.Background(), h.js, bus.BucketSends)
	if err != nil {
		t.Fatal(err)
	}
	st := states{kv: kv}
	key := RecordKey("email", "acme", "x:y:z")
	rev, err := st.put(context.Background(), key, Record{State: StateSending}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.put(context.Background(), key, Record{State: StateSending}, 0); err != errConflict {
		t.Fatalf("second claim: %v, want a conflict", err)
	}
	if _, err := st.put(context.Background(), key, Record{State: StateSent}, rev); err != nil {
		t.Fatal(err)
	}
	if _, err := st.put(context.Background(), key, Record{State: StateRetry}, rev); err != errConflict {
		t.Fatalf("stale update: %v, want a conflict", err)
	}
	if RecordKey("email", "acme", "x:y:z") == RecordKey("email", "globex", "x:y:z") {
		t.Error("two tenants' commands share a record")
	}
}

func TestBackoff(t *testing.T) {
	c := testConfig()
	c.BackoffBase, c.BackoffMax, c.MaxRetryAfter = time.Second, 8*time.Second, time.Minute
	for _, tc := range []struct {
		n          int
		retryAfter time.Duration
		want       time.Duration
	}{
		{1, 0, time.Second}, {2, 0, 2 * time.Second}, {4, 0, 8 * time.Second}, {9, 0, 8 * time.Second},
		{1, 30 * time.Second, 30 * time.Second}, {1, time.Hour, time.Minute}, {4, time.Second, 8 * time.Second},
	} {
		if got := c.backoff(tc.n, tc.retryAfter); got != tc.want {
			t.Errorf("backoff(%d, %s) = %s, want %s", tc.n, tc.retryAfter, got, tc.want)
		}
	}
}
