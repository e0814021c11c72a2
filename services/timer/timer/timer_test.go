package timer

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/flow"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/natstest"
	"github.com/greentic/events/pkg/schedule"
	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/pkg/tenant"
)

// checkOnePerTick asserts that evs hold exactly one event per second from
// the first to the last scheduled time: no gap, no duplicate.
func checkOnePerTick(t *testing.T, evs []*eventsv1.Event, tenantID, id string) []time.Time {
	t.Helper()
	ids := map[string]bool{}
	for _, ev := range evs {
		if ids[ev.Id] {
			t.Fatalf("event %s stored twice", ev.Id)
		}
		ids[ev.Id] = true
	}
	at := scheduled(t, evs)
	for i, s := range at {
		if want := fmt.Sprintf("%s:%s:%d", tenantID, id, s.Unix()); !ids[want] {
			t.Fatalf("no event with id %s for the tick at %s", want, s)
		}
		if i > 0 && s.Sub(at[i-1]) != time.Second {
			t.Fatalf("ticks %s then %s: want one per second, no gap, no duplicate (%d events)", at[i-1], s, len(evs))
		}
	}
	return at
}

// TestThreeReplicasOneEventPerTick: three replicas fire the same
// one-second schedule; the stream holds exactly one event per second, also
// while one replica is killed and a new one started.
func TestThreeReplicasOneEventPerTick(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	env := "replicas"
	a := newAdmin(t, s.URL(), env)
	a.putTenant(t, tenant.Tenant{ID: "acme"})
	cfg := testConfig()
	replicas := []*instance{startTimer(t, s.URL(), env, cfg), startTimer(t, s.URL(), env, cfg), startTimer(t, s.URL(), env, cfg)}

	ctx := context.Background()
	if _, err := a.store.PutSchedule(ctx, schedule.Schedule{Tenant: "acme", Name: "every-second", Cron: "* * * * * *", Payload: []byte(`{"n":1}`)}); err != nil {
		t.Fatal(err)
	}
	evs := a.waitTicks(t, "acme", MetaSchedule, "every-second", 1)
	first := scheduled(t, evs)[0]

	time.Sleep(3 * time.Second)
	replicas[1].kill(t)
	time.Sleep(1500 * time.Millisecond)
	replicas = append(replicas, startTimer(t, s.URL(), env, cfg))
	time.Sleep(3 * time.Second)

	if err := a.store.DeleteSchedule(ctx, "acme", "every-second"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // the deletion reached every replica
	evs = a.ticks(t, "acme", MetaSchedule, "every-second")
	at := checkOnePerTick(t, evs, "acme", "every-second")
	if !at[0].Equal(first) || len(at) < 8 {
		t.Fatalf("%d ticks from %s, want at least 8 from %s", len(at), at[0], first)
	}
	ev := evs[0]
	if ev.Source != flow.TimerSource || ev.EventType != schedule.DefaultEventType || string(ev.Payload) != `{"n":1}` ||
		ev.Metadata[MetaFiredAt] == "" || ev.Metadata[flow.MetaTimerFlow] != "" || ev.Metadata[MetaCatchUp] != "" {
		t.Fatalf("tick %+v", ev)
	}
	if _, err := time.Parse(time.RFC3339, ev.Metadata[MetaFiredAt]); err != nil || !strings.HasSuffix(ev.Metadata[MetaFiredAt], "Z") {
		t.Fatalf("fired_at %q: %v", ev.Metadata[MetaFiredAt], err)
	}

	// Deleted: no more ticks, and its state is gone.
	time.Sleep(1200 * time.Millisecond)
	if n := len(a.ticks(t, "acme", MetaSchedule, "every-second")); n != len(evs) {
		t.Fatalf("%d ticks after the schedule was deleted, want %d", n, len(evs))
	}
	if st := a.state(t, "acme.every-second"); st != "" {
		t.Fatalf("state %q left after deletion", st)
	}
	// Every replica fired every tick: the stream dropped the copies.
	var published, duplicates float64
	for _, r := range replicas {
		published += metric(t, r.rt, "greentic_timer_fires_total", "outcome", "published")
		duplicates += metric(t, r.rt, "greentic_timer_fires_total", "outcome", "duplicate")
	}
	if duplicates == 0 || published < float64(len(at))-3 { // the killed replica's counts are included
		t.Fatalf("published %v duplicates %v for %d ticks", published, duplicates, len(at))
	}
}

// TestMissedTicksPolicies: every replica was down from 11:50 to 12:00:30;
// one starts (fake clock) and publishes what each schedule's policy asks
// for, then fires the next tick on time.
func TestMissedTicksPolicies(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	env := "missed"
	a := newAdmin(t, s.URL(), env)
	a.putTenant(t, tenant.Tenant{ID: "acme"})
	ctx := context.Background()
	down := utc("2026-06-01T11:50:00Z")
	for _, sc := range []schedule.Schedule{
		{Name: "skip", Cron: "* * * * *", Missed: schedule.MissedSkip},
		{Name: "once", Cron: "* * * * *", Missed: schedule.MissedFireOnce},
		{Name: "all", Cron: "* * * * *", Missed: schedule.MissedFireAll},
		{Name: "fresh", Cron: "* * * * *"}, // no state: nothing is missed
		{Name: "at-past", At: "2026-06-01T11:00:00Z"},
		{Name: "at-past-skip", At: "2026-06-01T11:00:00Z", Missed: schedule.MissedSkip},
		{Name: "at-fired", At: "2026-06-01T11:00:00Z"},
	} {
		sc.Tenant = "acme"
		if _, err := a.store.PutSchedule(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	timers := a.kv(t, bus.BucketTimers)
	for key, last := range map[string]time.Time{"acme.skip": down, "acme.once": down, "acme.all": down, "acme.at-fired": utc("2026-06-01T11:00:00Z")} {
		if _, err := timers.Put(ctx, key, []byte(strconv.FormatInt(last.Unix(), 10))); err != nil {
			t.Fatal(err)
		}
	}
	// A state left by a schedule deleted while every replica was down.
	if _, err := timers.Put(ctx, "acme.gone", []byte("1")); err != nil {
		t.Fatal(err)
	}

	clock := clockwork.NewFakeClockAt(utc("2026-06-01T12:00:30Z"))
	cfg := testConfig()
	cfg.MaxCatchUp = 5
	cfg.clock = clock
	in := startTimer(t, s.URL(), env, cfg)

	want := map[string][]string{ // scheduled times, "+" for catch-up ticks
		"skip":         nil,
		"once":         {"12:00+"},
		"all":          {"11:56+", "11:57+", "11:58+", "11:59+", "12:00+"},
		"fresh":        nil,
		"at-past":      {"11:00+"},
		"at-past-skip": nil,
		"at-fired":     nil,
	}
	check := func() {
		t.Helper()
		for name, w := range want {
			var evs []*eventsv1.Event
			if len(w) > 0 {
				evs = a.waitTicks(t, "acme", MetaSchedule, name, len(w))
			} else {
				evs = a.ticks(t, "acme", MetaSchedule, name)
			}
			var got []string
			for _, ev := range evs { // stream order: oldest first
				at := time.UnixMilli(ev.Timestamp).UTC()
				g := at.Format("15:04")
				if ev.Metadata[MetaCatchUp] == "true" {
					g += "+"
				}
				got = append(got, g)
				if ev.Id != fmt.Sprintf("acme:%s:%d", name, at.Unix()) || ev.Metadata[MetaScheduledAt] != at.Format("2006-01-02T15:04:05.000Z") {
					t.Errorf("%s: tick id %s, scheduled_at %s", name, ev.Id, ev.Metadata[MetaScheduledAt])
				}
			}
			if strings.Join(got, ",") != strings.Join(w, ",") {
				t.Errorf("%s: ticks %v, want %v", name, got, w)
			}
		}
	}
	check()
	for policy, n := range map[string]float64{schedule.MissedSkip: 11, schedule.MissedFireOnce: 11, schedule.MissedFireAll: 10} {
		natstest.Eventually(t, 5*time.Second, "missed ticks counted ("+policy+")", func() bool {
			return metric(t, in.rt, "greentic_timer_missed_ticks_total", "policy", policy) == n
		})
	}
	natstest.Eventually(t, 5*time.Second, "states saved", func() bool {
		return a.state(t, "acme.skip") == strconv.FormatInt(utc("2026-06-01T12:00:00Z").Unix(), 10) &&
			a.state(t, "acme.at-past") == strconv.FormatInt(utc("2026-06-01T11:00:00Z").Unix(), 10) &&
			a.state(t, "acme.gone") == ""
	})

	// The next tick is on time for every policy.
	bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := clock.BlockUntilContext(bctx, 4); err != nil {
		t.Fatal("the four cron schedules have no timer")
	}
	clock.Advance(30 * time.Second)
	for _, name := range []string{"skip", "once", "all", "fresh"} {
		want[name] = append(want[name], "12:01")
	}
	check()
}

// TestDSTWithFakeClock runs the scheduler through the days the clocks
// change and checks the instants it fires at (and that it does not fire
// at the instants in between).
func TestDSTWithFakeClock(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	for i, tc := range []struct {
		name, spec, tz string
		start          string
		steps          []string // instants to advance to; "!" prefix: a tick fires there
	}{
		{"paris fall back", "30 2 * * *", "Europe/Paris", "2026-10-24T23:00:00Z",
			[]string{"!2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z", "2026-10-25T12:00:00Z", "!2026-10-26T01:30:00Z"}},
		{"paris spring forward", "30 2 * * *", "Europe/Paris", "2026-03-28T00:00:00Z",
			[]string{"!2026-03-28T01:30:00Z", "2026-03-29T00:30:00Z", "2026-03-29T01:30:00Z", "!2026-03-30T00:30:00Z"}},
		{"new york 9am", "0 9 * * *", "America/New_York", "2026-03-07T12:00:00Z",
			[]string{"!2026-03-07T14:00:00Z", "!2026-03-08T13:00:00Z", "2026-03-08T14:00:00Z", "!2026-03-09T13:00:00Z"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := "dst" + strconv.Itoa(i)
			a := newAdmin(t, s.URL(), env)
			a.putTenant(t, tenant.Tenant{ID: "acme"})
			if _, err := a.store.PutSchedule(context.Background(), schedule.Schedule{Tenant: "acme", Name: "dst", Cron: tc.spec, Timezone: tc.tz}); err != nil {
				t.Fatal(err)
			}
			clock := clockwork.NewFakeClockAt(utc(tc.start))
			cfg := testConfig()
			cfg.clock = clock
			startTimer(t, s.URL(), env, cfg)
			var fired []string
			for _, step := range tc.steps {
				fires := strings.HasPrefix(step, "!")
				at := utc(strings.TrimPrefix(step, "!"))
				bctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if err := clock.BlockUntilContext(bctx, 1); err != nil {
					t.Fatalf("no timer before %s", at)
				}
				cancel()
				clock.Advance(at.Sub(clock.Now()))
				if fires {
					fired = append(fired, at.Format(time.RFC3339))
					a.waitTicks(t, "acme", MetaSchedule, "dst", len(fired))
				} else {
					time.Sleep(300 * time.Millisecond)
				}
				evs := a.ticks(t, "acme", MetaSchedule, "dst")
				var got []string
				for _, s := range scheduled(t, evs) {
					got = append(got, s.UTC().Format(time.RFC3339))
				}
				if strings.Join(got, ",") != strings.Join(fired, ",") {
					t.Fatalf("at %s: ticks %v, want %v", at, got, fired)
				}
				for _, ev := range evs {
					if ev.Metadata[MetaCatchUp] != "" {
						t.Fatalf("tick %s fired as a catch-up", ev.Id)
					}
				}
			}
		})
	}
}

const heartbeatFlow = `name: heartbeat
version: "1.0"
nodes:
  - id: beat
    type: respond
    config: {body: {beat: "{{ event.metadata.scheduled_at }}"}}
triggers:
  - type: event
    event_type: "order.created"
    target: beat
  - type: timer
    cron: "* * * * * *"
    event_type: heartbeat.tick
    target: beat
`

// TestFlowTimerTrigger: a flow's timer trigger produces ticks addressed to
// the flow; deleting the flow stops them.
func TestFlowTimerTrigger(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	env := "flows"
	a := newAdmin(t, s.URL(), env)
	a.putTenant(t, tenant.Tenant{ID: "acme"})
	in := startTimer(t, s.URL(), env, testConfig())
	ctx := context.Background()
	if _, err := a.store.PutFlow(ctx, "acme", "heartbeat", []byte(heartbeatFlow)); err != nil {
		t.Fatal(err)
	}
	evs := a.waitTicks(t, "acme", flow.MetaTimerFlow, "heartbeat", 2)
	ev := evs[0]
	if ev.Metadata[flow.MetaTimerTrigger] != "1" || ev.EventType != "heartbeat.tick" || ev.Source != flow.TimerSource ||
		string(ev.Payload) != "{}" || ev.Metadata[MetaSchedule] != "" ||
		!strings.HasPrefix(ev.Id, "acme:flow.heartbeat.1:") {
		t.Fatalf("tick %+v", ev)
	}
	if metric(t, in.rt, "greentic_timer_schedules") != 1 {
		t.Fatalf("schedules gauge = %v, want 1", metric(t, in.rt, "greentic_timer_schedules"))
	}
	natstest.Eventually(t, 5*time.Second, "state saved", func() bool { return a.state(t, "acme.flow.heartbeat.1") != "" })

	if err := a.kv(t, bus.BucketFlows).Delete(ctx, tenant.FlowKey("acme", "heartbeat")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	n := len(a.ticks(t, "acme", flow.MetaTimerFlow, "heartbeat"))
	time.Sleep(2 * time.Second)
	evs = a.ticks(t, "acme", flow.MetaTimerFlow, "heartbeat")
	if len(evs) != n {
		t.Fatalf("%d ticks after the flow was deleted, then %d", n, len(evs))
	}
	checkOnePerTick(t, evs, "acme", "flow.heartbeat.1")
	if st := a.state(t, "acme.flow.heartbeat.1"); st != "" || metric(t, in.rt, "greentic_timer_schedules") != 0 {
		t.Fatalf("state %q, gauge %v after the flow was deleted", st, metric(t, in.rt, "greentic_timer_schedules"))
	}
	// A flow stored again in a form that does not compile has no timers.
	if _, err := a.store.PutFlow(ctx, "acme", "broken", []byte(heartbeatFlow)); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 5*time.Second, "flow timer loaded", func() bool { return metric(t, in.rt, "greentic_timer_schedules") == 1 })
	if _, err := a.kv(t, bus.BucketFlows).Put(ctx, tenant.FlowKey("acme", "broken"), []byte(strings.Replace(heartbeatFlow, "target: beat\n", "target: nowhere\n", 2))); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 5*time.Second, "broken flow's timer removed", func() bool { return metric(t, in.rt, "greentic_timer_schedules") == 0 })
}

// TestPauseAndResume: a paused schedule stops firing; resumed, it fires
// again from the next tick, without catching up the pause.
func TestPauseAndResume(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	env := "pause"
	a := newAdmin(t, s.URL(), env)
	a.putTenant(t, tenant.Tenant{ID: "acme"})
	startTimer(t, s.URL(), env, testConfig())
	ctx := context.Background()
	sc := schedule.Schedule{Tenant: "acme", Name: "poll", Cron: "* * * * * *", EventType: "poll.due", Missed: schedule.MissedFireAll}
	if _, err := a.store.PutSchedule(ctx, sc); err != nil {
		t.Fatal(err)
	}
	a.waitTicks(t, "acme", MetaSchedule, "poll", 2)
	sc.Paused = true
	if _, err := a.store.PutSchedule(ctx, sc); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	paused := len(a.ticks(t, "acme", MetaSchedule, "poll"))
	time.Sleep(2500 * time.Millisecond)
	if n := len(a.ticks(t, "acme", MetaSchedule, "poll")); n != paused {
		t.Fatalf("%d ticks while paused, had %d", n, paused)
	}
	if st := a.state(t, "acme.poll"); st != "" {
		t.Fatalf("state %q kept while paused", st)
	}
	sc.Paused = false
	resumed := time.Now()
	if _, err := a.store.PutSchedule(ctx, sc); err != nil {
		t.Fatal(err)
	}
	evs := a.waitTicks(t, "acme", MetaSchedule, "poll", paused+2)
	at := scheduled(t, evs)
	for i, ev := range evs[paused:] {
		if ev.Metadata[MetaCatchUp] != "" || at[paused+i].Before(resumed.Truncate(time.Second)) {
			t.Fatalf("tick %s after resume (at %s, resumed %s) catches up the pause", ev.Id, at[paused+i], resumed)
		}
	}
	checkOnePerTick(t, evs[:paused], "acme", "poll")
	checkOnePerTick(t, evs[paused:], "acme", "poll")
}

// TestOneShot: an "at" schedule fires once, and never again after a restart.
func TestOneShot(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	env := "oneshot"
	a := newAdmin(t, s.URL(), env)
	a.putTenant(t, tenant.Tenant{ID: "acme"})
	cfg := testConfig()
	cfg.StateFlushInterval = 0 // state written after every publish
	first := startTimer(t, s.URL(), env, cfg)
	at := time.Now().Add(2 * time.Second).Truncate(time.Second)
	if _, err := a.store.PutSchedule(context.Background(), schedule.Schedule{Tenant: "acme", Name: "once", At: at.Format(time.RFC3339), Payload: []byte(`{"reminder":true}`)}); err != nil {
		t.Fatal(err)
	}
	evs := a.waitTicks(t, "acme", MetaSchedule, "once", 1)
	if evs[0].Id != fmt.Sprintf("acme:once:%d", at.Unix()) || evs[0].Metadata[MetaCatchUp] != "" || string(evs[0].Payload) != `{"reminder":true}` {
		t.Fatalf("one-shot tick %+v", evs[0])
	}
	natstest.Eventually(t, 5*time.Second, "state saved", func() bool { return a.state(t, "acme.once") == strconv.FormatInt(at.Unix(), 10) })
	first.stop(t)
	startTimer(t, s.URL(), env, cfg)
	time.Sleep(1500 * time.Millisecond)
	if n := len(a.ticks(t, "acme", MetaSchedule, "once")); n != 1 {
		t.Fatalf("one-shot fired %d times across a restart", n)
	}
}

// TestSuspendedTenant: a suspended tenant's schedules do not fire; once it
// is active again they fire from the next tick.
func TestSuspendedTenant(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	env := "suspended"
	a := newAdmin(t, s.URL(), env)
	a.putTenant(t, tenant.Tenant{ID: "sleepy", Suspended: true})
	in := startTimer(t, s.URL(), env, testConfig())
	if _, err := a.store.PutSchedule(context.Background(), schedule.Schedule{Tenant: "sleepy", Name: "nap", Cron: "* * * * * *"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.store.PutSchedule(context.Background(), schedule.Schedule{Tenant: "ghost", Name: "boo", Cron: "* * * * * *"}); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 5*time.Second, "suppressed ticks", func() bool {
		return metric(t, in.rt, "greentic_timer_fires_total", "outcome", "suppressed") >= 4
	})
	if n := len(a.ticks(t, "sleepy", MetaSchedule, "nap")) + len(a.ticks(t, "ghost", MetaSchedule, "boo")); n != 0 {
		t.Fatalf("%d ticks of a suspended or unknown tenant", n)
	}
	woke := time.Now()
	a.putTenant(t, tenant.Tenant{ID: "sleepy"})
	evs := a.waitTicks(t, "sleepy", MetaSchedule, "nap", 2)
	if at := scheduled(t, evs); at[0].Before(woke.Truncate(time.Second)) || evs[0].Metadata[MetaCatchUp] != "" {
		t.Fatalf("first tick after resuming the tenant at %s: %s", woke, at[0])
	}
}

func TestConfigValidate(t *testing.T) {
	parse := func(t *testing.T, env map[string]string) Config {
		var c Config
		f := service.NewFlags("timer")
		c.RegisterFlags(f)
		if err := f.Parse(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
			t.Fatal(err)
		}
		return c
	}
	def := parse(t, nil)
	if err := def.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if def.MaxCatchUp != 100 || def.PublishTimeout != 5*time.Second || def.MisfireThreshold != 10*time.Second || def.StateFlushInterval != time.Second {
		t.Fatalf("defaults %+v", def)
	}
	if c := parse(t, map[string]string{"GREENTIC_TIMER_STATE_FLUSH_INTERVAL": "0s"}); c.Validate() != nil {
		t.Fatalf("flush interval 0: %v", c.Validate())
	}
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"GREENTIC_TIMER_MAX_CATCH_UP": "0"}, "GREENTIC_TIMER_MAX_CATCH_UP"},
		{map[string]string{"GREENTIC_TIMER_MAX_CATCH_UP": "10001"}, "GREENTIC_TIMER_MAX_CATCH_UP"},
		{map[string]string{"GREENTIC_TIMER_PUBLISH_TIMEOUT": "0s"}, "GREENTIC_TIMER_PUBLISH_TIMEOUT"},
		{map[string]string{"GREENTIC_TIMER_MISFIRE_THRESHOLD": "500ms"}, "GREENTIC_TIMER_MISFIRE_THRESHOLD"},
		{map[string]string{"GREENTIC_TIMER_MISFIRE_THRESHOLD": "2h"}, "GREENTIC_TIMER_MISFIRE_THRESHOLD"},
		{map[string]string{"GREENTIC_TIMER_MISFIRE_THRESHOLD": "3s"}, "must not be shorter than GREENTIC_TIMER_PUBLISH_TIMEOUT"},
		{map[string]string{"GREENTIC_TIMER_STATE_FLUSH_INTERVAL": "-1s"}, "GREENTIC_TIMER_STATE_FLUSH_INTERVAL"},
		{map[string]string{"GREENTIC_TIMER_STATE_FLUSH_INTERVAL": "1m"}, "GREENTIC_TIMER_STATE_FLUSH_INTERVAL"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			c := parse(t, tc.env)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tc.want)
			}
		})
	}
	// Serve refuses an invalid config before touching the bus.
	if err := Serve(context.Background(), &service.Runtime{}, Config{}); err == nil || !strings.Contains(err.Error(), "GREENTIC_TIMER_MAX_CATCH_UP") {
		t.Fatalf("Serve with an invalid config = %v", err)
	}
}

// TestBusOutage: ticks that fall while the bus is down are published once
// it is back (late, within the misfire threshold), with no gap.
func TestBusOutage(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	env := "outage"
	a := newAdmin(t, s.URL(), env)
	a.putTenant(t, tenant.Tenant{ID: "acme"})
	in := startTimer(t, s.URL(), env, testConfig())
	if _, err := a.store.PutSchedule(context.Background(), schedule.Schedule{Tenant: "acme", Name: "beat", Cron: "* * * * * *"}); err != nil {
		t.Fatal(err)
	}
	a.waitTicks(t, "acme", MetaSchedule, "beat", 2)
	s.Stop()
	time.Sleep(3 * time.Second)
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	evs := a.waitTicks(t, "acme", MetaSchedule, "beat", 8)
	checkOnePerTick(t, evs, "acme", "beat")
	if metric(t, in.rt, "greentic_timer_fires_total", "outcome", "failed") == 0 {
		t.Fatal("no publish failed while the bus was down")
	}
	for _, ev := range evs {
		if ev.Metadata[MetaCatchUp] != "" {
			t.Fatalf("tick %s late by less than the threshold fired as a catch-up", ev.Id)
		}
	}
}
