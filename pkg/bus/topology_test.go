package bus

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/greentic/events/pkg/natstest"
)

func prodLikeTopology() Topology {
	return Topology{
		Env:             "stage-eu",
		Replicas:        1,
		EventsMaxAge:    3 * time.Hour,
		OutboundMaxAge:  2 * time.Hour,
		DLQMaxAge:       14 * 24 * time.Hour,
		DuplicateWindow: 90 * time.Minute,
		DeliveryWindow:  3 * time.Hour,
	}
}

func TestEnsureCreatesStreamsAndBuckets(t *testing.T) {
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv.URL())
	ctx := testCtx(t)
	topo := prodLikeTopology()
	if err := topo.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}

	streams := []struct {
		name    string
		subject string
		maxAge  time.Duration
	}{
		{"GREENTIC_EVENTS_STAGE_EU", "greentic.events.stage-eu.>", 3 * time.Hour},
		{"GREENTIC_OUTBOUND_STAGE_EU", "greentic.outbound.stage-eu.>", 2 * time.Hour},
		{"GREENTIC_DLQ_STAGE_EU", "greentic.dlq.stage-eu.>", 14 * 24 * time.Hour},
	}
	for _, want := range streams {
		t.Run(want.name, func(t *testing.T) {
			st, err := js.Stream(ctx, want.name)
			if err != nil {
				t.Fatal(err)
			}
			cfg := st.CachedInfo().Config
			if !reflect.DeepEqual(cfg.Subjects, []string{want.subject}) {
				t.Errorf("subjects = %v, want [%s]", cfg.Subjects, want.subject)
			}
			if cfg.MaxAge != want.maxAge {
				t.Errorf("max age = %s, want %s", cfg.MaxAge, want.maxAge)
			}
			if cfg.Duplicates != 90*time.Minute {
				t.Errorf("duplicate window = %s, want 90m", cfg.Duplicates)
			}
			if cfg.Replicas != 1 {
				t.Errorf("replicas = %d, want 1", cfg.Replicas)
			}
			if cfg.Storage != jetstream.FileStorage {
				t.Errorf("storage = %s, want file", cfg.Storage)
			}
			if cfg.Retention != jetstream.LimitsPolicy {
				t.Errorf("retention = %s, want limits", cfg.Retention)
			}
		})
	}

	// A subject of each family lands in its stream.
	for subject, stream := range map[string]string{
		"greentic.events.stage-eu.acme.order.created":        "GREENTIC_EVENTS_STAGE_EU",
		"greentic.events.stage-eu.acme.order.created.result": "GREENTIC_EVENTS_STAGE_EU",
		"greentic.outbound.stage-eu.acme.email":              "GREENTIC_OUTBOUND_STAGE_EU",
		"greentic.dlq.stage-eu.acme.flow":                    "GREENTIC_DLQ_STAGE_EU",
	} {
		ack, err := js.Publish(ctx, subject, []byte("x"))
		if err != nil {
			t.Fatalf("publish %s: %v", subject, err)
		}
		if ack.Stream != stream {
			t.Errorf("%s stored in %s, want %s", subject, ack.Stream, stream)
		}
	}
	// Other environments are not captured.
	if _, err := js.Publish(ctx, "greentic.events.prod.acme.order.created", []byte("x")); !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Errorf("publish to another env: err = %v, want no stream", err)
	}

	for _, b := range AllBuckets {
		name := "greentic_stage-eu_" + string(b)
		t.Run(name, func(t *testing.T) {
			kv, err := js.KeyValue(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			st, err := kv.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.History() != 5 {
				t.Errorf("history = %d, want 5", st.History())
			}
			if si := st.(*jetstream.KeyValueBucketStatus).StreamInfo(); si.Config.Replicas != 1 || si.Config.Storage != jetstream.FileStorage {
				t.Errorf("bucket stream replicas=%d storage=%s", si.Config.Replicas, si.Config.Storage)
			}
		})
	}
	if len(AllBuckets) != 4 {
		t.Errorf("%d buckets, want 4", len(AllBuckets))
	}
	// Delivery ids expire after the delivery window.
	kv, err := js.KeyValue(ctx, "greentic_stage-eu_deliveries")
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.TTL() != 3*time.Hour || st.History() != 1 {
		t.Errorf("deliveries bucket ttl=%s history=%d, want 3h and 1", st.TTL(), st.History())
	}
}

