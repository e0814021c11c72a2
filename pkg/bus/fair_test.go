package bus

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/greentic/events/pkg/natstest"
)

func TestTenantKey(t *testing.T) {
	for subject, want := range map[string]string{
		"greentic.events.prod.acme.order.created":        "acme",
		"greentic.events.prod.acme.order.created.result": "acme",
		"greentic.outbound.prod.globex.email":            "globex",
		"greentic.dlq.prod.initech.flow":                 "initech",
		"greentic.events.prod.acme":                      "acme",
		"greentic.events.prod.":                          "",
		"greentic.events.prod":                           "",
		"greentic.events":                                "",
		"greentic":                                       "",
		"":                                               "",
		"other.events.prod.acme.x":                       "",
		"greenticx.events.prod.acme.x":                   "",
	} {
		if got := TenantKey(subject); got != want {
			t.Errorf("TenantKey(%q) = %q, want %q", subject, got, want)
		}
		if s, err := ParseSubject(subject); err == nil && s.Tenant != want {
			t.Errorf("TenantKey(%q) = %q, ParseSubject tenant %q", subject, want, s.Tenant)
		}
	}
	subject := "greentic.events.prod.acme.order.created"
	if n := testing.AllocsPerRun(100, func() { _ = TenantKey(subject) }); n != 0 {
		t.Errorf("TenantKey allocates %v times", n)
	}
}

// parkedGauge returns the parked gauge of stage from reg.
func parkedGauge(t *testing.T, reg *prometheus.Registry, stage string) prometheus.Collector {
	t.Helper()
	m, err := newConsumerMetrics(reg) // returns the registered collectors
	if err != nil {
		t.Fatal(err)
	}
	return m.parked.WithLabelValues(stage)
}

// publishMany publishes ids prefix-0 ... prefix-(n-1) for tenant, from a few
// goroutines (order does not matter to the tests using it), and returns once
// every one is stored.
func (b *testBus) publishMany(t *testing.T, tenant, prefix string, n int) {
	t.Helper()
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				if _, err := b.pub.PublishEvent(b.ctx, testEvent(tenant, prefix+strconv.Itoa(i))); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("publish: %v", err)
	}
}

