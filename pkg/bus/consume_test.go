package bus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/greentic/events/pkg/event"
	"github.com/greentic/events/pkg/natstest"
)

// eventID decodes the event id of a delivery.
func eventID(t *testing.T, d Delivery) string {
	t.Helper()
	e, err := event.Unmarshal(d.Data)
	if err != nil {
		t.Errorf("decode delivery: %v", err)
		return ""
	}
	return e.GetId()
}

func waitAcked(t *testing.T, b *testBus, durable string) {
	t.Helper()
	natstest.Eventually(t, 10*time.Second, "consumer "+durable+" to have nothing pending", func() bool {
		info := b.consumerInfo(t, durable)
		return info.NumAckPending == 0 && info.NumPending == 0
	})
}

func TestConsumerAcksHandledMessage(t *testing.T) {
	b := newTestBus(t)
	cfg := b.consumerConfig("flow")
	p := b.publish(t, "acme", "evt-1")

	calls := newCounter()
	var got Delivery
	var mu sync.Mutex
	startConsumer(t, b.js, b.topo, cfg, func(ctx context.Context, d Delivery) error {
		mu.Lock()
		got = d
		mu.Unlock()
		calls.add(eventID(t, d))
		return nil
	})
	natstest.Eventually(t, 10*time.Second, "one call", func() bool { return calls.total() == 1 })
	waitAcked(t, b, cfg.Durable)
	if info := b.consumerInfo(t, cfg.Durable); info.NumRedelivered != 0 || info.AckFloor.Stream != p.Sequence {
		t.Fatalf("consumer info: redelivered=%d ack floor=%d", info.NumRedelivered, info.AckFloor.Stream)
	}

	mu.Lock()
	defer mu.Unlock()
	if got.Subject != "greentic.events.test.acme.order.created" || got.MsgID != "acme:evt-1" ||
		got.Attempt != 1 || got.StreamSeq != p.Sequence || got.Stored.IsZero() ||
		got.Header.Get(HeaderEventID) != "evt-1" {
		t.Fatalf("delivery = %+v", got)
	}
	if calls.get("evt-1") != 1 {
		t.Fatalf("handler called %d times", calls.get("evt-1"))
	}
	if n := b.streamMsgs(t, b.topo.DLQStream()); n != 0 {
		t.Fatalf("%d dead letters", n)
	}
}

func TestConsumerRetriesWithBackoff(t *testing.T) {
	b := newTestBus(t)
	cfg := b.consumerConfig("flow")
	cfg.MaxAttempts = 5
	cfg.Backoff = []time.Duration{20 * time.Millisecond, 300 * time.Millisecond}
	b.publish(t, "acme", "evt-1")

	var mu sync.Mutex
	var attempts []int
	var at []time.Time
	startConsumer(t, b.js, b.topo, cfg, func(ctx context.Context, d Delivery) error {
		mu.Lock()
		defer mu.Unlock()
		attempts = append(attempts, d.Attempt)
		at = append(at, time.Now())
		if len(attempts) < 3 {
			return fmt.Errorf("upstream unavailable (call %d)", len(attempts))
		}
		return nil
	})
	natstest.Eventually(t, 10*time.Second, "three calls", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(attempts) >= 3
	})
	waitAcked(t, b, cfg.Durable)

	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(attempts) != "[1 2 3]" {
		t.Fatalf("attempts = %v, want [1 2 3]", attempts)
	}
	// Retry 2 waits for the second backoff entry.
	if gap := at[2].Sub(at[1]); gap < 250*time.Millisecond {
		t.Errorf("third attempt %s after the second, want >= 300ms backoff", gap)
	}
	if n := b.streamMsgs(t, b.topo.DLQStream()); n != 0 {
		t.Fatalf("%d dead letters after a successful retry", n)
	}
}