func TestEnsureMemoryStorage(t *testing.T) {
	b := newTestBus(t) // Memory: true
	for _, sc := range b.topo.Streams() {
		st, err := b.js.Stream(testCtx(t), sc.Name)
		if err != nil {
			t.Fatal(err)
		}
		if st.CachedInfo().Config.Storage != jetstream.MemoryStorage {
			t.Errorf("%s storage = %s, want memory", sc.Name, st.CachedInfo().Config.Storage)
		}
	}
}

// snapshotTopology records every stream's creation time and config and every
// stream's message count, to show a second Ensure changed nothing.
func snapshotTopology(t *testing.T, js jetstream.JetStream, topo Topology) map[string]jetstream.StreamInfo {
	t.Helper()
	ctx := testCtx(t)
	out := map[string]jetstream.StreamInfo{}
	names := []string{}
	for _, sc := range topo.Streams() {
		names = append(names, sc.Name)
	}
	for _, b := range AllBuckets {
		names = append(names, "KV_"+topo.BucketName(b))
	}
	for _, n := range names {
		st, err := js.Stream(ctx, n)
		if err != nil {
			t.Fatalf("stream %s: %v", n, err)
		}
		info := *st.CachedInfo()
		info.TimeStamp = time.Time{}
		info.State.FirstTime, info.State.LastTime = time.Time{}, time.Time{}
		out[n] = info
	}
	return out
}

func TestEnsureIsIdempotent(t *testing.T) {
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv.URL())
	ctx := testCtx(t)
	topo := prodLikeTopology()
	if err := topo.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	// Data written between the two calls must survive.
	if _, err := NewPublisher(js, topo).PublishEvent(ctx, testEvent("acme", "e1")); err != nil {
		t.Fatal(err)
	}
	kv, err := topo.KeyValue(ctx, js, BucketTenants)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "acme", []byte(`{"name":"Acme"}`)); err != nil {
		t.Fatal(err)
	}
	before := snapshotTopology(t, js, topo)

	if err := topo.Ensure(ctx, js); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, js := natstest.Connect(t, srv.URL())
			errs <- topo.Ensure(ctx, js)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Ensure: %v", err)
		}
	}

	after := snapshotTopology(t, js, topo)
	if !reflect.DeepEqual(before, after) {
		for n := range before {
			if !reflect.DeepEqual(before[n], after[n]) {
				t.Errorf("stream %s changed:\nbefore %+v\nafter  %+v", n, before[n], after[n])
			}
		}
	}
	if e, err := kv.Get(ctx, "acme"); err != nil || string(e.Value()) != `{"name":"Acme"}` {
		t.Fatalf("tenant entry after Ensure: %v", err)
	}
}

func TestEnsureConcurrentOnFreshServer(t *testing.T) {
	srv := natstest.RunServer(t)
	topo := DefaultTopology("dev")
	topo.Memory = true
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for i := 0; i < 3; i++ {
		_, js := natstest.Connect(t, srv.URL())
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- topo.Ensure(ctx, js)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent first Ensure: %v", err)
		}
	}
	_, js := natstest.Connect(t, srv.URL())
	if err := topo.Check(testCtx(t), js); err != nil {
		t.Fatal(err)
	}
}

func TestEnsureUpdatesChangedSettings(t *testing.T) {
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv.URL())
	ctx := testCtx(t)
	topo := prodLikeTopology()
	if err := topo.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	topo.EventsMaxAge = 5 * time.Hour
	if err := topo.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, topo.EventsStream())
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().Config.MaxAge; got != 5*time.Hour {
		t.Fatalf("max age after update = %s, want 5h", got)
	}
}