// TestConsumerFairByKey: tenant a has a backlog of 10,000 events whose
// handlers are stuck; an event of tenant b published after all of them
// starts at once. a's events wait parked, longer than AckWait, and are each
// handled exactly once when a's handlers move again.
func TestConsumerFairByKey(t *testing.T) {
	b := newTestBus(t)
	cfg := b.consumerConfig("flow")
	cfg.Key = TenantKey
	cfg.Concurrency = 8
	cfg.KeyConcurrency = 2
	cfg.AckWait = 2 * time.Second
	cfg.DrainTimeout = 5 * time.Second
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	const n = 10000

	release := make(chan struct{})
	var aRunning, aMaxRunning atomic.Int32
	var redelivered atomic.Int32
	aCalls := newCounter()
	bCalled := make(chan time.Time, 1)
	startConsumer(t, b.js, b.topo, cfg, func(ctx context.Context, d Delivery) error {
		switch TenantKey(d.Subject) {
		case "b":
			bCalled <- time.Now()
			return nil
		case "a":
			cur := aRunning.Add(1)
			defer aRunning.Add(-1)
			for m := aMaxRunning.Load(); cur > m && !aMaxRunning.CompareAndSwap(m, cur); m = aMaxRunning.Load() {
			}
			if d.Attempt != 1 {
				redelivered.Add(1)
			}
			aCalls.add(eventID(t, d))
			<-release
			return nil
		}
		t.Errorf("unexpected subject %s", d.Subject)
		return nil
	})
	defer func() {
		select {
		case <-release:
		default:
			close(release) // let the consumer stop on failure
		}
	}()

	start := time.Now()
	b.publishMany(t, "a", "a-", n)
	t.Logf("published %d events of tenant a in %s", n, time.Since(start).Round(time.Millisecond))
	pubAt := time.Now()
	b.publish(t, "b", "b-0")
	select {
	case at := <-bCalled:
		lat := at.Sub(pubAt)
		t.Logf("tenant b handled %s after its publish", lat.Round(time.Millisecond))
		if lat > time.Second {
			t.Errorf("tenant b waited %s behind tenant a's backlog, want < 1s", lat)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tenant b's event not handled behind tenant a's backlog")
	}

	gauge := parkedGauge(t, reg, "flow")
	natstest.Eventually(t, 20*time.Second, "a's backlog parked", func() bool { return testutil.ToFloat64(gauge) == n-2 })
	if got := aRunning.Load(); got != 2 {
		t.Fatalf("%d handlers of tenant a running, want 2 (KeyConcurrency)", got)
	}

	// a's parked events have waited longer than AckWait by now; keep them
	// parked one more AckWait to be sure progress signals hold them.
	time.Sleep(cfg.AckWait + 500*time.Millisecond)
	if got := aCalls.total(); got != 2 {
		t.Fatalf("%d calls of tenant a while its handlers were stuck, want 2", got)
	}
	info := b.consumerInfo(t, cfg.Durable)
	if info.NumRedelivered != 0 {
		t.Fatalf("%d messages redelivered while parked", info.NumRedelivered)
	}
	if want := 4 * (cfg.Concurrency + DefaultMaxParked); info.Config.MaxAckPending != want {
		t.Errorf("MaxAckPending = %d, want %d", info.Config.MaxAckPending, want)
	}

	start = time.Now()
	close(release)
	natstest.Eventually(t, 60*time.Second, "every event of tenant a handled", func() bool { return len(aCalls.snapshot()) == n })
	t.Logf("drained %d parked events in %s", n, time.Since(start).Round(time.Millisecond))
	waitAcked(t, b, cfg.Durable)
	for id, c := range aCalls.snapshot() {
		if c != 1 {
			t.Errorf("%s handled %d times", id, c)
		}
	}
	if got := aCalls.total(); got != n {
		t.Errorf("%d calls for %d events of tenant a", got, n)
	}
	if got := redelivered.Load(); got != 0 {
		t.Errorf("%d events of tenant a delivered more than once", got)
	}
	if got := aMaxRunning.Load(); got != 2 {
		t.Errorf("at most %d handlers of tenant a ran at once, want 2", got)
	}
	if got := testutil.ToFloat64(gauge); got != 0 {
		t.Errorf("parked gauge = %v after the backlog drained", got)
	}
	if info := b.consumerInfo(t, cfg.Durable); info.NumRedelivered != 0 {
		t.Errorf("%d messages redelivered", info.NumRedelivered)
	}
}

// subjectMsg is a fetched message as far as the scheduler looks at it.
type subjectMsg struct {
	jetstream.Msg
	subject string
}

func (m subjectMsg) Subject() string { return m.subject }

// TestSchedulerRoundRobinByKey: parked messages start in turn by key, and
// never more than KeyConcurrency of one key at once.
func TestSchedulerRoundRobinByKey(t *testing.T) {
	s := newScheduler(context.Background(), ConsumerConfig{Concurrency: 1, KeyConcurrency: 1, Key: TenantKey, MaxParked: 10}, prometheus.NewGauge(prometheus.GaugeOpts{Name: "g"}))
	var started []string
	var running []*keyState
	s.start = func(msg jetstream.Msg, ks *keyState) {
		started = append(started, TenantKey(msg.Subject()))
		running = append(running, ks)
	}
	msg := func(tenant string) jetstream.Msg {
		return subjectMsg{subject: "greentic.events.test." + tenant + ".order.created"}
	}
	if !s.dispatch(msg("z")) {
		t.Fatal("the first message did not start on an idle scheduler")
	}
	for _, tenant := range []string{"x", "x", "x", "y", "y"} {
		if s.dispatch(msg(tenant)) {
			t.Fatalf("a message of %s started while the only slot was busy", tenant)
		}
	}
	if room, free := s.room(); room != 10-5 || free != 0 {
		t.Fatalf("room, free = %d, %d; want 5, 0", room, free)
	}
	for len(running) > 0 {
		ks := running[0]
		running = running[1:]
		s.finished(ks)
	}
	if got := strings.Join(started, ","); got != "z,x,y,x,y,x" {
		t.Fatalf("start order = %s, want z,x,y,x,y,x", got)
	}
}

// TestConsumerShutdownHandsBackParked: a replica shutting down NAKs its
// parked messages, so another replica gets them at once, not after AckWait.
func TestConsumerShutdownHandsBackParked(t *testing.T) {
	b := newTestBus(t)
	cfg := b.consumerConfig("flow")
	cfg.Key = TenantKey
	// One slot stays idle: a replica fetches (and parks) only while it
	// has an idle slot.
	cfg.Concurrency = 2
	cfg.KeyConcurrency = 1
	cfg.AckWait = 10 * time.Second
	cfg.DrainTimeout = 10 * time.Second
	regA := prometheus.NewRegistry()
	cfgA := cfg
	cfgA.Registerer = regA
	b.publish(t, "acme", "blocker")
	for i := range 3 {
		b.publish(t, "acme", "parked-"+strconv.Itoa(i))
	}

	release := make(chan struct{})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	started := make(chan struct{}, 1)
	_, jsA := b.newJS(t)
	a := startConsumer(t, jsA, b.topo, cfgA, func(ctx context.Context, d Delivery) error {
		if id := eventID(t, d); id != "blocker" {
			t.Errorf("replica A started %s while the blocker ran", id)
		}
		started <- struct{}{}
		<-release
		return nil
	})
	<-started
	natstest.Eventually(t, 10*time.Second, "3 parked messages", func() bool { return testutil.ToFloat64(parkedGauge(t, regA, "flow")) == 3 })

	stopAt := time.Now()
	a.cancel()
	type got struct {
		id      string
		attempt int
		at      time.Time
	}
	gotB := make(chan got, 10)
	_, jsB := b.newJS(t)
	startConsumer(t, jsB, b.topo, cfg, func(ctx context.Context, d Delivery) error {
		gotB <- got{eventID(t, d), d.Attempt, time.Now()}
		return nil
	})
	seen := map[string]bool{}
	for len(seen) < 3 {
		select {
		case g := <-gotB:
			if !strings.HasPrefix(g.id, "parked-") || g.attempt != 2 || seen[g.id] {
				t.Errorf("replica B got %s attempt %d", g.id, g.attempt)
			}
			seen[g.id] = true
			if took := g.at.Sub(stopAt); took > 3*time.Second {
				t.Errorf("replica B got %s %s after A stopped, want well before AckWait (%s)", g.id, took, cfg.AckWait)
			}
		case <-time.After(5 * time.Second): // AckWait is 10s
			t.Fatalf("replica B got %v of A's 3 parked messages", seen)
		}
	}
	if got := testutil.ToFloat64(mustCounterOf(t, regA, "flow", "interrupted")); got != 3 {
		t.Errorf("interrupted outcome = %v, want 3", got)
	}
	if got := testutil.ToFloat64(parkedGauge(t, regA, "flow")); got != 0 {
		t.Errorf("parked gauge = %v after shutdown", got)
	}

	// A's running handler drains as before: it finishes and acks.
	if a.returned() {
		t.Fatal("replica A returned before its running handler finished")
	}
	close(release)
	if err := a.wait(t, 10*time.Second); err != nil {
		t.Fatalf("replica A Run = %v", err)
	}
	waitAcked(t, b, cfg.Durable)
	select {
	case g := <-gotB:
		t.Errorf("replica B also got %s (attempt %d)", g.id, g.attempt)
	default:
	}
}

// mustCounterOf returns the outcome counter of stage from reg.
func mustCounterOf(t *testing.T, reg *prometheus.Registry, stage, outcome string) prometheus.Collector {
	t.Helper()
	m, err := newConsumerMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m.outcomes.WithLabelValues(stage, outcome)
}

func TestNewConsumerKeyDefaults(t *testing.T) {
	base := ConsumerConfig{Stream: "S", Durable: "d", Stage: "flow", Concurrency: 8}
	c, err := NewConsumer(nil, Topology{}, base)
	if err != nil {
		t.Fatal(err)
	}
	if c.cfg.KeyConcurrency != 8 || c.cfg.MaxParked != 0 {
		t.Errorf("without a key: key concurrency %d, max parked %d; want 8, 0", c.cfg.KeyConcurrency, c.cfg.MaxParked)
	}
	keyed := base
	keyed.Key = TenantKey
	keyed.KeyConcurrency = 2
	if c, err = NewConsumer(nil, Topology{}, keyed); err != nil {
		t.Fatal(err)
	}
	if c.cfg.KeyConcurrency != 2 || c.cfg.MaxParked != DefaultMaxParked {
		t.Errorf("with a key: key concurrency %d, max parked %d; want 2, %d", c.cfg.KeyConcurrency, c.cfg.MaxParked, DefaultMaxParked)
	}
	keyed.KeyConcurrency = 9
	if _, err := NewConsumer(nil, Topology{}, keyed); err == nil || !strings.Contains(err.Error(), "key concurrency") {
		t.Errorf("NewConsumer(key concurrency 9 > concurrency 8) = %v", err)
	}
}
