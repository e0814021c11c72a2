package bus

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/natstest"
)

const testEnv = "test"

// testBus is a real in-process JetStream server with the topology of testEnv ensured.
type testBus struct {
	srv  *natstest.Server
	nc   *nats.Conn
	js   jetstream.JetStream
	topo Topology
	pub  *Publisher
	ctx  context.Context // bounded, cancelled at cleanup
}

func newTestBus(t *testing.T) *testBus {
	t.Helper()
	srv := natstest.RunServer(t)
	nc, js := natstest.Connect(t, srv.URL())
	topo := DefaultTopology(testEnv)
	topo.Memory = true
	ctx := testCtx(t)
	if err := topo.Ensure(ctx, js); err != nil {
		t.Fatalf("ensure topology: %v", err)
	}
	return &testBus{srv: srv, nc: nc, js: js, topo: topo, pub: NewPublisher(js, topo), ctx: ctx}
}

// testCtx is a context bounded well within the test timeout and cancelled at cleanup.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newJS opens a separate connection, as another replica (process) would.
func (b *testBus) newJS(t *testing.T) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return natstest.Connect(t, b.srv.URL())
}

func testEvent(tenant, id string) *eventsv1.Event {
	return &eventsv1.Event{
		Id:        id,
		EventType: "order.created",
		Source:    "webhook/shop",
		Timestamp: 1700000000000,
		Payload:   []byte(fmt.Sprintf(`{"id":%q}`, id)),
		Tenant:    tenant,
	}
}

func (b *testBus) publish(t *testing.T, tenant, id string) Published {
	t.Helper()
	p, err := b.pub.PublishEvent(b.ctx, testEvent(tenant, id))
	if err != nil {
		t.Fatalf("publish %s/%s: %v", tenant, id, err)
	}
	return p
}

func (b *testBus) streamMsgs(t *testing.T, stream string) uint64 {
	t.Helper()
	st, err := b.js.Stream(b.ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	return st.CachedInfo().State.Msgs
}

// rawMsgs returns every message stored in stream, in order.
func (b *testBus) rawMsgs(t *testing.T, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := b.ctx
	st, err := b.js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info := st.CachedInfo()
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted
		}
		out = append(out, m)
	}
	return out
}

func (b *testBus) consumerConfig(stage string) ConsumerConfig {
	return ConsumerConfig{
		Stream:       b.topo.EventsStream(),
		Durable:      b.topo.Durable(stage),
		Stage:        stage,
		Concurrency:  4,
		AckWait:      time.Second,
		MaxAttempts:  3,
		Backoff:      []time.Duration{20 * time.Millisecond},
		DrainTimeout: 2 * time.Second,
	}
}

func (b *testBus) consumerInfo(t *testing.T, durable string) *jetstream.ConsumerInfo {
	t.Helper()
	ctx := b.ctx
	c, err := b.js.Consumer(ctx, b.topo.EventsStream(), durable)
	if err != nil {
		t.Fatalf("consumer %s: %v", durable, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatalf("consumer %s info: %v", durable, err)
	}
	return info
}

// running is a Consumer.Run started in the background.
type running struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error // valid after done is closed
}

// wait cancels nothing; it waits for Run to return, failing the test after timeout.
func (r *running) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(timeout):
		t.Fatalf("Run did not return within %s", timeout)
		return nil
	}
}

func (r *running) returned() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// startConsumer runs a consumer on js until cleanup, when it is cancelled and awaited.
func startConsumer(t *testing.T, js jetstream.JetStream, topo Topology, cfg ConsumerConfig, h Handler) *running {
	t.Helper()
	c, err := NewConsumer(js, topo, cfg)
	if err != nil {
		t.Fatalf("new consumer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = c.Run(ctx, h)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Errorf("consumer %s did not stop within 30s", cfg.Durable)
		}
	})
	return r
}

// counter counts handler calls by message id.
type counter struct {
	mu sync.Mutex
	m  map[string]int
}

func newCounter() *counter { return &counter{m: map[string]int{}} }

func (c *counter) add(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[id]++
	return c.m[id]
}

func (c *counter) get(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id]
}

func (c *counter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.m {
		n += v
	}
	return n
}

func (c *counter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.m))
	for k, v := range c.m {
		out[k] = v
	}
	return out
}
