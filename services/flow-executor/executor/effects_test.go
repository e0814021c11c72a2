package executor

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/natstest"
	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/pkg/service/servicetest"
)

const effectsFlow = `
name: confirm
version: "1"
nodes:
  - id: mail
    type: email
    config:
      to: ada@example.com
      from: shop@example.com
      subject: "Order {{ event.payload.id }}"
      text: confirmed
    next: emit
  - id: emit
    type: publish
    config:
      event_type: order.confirmed
      payload: { id: "{{ event.payload.id }}" }
triggers:
  - type: event
    event_type: order.created
    target: mail
`

// count is the number of messages stored on subject.
func count(t *testing.T, rt *service.Runtime, stream, subject string) uint64 {
	t.Helper()
	s, err := rt.JS.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[subject]
}

// TestExecutorEffectsOnceAcrossACrash kills an executor after its run
// published an email command and an event but before the result and the
// ack: the restarted executor runs the event again, and the outbound stream
// still holds one email command, the events stream one order.confirmed.
func TestExecutorEffectsOnceAcrossACrash(t *testing.T) {
	srv := natstest.RunServer(t)
	admin := servicetest.Runtime(t, srv.URL(), "dev")
	putFlow(t, admin, "demo", "confirm", effectsFlow)

	crashed := servicetest.Runtime(t, srv.URL(), "dev")
	ran, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	cfgA := testConfig()
	cfgA.afterRun = func() {
		once.Do(func() { close(ran) })
		<-release
	}
	ctxA, cancelA := context.WithCancel(context.Background())
	doneA := make(chan error, 1)
	go func() { doneA <- Serve(ctxA, crashed, cfgA) }()
	t.Cleanup(cancelA)

	publish(t, admin, "demo", "o-9", "order.created")
	select {
	case <-ran:
	case <-time.After(15 * time.Second):
		t.Fatal("the first executor never ran the flow")
	}
	emailSubject := "greentic.outbound.dev.demo.email"
	confirmed := "greentic.events.dev.demo.order.confirmed"
	if n := count(t, admin, admin.Topology.OutboundStream(), emailSubject); n != 1 {
		t.Fatalf("%d email commands after the first run, want 1", n)
	}
	crashed.Conn.Close()
	close(release)
	cancelA()
	select {
	case <-doneA:
	case <-time.After(15 * time.Second):
		t.Fatal("the killed executor did not stop")
	}

	restarted := servicetest.Runtime(t, srv.URL(), "dev")
	servicetest.Go(t, func(ctx context.Context) error { return Serve(ctx, restarted, testConfig()) })
	result := "greentic.events.dev.demo.order.created.result"
	natstest.Eventually(t, 15*time.Second, "the result of the rerun", func() bool { return len(results(t, admin)[result]) == 1 })
	time.Sleep(1500 * time.Millisecond) // any further redelivery
	if n := count(t, admin, admin.Topology.OutboundStream(), emailSubject); n != 1 {
		t.Fatalf("%d email commands after the rerun, want 1", n)
	}
	if n := count(t, admin, admin.Topology.EventsStream(), confirmed); n != 1 {
		t.Fatalf("%d order.confirmed events after the rerun, want 1", n)
	}
	s, _ := admin.JS.Stream(context.Background(), admin.Topology.OutboundStream())
	m, err := s.GetLastMsgForSubject(context.Background(), emailSubject)
	if err != nil {
		t.Fatal(err)
	}
	var cmd eventsv1.EmailCommand
	if err := proto.Unmarshal(m.Data, &cmd); err != nil || cmd.Id != "o-9:confirm:mail" || cmd.Subject != "Order o-9" || cmd.To[0].Email != "ada@example.com" {
		t.Fatalf("email command %v (%v)", &cmd, err)
	}
	if r := results(t, admin)[result][0]; r.Status != eventsv1.FlowStatus_FLOW_STATUS_OK {
		t.Fatalf("result %v", r)
	}
}