func TestConsumerDeadLettersExhaustedRetries(t *testing.T) {
	b := newTestBus(t)
	cfg := b.consumerConfig("flow")
	cfg.MaxAttempts = 3
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	p := b.publish(t, "acme", "evt-1")
	st, _ := b.js.Stream(testCtx(t), b.topo.EventsStream())
	orig, err := st.GetMsg(testCtx(t), p.Sequence)
	if err != nil {
		t.Fatal(err)
	}

	calls := newCounter()
	startConsumer(t, b.js, b.topo, cfg, func(ctx context.Context, d Delivery) error {
		calls.add(eventID(t, d))
		return errors.New("smtp 451: try again later")
	})
	natstest.Eventually(t, 10*time.Second, "a dead letter", func() bool { return b.streamMsgs(t, b.topo.DLQStream()) == 1 })
	waitAcked(t, b, cfg.Durable)

	dl := b.rawMsgs(t, b.topo.DLQStream())[0]
	if dl.Subject != "greentic.dlq.test.acme.flow" {
		t.Errorf("dead letter subject = %q", dl.Subject)
	}
	for h, want := range map[string]string{
		HeaderDLQReason:          "smtp 451: try again later",
		HeaderDLQStage:           "flow",
		HeaderDLQAttempts:        "3",
		HeaderDLQPermanent:       "false",
		HeaderDLQOriginalSubject: "greentic.events.test.acme.order.created",
		HeaderDLQOriginalStream:  b.topo.EventsStream(),
		HeaderDLQOriginalSeq:     strconv.FormatUint(p.Sequence, 10),
		HeaderDLQOriginalMsgID:   "acme:evt-1",
		HeaderEventID:            "evt-1", // original headers kept
		HeaderTraceparent:        orig.Header.Get(HeaderTraceparent),
	} {
		if got := dl.Header.Get(h); got != want {
			t.Errorf("dead letter header %s = %q, want %q", h, got, want)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, dl.Header.Get(HeaderDLQFailedAt)); err != nil {
		t.Errorf("failed-at header: %v", err)
	}
	if dl.Header.Get(HeaderMsgID) == "acme:evt-1" {
		t.Error("dead letter kept the original Nats-Msg-Id")
	}
	if !bytes.Equal(dl.Data, orig.Data) {
		t.Error("dead letter data differs from the original message")
	}

	// Terminated: never delivered again.
	time.Sleep(cfg.AckWait + 200*time.Millisecond)
	if n := calls.get("evt-1"); n != 3 {
		t.Fatalf("handler called %d times, want 3 (MaxAttempts)", n)
	}
	if got := testutil.ToFloat64(mustCounter(t, reg, "dead_letter")); got != 1 {
		t.Errorf("dead_letter outcome = %v, want 1", got)
	}
	if got := testutil.ToFloat64(mustCounter(t, reg, "retry")); got != 2 {
		t.Errorf("retry outcome = %v, want 2", got)
	}
}

// mustCounter returns the outcome counter of stage "flow" from reg.
func mustCounter(t *testing.T, reg *prometheus.Registry, outcome string) prometheus.Collector {
	t.Helper()
	m, err := newConsumerMetrics(reg) // returns the registered collectors
	if err != nil {
		t.Fatal(err)
	}
	return m.outcomes.WithLabelValues("flow", outcome)
}

func TestConsumerDeadLettersPermanentAtOnce(t *testing.T) {
	b := newTestBus(t)
	cfg := b.consumerConfig("email")
	cfg.MaxAttempts = 5
	b.publish(t, "acme", "evt-1")
	b.publish(t, "globex", "evt-2")

	calls := newCounter()
	startConsumer(t, b.js, b.topo, cfg, func(ctx context.Context, d Delivery) error {
		calls.add(eventID(t, d))
		return fmt.Errorf("render template: %w", Permanent(errors.New("unknown variable order.total")))
	})
	natstest.Eventually(t, 10*time.Second, "two dead letters", func() bool { return b.streamMsgs(t, b.topo.DLQStream()) == 2 })
	waitAcked(t, b, cfg.Durable)
	subjects := map[string]bool{}
	for _, dl := range b.rawMsgs(t, b.topo.DLQStream()) {
		subjects[dl.Subject] = true
		if dl.Header.Get(HeaderDLQAttempts) != "1" || dl.Header.Get(HeaderDLQPermanent) != "true" ||
			dl.Header.Get(HeaderDLQReason) != "render template: unknown variable order.total" {
			t.Errorf("dead letter headers = %v", dl.Header)
		}
	}
	if !subjects["greentic.dlq.test.acme.email"] || !subjects["greentic.dlq.test.globex.email"] {
		t.Errorf("dead letter subjects = %v, want one per tenant", subjects)
	}
	for _, id := range []string{"evt-1", "evt-2"} {
		if n := calls.get(id); n != 1 {
			t.Errorf("%s handled %d times, want 1", id, n)
		}
	}
}

func TestConsumerPanicIsDeadLetteredAndLoopContinues(t *testing.T) {
	b := newTestBus(t)
	cfg := b.consumerConfig("flow")
	cfg.Concurrency = 1
	cfg.MaxAttempts = 5
	b.publish(t, "acme", "poison")
	b.publish(t, "acme", "good")

	calls := newCounter()
	r := startConsumer(t, b.js, b.topo, cfg, func(ctx context.Context, d Delivery) error {
		id := eventID(t, d)
		calls.add(id)
		if id == "poison" {
			var m map[string]int
			m["boom"]++ // nil map write
		}
		return nil
	})
	natstest.Eventually(t, 10*time.Second, "the good message", func() bool { return calls.get("good") == 1 })
	natstest.Eventually(t, 10*time.Second, "a dead letter", func() bool { return b.streamMsgs(t, b.topo.DLQStream()) == 1 })
	waitAcked(t, b, cfg.Durable)
	dl := b.rawMsgs(t, b.topo.DLQStream())[0]
	if reason := dl.Header.Get(HeaderDLQReason); !strings.Contains(reason, "panic") || dl.Header.Get(HeaderDLQPermanent) != "true" {
		t.Errorf("dead letter reason=%q permanent=%q", reason, dl.Header.Get(HeaderDLQPermanent))
	}
	if calls.get("poison") != 1 {
		t.Errorf("poison handled %d times, want 1", calls.get("poison"))
	}
	if r.returned() {
		t.Fatalf("Run returned after a panic: %v", r.err)
	}
	// Still consuming.
	b.publish(t, "acme", "later")
	natstest.Eventually(t, 10*time.Second, "a message after the panic", func() bool { return calls.get("later") == 1 })
}

func TestConsumerHonoursRetryAfter(t *testing.T) {
	b := newTestBus(t)
	cfg := b.consumerConfig("sms")
	cfg.Backoff = []time.Duration{20 * time.Millisecond}
	b.publish(t, "acme", "evt-1")

	var mu sync.Mutex
	var at []time.Time
	startConsumer(t, b.js, b.topo, cfg, func(ctx context.Context, d Delivery) error {
		mu.Lock()
		defer mu.Unlock()
		at = append(at, time.Now())
		if len(at) == 1 {
			return RetryAfter(errors.New("429 too many requests"), 300*time.Millisecond)
		}
		return nil
	})
	natstest.Eventually(t, 10*time.Second, "the retry", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(at) == 2
	})
	waitAcked(t, b, cfg.Durable)
	mu.Lock()
	defer mu.Unlock()
	if gap := at[1].Sub(at[0]); gap < 250*time.Millisecond {
		t.Fatalf("retried %s after a RetryAfter of 300ms (backoff is 20ms)", gap)
	}
}

