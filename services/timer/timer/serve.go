package timer

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/flow"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/pkg/tenant"
	"github.com/greentic/events/pkg/tenant/tenantkv"
)

var errNeverFires = errors.New("the schedule has no future fire time")

const (
	// retryInterval is how often schedules whose last publish failed are
	// fired again (the ticks stay due; past the misfire threshold they
	// follow the missed policy).
	retryInterval = time.Second
	// fireWorkers bounds the fires the timer starts itself at once (the
	// catch-up at start and the retries); the scheduler runs its own.
	fireWorkers = 32
	// loadTimeout bounds reading the timers bucket at start.
	loadTimeout = 30 * time.Second
	// maxPublishes bounds the publishes in flight at once. Unbounded, a
	// burst (100k schedules due in the same second) starts as many
	// publishes together: the last ones wait behind all the others past
	// the publish timeout, fail and are fired again, adding to the load
	// until ticks are missed. A publish waiting for its turn has not
	// started its timeout. Far fewer (256) leave JetStream idle while the
	// scheduler's goroutines hold the CPU (see docs/BENCHMARKS.md).
	maxPublishes = 1024
)

// Serve runs the timer on rt until ctx ends. It fires nothing before the
// flows, the schedules and the tenants are loaded; then it publishes the
// ticks missed while no replica ran (per each schedule's policy) and
// starts the scheduler. Every replica fires every schedule: the
// deterministic event ids make the stream store one event per tick.
func Serve(ctx context.Context, rt *service.Runtime, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := rt.Log.With("component", Name)
	store, err := tenantkv.Open(ctx, rt.JS, rt.Topology)
	if err != nil {
		return err
	}
	kv, err := rt.Topology.KeyValue(ctx, rt.JS, bus.BucketTimers)
	if err != nil {
		return err
	}
	m, err := newMetrics(rt.Registry)
	if err != nil {
		return err
	}
	clock := cfg.clock
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	sched, err := gocron.NewScheduler(
		gocron.WithClock(clock),
		gocron.WithLocation(time.UTC),
		gocron.WithStopTimeout(rt.ShutdownTimeout),
	)
	if err != nil {
		return err
	}
	// Publishes outlive ctx: on shutdown the fires in flight finish (or
	// time out) rather than being cut off between publish and state.
	fireCtx, cancelFires := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelFires()
	t := &timer{
		cfg: cfg, clock: clock, log: log, pub: rt.Publisher, reg: tenant.NewRegistry(),
		state:   newStateStore(kv, cfg.StateFlushInterval, cfg.PublishTimeout, log),
		sched:   sched,
		metrics: m,
		fireCtx: fireCtx,
		slots:   make(chan struct{}, maxPublishes),
		entries: map[string]*entry{},
		flows:   map[string][]string{},
		retry:   map[string]*entry{},
	}
	var ready atomic.Bool
	rt.Ready.Add("timer_schedules", func(context.Context) error {
		if !ready.Load() {
			return errors.New("flows, schedules and tenants not loaded yet")
		}
		return nil
	})
	flowsLoaded, schedulesLoaded, tenantsLoaded := make(chan struct{}), make(chan struct{}), make(chan struct{})

	stopFlush, flushDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(flushDone)
		t.state.run(stopFlush)
	}()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return store.WatchRegistry(gctx, t.reg, log, func() { close(tenantsLoaded) })
	})
	g.Go(func() error {
		return store.WatchFlows(gctx, log, t.applyFlow, func() { close(flowsLoaded) })
	})
	g.Go(func() error {
		return store.WatchSchedules(gctx, log, t.applySchedule, func() { close(schedulesLoaded) })
	})
	g.Go(func() error {
		for _, c := range []chan struct{}{flowsLoaded, schedulesLoaded, tenantsLoaded} {
			select {
			case <-c:
			case <-gctx.Done():
				return nil
			}
		}
		if err := t.activate(gctx, func() { ready.Store(true) }); err != nil {
			if gctx.Err() != nil {
				return nil
			}
			return err
		}
		t.retryLoop(gctx)
		return nil
	})
	err = g.Wait()
	ready.Store(false)
	t.shutdown(rt.ShutdownTimeout, cancelFires)
	close(stopFlush)
	<-flushDone
	log.Info("timer stopped")
	return err
}

