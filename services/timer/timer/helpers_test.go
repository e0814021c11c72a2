package timer

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/event"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/natstest"
	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/pkg/service/servicetest"
	"github.com/greentic/events/pkg/tenant"
	"github.com/greentic/events/pkg/tenant/tenantkv"
)

func testConfig() Config {
	return Config{MaxCatchUp: 100, PublishTimeout: 2 * time.Second, MisfireThreshold: 10 * time.Second, StateFlushInterval: 200 * time.Millisecond}
}

// instance is one timer replica with its own connection.
type instance struct {
	rt      *service.Runtime
	cancel  context.CancelFunc
	done    chan error
	stopped bool
}

// startTimer runs a timer replica on env and waits until it is ready.
func startTimer(t *testing.T, url, env string, cfg Config) *instance {
	t.Helper()
	rt := servicetest.Runtime(t, url, env)
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{rt: rt, cancel: cancel, done: make(chan error, 1)}
	go func() { in.done <- Serve(ctx, rt, cfg) }()
	t.Cleanup(func() { in.stop(t) })
	natstest.Eventually(t, 15*time.Second, "timer ready", func() bool {
		select {
		case err := <-in.done:
			t.Fatalf("timer stopped: %v", err)
		default:
		}
		return len(rt.Ready.Check(context.Background())) == 0
	})
	return in
}

// stop cancels the replica and expects a clean return.
func (in *instance) stop(t *testing.T) {
	t.Helper()
	if in.stopped {
		return
	}
	in.stopped = true
	in.cancel()
	select {
	case err := <-in.done:
		if err != nil {
			t.Errorf("timer returned %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Errorf("timer did not stop within 15s")
	}
}

// kill drops the replica's connection and cancels it, as a crash would.
func (in *instance) kill(t *testing.T) {
	t.Helper()
	in.stopped = true
	in.rt.Conn.Close()
	in.cancel()
	select {
	case <-in.done:
	case <-time.After(15 * time.Second):
		t.Errorf("killed timer did not return within 15s")
	}
}

// admin writes configuration and reads what the timers published.
type admin struct {
	rt    *service.Runtime
	store *tenantkv.Store
}

func newAdmin(t *testing.T, url, env string) *admin {
	t.Helper()
	rt := servicetest.Runtime(t, url, env)
	store, err := tenantkv.Open(context.Background(), rt.JS, rt.Topology)
	if err != nil {
		t.Fatal(err)
	}
	return &admin{rt: rt, store: store}
}

func (a *admin) putTenant(t *testing.T, tn tenant.Tenant) {
	t.Helper()
	if _, err := a.store.PutTenant(context.Background(), tn); err != nil {
		t.Fatal(err)
	}
}

func (a *admin) kv(t *testing.T, b bus.Bucket) jetstream.KeyValue {
	t.Helper()
	kv, err := a.rt.Topology.KeyValue(context.Background(), a.rt.JS, b)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// state reads the stored last tick of a schedule ("" when none).
func (a *admin) state(t *testing.T, key string) string {
	t.Helper()
	e, err := a.kv(t, bus.BucketTimers).Get(context.Background(), key)
	if err != nil {
		return ""
	}
	return string(e.Value())
}

// ticks returns the stored events of tenant whose metadata key has value,
// in stream order.
func (a *admin) ticks(t *testing.T, tenantID, key, value string) []*eventsv1.Event {
	t.Helper()
	ctx := context.Background()
	stream, err := a.rt.JS.Stream(ctx, a.rt.Topology.EventsStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*eventsv1.Event
	if info.State.Msgs == 0 {
		return nil
	}
	prefix := "greentic.events." + a.rt.Topology.Env + "." + tenantID + "."
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil || !strings.HasPrefix(m.Subject, prefix) || strings.HasSuffix(m.Subject, ".result") {
			continue
		}
		ev, err := event.Unmarshal(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Metadata[key] == value {
			out = append(out, ev)
		}
	}
	return out
}

// waitTicks waits until at least n ticks match and returns them.
func (a *admin) waitTicks(t *testing.T, tenantID, key, value string, n int) []*eventsv1.Event {
	t.Helper()
	var evs []*eventsv1.Event
	natstest.Eventually(t, 15*time.Second, strconv.Itoa(n)+" ticks of "+value, func() bool {
		evs = a.ticks(t, tenantID, key, value)
		return len(evs) >= n
	})
	return evs
}

// scheduled returns the scheduled times of ticks, sorted.
func scheduled(t *testing.T, evs []*eventsv1.Event) []time.Time {
	t.Helper()
	out := make([]time.Time, 0, len(evs))
	for _, ev := range evs {
		at, err := time.Parse(time.RFC3339, ev.Metadata[MetaScheduledAt])
		if err != nil {
			t.Fatalf("event %s: scheduled_at %q: %v", ev.Id, ev.Metadata[MetaScheduledAt], err)
		}
		if ev.Timestamp != at.UnixMilli() {
			t.Fatalf("event %s: timestamp %d is not its scheduled time %s", ev.Id, ev.Timestamp, at)
		}
		out = append(out, at)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// metric returns the value of a counter or gauge with the given labels.
func metric(t *testing.T, rt *service.Runtime, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := rt.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, labels) {
				switch {
				case m.Counter != nil:
					return m.Counter.GetValue()
				case m.Gauge != nil:
					return m.Gauge.GetValue()
				case m.Histogram != nil:
					return float64(m.Histogram.GetSampleCount())
				}
			}
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, kv []string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == kv[i] && l.GetValue() == kv[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}