// TestConsumerCrashBeforeAck kills a replica (closes its connection) while it
// holds a message: another replica of the same durable gets the message after
// AckWait and completes it, once.
func TestConsumerCrashBeforeAck(t *testing.T) {
	b := newTestBus(t)
	cfg := b.consumerConfig("flow")
	cfg.AckWait = 500 * time.Millisecond
	cfg.DrainTimeout = 200 * time.Millisecond

	var completedA, completedB atomic.Int32
	var attemptB atomic.Int32
	started := make(chan struct{}, 1)
	ncA, jsA := b.newJS(t)
	a := startConsumer(t, jsA, b.topo, cfg, func(ctx context.Context, d Delivery) error {
		select {
		case started <- struct{}{}:
		default:
		}
		<-ctx.Done() // stuck until the process "dies"
		return ctx.Err()
	})
	b.publish(t, "acme", "evt-1")
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("replica A never got the message")
	}
	ncA.Close()

	_, jsB := b.newJS(t)
	startConsumer(t, jsB, b.topo, cfg, func(ctx context.Context, d Delivery) error {
		attemptB.Store(int32(d.Attempt))
		completedB.Add(1)
		return nil
	})
	natstest.Eventually(t, 10*time.Second, "replica B to complete the message", func() bool { return completedB.Load() == 1 })
	waitAcked(t, b, cfg.Durable)
	if got := attemptB.Load(); got != 2 {
		t.Errorf("replica B saw attempt %d, want 2", got)
	}

	// Replica A lost its connection: Run must report it instead of
	// returning as if it had been shut down cleanly.
	if err := a.wait(t, 10*time.Second); err == nil {
		t.Error("Run of replica A returned nil after its connection closed")
	}
	time.Sleep(cfg.AckWait + 200*time.Millisecond)
	if a, b := completedA.Load(), completedB.Load(); a+b != 1 {
		t.Fatalf("message completed %d times (A %d, B %d), want exactly once", a+b, a, b)
	}
}