// publisher stores ticks.
type publisher interface {
	PublishEvent(ctx context.Context, e *eventsv1.Event) (bus.Published, error)
}

type timer struct {
	cfg     Config
	clock   clockwork.Clock
	log     *slog.Logger
	pub     publisher
	reg     *tenant.Registry
	state   *stateStore
	sched   gocron.Scheduler
	metrics *metrics
	fireCtx context.Context
	slots   chan struct{} // one per publish in flight (maxPublishes)

	mu      sync.Mutex // entries, flows, active and the entries' jobs
	active  bool       // loaded: schedules are in the scheduler
	entries map[string]*entry
	flows   map[string][]string // {tenant}.{flow} -> keys of its timer triggers

	retryMu sync.Mutex
	retry   map[string]*entry // schedules whose last publish failed

	wg sync.WaitGroup // fires started by the timer itself
}

// entry is one schedule loaded (and not paused).
type entry struct {
	key string
	// firing is set while a fire of the entry runs; pending asks it to
	// look again for due ticks (a tick came due meanwhile).
	firing, pending atomic.Bool

	mu      sync.Mutex
	def     *definition
	last    time.Time // scheduled time of the last tick handled
	gen     uint64    // bumped when the spec changes or the entry is removed
	removed bool

	job gocron.Job // guarded by timer.mu
}

// activate starts firing: every loaded schedule gets its job and its
// last handled tick from the timers bucket, the scheduler starts, and
// each schedule is fired once to publish what fell due while no replica
// ran. States of schedules that no longer exist (or are paused) are
// removed. started is called once the scheduler runs, before the catch-up,
// which may take long while the bus is unavailable.
func (t *timer) activate(ctx context.Context, started func()) error {
	lctx, cancel := context.WithTimeout(ctx, loadTimeout)
	states, err := t.state.loadAll(lctx)
	cancel()
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.active = true
	now := t.clock.Now()
	all := make([]*entry, 0, len(t.entries))
	for key, e := range t.entries {
		last, ok := states[key]
		t.initLast(e, last, ok, now)
		t.schedule(e)
		all = append(all, e)
	}
	for key := range states {
		if _, ok := t.entries[key]; !ok {
			t.state.remove(key)
		}
	}
	t.mu.Unlock()
	t.sched.Start()
	started()
	t.log.Info("timer started", "schedules", len(all))

	sem := make(chan struct{}, fireWorkers)
	var wg sync.WaitGroup
	for _, e := range all {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		wg.Go(func() {
			defer func() { <-sem }()
			t.fire(e)
		})
	}
	wg.Wait()
	return nil
}

// initLast sets the last handled tick of an entry being loaded: the stored
// one, or for a new schedule now (nothing before it is missed) and for a
// new one-shot the second before its time (so a time already past is due).
func (t *timer) initLast(e *entry, stored time.Time, found bool, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case found:
		e.last = stored
	case e.def.oneShot:
		e.last = e.def.tk.next(time.Time{}).Add(-time.Second)
	default:
		e.last = now.Truncate(time.Second)
		t.state.set(e.key, e.last)
	}
}

// restart makes an entry whose spec changed start afresh: from now for a
// cron, at its (new) time for a one-shot. e.mu is held.
func (t *timer) restart(e *entry, now time.Time) {
	e.gen++
	if e.def.oneShot {
		e.last = e.def.tk.next(time.Time{}).Add(-time.Second)
		t.state.remove(e.key)
		return
	}
	e.last = now.Truncate(time.Second)
	t.state.set(e.key, e.last)
}