func TestCheck(t *testing.T) {
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv.URL())
	ctx := testCtx(t)
	topo := DefaultTopology("dev")
	topo.Memory = true

	err := topo.Check(ctx, js)
	if err == nil || !strings.Contains(err.Error(), topo.EventsStream()) {
		t.Fatalf("Check before Ensure = %v, want an error naming %s", err, topo.EventsStream())
	}
	if err := topo.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	if err := topo.Check(ctx, js); err != nil {
		t.Fatalf("Check after Ensure: %v", err)
	}
	if err := js.DeleteKeyValue(ctx, topo.BucketName(BucketSchedules)); err != nil {
		t.Fatal(err)
	}
	err = topo.Check(ctx, js)
	if err == nil || !strings.Contains(err.Error(), topo.BucketName(BucketSchedules)) {
		t.Fatalf("Check with a bucket missing = %v, want an error naming %s", err, topo.BucketName(BucketSchedules))
	}
	// Check never creates anything.
	if _, err := js.KeyValue(ctx, topo.BucketName(BucketSchedules)); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Fatalf("bucket after Check: %v, want not found", err)
	}
}

func TestTopologyValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Topology)
		want   string // substring naming the setting; "" for valid
	}{
		{"default", func(*Topology) {}, ""},
		{"prod R3", func(t *Topology) { t.Replicas = 3 }, ""},
		{"window equal to max age", func(t *Topology) { t.DuplicateWindow, t.DeliveryWindow = t.EventsMaxAge, t.EventsMaxAge }, ""},
		{"delivery window shorter than duplicate window", func(t *Topology) { t.DeliveryWindow = time.Hour }, "delivery window"},
		{"empty env", func(t *Topology) { t.Env = "" }, "env"},
		{"env with dot", func(t *Topology) { t.Env = "prod.eu" }, "env"},
		{"env wildcard", func(t *Topology) { t.Env = "*" }, "env"},
		{"zero replicas", func(t *Topology) { t.Replicas = 0 }, "replicas"},
		{"six replicas", func(t *Topology) { t.Replicas = 6 }, "replicas"},
		{"zero events max age", func(t *Topology) { t.EventsMaxAge = 0 }, "events max age"},
		{"negative outbound max age", func(t *Topology) { t.OutboundMaxAge = -time.Hour }, "outbound max age"},
		{"zero dlq max age", func(t *Topology) { t.DLQMaxAge = 0 }, "dlq max age"},
		{"zero duplicate window", func(t *Topology) { t.DuplicateWindow = 0 }, "duplicate window"},
		{"negative duplicate window", func(t *Topology) { t.DuplicateWindow = -time.Second }, "duplicate window"},
		{"window longer than outbound max age", func(t *Topology) { t.OutboundMaxAge = time.Hour }, "outbound max age"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topo := DefaultTopology("dev")
			tc.mutate(&topo)
			err := topo.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

func TestEnsureRejectsInvalidTopology(t *testing.T) {
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv.URL())
	ctx := testCtx(t)
	topo := DefaultTopology("dev")
	topo.Replicas = 0
	if err := topo.Ensure(ctx, js); err == nil {
		t.Fatal("Ensure with 0 replicas succeeded")
	}
	names := js.StreamNames(ctx)
	for n := range names.Name() {
		t.Errorf("Ensure of an invalid topology created stream %s", n)
	}
}

func TestTopologyNames(t *testing.T) {
	topo := DefaultTopology("eu-prod")
	for _, tc := range []struct{ got, want string }{
		{topo.EventsStream(), "GREENTIC_EVENTS_EU_PROD"},
		{topo.OutboundStream(), "GREENTIC_OUTBOUND_EU_PROD"},
		{topo.DLQStream(), "GREENTIC_DLQ_EU_PROD"},
		{topo.BucketName(BucketFlows), "greentic_eu-prod_flows"},
		{topo.Durable("email"), "greentic-eu-prod-email"},
		{topo.BucketName(BucketTenants), "greentic_eu-prod_tenants"},
		{topo.BucketName(BucketSources), "greentic_eu-prod_sources"},
		{topo.BucketName(BucketSchedules), "greentic_eu-prod_schedules"},
	} {
		if tc.got != tc.want {
			t.Errorf("name %q, want %q", tc.got, tc.want)
		}
	}
}

// TestClusterR3SurvivesNodeLoss runs the prod topology (R3) on a 3-node
// cluster, stops one node and keeps publishing: every acknowledged event
// must still be readable.
func TestClusterR3SurvivesNodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	c := natstest.RunCluster(t, 3)
	ctx := testCtx(t)
	_, js := natstest.Connect(t, c.URLs())
	topo := DefaultTopology("prod")
	topo.Replicas = 3

	// The meta leader may still be learning its peers right after election.
	retry := func(what string, f func() error) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			err := f()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v", what, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	retry("ensure R3 topology", func() error { return topo.Ensure(ctx, js) })
	for _, sc := range topo.Streams() {
		st, err := js.Stream(ctx, sc.Name)
		if err != nil {
			t.Fatal(err)
		}
		if r := st.CachedInfo().Config.Replicas; r != 3 {
			t.Fatalf("%s replicas = %d, want 3", sc.Name, r)
		}
	}

	pub := NewPublisher(js, topo)
	acked := map[string]bool{}
	publish := func(id string) {
		t.Helper()
		retry("publish "+id, func() error {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			_, err := pub.PublishEvent(pctx, testEvent("acme", id))
			return err
		})
		acked[id] = true
	}
	for i := 0; i < 20; i++ {
		publish("before-" + strconv.Itoa(i))
	}

	// Stop the server holding the events stream's leader, the worst case.
	st, err := js.Stream(ctx, topo.EventsStream())
	if err != nil {
		t.Fatal(err)
	}
	leader := st.CachedInfo().Cluster.Leader
	stopped := -1
	for i, s := range c.Servers {
		if s.Name() == leader {
			stopped = i
		}
	}
	if stopped < 0 {
		t.Fatalf("stream leader %q is not a cluster member", leader)
	}
	c.Servers[stopped].Stop()

	for i := 0; i < 20; i++ {
		publish("after-" + strconv.Itoa(i))
	}

	var info *jetstream.StreamInfo
	retry("stream info after node loss", func() error {
		st, err := js.Stream(ctx, topo.EventsStream())
		if err != nil {
			return err
		}
		info = st.CachedInfo()
		if info.State.Msgs != uint64(len(acked)) {
			return errors.New("message count " + strconv.Itoa(int(info.State.Msgs)) + " != " + strconv.Itoa(len(acked)))
		}
		return nil
	})
	if info.Cluster.Leader == leader {
		t.Fatalf("stream leader still the stopped server %s", leader)
	}
	seen := map[string]bool{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		var m *jetstream.RawStreamMsg
		retry("read message", func() error {
			var err error
			m, err = st.GetMsg(ctx, seq)
			return err
		})
		seen[m.Header.Get(HeaderEventID)] = true
	}
	for id := range acked {
		if !seen[id] {
			t.Errorf("acknowledged event %s lost", id)
		}
	}
}

// TestEnsureLeavesMatchingConfigAlone: after Ensure, every stream and
// bucket already matches, so another Ensure updates nothing (an update
// would race the consumers other replicas create); a changed setting is
// still applied.
func TestEnsureLeavesMatchingConfigAlone(t *testing.T) {
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv.URL())
	ctx := testCtx(t)
	topo := DefaultTopology("dev")
	if err := topo.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	for _, sc := range topo.Streams() {
		s, err := js.Stream(ctx, sc.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !sameStream(s.CachedInfo().Config, sc) {
			t.Errorf("stream %s does not match its topology after Ensure", sc.Name)
		}
	}
	for _, kc := range topo.Buckets() {
		kv, err := js.KeyValue(ctx, kc.Bucket)
		if err != nil {
			t.Fatal(err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !sameBucket(st, kc) {
			t.Errorf("bucket %s does not match its topology after Ensure", kc.Bucket)
		}
	}
	topo.EventsMaxAge = 3 * time.Hour
	if err := topo.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, topo.EventsStream())
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxAge; got != 3*time.Hour {
		t.Errorf("events max age after a changed Ensure = %s, want 3h", got)
	}
}