func TestConsumerRunFailsWhenConsumerDeleted(t *testing.T) {
	b := newTestBus(t)
	cfg := b.consumerConfig("flow")
	r := startConsumer(t, b.js, b.topo, cfg, func(ctx context.Context, d Delivery) error { return nil })
	natstest.Eventually(t, 10*time.Second, "the durable to exist", func() bool {
		_, err := b.js.Consumer(b.ctx, cfg.Stream, cfg.Durable)
		return err == nil
	})
	if err := b.js.DeleteConsumer(testCtx(t), cfg.Stream, cfg.Durable); err != nil {
		t.Fatal(err)
	}
	if err := r.wait(t, 10*time.Second); err == nil {
		t.Fatal("Run returned nil after its durable consumer was deleted")
	}
}

func TestConsumerReplicasShareDurable(t *testing.T) {
	b := newTestBus(t)
	cfg := b.consumerConfig("flow")
	cfg.AckWait = 5 * time.Second
	const n = 200

	calls := newCounter()
	var perReplica [2]atomic.Int32
	for i := range 2 {
		_, js := b.newJS(t)
		startConsumer(t, js, b.topo, cfg, func(ctx context.Context, d Delivery) error {
			calls.add(eventID(t, d))
			perReplica[i].Add(1)
			time.Sleep(time.Millisecond)
			return nil
		})
	}
	for i := range n {
		b.publish(t, "acme", "evt-"+strconv.Itoa(i))
	}
	natstest.Eventually(t, 20*time.Second, "every message handled", func() bool { return len(calls.snapshot()) == n })
	waitAcked(t, b, cfg.Durable)
	for id, c := range calls.snapshot() {
		if c != 1 {
			t.Errorf("%s handled %d times", id, c)
		}
	}
	if calls.total() != n {
		t.Fatalf("%d calls for %d messages", calls.total(), n)
	}
	a, c := perReplica[0].Load(), perReplica[1].Load()
	t.Logf("replica A handled %d, replica B %d", a, c)
	if a == 0 || c == 0 {
		t.Errorf("one replica handled nothing (A %d, B %d)", a, c)
	}
}