// schedule gives e its scheduler job (or updates it); t.mu is held.
func (t *timer) schedule(e *entry) {
	d := e.def
	opts := []gocron.JobOption{gocron.WithName(e.key)}
	var jd gocron.JobDefinition
	if d.oneShot {
		at := d.tk.next(time.Time{})
		if !at.After(t.clock.Now()) {
			// Past: the catch-up fire publishes it (or not, per the state).
			t.unschedule(e)
			return
		}
		jd = gocron.OneTimeJob(gocron.OneTimeJobStartDateTime(at))
	} else {
		jd = gocron.CronJob(d.spec, false)
		opts = append(opts, gocron.WithCronImplementation(gocronCron{d.tk}))
	}
	task := gocron.NewTask(func() { t.fire(e) })
	var j gocron.Job
	var err error
	if e.job != nil {
		j, err = t.sched.Update(e.job.ID(), jd, task, opts...)
	} else {
		j, err = t.sched.NewJob(jd, task, opts...)
	}
	e.job = j
	switch {
	case errors.Is(err, gocron.ErrOneTimeJobStartDateTimePast):
		e.job = nil
		t.goFire(e)
	case err != nil:
		e.job = nil
		t.log.Warn("schedule not scheduled", "tenant", d.tenant, "schedule", d.id, "spec", d.spec, "err", err)
	}
}

func (t *timer) unschedule(e *entry) {
	if e.job != nil {
		if err := t.sched.RemoveJob(e.job.ID()); err != nil && !errors.Is(err, gocron.ErrJobNotFound) {
			t.log.Warn("schedule job not removed", "key", e.key, "err", err)
		}
		e.job = nil
	}
}

// upsert adds or updates a schedule; t.mu is held. An unchanged spec keeps
// its job and its last tick.
func (t *timer) upsert(d *definition) {
	key := d.key()
	e, ok := t.entries[key]
	if !ok {
		e = &entry{key: key, def: d}
		t.entries[key] = e
		t.metrics.schedules.Set(float64(len(t.entries)))
		if t.active {
			stored, found, err := t.state.lookup(t.fireCtx, key)
			if err != nil {
				t.log.Warn("timer state not read, starting the schedule from now", "tenant", d.tenant, "schedule", d.id, "err", err)
			}
			t.initLast(e, stored, found, t.clock.Now())
			t.schedule(e)
			t.goFire(e)
		}
		t.log.Debug("schedule loaded", "tenant", d.tenant, "schedule", d.id, "spec", d.spec)
		return
	}
	e.mu.Lock()
	changed := e.def.spec != d.spec
	e.def = d
	if changed && t.active {
		t.restart(e, t.clock.Now())
	}
	e.mu.Unlock()
	if changed && t.active {
		t.schedule(e)
		t.log.Info("schedule changed", "tenant", d.tenant, "schedule", d.id, "spec", d.spec)
	}
}

// remove stops a schedule and deletes its state; t.mu is held.
func (t *timer) remove(key string) {
	e, ok := t.entries[key]
	if !ok {
		return
	}
	delete(t.entries, key)
	t.metrics.schedules.Set(float64(len(t.entries)))
	e.mu.Lock()
	e.removed = true
	e.gen++
	if t.active {
		// Under e.mu, after any state a fire of it recorded.
		t.state.remove(key)
	}
	e.mu.Unlock()
	t.unschedule(e)
	t.retryMu.Lock()
	delete(t.retry, key)
	t.retryMu.Unlock()
	t.log.Info("schedule removed", "key", key)
}

