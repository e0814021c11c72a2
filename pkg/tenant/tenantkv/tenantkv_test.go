package tenantkv

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/natstest"
	"github.com/greentic/events/pkg/schedule"
	"github.com/greentic/events/pkg/service/servicetest"
	"github.com/greentic/events/pkg/tenant"
)

var discard = slog.New(slog.DiscardHandler)

type fixture struct {
	store *Store
	js    jetstream.JetStream
	topo  bus.Topology
	ctx   context.Context
}

// newFixture starts a JetStream server with the dev topology and opens a Store.
func newFixture(t *testing.T) fixture {
	t.Helper()
	rt := servicetest.Runtime(t, natstest.RunServer(t).URL(), "dev")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	store, err := Open(ctx, rt.JS, rt.Topology)
	if err != nil {
		t.Fatal(err)
	}
	return fixture{store: store, js: rt.JS, topo: rt.Topology, ctx: ctx}
}

func (f fixture) kv(t *testing.T, b bus.Bucket) jetstream.KeyValue {
	t.Helper()
	kv, err := f.topo.KeyValue(f.ctx, f.js, b)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func (f fixture) revision(t *testing.T, b bus.Bucket, key string) uint64 {
	t.Helper()
	e, err := f.kv(t, b).Get(f.ctx, key)
	if err != nil {
		t.Fatalf("get %s/%s: %v", b, key, err)
	}
	return e.Revision()
}

func (f fixture) keys(t *testing.T, b bus.Bucket) []string {
	t.Helper()
	keys, err := f.kv(t, b).Keys(f.ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func source(tenantID, name string) tenant.Source {
	return tenant.Source{
		Tenant: tenantID, Name: name, Scheme: tenant.SchemeHMACSHA256,
		Secrets:   []string{"super-secret"},
		Signature: tenant.Signature{Header: "X-Signature"},
		EventType: tenant.ValueFrom{Field: "type"},
	}
}

const flowDoc = "name: greet\nversion: \"1\"\n"

func TestOpenWithoutTopology(t *testing.T) {
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	_, err := Open(ctx, js, bus.DefaultTopology("dev"))
	if err == nil || !strings.Contains(err.Error(), "greentic_dev_tenants") {
		t.Fatalf("Open without buckets = %v, want an error naming the bucket", err)
	}
}

func TestPutReportsChanges(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name   string
		bucket bus.Bucket
		key    string
		first  func() (bool, error) // writes the value
		change func() (bool, error) // writes another value under the same key
	}{
		{
			name: "tenant", bucket: bus.BucketTenants, key: "acme",
			first: func() (bool, error) { return f.store.PutTenant(f.ctx, tenant.Tenant{ID: "acme", DisplayName: "Acme"}) },
			change: func() (bool, error) {
				return f.store.PutTenant(f.ctx, tenant.Tenant{ID: "acme", DisplayName: "Acme Inc"})
			},
		},
		{
			name: "source", bucket: bus.BucketSources, key: "acme.shop",
			first: func() (bool, error) { return f.store.PutSource(f.ctx, source("acme", "shop")) },
			change: func() (bool, error) {
				s := source("acme", "shop")
				s.Disabled = true
				return f.store.PutSource(f.ctx, s)
			},
		},
		{
			name: "flow", bucket: bus.BucketFlows, key: "acme.greet",
			first:  func() (bool, error) { return f.store.PutFlow(f.ctx, "acme", "greet", []byte(flowDoc)) },
			change: func() (bool, error) { return f.store.PutFlow(f.ctx, "acme", "greet", []byte(flowDoc+"# edited\n")) },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			changed, err := tc.first()
			if err != nil || !changed {
				t.Fatalf("first write = %v, %v; want changed", changed, err)
			}
			rev := f.revision(t, tc.bucket, tc.key)

			changed, err = tc.first()
			if err != nil || changed {
				t.Fatalf("identical write = %v, %v; want unchanged", changed, err)
			}
			if got := f.revision(t, tc.bucket, tc.key); got != rev {
				t.Errorf("identical write made revision %d, want it to stay %d", got, rev)
			}

			changed, err = tc.change()
			if err != nil || !changed {
				t.Fatalf("different write = %v, %v; want changed", changed, err)
			}
			if got := f.revision(t, tc.bucket, tc.key); got <= rev {
				t.Errorf("different write left revision %d, want more than %d", got, rev)
			}
		})
	}
}

func TestPutRejectsInvalid(t *testing.T) {
	f := newFixture(t)
	bad := source("acme", "shop")
	bad.Secrets = []string{"short"}
	for _, tc := range []struct {
		name   string
		bucket bus.Bucket
		put    func() (bool, error)
		want   []string
	}{
		{"tenant id", bus.BucketTenants, func() (bool, error) { return f.store.PutTenant(f.ctx, tenant.Tenant{ID: "ac.me"}) }, []string{"tenant", `"ac.me"`}},
		{"source tenant", bus.BucketSources, func() (bool, error) { return f.store.PutSource(f.ctx, source("ac me", "shop")) }, []string{"source ac me/shop", "tenant"}},
		{"source name", bus.BucketSources, func() (bool, error) { return f.store.PutSource(f.ctx, source("acme", "sh>p")) }, []string{"source acme/sh>p"}},
		{"source secret", bus.BucketSources, func() (bool, error) { return f.store.PutSource(f.ctx, bad) }, []string{"source acme/shop", "secrets[0]"}},
		{"flow tenant", bus.BucketFlows, func() (bool, error) { return f.store.PutFlow(f.ctx, "*", "greet", []byte(flowDoc)) }, []string{"tenant"}},
		{"flow name", bus.BucketFlows, func() (bool, error) { return f.store.PutFlow(f.ctx, "acme", "a.b", []byte(flowDoc)) }, []string{"flow", `"a.b"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			changed, err := tc.put()
			if err == nil || changed {
				t.Fatalf("put = %v, %v; want an error", changed, err)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if keys := f.keys(t, tc.bucket); len(keys) != 0 {
				t.Errorf("bucket %s holds %v after a rejected put", tc.bucket, keys)
			}
		})
	}
}

// watchRegistry runs WatchRegistry until the test ends and waits until it is synced.
func watchRegistry(t *testing.T, f fixture) *tenant.Registry {
	t.Helper()
	reg := tenant.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	synced := make(chan struct{})
	go func() { done <- f.store.WatchRegistry(ctx, reg, discard, func() { close(synced) }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("WatchRegistry after cancel = %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("WatchRegistry did not return within 10s of cancellation")
		}
	})
	select {
	case <-synced:
	case err := <-done:
		t.Fatalf("WatchRegistry returned %v before syncing", err)
	case <-time.After(10 * time.Second):
		t.Fatal("WatchRegistry did not sync within 10s")
	}
	return reg
}

// mustPut fails the test when a put fails: mustPut(t)(store.PutTenant(...)).
func mustPut(t *testing.T) func(bool, error) {
	return func(_ bool, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestWatchRegistry(t *testing.T) {
	f := newFixture(t)
	mustPut(t)(f.store.PutTenant(f.ctx, tenant.Tenant{ID: "acme", DisplayName: "Acme"}))
	mustPut(t)(f.store.PutTenant(f.ctx, tenant.Tenant{ID: "globex"}))
	mustPut(t)(f.store.PutSource(f.ctx, source("acme", "shop")))
	mustPut(t)(f.store.PutSource(f.ctx, source("globex", "crm")))

	reg := watchRegistry(t, f)

	t.Run("existing entries loaded before synced", func(t *testing.T) {
		if got := strings.Join(reg.Tenants(), ","); got != "acme,globex" {
			t.Errorf("tenants at sync = %s, want acme,globex", got)
		}
		if s, ok := reg.Source("acme", "shop"); !ok || s.Signature.Header != "X-Signature" {
			t.Errorf("source acme/shop at sync = %+v, %v", s, ok)
		}
		if _, ok := reg.Source("globex", "crm"); !ok {
			t.Error("source globex/crm missing at sync")
		}
	})
	t.Run("later puts applied", func(t *testing.T) {
		mustPut(t)(f.store.PutTenant(f.ctx, tenant.Tenant{ID: "initech"}))
		mustPut(t)(f.store.PutSource(f.ctx, source("initech", "hooks")))
		updated := source("acme", "shop")
		updated.Disabled = true
		mustPut(t)(f.store.PutSource(f.ctx, updated))
		natstest.Eventually(t, 10*time.Second, "initech/hooks in the registry", func() bool { _, ok := reg.Source("initech", "hooks"); return ok })
		natstest.Eventually(t, 10*time.Second, "acme/shop disabled", func() bool { s, _ := reg.Source("acme", "shop"); return s.Disabled })
	})
	t.Run("deletes applied", func(t *testing.T) {
		if err := f.kv(t, bus.BucketSources).Delete(f.ctx, "acme.shop"); err != nil {
			t.Fatal(err)
		}
		natstest.Eventually(t, 10*time.Second, "acme/shop gone", func() bool { _, ok := reg.Source("acme", "shop"); return !ok })
		if err := f.kv(t, bus.BucketTenants).Purge(f.ctx, "globex"); err != nil {
			t.Fatal(err)
		}
		natstest.Eventually(t, 10*time.Second, "globex gone", func() bool { _, ok := reg.Tenant("globex"); return !ok })
		if _, ok := reg.Source("globex", "crm"); ok {
			t.Error("source of a deleted tenant still reachable")
		}
	})
	t.Run("malformed entries ignored", func(t *testing.T) {
		tenants, sources := f.kv(t, bus.BucketTenants), f.kv(t, bus.BucketSources)
		wrongID := `{"id":"other"}`
		badSource := source("acme", "bad")
		badSource.Scheme = "basic"
		for _, w := range []struct {
			kv         jetstream.KeyValue
			key, value string
		}{
			{tenants, "garbage", "{not json"},
			{tenants, "wrongid", wrongID},
			{tenants, "acme", "[]"}, // an existing tenant overwritten with garbage
			{sources, "acme.garbage", "\x00\x01"},
			{sources, "nodot", `{}`},
			{sources, "acme.bad", `{"tenant":"acme","name":"bad","scheme":"basic","event_type":{"field":"t"}}`},
			{sources, "acme.mismatch", `{"tenant":"initech","name":"hooks","scheme":"none","event_type":{"field":"t"}}`},
		} {
			if _, err := w.kv.Put(f.ctx, w.key, []byte(w.value)); err != nil {
				t.Fatal(err)
			}
		}
		// A valid write after the garbage shows the watch got past it.
		mustPut(t)(f.store.PutTenant(f.ctx, tenant.Tenant{ID: "after"}))
		mustPut(t)(f.store.PutSource(f.ctx, source("after", "hooks")))
		natstest.Eventually(t, 10*time.Second, "after/hooks in the registry", func() bool { _, ok := reg.Source("after", "hooks"); return ok })
		for _, id := range []string{"garbage", "wrongid", "other"} {
			if _, ok := reg.Tenant(id); ok {
				t.Errorf("malformed tenant %s in the registry", id)
			}
		}
		if got, ok := reg.Tenant("acme"); !ok || got.DisplayName != "Acme" {
			t.Errorf("acme after a malformed overwrite = %+v, %v; want the last good value", got, ok)
		}
		for _, name := range []string{"garbage", "bad", "mismatch"} {
			if _, ok := reg.Source("acme", name); ok {
				t.Errorf("malformed source acme/%s in the registry", name)
			}
		}
		if s, _ := reg.Source("initech", "hooks"); s.Scheme != tenant.SchemeHMACSHA256 {
			t.Errorf("initech/hooks replaced by an entry stored under another key: %+v", s)
		}
	})
}

func TestWatchRegistryEmptyBuckets(t *testing.T) {
	f := newFixture(t)
	reg := watchRegistry(t, f)
	if ids := reg.Tenants(); len(ids) != 0 {
		t.Errorf("tenants = %v", ids)
	}
}

func TestWatchRegistryBucketGone(t *testing.T) {
	f := newFixture(t)
	if err := f.js.DeleteKeyValue(f.ctx, f.topo.BucketName(bus.BucketSources)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- f.store.WatchRegistry(ctx, tenant.NewRegistry(), discard, nil) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "greentic_dev_sources") {
			t.Fatalf("WatchRegistry = %v, want an error naming the sources bucket", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WatchRegistry still running 10s after its sources watch failed")
	}
}

type flowLog struct {
	mu      sync.Mutex
	entries []FlowEntry
}

func (l *flowLog) add(e FlowEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, e)
}

func (l *flowLog) snapshot() []FlowEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]FlowEntry(nil), l.entries...)
}

func (l *flowLog) last(tenantID, name string) (FlowEntry, bool) {
	es := l.snapshot()
	for i := len(es) - 1; i >= 0; i-- {
		if es[i].Tenant == tenantID && es[i].Name == name {
			return es[i], true
		}
	}
	return FlowEntry{}, false
}

func TestWatchFlows(t *testing.T) {
	f := newFixture(t)
	mustPut(t)(f.store.PutFlow(f.ctx, "acme", "greet", []byte(flowDoc)))
	mustPut(t)(f.store.PutFlow(f.ctx, "globex", "notify", []byte("name: notify\n")))
	if _, err := f.kv(t, bus.BucketFlows).Put(f.ctx, "nodot", []byte("x")); err != nil {
		t.Fatal(err)
	}

	var log flowLog
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	synced := make(chan struct{})
	go func() { done <- f.store.WatchFlows(ctx, discard, log.add, func() { close(synced) }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("WatchFlows after cancel = %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("WatchFlows did not return within 10s of cancellation")
		}
	})
	select {
	case <-synced:
	case <-time.After(10 * time.Second):
		t.Fatal("WatchFlows did not sync within 10s")
	}

	var greetRev uint64
	t.Run("existing flows delivered before synced", func(t *testing.T) {
		es := log.snapshot()
		if len(es) != 2 {
			t.Fatalf("entries at sync = %+v, want the 2 well-formed flows", es)
		}
		greet, ok := log.last("acme", "greet")
		if !ok || string(greet.Doc) != flowDoc || greet.Deleted || greet.Revision == 0 {
			t.Errorf("acme/greet at sync = %+v", greet)
		}
		greetRev = greet.Revision
		if _, ok := log.last("globex", "notify"); !ok {
			t.Error("globex/notify not delivered")
		}
	})
	t.Run("update", func(t *testing.T) {
		edited := flowDoc + "# edited\n"
		mustPut(t)(f.store.PutFlow(f.ctx, "acme", "greet", []byte(edited)))
		natstest.Eventually(t, 10*time.Second, "edited acme/greet delivered", func() bool { e, _ := log.last("acme", "greet"); return string(e.Doc) == edited })
		if e, _ := log.last("acme", "greet"); e.Revision <= greetRev || e.Deleted {
			t.Errorf("update = %+v, want a revision above %d and not deleted", e, greetRev)
		}
	})
	t.Run("delete", func(t *testing.T) {
		if err := f.kv(t, bus.BucketFlows).Delete(f.ctx, "globex.notify"); err != nil {
			t.Fatal(err)
		}
		natstest.Eventually(t, 10*time.Second, "globex/notify deletion delivered", func() bool { e, _ := log.last("globex", "notify"); return e.Deleted })
	})
}

func TestWatchSchedules(t *testing.T) {
	f := newFixture(t)
	nightly := schedule.Schedule{Tenant: "acme", Name: "nightly", Cron: "0 2 * * *", Timezone: "Europe/Paris"}
	mustPut(t)(f.store.PutSchedule(f.ctx, nightly))
	if _, err := f.store.PutSchedule(f.ctx, schedule.Schedule{Tenant: "acme", Name: "bad", Cron: "0 25 * * *"}); err == nil {
		t.Fatal("PutSchedule accepted an invalid cron")
	}
	// A value written around the store (not valid) is applied as a delete.
	if _, err := f.kv(t, bus.BucketSchedules).Put(f.ctx, "acme.broken", []byte(`{"tenant":"acme","name":"broken"}`)); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	got := map[string]ScheduleEntry{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	synced := make(chan struct{})
	go func() {
		_ = f.store.WatchSchedules(ctx, discard, func(e ScheduleEntry) {
			mu.Lock()
			defer mu.Unlock()
			got[e.Tenant+"."+e.Name] = e
		}, func() { close(synced) })
	}()
	select {
	case <-synced:
	case <-time.After(10 * time.Second):
		t.Fatal("WatchSchedules did not sync within 10s")
	}
	last := func(key string) ScheduleEntry {
		mu.Lock()
		defer mu.Unlock()
		return got[key]
	}
	if e := last("acme.nightly"); e.Deleted || e.Schedule.Cron != "0 2 * * *" || e.Schedule.Timezone != "Europe/Paris" {
		t.Errorf("acme.nightly = %+v", e)
	}
	if e := last("acme.broken"); !e.Deleted {
		t.Errorf("an invalid stored schedule was applied: %+v", e)
	}
	paused := nightly
	paused.Paused = true
	mustPut(t)(f.store.PutSchedule(f.ctx, paused))
	natstest.Eventually(t, 10*time.Second, "the pause", func() bool { return last("acme.nightly").Schedule.Paused })
	if err := f.store.DeleteSchedule(f.ctx, "acme", "nightly"); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 10*time.Second, "the delete", func() bool { return last("acme.nightly").Deleted })
	if err := f.store.DeleteSchedule(f.ctx, "acme", "never-existed"); err != nil {
		t.Errorf("deleting a missing schedule: %v", err)
	}
}

func TestModify(t *testing.T) {
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv.URL())
	ctx := context.Background()
	topo := bus.DefaultTopology("dev")
	if err := topo.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, js, topo)
	if err != nil {
		t.Fatal(err)
	}
	set := func(v string) func(Entry, bool) ([]byte, error) {
		return func(Entry, bool) ([]byte, error) { return []byte(v), nil }
	}
	e, err := s.Modify(ctx, bus.BucketFlows, "acme.a", 0, set("one"))
	if err != nil || string(e.Value) != "one" || e.Revision == 0 || e.Created.IsZero() {
		t.Fatalf("create: %+v %v", e, err)
	}
	// Over a stale revision: refused, nothing written.
	if _, err := s.Modify(ctx, bus.BucketFlows, "acme.a", e.Revision+7, set("two")); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale revision: %v", err)
	}
	if _, err := s.Modify(ctx, bus.BucketFlows, "acme.missing", 3, set("two")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revision of a missing key: %v", err)
	}
	// Identical: no new revision.
	same, err := s.Modify(ctx, bus.BucketFlows, "acme.a", e.Revision, set("one"))
	if err != nil || same.Revision != e.Revision {
		t.Fatalf("identical value: %+v %v", same, err)
	}
	// A writer that loses a race reads again: change sees the other write.
	calls := 0
	got, err := s.Modify(ctx, bus.BucketFlows, "acme.a", 0, func(cur Entry, exists bool) ([]byte, error) {
		calls++
		if calls == 1 {
			if _, err := s.Modify(ctx, bus.BucketFlows, "acme.a", cur.Revision, set("other")); err != nil {
				t.Fatal(err)
			}
		}
		return append(append([]byte(nil), cur.Value...), '+'), nil
	})
	if err != nil || calls != 2 || string(got.Value) != "other+" {
		t.Fatalf("race: calls %d, %q, %v", calls, got.Value, err)
	}
	// A refusal is returned as is, and nothing is written.
	refused := errors.New("refused")
	if _, err := s.Modify(ctx, bus.BucketFlows, "acme.a", 0, func(Entry, bool) ([]byte, error) { return nil, refused }); err != refused {
		t.Fatalf("refusal: %v", err)
	}
	if cur, _ := s.Get(ctx, bus.BucketFlows, "acme.a"); string(cur.Value) != "other+" {
		t.Fatalf("after a refusal: %q", cur.Value)
	}
}