func TestConsumerBoundsConcurrency(t *testing.T) {
	b := newTestBus(t)
	cfg := b.consumerConfig("webhook")
	cfg.Concurrency = 3
	cfg.AckWait = 5 * time.Second
	const n = 10
	for i := range n {
		b.publish(t, "acme", "evt-"+strconv.Itoa(i))
	}

	var inFlight, maxInFlight atomic.Int32
	release := make(chan struct{})
	calls := newCounter()
	startConsumer(t, b.js, b.topo, cfg, func(ctx context.Context, d Delivery) error {
		cur := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := maxInFlight.Load()
			if cur <= m || maxInFlight.CompareAndSwap(m, cur) {
				break
			}
		}
		calls.add(eventID(t, d))
		<-release
		return nil
	})
	natstest.Eventually(t, 10*time.Second, "3 handlers in flight", func() bool { return inFlight.Load() == 3 })
	// Give an unbounded loop the chance to start more.
	time.Sleep(300 * time.Millisecond)
	if got := inFlight.Load(); got != 3 {
		t.Fatalf("%d handlers in flight, want 3", got)
	}
	close(release)
	natstest.Eventually(t, 10*time.Second, "every message handled", func() bool { return len(calls.snapshot()) == n })
	waitAcked(t, b, cfg.Durable)
	if got := maxInFlight.Load(); got != 3 {
		t.Fatalf("max in flight = %d, want 3", got)
	}
	if calls.total() != n {
		t.Fatalf("%d calls for %d messages", calls.total(), n)
	}
}

// TestConsumerQueuedMessagesNotRedelivered: while every slot is busy with a
// handler slower than AckWait, messages waiting for a slot must not be
// redelivered and handled twice.
func TestConsumerQueuedMessagesNotRedelivered(t *testing.T) {
	b := newTestBus(t)
	cfg := b.consumerConfig("email")
	cfg.Concurrency = 2
	cfg.AckWait = 500 * time.Millisecond
	const n = 4
	for i := range n {
		b.publish(t, "acme", "evt-"+strconv.Itoa(i))
	}
	calls := newCounter()
	startConsumer(t, b.js, b.topo, cfg, func(ctx context.Context, d Delivery) error {
		// One slow handler keeps a slot busy while the other slot turns
		// over, so a message fetched ahead would wait longer than AckWait.
		id := eventID(t, d)
		if calls.add(id) == 1 && id == "evt-0" {
			time.Sleep(2500 * time.Millisecond)
			return nil
		}
		time.Sleep(time.Second)
		return nil
	})
	natstest.Eventually(t, 20*time.Second, "every message handled", func() bool { return len(calls.snapshot()) == n })
	waitAcked(t, b, cfg.Durable)
	for id, c := range calls.snapshot() {
		if c != 1 {
			t.Errorf("%s handled %d times, want 1", id, c)
		}
	}
}

func TestConsumerGracefulDrain(t *testing.T) {
	b := newTestBus(t)
	cfg := b.consumerConfig("flow")
	cfg.Concurrency = 2
	cfg.DrainTimeout = 5 * time.Second
	b.publish(t, "acme", "evt-1")
	b.publish(t, "acme", "evt-2")

	var started, finished atomic.Int32
	calls := newCounter()
	r := startConsumer(t, b.js, b.topo, cfg, func(ctx context.Context, d Delivery) error {
		calls.add(eventID(t, d))
		started.Add(1)
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
		finished.Add(1)
		return nil
	})
	natstest.Eventually(t, 10*time.Second, "2 handlers started", func() bool { return started.Load() == 2 })
	r.cancel()
	if err := r.wait(t, 10*time.Second); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	if got := finished.Load(); got != 2 {
		t.Fatalf("Run returned with %d of 2 handlers finished", got)
	}
	// Acked before Run returned: nothing pending, nothing comes back.
	info := b.consumerInfo(t, cfg.Durable)
	if info.NumAckPending != 0 || info.NumPending != 0 || info.AckFloor.Stream != 2 {
		t.Fatalf("after drain: ack pending %d, pending %d, ack floor %d", info.NumAckPending, info.NumPending, info.AckFloor.Stream)
	}
	again := newCounter()
	startConsumer(t, b.js, b.topo, cfg, func(ctx context.Context, d Delivery) error {
		again.add(eventID(t, d))
		return nil
	})
	time.Sleep(cfg.AckWait + 200*time.Millisecond)
	if again.total() != 0 {
		t.Fatalf("drained messages redelivered: %v", again.snapshot())
	}
}