// applyFlow follows a change of the flows bucket. A flow that does not
// compile has no timers.
func (t *timer) applyFlow(fe tenantkv.FlowEntry) {
	var defs []*definition
	if !fe.Deleted {
		p, err := flow.Compile(fe.Doc)
		if err == nil {
			defs, err = flowDefinitions(fe.Tenant, fe.Name, p)
		}
		if err != nil {
			t.log.Error("stored flow does not compile, not firing its timers", "tenant", fe.Tenant, "flow", fe.Name, "revision", fe.Revision, "err", err)
			defs = nil
		}
	}
	fk := stateKey(fe.Tenant, fe.Name)
	keys := make([]string, 0, len(defs))
	for _, d := range defs {
		keys = append(keys, d.key())
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range t.flows[fk] {
		if !slices.Contains(keys, k) {
			t.remove(k)
		}
	}
	for _, d := range defs {
		t.upsert(d)
	}
	if len(keys) == 0 {
		delete(t.flows, fk)
	} else {
		t.flows[fk] = keys
	}
}

// applySchedule follows a change of the schedules bucket. Pausing removes
// the schedule and its state, so resuming starts it afresh: ticks during
// the pause are not missed ticks.
func (t *timer) applySchedule(se tenantkv.ScheduleEntry) {
	key := stateKey(se.Tenant, se.Name)
	var d *definition
	if !se.Deleted && !se.Schedule.Paused {
		var err error
		if d, err = scheduleDefinition(se.Schedule); err != nil {
			t.log.Error("stored schedule is not usable, not firing it", "tenant", se.Tenant, "schedule", se.Name, "err", err)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if d == nil {
		t.remove(key)
		return
	}
	t.upsert(d)
}

// goFire fires e in a goroutine the timer waits for at shutdown.
func (t *timer) goFire(e *entry) { t.wg.Go(func() { t.fire(e) }) }

// fire publishes the ticks of e that are due. Concurrent calls for one
// entry coalesce: a call while a fire runs makes that fire look again.
func (t *timer) fire(e *entry) {
	e.pending.Store(true)
	for {
		if !e.firing.CompareAndSwap(false, true) {
			return
		}
		failed := false
		for e.pending.Swap(false) {
			failed = t.fireDue(e)
		}
		t.retryMu.Lock()
		if failed {
			t.retry[e.key] = e
		} else {
			delete(t.retry, e.key)
		}
		t.retryMu.Unlock()
		e.firing.Store(false)
		if !e.pending.Load() {
			return
		}
	}
}

// fireDue publishes the due ticks of e in order and records the last one
// handled; it reports whether a publish failed (the rest stay due).
func (t *timer) fireDue(e *entry) (failed bool) {
	e.mu.Lock()
	if e.removed {
		e.mu.Unlock()
		return false
	}
	d, last, gen := e.def, e.last, e.gen
	e.mu.Unlock()

	p := planTicks(d.tk, last, t.clock.Now(), t.cfg.MisfireThreshold, d.missed, t.cfg.MaxCatchUp)
	if p.through.IsZero() {
		return false
	}
	if p.missed > 0 {
		t.metrics.missed.WithLabelValues(d.missed).Add(float64(p.missed))
		t.log.Warn("missed ticks", "tenant", d.tenant, "schedule", d.id, "policy", d.missed, "missed", p.missed,
			"at_least", p.capped, "fired", p.missed-p.dropped, "dropped", p.dropped, "since", last.Format(time.RFC3339))
	}
	// Ticks dropped by the policy precede every tick fired.
	handled := p.through
	if len(p.fire) > 0 {
		handled = p.fire[0].at.Add(-time.Second)
	}
	ten, known := t.reg.Tenant(d.tenant)
	active := known && !ten.Suspended
	for _, tk := range p.fire {
		if !active {
			// Dropped, not missed: like a paused schedule, a suspended
			// tenant's ticks do not come back when it resumes.
			t.metrics.fires.WithLabelValues("suppressed").Inc()
			handled = tk.at
			continue
		}
		if err := t.publish(d, tk); err != nil {
			failed = true
			break
		}
		handled = tk.at
	}
	if !handled.After(last) {
		return failed
	}
	e.mu.Lock()
	if !e.removed && e.gen == gen && handled.After(e.last) {
		e.last = handled
		t.state.set(e.key, handled)
	}
	e.mu.Unlock()
	return failed
}

// publish stores one tick.
func (t *timer) publish(d *definition, tk tick) error {
	meta := make(map[string]string, len(d.meta)+3)
	for k, v := range d.meta {
		meta[k] = v
	}
	meta[MetaScheduledAt] = tk.at.UTC().Format(timeFormat)
	meta[MetaFiredAt] = t.clock.Now().UTC().Format(timeFormat)
	if tk.catchUp {
		meta[MetaCatchUp] = "true"
	}
	ev := &eventsv1.Event{
		Id:        d.eventID(tk.at),
		EventType: d.eventType,
		Source:    flow.TimerSource,
		Timestamp: tk.at.UnixMilli(),
		Payload:   d.payload,
		Metadata:  meta,
		Tenant:    d.tenant,
	}
	res, err := t.publishEvent(ev)
	if err != nil {
		t.metrics.fires.WithLabelValues("failed").Inc()
		t.log.Warn("tick not published, retrying", "tenant", d.tenant, "schedule", d.id, "event_id", ev.Id, "err", err)
		return err
	}
	outcome := "published"
	if res.Duplicate {
		outcome = "duplicate"
	}
	t.metrics.fires.WithLabelValues(outcome).Inc()
	if !tk.catchUp {
		t.metrics.lag.Observe(t.clock.Since(tk.at).Seconds())
	}
	return nil
}

// publishEvent publishes ev once a slot is free, within the publish timeout.
func (t *timer) publishEvent(ev *eventsv1.Event) (bus.Published, error) {
	select {
	case t.slots <- struct{}{}:
	case <-t.fireCtx.Done():
		return bus.Published{}, t.fireCtx.Err()
	}
	defer func() { <-t.slots }()
	ctx, cancel := context.WithTimeout(t.fireCtx, t.cfg.PublishTimeout)
	defer cancel()
	return t.pub.PublishEvent(ctx, ev)
}

// retryLoop fires again, every retryInterval, the schedules whose last
// publish failed, until ctx ends.
func (t *timer) retryLoop(ctx context.Context) {
	tick := time.NewTicker(retryInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		t.retryMu.Lock()
		batch := make([]*entry, 0, len(t.retry))
		for _, e := range t.retry {
			batch = append(batch, e)
		}
		t.retryMu.Unlock()
		sem := make(chan struct{}, fireWorkers)
		var wg sync.WaitGroup
		for _, e := range batch {
			if ctx.Err() != nil {
				break
			}
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				t.fire(e)
			})
		}
		wg.Wait()
	}
}

// shutdown stops the scheduler and waits for the fires in flight, for at
// most timeout each, then abandons what is left.
func (t *timer) shutdown(timeout time.Duration, cancelFires context.CancelFunc) {
	if err := t.sched.Shutdown(); err != nil {
		t.log.Warn("scheduler did not stop in time", "err", err)
	}
	done := make(chan struct{})
	go func() {
		t.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		cancelFires()
		<-done
	}
}

type metrics struct {
	schedules prometheus.Gauge
	fires     *prometheus.CounterVec
	lag       prometheus.Histogram
	missed    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		schedules: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "greentic_timer_schedules",
			Help: "Schedules loaded and not paused: flow timer triggers and ad-hoc schedules.",
		}),
		fires: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greentic_timer_fires_total",
			Help: "Ticks fired by outcome: published, duplicate (another replica stored it first), failed (retried), suppressed (tenant unknown or suspended).",
		}, []string{"outcome"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "greentic_timer_fire_lag_seconds",
			Help:    "Time from a tick's scheduled time to its publish being stored (catch-up ticks excluded).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		missed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greentic_timer_missed_ticks_total",
			Help: "Ticks later than the misfire threshold, by the schedule's missed policy (fired by it or not).",
		}, []string{"policy"}),
	}
	var err error
	if m.schedules, err = bus.Register(reg, m.schedules); err != nil {
		return nil, err
	}
	if m.fires, err = bus.Register(reg, m.fires); err != nil {
		return nil, err
	}
	if m.lag, err = bus.Register(reg, m.lag); err != nil {
		return nil, err
	}
	if m.missed, err = bus.Register(reg, m.missed); err != nil {
		return nil, err
	}
	for _, o := range []string{"published", "duplicate", "failed", "suppressed"} {
		m.fires.WithLabelValues(o)
	}
	return m, nil
}
