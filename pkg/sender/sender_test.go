package sender

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/event"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/natstest"
	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/pkg/service/servicetest"
	"github.com/greentic/events/pkg/tenant"
	"github.com/greentic/events/pkg/tenant/tenantkv"
)

const testEnv = "test"

// provider stands in for SendGrid at the Provider interface; the SDK
// adapters are tested against HTTP fakes in the sender services. answer
// decides the outcome of the n-th call (1-based).
type provider struct {
	mu     sync.Mutex
	calls  []providerCall
	answer func(n int, cmd *eventsv1.EmailCommand) (Receipt, error)
}

type providerCall struct {
	id      string
	account Account
	at      time.Time
}

func (p *provider) Name() string { return "fake" }

func (p *provider) Send(_ context.Context, cmd *eventsv1.EmailCommand, acct Account) (Receipt, error) {
	p.mu.Lock()
	p.calls = append(p.calls, providerCall{id: cmd.Id, account: acct, at: time.Now()})
	n := len(p.calls)
	p.mu.Unlock()
	if p.answer == nil {
		return Receipt{ProviderID: "msg-" + cmd.Id, Status: "accepted"}, nil
	}
	return p.answer(n, cmd)
}

func (p *provider) count(id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.calls {
		if c.id == id {
			n++
		}
	}
	return n
}

func (p *provider) snapshot() []providerCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]providerCall(nil), p.calls...)
}

var emailChannel = Channel[*eventsv1.EmailCommand]{
	Name: bus.ChannelEmail,
	New:  func() *eventsv1.EmailCommand { return &eventsv1.EmailCommand{} },
	Summary: func(c *eventsv1.EmailCommand) map[string]any {
		to := make([]string, len(c.To))
		for i, a := range c.To {
			to[i] = a.Email
		}
		return map[string]any{"to": to}
	},
}

func testConfig() Config {
	return Config{
		Concurrency: 8, TenantConcurrency: 4, SendTimeout: 2 * time.Second, MaxAttempts: 3,
		BackoffBase: 50 * time.Millisecond, BackoffMax: time.Second, MaxRetryAfter: 5 * time.Second,
		UnknownOutcome: UnknownDeadLetter, AckWait: time.Second, leaseGrace: 100 * time.Millisecond,
	}
}

type harness struct {
	t   *testing.T
	url string
	rt  *service.Runtime // for publishing and reading
	js  jetstream.JetStream
}

func newHarness(t *testing.T, tenants ...tenant.Tenant) *harness {
	t.Helper()
	srv := natstest.RunServer(t)
	rt := servicetest.Runtime(t, srv.URL(), testEnv)
	store, err := tenantkv.Open(context.Background(), rt.JS, rt.Topology)
	if err != nil {
		t.Fatal(err)
	}
	if len(tenants) == 0 {
		tenants = []tenant.Tenant{{ID: "acme"}}
	}
	for _, tn := range tenants {
		if _, err := store.PutTenant(context.Background(), tn); err != nil {
			t.Fatal(err)
		}
	}
	return &harness{t: t, url: srv.URL(), rt: rt, js: rt.JS}
}