// TestConsumerDrainTimeoutHandsBack: a handler still running when the drain
// timeout ends is cancelled and its message handed back at once (not after AckWait).
func TestConsumerDrainTimeoutHandsBack(t *testing.T) {
	b := newTestBus(t)
	cfg := b.consumerConfig("flow")
	cfg.AckWait = 5 * time.Second
	cfg.DrainTimeout = 200 * time.Millisecond
	b.publish(t, "acme", "evt-1")

	started := make(chan struct{}, 1)
	r := startConsumer(t, b.js, b.topo, cfg, func(ctx context.Context, d Delivery) error {
		started <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	})
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("handler never started")
	}
	stopAt := time.Now()
	r.cancel()
	if err := r.wait(t, 5*time.Second); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if took := time.Since(stopAt); took < 150*time.Millisecond {
		t.Errorf("Run returned %s after cancel, before the drain timeout", took)
	}

	got := make(chan int, 1)
	startConsumer(t, b.js, b.topo, cfg, func(ctx context.Context, d Delivery) error {
		select {
		case got <- d.Attempt:
		default:
		}
		return nil
	})
	select {
	case attempt := <-got:
		if attempt != 2 {
			t.Errorf("handed-back message attempt = %d, want 2", attempt)
		}
	case <-time.After(3 * time.Second): // well before AckWait (5s)
		t.Fatal("interrupted message not handed back before AckWait")
	}
}

func TestConsumerLongHandlerNotRedelivered(t *testing.T) {
	b := newTestBus(t)
	cfg := b.consumerConfig("flow")
	cfg.AckWait = 600 * time.Millisecond
	b.publish(t, "acme", "evt-1")

	calls := newCounter()
	var done atomic.Bool
	startConsumer(t, b.js, b.topo, cfg, func(ctx context.Context, d Delivery) error {
		calls.add(eventID(t, d))
		time.Sleep(2 * time.Second)
		done.Store(true)
		return nil
	})
	natstest.Eventually(t, 10*time.Second, "the handler to finish", done.Load)
	waitAcked(t, b, cfg.Durable)
	if n := calls.get("evt-1"); n != 1 {
		t.Fatalf("handler called %d times, want 1", n)
	}
	if info := b.consumerInfo(t, cfg.Durable); info.NumRedelivered != 0 {
		t.Fatalf("%d redeliveries", info.NumRedelivered)
	}
}

// TestConsumerDeadLettersPerStage: two stages consuming the same stream both
// fail the same message; each stage's dead letter must be kept.
func TestConsumerDeadLettersPerStage(t *testing.T) {
	b := newTestBus(t)
	b.publish(t, "acme", "evt-1")
	for _, stage := range []string{"flow", "audit"} {
		startConsumer(t, b.js, b.topo, b.consumerConfig(stage), func(ctx context.Context, d Delivery) error {
			return Permanent(errors.New(stage + " rejected it"))
		})
	}
	natstest.Eventually(t, 10*time.Second, "both stages to finish", func() bool {
		for _, stage := range []string{"flow", "audit"} {
			c, err := b.js.Consumer(b.ctx, b.topo.EventsStream(), b.topo.Durable(stage))
			if err != nil {
				return false // not created yet
			}
			if info, err := c.Info(b.ctx); err != nil || info.AckFloor.Stream != 1 {
				return false
			}
		}
		return true
	})
	subjects := map[string]string{}
	for _, dl := range b.rawMsgs(t, b.topo.DLQStream()) {
		subjects[dl.Subject] = dl.Header.Get(HeaderDLQReason)
	}
	want := map[string]string{
		"greentic.dlq.test.acme.flow":  "flow rejected it",
		"greentic.dlq.test.acme.audit": "audit rejected it",
	}
	if fmt.Sprint(subjects) != fmt.Sprint(want) {
		t.Fatalf("dead letters = %v, want %v", subjects, want)
	}
}

