package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/natstest"
	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/pkg/service/servicetest"
)

// publishMany publishes n events of one type for a tenant, from 8
// goroutines, with ids {prefix}-{i}.
func publishMany(t *testing.T, rt *service.Runtime, tenantID, prefix, typ string, n int) {
	t.Helper()
	var g errgroup.Group
	g.SetLimit(8)
	for i := range n {
		g.Go(func() error {
			id := fmt.Sprintf("%s-%d", prefix, i)
			payload, _ := json.Marshal(map[string]string{"id": id})
			_, err := rt.Publisher.PublishEvent(context.Background(), &eventsv1.Event{
				Id: id, EventType: typ, Tenant: tenantID, Payload: payload, Timestamp: time.Now().UnixMilli(),
			})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestTwoExecutorsShareOneStream runs two executors on one durable
// consumer: the load is shared, and killing one in the middle of its runs
// loses no event and doubles no result, email command or published event.
func TestTwoExecutorsShareOneStream(t *testing.T) {
	const n = 400
	srv := natstest.RunServer(t)
	admin := servicetest.Runtime(t, srv.URL(), "dev")
	putFlow(t, admin, "demo", "confirm", effectsFlow)

	var ranA, ranB atomic.Int64
	killed := make(chan struct{})
	var killOnce sync.Once
	rtA := servicetest.Runtime(t, srv.URL(), "dev")
	cfgA := testConfig()
	cfgA.beforeRun = func() {
		// After its 100th event replica A dies with runs in flight: they
		// never finish and are never acked.
		if ranA.Add(1) >= 100 {
			killOnce.Do(func() { close(killed) })
			<-make(chan struct{})
		}
	}
	ctxA, cancelA := context.WithCancel(context.Background())
	t.Cleanup(cancelA)
	go func() { _ = Serve(ctxA, rtA, cfgA) }()

	rtB := servicetest.Runtime(t, srv.URL(), "dev")
	cfgB := testConfig()
	cfgB.beforeRun = func() { ranB.Add(1) }
	servicetest.Go(t, func(ctx context.Context) error { return Serve(ctx, rtB, cfgB) })

	publishMany(t, admin, "demo", "o", "order.created", n)
	select {
	case <-killed:
	case <-time.After(30 * time.Second):
		t.Fatalf("replica A ran %d events, never reached 100", ranA.Load())
	}
	sharedB := ranB.Load()
	rtA.Conn.Close() // the process dies: no ack, no nak
	cancelA()
	if sharedB < 20 {
		t.Errorf("replica B ran %d events while A ran 100: the load is not shared", sharedB)
	}

	resultSubject := "greentic.events.dev.demo.order.created.result"
	natstest.Eventually(t, 30*time.Second, "a result for every event", func() bool {
		return count(t, admin, admin.Topology.EventsStream(), resultSubject) >= n
	})
	time.Sleep(1500 * time.Millisecond) // let any late redelivery happen
	seen := map[string]int{}
	for _, r := range results(t, admin)[resultSubject] {
		seen[r.EventId]++
		if r.Status != eventsv1.FlowStatus_FLOW_STATUS_OK {
			t.Errorf("result %s: %s", r.EventId, r.Error)
		}
	}
	for i := range n {
		if id := fmt.Sprintf("o-%d", i); seen[id] != 1 {
			t.Errorf("event %s has %d results, want 1", id, seen[id])
		}
	}
	if got := count(t, admin, admin.Topology.OutboundStream(), "greentic.outbound.dev.demo.email"); got != n {
		t.Errorf("%d email commands, want %d", got, n)
	}
	if got := count(t, admin, admin.Topology.EventsStream(), "greentic.events.dev.demo.order.confirmed"); got != n {
		t.Errorf("%d order.confirmed events, want %d", got, n)
	}
	t.Logf("replica A ran %d runs (killed with some in flight), replica B %d", ranA.Load(), ranB.Load())
}

const slowFlow = `
name: enrich
version: "1"
nodes:
  - id: lookup
    type: http
    config: { url: "%s/customers/{{ event.payload.id }}" }
    next: done
  - id: done
    type: respond
triggers:
  - { type: event, event_type: order.created, target: lookup }
`

const quickFlow = `
name: ack
version: "1"
nodes:
  - { id: done, type: respond, config: { body: { ok: true } } }
triggers:
  - { type: event, event_type: order.created, target: done }
`

// TestTenantIsolation: one tenant has 10,000 queued events whose flow waits
// on a slow http service; another tenant's event still gets its result
// within a second.
func TestTenantIsolation(t *testing.T) {
	const backlog = 10000
	var inFlight, maxInFlight atomic.Int64
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := maxInFlight.Load(); n > m && !maxInFlight.CompareAndSwap(m, n); m = maxInFlight.Load() {
		}
		select {
		case <-time.After(3 * time.Second):
		case <-release:
		case <-r.Context().Done():
		}
		fmt.Fprint(w, `{}`)
	}))
	defer slow.Close()
	defer close(release)

	srv := natstest.RunServer(t)
	rt := servicetest.Runtime(t, srv.URL(), "dev")
	putFlow(t, rt, "bulk", "enrich", fmt.Sprintf(slowFlow, slow.URL))
	putFlow(t, rt, "quick", "ack", quickFlow)
	publishMany(t, rt, "bulk", "b", "order.created", backlog)

	cfg := testConfig()
	cfg.Concurrency, cfg.TenantConcurrency, cfg.MaxParked = 16, 4, backlog
	cfg.AckWait, cfg.RunTimeout = 10*time.Second, 5*time.Second
	cfg.HTTPAllowCIDRs = "127.0.0.0/8"
	servicetest.Go(t, func(ctx context.Context) error { return Serve(ctx, rt, cfg) })
	natstest.Eventually(t, 15*time.Second, "the bulk tenant's http calls", func() bool { return inFlight.Load() > 0 })

	sub, err := rt.Conn.SubscribeSync("greentic.events.dev.quick.order.created.result")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	publish(t, rt, "quick", "q-1", "order.created")
	if _, err := sub.NextMsg(time.Second); err != nil {
		t.Fatalf("no result for the quick tenant within 1s (%v) behind %d queued events", err, backlog)
	}
	t.Logf("quick tenant's result after %s; bulk tenant at most %d http calls at once", time.Since(start), maxInFlight.Load())
	if m := maxInFlight.Load(); m > int64(cfg.TenantConcurrency) {
		t.Errorf("the bulk tenant had %d runs at once, cap %d", m, cfg.TenantConcurrency)
	}
}
