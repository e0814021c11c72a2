package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/flow"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/natstest"
	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/pkg/service/servicetest"
)

// startWith runs one executor with cfg after storing the flows (name ->
// YAML) of tenant demo.
func startWith(t *testing.T, cfg Config, flows map[string]string) *service.Runtime {
	t.Helper()
	rt := servicetest.Runtime(t, natstest.RunServer(t).URL(), "dev")
	for name, doc := range flows {
		putFlow(t, rt, "demo", name, doc)
	}
	servicetest.Go(t, func(ctx context.Context) error { return Serve(ctx, rt, cfg) })
	return rt
}

// deadLetter returns the last dead letter of the flow stage for tenant demo.
func deadLetter(t *testing.T, rt *service.Runtime) *jetstream.RawStreamMsg {
	t.Helper()
	s, err := rt.JS.Stream(context.Background(), rt.Topology.DLQStream())
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(context.Background(), "greentic.dlq.dev.demo.flow")
	if err != nil {
		return nil
	}
	return m
}

const brokenFlow = `
name: broken
version: "1"
nodes:
  - { id: parse, type: script, config: { script: "int(event.payload.id)" } }
triggers:
  - { type: event, event_type: order.created, target: parse }
`

// A flow that fails for a reason of its own gets an error result and a
// dead letter naming it; the other flows of the event are not affected.
func TestFailedRunIsDeadLettered(t *testing.T) {
	rt := startWith(t, testConfig(), map[string]string{"broken": brokenFlow, "handle_event": handleEvent})
	publish(t, rt, "demo", "o-1", "order.created")

	subject := "greentic.events.dev.demo.order.created.result"
	natstest.Eventually(t, 15*time.Second, "two results and a dead letter", func() bool {
		return len(results(t, rt)[subject]) == 2 && deadLetter(t, rt) != nil
	})
	byFlow := map[string]*eventsv1.FlowResult{}
	for _, r := range results(t, rt)[subject] {
		byFlow[r.Flow] = r
	}
	if r := byFlow["broken"]; r == nil || r.Status != eventsv1.FlowStatus_FLOW_STATUS_ERROR || !strings.Contains(r.Error, `node "parse"`) {
		t.Fatalf("result of broken: %v", r)
	}
	if r := byFlow["handle_event"]; r == nil || r.Status != eventsv1.FlowStatus_FLOW_STATUS_OK {
		t.Fatalf("result of handle_event: %v", r)
	}
	dl := deadLetter(t, rt)
	if got := dl.Header.Get(bus.HeaderFlows); got != "broken" {
		t.Errorf("dead letter names flows %q, want broken", got)
	}
	if reason := dl.Header.Get(bus.HeaderDLQReason); !strings.Contains(reason, "flow broken:") || !strings.Contains(reason, `node "parse"`) {
		t.Errorf("dead letter reason %q", reason)
	}
	if dl.Header.Get(bus.HeaderDLQPermanent) != "true" {
		t.Errorf("dead letter not marked permanent: %v", dl.Header)
	}
	// The letter holds the original event, for a replay.
	ev := &eventsv1.Event{}
	if err := proto.Unmarshal(dl.Data, ev); err != nil || ev.Id != "o-1" {
		t.Fatalf("dead letter body: %v (%v)", ev, err)
	}
}

// An event carrying the flows header (a replayed dead letter) runs only
// the flows it names.
func TestFlowsHeaderRestrictsTheRun(t *testing.T) {
	rt := startWith(t, testConfig(), map[string]string{"broken": brokenFlow, "handle_event": handleEvent})
	data, err := proto.Marshal(&eventsv1.Event{Id: "o-2", EventType: "order.created", Tenant: "demo", Env: "dev", Payload: []byte(`{"id":"o-2"}`)})
	if err != nil {
		t.Fatal(err)
	}
	h := nats.Header{}
	h.Set(bus.HeaderFlows, "handle_event")
	if _, err := rt.Publisher.Publish(context.Background(), "greentic.events.dev.demo.order.created", "demo:o-2", data, h); err != nil {
		t.Fatal(err)
	}
	subject := "greentic.events.dev.demo.order.created.result"
	natstest.Eventually(t, 15*time.Second, "the result", func() bool { return len(results(t, rt)[subject]) == 1 })
	time.Sleep(300 * time.Millisecond)
	if got := results(t, rt)[subject]; len(got) != 1 || got[0].Flow != "handle_event" {
		t.Fatalf("results %v, want handle_event's only", got)
	}
}