// instance is one sender replica with its own connection.
type instance struct {
	rt     *service.Runtime
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func (h *harness) start(p Provider[*eventsv1.EmailCommand], cfg Config, accounts Accounts) *instance {
	h.t.Helper()
	rt := servicetest.Runtime(h.t, h.url, testEnv)
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{rt: rt, cancel: cancel, done: make(chan error, 1)}
	if accounts.Provider == "" {
		accounts.Provider = tenant.ProviderSendGrid
	}
	go func() { in.done <- Serve(ctx, rt, emailChannel, p, accounts, cfg) }()
	h.t.Cleanup(in.kill)
	natstest.Eventually(h.t, 10*time.Second, "sender ready", func() bool {
		select {
		case err := <-in.done:
			h.t.Fatalf("sender stopped: %v", err)
		default:
		}
		return rt.Ready.Has("email_sender_tenants") && len(rt.Ready.Check(context.Background())) == 0
	})
	return in
}

// kill stops the replica as a crash would: its connection closes at once,
// so nothing in flight is acknowledged.
func (in *instance) kill() {
	in.once.Do(func() {
		in.rt.Conn.Close()
		in.cancel()
		<-in.done
	})
}

func command(tenantID, id string) *eventsv1.EmailCommand {
	return &eventsv1.EmailCommand{
		Id:      id,
		Origin:  &eventsv1.CommandOrigin{Tenant: tenantID, EventId: strings.SplitN(id, ":", 2)[0], Flow: "welcome", Node: "mail", Traceparent: event.NewTraceparent()},
		From:    &eventsv1.EmailAddress{Email: "shop@example.com"},
		To:      []*eventsv1.EmailAddress{{Email: "ann@example.com"}},
		Subject: "Welcome", Text: "Hello",
	}
}

func (h *harness) publish(cmd *eventsv1.EmailCommand) {
	h.t.Helper()
	if _, err := h.rt.Publisher.PublishCommand(context.Background(), cmd.Origin.Tenant, bus.ChannelEmail, cmd.Id, cmd.Origin.Traceparent, cmd); err != nil {
		h.t.Fatal(err)
	}
}

// redeliver stores the same command again under another message id, as a
// replay or a publish outside the duplicate window would.
func (h *harness) redeliver(cmd *eventsv1.EmailCommand, tenantID string) {
	h.t.Helper()
	subject, _ := bus.OutboundSubject(testEnv, tenantID, bus.ChannelEmail)
	b, err := proto.Marshal(cmd)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.rt.Publisher.Publish(context.Background(), subject, "again:"+cmd.Id, b, nil); err != nil {
		h.t.Fatal(err)
	}
}

// events returns the events of tenant on greentic.events.test.{tenant}.email.*.
func (h *harness) events(tenantID string) []*eventsv1.Event {
	h.t.Helper()
	var out []*eventsv1.Event
	for _, m := range h.read(h.rt.Topology.EventsStream(), "greentic.events."+testEnv+"."+tenantID+".email.") {
		ev, err := event.Unmarshal(m.Data)
		if err != nil {
			h.t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

// letters returns the dead letters of the email stage.
func (h *harness) letters() []*jetstream.RawStreamMsg {
	h.t.Helper()
	var out []*jetstream.RawStreamMsg
	for _, m := range h.read(h.rt.Topology.DLQStream(), "greentic.dlq."+testEnv+".") {
		if strings.HasSuffix(m.Subject, ".email") {
			out = append(out, m)
		}
	}
	return out
}

// read returns the messages of stream whose subject starts with prefix.
func (h *harness) read(name, prefix string) []*jetstream.RawStreamMsg {
	h.t.Helper()
	ctx := context.Background()
	stream, err := h.js.Stream(ctx, name)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	if info.State.Msgs == 0 {
		return nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err == nil && strings.HasPrefix(m.Subject, prefix) {
			out = append(out, m)
		}
	}
	return out
}

func (h *harness) waitEvents(tenantID string, n int) []*eventsv1.Event {
	h.t.Helper()
	var evs []*eventsv1.Event
	natstest.Eventually(h.t, 15*time.Second, "outcome events", func() bool {
		evs = h.events(tenantID)
		return len(evs) >= n
	})
	return evs
}

func (h *harness) record(tenantID, id string) Record {
	h.t.Helper()
	kv, err := h.rt.Topology.KeyValue(context.Background(), h.js, bus.BucketSends)
	if err != nil {
		h.t.Fatal(err)
	}
	r, _, err := states{kv: kv}.get(context.Background(), RecordKey(bus.ChannelEmail, tenantID, id))
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// pending is the number of commands not yet acknowledged by the senders.
func (h *harness) pending() int {
	h.t.Helper()
	c, err := h.js.Consumer(context.Background(), h.rt.Topology.OutboundStream(), h.rt.Topology.Durable("email-sender"))
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return int(info.NumPending) + info.NumAckPending
}

func payload(t *testing.T, ev *eventsv1.Event) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(ev.Payload, &m); err != nil {
		t.Fatalf("payload of %s: %v", ev.EventType, err)
	}
	return m
}
