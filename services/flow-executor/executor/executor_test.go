package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/natstest"
	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/pkg/service/servicetest"
	"github.com/greentic/events/pkg/tenant"
	"github.com/greentic/events/pkg/tenant/tenantkv"
)

const handleEvent = `
name: handle_event
version: "1.0"
nodes:
  - id: on_order
    type: branch
    config:
      conditions:
        - expression: "event.event_type == 'order.created'"
          next: send_confirmation
        - expression: "event.event_type == 'order.shipped'"
          next: send_tracking
  - id: send_confirmation
    type: respond
    config:
      body: { message: "Order {{ event.payload.id }} confirmed" }
  - id: send_tracking
    type: respond
    config:
      body: { message: "Order {{ event.payload.id }} shipped" }
triggers:
  - type: event
    event_type: "order.*"
    target: on_order
`

func testConfig() Config {
	return Config{Concurrency: 4, TenantConcurrency: 2, MaxParked: 1000, MaxResultHops: 4, HTTPTimeout: 5 * time.Second, AckWait: time.Second, MaxAttempts: 5, RunTimeout: 500 * time.Millisecond}
}

func putFlow(t *testing.T, rt *service.Runtime, tenantID, name, doc string) {
	t.Helper()
	ctx := context.Background()
	store, err := tenantkv.Open(ctx, rt.JS, rt.Topology)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.PutTenant(ctx, tenant.Tenant{ID: tenantID}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.PutFlow(ctx, tenantID, name, []byte(doc)); err != nil {
		t.Fatal(err)
	}
}

func publish(t *testing.T, rt *service.Runtime, tenantID, id, typ string) {
	t.Helper()
	payload, _ := json.Marshal(map[string]string{"id": id})
	_, err := rt.Publisher.PublishEvent(context.Background(), &eventsv1.Event{
		Id: id, EventType: typ, Tenant: tenantID, Payload: payload, Timestamp: time.Now().UnixMilli(),
	})
	if err != nil {
		t.Fatal(err)
	}
}

// results collects every stored result of the environment, by subject.
func results(t *testing.T, rt *service.Runtime) map[string][]*eventsv1.FlowResult {
	t.Helper()
	ctx := context.Background()
	s, err := rt.JS.Stream(ctx, rt.Topology.EventsStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter("greentic.events.dev.*.>"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]*eventsv1.FlowResult{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if !strings.HasSuffix(m.Subject, ".result") {
			continue
		}
		r := &eventsv1.FlowResult{}
		if err := proto.Unmarshal(m.Data, r); err != nil {
			t.Fatalf("result on %s does not decode: %v", m.Subject, err)
		}
		out[m.Subject] = append(out[m.Subject], r)
	}
	return out
}

// startExecutor runs one executor with the handle_event flow of tenant demo
// on a fresh JetStream and returns its runtime.
func startExecutor(t *testing.T) *service.Runtime {
	t.Helper()
	rt := servicetest.Runtime(t, natstest.RunServer(t).URL(), "dev")
	putFlow(t, rt, "demo", "handle_event", handleEvent)
	servicetest.Go(t, func(ctx context.Context) error { return Serve(ctx, rt, testConfig()) })
	return rt
}

func TestExecutorRunsMatchingFlows(t *testing.T) {
	rt := startExecutor(t)

	publish(t, rt, "demo", "o-1", "order.created")
	publish(t, rt, "demo", "o-2", "order.shipped")
	publish(t, rt, "demo", "u-1", "user.created")   // no trigger matches
	publish(t, rt, "other", "o-3", "order.created") // tenant without flows

	created := "greentic.events.dev.demo.order.created.result"
	shipped := "greentic.events.dev.demo.order.shipped.result"
	natstest.Eventually(t, 15*time.Second, "two results", func() bool {
		r := results(t, rt)
		return len(r[created]) == 1 && len(r[shipped]) == 1
	})
	r := results(t, rt)
	got := r[created][0]
	if got.Status != eventsv1.FlowStatus_FLOW_STATUS_OK || got.Flow != "handle_event" || got.EventId != "o-1" {
		t.Fatalf("result %+v", got)
	}
	var out map[string]string
	if err := json.Unmarshal(got.Output, &out); err != nil || out["message"] != "Order o-1 confirmed" {
		t.Fatalf("output %s (%v), want the confirmation", got.Output, err)
	}
	if len(got.Trace) != 2 || got.Trace[0].Id != "on_order" || got.Trace[1].Id != "send_confirmation" {
		t.Fatalf("trace %v, want on_order then send_confirmation", got.Trace)
	}
	if err := json.Unmarshal(r[shipped][0].Output, &out); err != nil || out["message"] != "Order o-2 shipped" {
		t.Fatalf("shipped output %s", r[shipped][0].Output)
	}
	// Events without a matching flow are consumed without a result, and
	// results themselves never trigger flows.
	natstest.Eventually(t, 15*time.Second, "every event acked", func() bool {
		c, err := rt.JS.Consumer(context.Background(), rt.Topology.EventsStream(), rt.Topology.Durable(Name))
		if err != nil {
			return false
		}
		info, err := c.Info(context.Background())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
	if n := len(results(t, rt)); n != 2 {
		t.Fatalf("%d result subjects, want 2", n)
	}
}

func TestExecutorHotReloadsFlows(t *testing.T) {
	rt := startExecutor(t)

	publish(t, rt, "demo", "o-1", "order.created")
	subject := "greentic.events.dev.demo.order.created.result"
	natstest.Eventually(t, 15*time.Second, "first result", func() bool { return len(results(t, rt)[subject]) == 1 })

	putFlow(t, rt, "demo", "handle_event", strings.ReplaceAll(handleEvent, "confirmed", "accepted"))
	// The executor picks the change up without restart.
	natstest.Eventually(t, 15*time.Second, "result of the changed flow", func() bool {
		publish(t, rt, "demo", "o-"+time.Now().Format("150405.000000000"), "order.created")
		for _, r := range results(t, rt)[subject] {
			if strings.Contains(string(r.Output), "accepted") {
				return true
			}
		}
		time.Sleep(100 * time.Millisecond)
		return false
	})
}

// TestExecutorCrashBetweenReceiveAndAck kills an executor after it received
// an event and before it acknowledged it: a second replica processes the
// event, and exactly one result is stored.
func TestExecutorCrashBetweenReceiveAndAck(t *testing.T) {
	srv := natstest.RunServer(t)
	admin := servicetest.Runtime(t, srv.URL(), "dev")
	putFlow(t, admin, "demo", "handle_event", handleEvent)

	crashed := servicetest.Runtime(t, srv.URL(), "dev")
	received := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	cfgA := testConfig()
	cfgA.beforeRun = func() {
		once.Do(func() { close(received) })
		<-release
	}
	// The killed replica may stop with an error (its connection is gone);
	// it only has to stop.
	ctxA, cancelA := context.WithCancel(context.Background())
	doneA := make(chan error, 1)
	go func() { doneA <- Serve(ctxA, crashed, cfgA) }()
	stopA := func() {
		cancelA()
		select {
		case <-doneA:
		case <-time.After(15 * time.Second):
			t.Fatal("the killed executor did not stop")
		}
	}
	t.Cleanup(cancelA)

	publish(t, admin, "demo", "o-1", "order.created")
	select {
	case <-received:
	case <-time.After(15 * time.Second):
		t.Fatal("first executor never received the event")
	}
	// The process dies: its connection is gone before it could ack.
	crashed.Conn.Close()
	close(release)
	stopA()

	if n := len(results(t, admin)); n != 0 {
		t.Fatalf("%d results before the restart, want 0", n)
	}
	restarted := servicetest.Runtime(t, srv.URL(), "dev")
	servicetest.Go(t, func(ctx context.Context) error { return Serve(ctx, restarted, testConfig()) })
	subject := "greentic.events.dev.demo.order.created.result"
	natstest.Eventually(t, 15*time.Second, "the result from the restarted executor", func() bool { return len(results(t, admin)[subject]) >= 1 })
	// Let any further redelivery happen, then check nothing doubled.
	time.Sleep(1500 * time.Millisecond)
	if got := results(t, admin)[subject]; len(got) != 1 || got[0].EventId != "o-1" {
		t.Fatalf("results %v, want exactly one for o-1", got)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"concurrency", func(c *Config) { c.Concurrency = 0 }, "GREENTIC_CONCURRENCY"},
		{"ack wait", func(c *Config) { c.AckWait = time.Millisecond }, "GREENTIC_ACK_WAIT"},
		{"attempts", func(c *Config) { c.MaxAttempts = 0 }, "GREENTIC_MAX_ATTEMPTS"},
		{"run timeout above ack wait", func(c *Config) { c.RunTimeout = 2 * time.Second }, "GREENTIC_RUN_TIMEOUT"},
		{"tenant concurrency above concurrency", func(c *Config) { c.TenantConcurrency = 5 }, "GREENTIC_TENANT_CONCURRENCY"},
		{"tenant concurrency zero", func(c *Config) { c.TenantConcurrency = 0 }, "GREENTIC_TENANT_CONCURRENCY"},
		{"max parked", func(c *Config) { c.MaxParked = 0 }, "GREENTIC_MAX_PARKED"},
		{"result hops", func(c *Config) { c.MaxResultHops = 17 }, "GREENTIC_MAX_RESULT_HOPS"},
		{"http timeout", func(c *Config) { c.HTTPTimeout = 0 }, "GREENTIC_HTTP_TIMEOUT"},
		{"http cidrs", func(c *Config) { c.HTTPAllowCIDRs = "10.0.0.0/33" }, "GREENTIC_HTTP_ALLOW_CIDRS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig()
			tt.mod(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tt.want)
			}
		})
	}
	if err := testConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

// Retries of one event must fit in the duplicate window, or a late retry
// would publish effects again.
func TestServeRefusesRetriesLongerThanTheDuplicateWindow(t *testing.T) {
	rt := servicetest.Runtime(t, natstest.RunServer(t).URL(), "dev")
	cfg := testConfig()
	cfg.MaxAttempts = 60 // 5 x 10 minutes of backoff alone: past the 2h window
	err := Serve(context.Background(), rt, cfg)
	if err == nil || !strings.Contains(err.Error(), "duplicate window") || !strings.Contains(err.Error(), "GREENTIC_MAX_ATTEMPTS") {
		t.Fatalf("Serve = %v, want an error about the duplicate window", err)
	}
}

// By default an http node cannot reach loopback: the result names the
// refused address.
func TestHTTPNodeRefusesLoopbackByDefault(t *testing.T) {
	svc, calls := flakyService(t, 0)
	cfg := testConfig()
	rt := startWith(t, cfg, map[string]string{"lookup": fmt.Sprintf(lookupFlow, svc.URL)})
	publish(t, rt, "demo", "o-1", "order.created")
	subject := "greentic.events.dev.demo.order.created.result"
	natstest.Eventually(t, 15*time.Second, "the result", func() bool { return len(results(t, rt)[subject]) == 1 })
	r := results(t, rt)[subject][0]
	if r.Status != eventsv1.FlowStatus_FLOW_STATUS_ERROR || !strings.Contains(r.Error, "loopback") {
		t.Fatalf("result %v, want an error naming the loopback address", r)
	}
	if calls.Load() != 0 {
		t.Fatalf("the service was called %d times", calls.Load())
	}
}