// flakyService fails its first `failures` requests with 503.
func flakyService(t *testing.T, failures int64) (*httptest.Server, *atomic.Int64) {
	var calls atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= failures {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"tier":"gold"}`)
	}))
	t.Cleanup(s.Close)
	return s, &calls
}

const lookupFlow = `
name: lookup
version: "1"
nodes:
  - id: customer
    type: http
    config: { url: "%s/customers/{{ event.payload.id }}" }
    next: done
  - id: done
    type: respond
    config: { body: "{{ nodes.customer.body.tier }}" }
triggers:
  - { type: event, event_type: order.created, target: customer }
`

func retryConfig() Config {
	cfg := testConfig()
	cfg.HTTPAllowCIDRs = "127.0.0.0/8"
	cfg.backoff = []time.Duration{50 * time.Millisecond}
	return cfg
}

// A transient failure (the service answers 503) retries the event later;
// once the service is back the flow succeeds, with one result.
func TestTransientFailureRetriesTheEvent(t *testing.T) {
	svc, calls := flakyService(t, 2)
	rt := startWith(t, retryConfig(), map[string]string{"lookup": fmt.Sprintf(lookupFlow, svc.URL)})
	publish(t, rt, "demo", "o-1", "order.created")

	subject := "greentic.events.dev.demo.order.created.result"
	natstest.Eventually(t, 15*time.Second, "the result", func() bool { return len(results(t, rt)[subject]) == 1 })
	time.Sleep(300 * time.Millisecond)
	got := results(t, rt)[subject]
	if len(got) != 1 || got[0].Status != eventsv1.FlowStatus_FLOW_STATUS_OK || string(got[0].Output) != `"gold"` {
		t.Fatalf("results %v, want one ok result with output \"gold\"", got)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("%d calls to the service, want 3", n)
	}
	if deadLetter(t, rt) != nil {
		t.Error("a dead letter for an event that succeeded")
	}
}

// When the service stays down, the last attempt publishes the error result
// and dead-letters the event.
func TestTransientFailureExhaustsAttempts(t *testing.T) {
	svc, calls := flakyService(t, 1000)
	cfg := retryConfig()
	cfg.MaxAttempts = 3
	rt := startWith(t, cfg, map[string]string{"lookup": fmt.Sprintf(lookupFlow, svc.URL)})
	publish(t, rt, "demo", "o-1", "order.created")

	natstest.Eventually(t, 15*time.Second, "the dead letter", func() bool { return deadLetter(t, rt) != nil })
	got := results(t, rt)["greentic.events.dev.demo.order.created.result"]
	if len(got) != 1 || got[0].Status != eventsv1.FlowStatus_FLOW_STATUS_ERROR || !strings.Contains(got[0].Error, "503") {
		t.Fatalf("results %v, want one error result naming the 503", got)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("%d calls, want one per attempt (3)", n)
	}
	if reason := deadLetter(t, rt).Header.Get(bus.HeaderDLQReason); !strings.Contains(reason, "503") {
		t.Errorf("dead letter reason %q", reason)
	}
}

const reportsFlow = `
name: reports
version: "1"
nodes:
  - { id: on_order, type: respond, config: { body: order } }
  - { id: daily, type: respond, config: { body: "daily {{ event.metadata.timer_trigger }}" } }
  - { id: hourly, type: respond, config: { body: hourly } }
triggers:
  - { type: event, event_type: order.created, target: on_order }
  - { type: timer, cron: "0 9 * * *", target: daily }
  - { type: timer, cron: "@hourly", target: hourly }
`

const tickListener = `
name: ticks
version: "1"
nodes:
  - { id: seen, type: respond, config: { body: "tick {{ event.id }}" } }
triggers:
  - { type: event, event_type: timer.tick, target: seen }
`

func publishEvent(t *testing.T, rt *service.Runtime, ev *eventsv1.Event) {
	t.Helper()
	ev.Tenant, ev.Timestamp = "demo", time.Now().UnixMilli()
	if _, err := rt.Publisher.PublishEvent(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
}

// A tick addressed to a flow's timer trigger runs that trigger's target
// only; a tick addressed to nothing (an ad-hoc schedule) runs the event
// triggers matching its type.
func TestTimerTicks(t *testing.T) {
	rt := startWith(t, testConfig(), map[string]string{"reports": reportsFlow, "ticks": tickListener})
	publishEvent(t, rt, &eventsv1.Event{Id: "demo:flow.reports.1:1795424400", EventType: "timer.tick", Source: flow.TimerSource,
		Metadata: map[string]string{flow.MetaTimerFlow: "reports", flow.MetaTimerTrigger: "1"}})
	publishEvent(t, rt, &eventsv1.Event{Id: "demo:flow.reports.0:1795424400", EventType: "timer.tick", Source: flow.TimerSource,
		Metadata: map[string]string{flow.MetaTimerFlow: "reports", flow.MetaTimerTrigger: "0"}}) // an event trigger: nothing
	publishEvent(t, rt, &eventsv1.Event{Id: "demo:flow.gone.1:1795424400", EventType: "timer.tick", Source: flow.TimerSource,
		Metadata: map[string]string{flow.MetaTimerFlow: "gone", flow.MetaTimerTrigger: "1"}}) // a removed flow: nothing
	publishEvent(t, rt, &eventsv1.Event{Id: "demo:nightly:1795424400", EventType: "timer.tick", Source: flow.TimerSource,
		Metadata: map[string]string{"schedule": "nightly"}})

	subject := "greentic.events.dev.demo.timer.tick.result"
	natstest.Eventually(t, 15*time.Second, "two results", func() bool { return len(results(t, rt)[subject]) >= 2 })
	natstest.Eventually(t, 15*time.Second, "every tick consumed", func() bool {
		c, err := rt.JS.Consumer(context.Background(), rt.Topology.EventsStream(), rt.Topology.Durable(Name))
		if err != nil {
			return false
		}
		info, err := c.Info(context.Background())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
	got := map[string]string{}
	for _, r := range results(t, rt)[subject] {
		got[r.Flow+" "+r.Trigger] = string(r.Output)
	}
	want := map[string]string{
		"reports 1:daily": `"daily 1"`,
		"ticks 0:seen":    `"tick demo:nightly:1795424400"`,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("results %v, want %v", got, want)
	}
}

const auditFlow = `
name: audit
version: "1"
nodes:
  - { id: log, type: respond, config: { body: "{{ event.payload.flow }}:{{ event.payload.status }}:{{ event.metadata.result_hops }}" } }
triggers:
  - { type: event, event_type: order.created.result, target: log }
`

const selfFlow = `
name: self
version: "1"
nodes:
  - { id: log, type: respond, config: { body: "{{ event.event_type }}" } }
triggers:
  - { type: event, event_type: order.created, target: log }
  - { type: event, event_type: "order.*.result", target: log }
`

const deepFlow = `
name: deep
version: "1"
nodes:
  - { id: log, type: respond, config: { body: "{{ event.payload.flow }}" } }
triggers:
  - { type: event, event_type: order.created.result.result, target: log }
`

// Results are events too: a flow may trigger on them, never on its own
// result, and chains stop at MaxResultHops.
func TestResultsTriggerFlows(t *testing.T) {
	cfg := testConfig()
	cfg.MaxResultHops = 1
	rt := startWith(t, cfg, map[string]string{"handle_event": handleEvent, "audit": auditFlow, "self": selfFlow, "deep": deepFlow})
	publish(t, rt, "demo", "o-1", "order.created")

	first := "greentic.events.dev.demo.order.created.result"
	second := "greentic.events.dev.demo.order.created.result.result"
	// order.created runs handle_event and self; their two results run
	// audit twice and self once (on handle_event's result, not its own).
	natstest.Eventually(t, 15*time.Second, "the results", func() bool {
		r := results(t, rt)
		return len(r[first]) == 2 && len(r[second]) == 3
	})
	time.Sleep(500 * time.Millisecond) // nothing more may come
	r := results(t, rt)
	if len(r[first]) != 2 || len(r[second]) != 3 {
		t.Fatalf("%d first and %d second results, want 2 and 3", len(r[first]), len(r[second]))
	}
	got := map[string]string{}
	for _, res := range r[second] {
		got[res.Flow+" "+res.EventId] = string(res.Output)
	}
	want := map[string]string{
		"audit o-1:handle_event": `"handle_event:ok:1"`,
		"audit o-1:self":         `"self:ok:1"`,
		"self o-1:handle_event":  `"order.created.result"`,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("second results %v, want %v", got, want)
	}
	// deep listens to results of results: two hops, above MaxResultHops.
	if n := len(r["greentic.events.dev.demo.order.created.result.result.result"]); n != 0 {
		t.Fatalf("%d third-hop results, want 0", n)
	}
	var out json.RawMessage = r[first][0].Output
	if len(out) == 0 {
		t.Fatal("empty output")
	}
}