func TestConsumerConfigValidate(t *testing.T) {
	valid := func() ConsumerConfig {
		return ConsumerConfig{
			Stream: "S", Durable: "d", Stage: "flow", Concurrency: 1, AckWait: time.Second,
			MaxAttempts: 1, Backoff: []time.Duration{time.Second}, DrainTimeout: 0,
		}
	}
	tests := []struct {
		name   string
		mutate func(*ConsumerConfig)
		want   string
	}{
		{"valid", func(*ConsumerConfig) {}, ""},
		{"no stream", func(c *ConsumerConfig) { c.Stream = "" }, "stream"},
		{"no durable", func(c *ConsumerConfig) { c.Durable = "" }, "durable"},
		{"no stage", func(c *ConsumerConfig) { c.Stage = "" }, "stage"},
		{"stage with dot", func(c *ConsumerConfig) { c.Stage = "a.b" }, "stage"},
		{"stage wildcard", func(c *ConsumerConfig) { c.Stage = "*" }, "stage"},
		{"zero concurrency", func(c *ConsumerConfig) { c.Concurrency = 0 }, "concurrency"},
		{"negative concurrency", func(c *ConsumerConfig) { c.Concurrency = -1 }, "concurrency"},
		{"key concurrency 0 means concurrency", func(c *ConsumerConfig) { c.Key = TenantKey }, ""},
		{"key concurrency at concurrency", func(c *ConsumerConfig) { c.Concurrency, c.KeyConcurrency = 4, 4 }, ""},
		{"negative key concurrency", func(c *ConsumerConfig) { c.KeyConcurrency = -1 }, "key concurrency"},
		{"key concurrency above concurrency", func(c *ConsumerConfig) { c.Concurrency, c.KeyConcurrency = 4, 5 }, "key concurrency"},
		{"negative max parked", func(c *ConsumerConfig) { c.MaxParked = -1 }, "max parked"},
		{"ack wait too short", func(c *ConsumerConfig) { c.AckWait = 50 * time.Millisecond }, "ack wait"},
		{"zero max attempts", func(c *ConsumerConfig) { c.MaxAttempts = 0 }, "max attempts"},
		{"negative drain timeout", func(c *ConsumerConfig) { c.DrainTimeout = -time.Second }, "drain timeout"},
		{"negative backoff", func(c *ConsumerConfig) { c.Backoff = []time.Duration{time.Second, -1} }, "backoff"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.mutate(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

func TestNewConsumerDefaultsAndValidation(t *testing.T) {
	b := newTestBus(t)
	c, err := NewConsumer(b.js, b.topo, ConsumerConfig{Stream: b.topo.EventsStream(), Durable: b.topo.Durable("flow"), Stage: "flow"})
	if err != nil {
		t.Fatalf("NewConsumer with defaults: %v", err)
	}
	if c.cfg.Concurrency != 16 || c.cfg.AckWait != 30*time.Second || c.cfg.MaxAttempts != 5 || len(c.cfg.Backoff) == 0 || c.cfg.DrainTimeout != 10*time.Second {
		t.Fatalf("defaults = %+v", c.cfg)
	}
	if _, err := NewConsumer(b.js, b.topo, ConsumerConfig{Stream: b.topo.EventsStream(), Durable: "d", Stage: "flow", Concurrency: -2}); err == nil || !strings.Contains(err.Error(), "concurrency") {
		t.Fatalf("NewConsumer(concurrency -2) = %v", err)
	}
	// Two consumers may share one registry (standalone mode).
	reg := prometheus.NewRegistry()
	for i := 0; i < 2; i++ {
		if _, err := NewConsumer(b.js, b.topo, ConsumerConfig{Stream: b.topo.EventsStream(), Durable: "d", Stage: "flow", Registerer: reg}); err != nil {
			t.Fatalf("consumer %d on a shared registry: %v", i, err)
		}
	}
}

func TestConsumerRunReturnsWhenCancelledBeforeStart(t *testing.T) {
	b := newTestBus(t)
	c, err := NewConsumer(b.js, b.topo, b.consumerConfig("flow"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, func(context.Context, Delivery) error { return nil }) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run with a cancelled context = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run with a cancelled context did not return")
	}
}
