package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/event"
	"github.com/greentic/events/pkg/flow"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/pkg/tenant/tenantkv"
)

// Stage names the executor in dead letters and consumer metrics.
const Stage = bus.StageFlow

// Serve runs the executor on rt until ctx ends. It loads every flow before
// it takes its first event, so no event is acknowledged by a replica that
// does not know the tenant's flows yet.
func Serve(ctx context.Context, rt *service.Runtime, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if span := cfg.retrySpan(); span >= rt.Topology.DuplicateWindow {
		// A retried event reruns every matching flow; what the earlier
		// attempts published is dropped only inside the duplicate window.
		return fmt.Errorf("the retries of one event may span %s, longer than the streams' duplicate window %s: lower %s or raise the duplicate window", span, rt.Topology.DuplicateWindow, service.EnvName("max-attempts"))
	}
	log := rt.Log.With("component", Name)
	store, err := tenantkv.Open(ctx, rt.JS, rt.Topology)
	if err != nil {
		return err
	}
	flows := newFlowSet(log)
	synced := make(chan struct{})
	rt.Ready.Add("executor_flows", func(context.Context) error {
		select {
		case <-synced:
			return nil
		default:
			return errors.New("flows not loaded yet")
		}
	})
	m, err := newMetrics(rt.Registry)
	if err != nil {
		return err
	}
	flows.applied = func(outcome string) { m.changes.WithLabelValues(outcome).Inc() }
	consumer, err := bus.NewConsumer(rt.JS, rt.Topology, bus.ConsumerConfig{
		Stream:         rt.Topology.EventsStream(),
		Durable:        rt.Topology.Durable(Name),
		FilterSubjects: []string{bus.EventFilter(rt.Topology.Env)},
		Stage:          Stage,
		Concurrency:    cfg.Concurrency,
		Key:            bus.TenantKey,
		KeyConcurrency: cfg.TenantConcurrency,
		MaxParked:      cfg.MaxParked,
		AckWait:        cfg.AckWait,
		MaxAttempts:    cfg.MaxAttempts,
		Backoff:        cfg.backoff,
		DrainTimeout:   rt.ShutdownTimeout,
		Logger:         log,
		Registerer:     rt.Registry,
	})
	if err != nil {
		return err
	}
	policy, err := cfg.httpPolicy()
	if err != nil {
		return err
	}
	x := &executor{http: policy.Client(), flows: flows, pub: rt.Publisher, cfg: cfg, log: log, metrics: m}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return store.WatchFlows(gctx, log, flows.apply, func() { close(synced) })
	})
	g.Go(func() error {
		select {
		case <-synced:
		case <-gctx.Done():
			return nil
		}
		log.Info("executor consuming", "durable", rt.Topology.Durable(Name))
		return consumer.Run(gctx, x.handle)
	})
	return g.Wait()
}

// publisher stores results and the runs' effects.
type publisher interface {
	PublishResult(ctx context.Context, r *eventsv1.FlowResult) (bus.Published, error)
	PublishEvent(ctx context.Context, e *eventsv1.Event) (bus.Published, error)
	PublishCommand(ctx context.Context, tenant, channel, id, traceparent string, cmd proto.Message) (bus.Published, error)
}

type executor struct {
	http    flow.HTTPClient
	flows   *flowSet
	pub     publisher
	cfg     Config
	log     *slog.Logger
	metrics *metrics
}

// handle runs every matching flow on one event (or flow result) and
// publishes their results. It is safe to run again on a redelivered event:
// results and effects are published with ids per (event, flow[, node]), so
// a rerun within the stream's duplicate window stores nothing twice.
//
// A delivery replayed from the dead-letter stream (header Greentic-Replay)
// publishes its results with the replay marker in their ids, or they would
// be dropped as duplicates of the failed attempt's error results. Its
// effects keep their ids: what the failed attempt published is not
// published again.
func (x *executor) handle(ctx context.Context, d bus.Delivery) error {
	subj, err := bus.ParseSubject(d.Subject)
	if err != nil {
		return bus.Permanent(err)
	}
	replay := d.Header.Get(bus.HeaderReplay)
	if replay != "" {
		if err := bus.ValidateReplayMarker(replay); err != nil {
			return bus.Permanent(fmt.Errorf("message on %s: %w", d.Subject, err))
		}
	}
	var ev *eventsv1.Event
	var f filter
	switch subj.Kind {
	case bus.KindEvent:
		if ev, err = event.Unmarshal(d.Data); err != nil {
			return bus.Permanent(err)
		}
		if ev.Tenant != subj.Tenant || ev.EventType != subj.Type {
			return bus.Permanent(fmt.Errorf("event %s names tenant %q type %q but was published on %s", ev.Id, ev.Tenant, ev.EventType, d.Subject))
		}
	case bus.KindResult:
		if !x.flows.onResults(subj.Tenant) {
			return nil
		}
		if ev, f.exclude, err = x.resultEvent(subj, d); ev == nil || err != nil {
			return err
		}
	default:
		return nil
	}
	if only := d.Header.Get(bus.HeaderFlows); only != "" {
		f.only = strings.Split(only, ",")
	}
	if x.cfg.beforeRun != nil {
		x.cfg.beforeRun()
	}
	var failed, reasons []string
	for _, mt := range x.matches(ev, f) {
		fx := &busEffects{pub: x.pub, timeout: 10 * time.Second}
		res, transient := x.run(ctx, ev, mt, fx)
		if fx.busErr != nil {
			// Not the flow's fault: run it again later. Effects already
			// published carry the same ids and are not stored twice.
			return bus.Retryable(fmt.Errorf("flow %s for event %s: %w", mt.name, ev.Id, fx.busErr))
		}
		if transient && d.Attempt < x.cfg.MaxAttempts {
			// A dependency failed (an http node's service, a deadline):
			// try the event again later rather than settle for an error.
			x.metrics.retries.Inc()
			return bus.Retryable(fmt.Errorf("flow %s for event %s: %s", mt.name, ev.Id, res.Error))
		}
		if x.cfg.afterRun != nil {
			x.cfg.afterRun()
		}
		res.Replay = replay
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := x.pub.PublishResult(pctx, res)
		cancel()
		if err != nil {
			return bus.Retryable(fmt.Errorf("publish result of flow %s for event %s: %w", mt.name, ev.Id, err))
		}
		if res.Status != eventsv1.FlowStatus_FLOW_STATUS_OK {
			failed = append(failed, mt.name)
			reasons = append(reasons, fmt.Sprintf("flow %s: %s", mt.name, res.Error))
		}
	}
	if len(failed) > 0 {
		// The error results are published; the dead letter keeps the
		// event for a replay once the flows are fixed, naming them so the
		// replay runs only those.
		return bus.WithDeadLetterHeader(bus.Permanent(errors.New(strings.Join(reasons, "; "))), bus.HeaderFlows, strings.Join(failed, ","))
	}
	return nil
}

// matches returns the flow triggers an event runs: a timer tick addressed
// to a flow runs that flow's timer trigger only; any other event runs the
// event triggers matching its type.
func (x *executor) matches(ev *eventsv1.Event, f filter) []match {
	if ev.Source == flow.TimerSource {
		if name := ev.Metadata[flow.MetaTimerFlow]; name != "" {
			index, err := strconv.Atoi(ev.Metadata[flow.MetaTimerTrigger])
			if err != nil || !f.allows(name) {
				return nil
			}
			mt, ok := x.flows.timer(ev.Tenant, name, index)
			if !ok {
				// The flow or its trigger was removed after the tick fired.
				x.log.Info("timer tick for a trigger that no longer exists", "tenant", ev.Tenant, "flow", name, "trigger", index, "event_id", ev.Id)
				return nil
			}
			return []match{mt}
		}
	}
	return x.flows.match(ev.Tenant, ev.EventType, f)
}

// run runs one flow and builds its result; transient reports a failure
// that may pass on a later attempt.
func (x *executor) run(ctx context.Context, ev *eventsv1.Event, mt match, fx flow.Effects) (res *eventsv1.FlowResult, transient bool) {
	started := time.Now()
	rctx, cancel := context.WithTimeout(ctx, x.cfg.RunTimeout)
	defer cancel()
	out := mt.program.Run(rctx, flow.Input{Event: ev, Tenant: ev.Tenant, Env: ev.Env, Effects: fx, HTTP: x.http}, mt.trigger.Target)
	finished := time.Now()
	res = out.FlowResult(ev, mt.name, mt.trigger, started, finished)
	if out.Status != flow.StatusOK {
		x.log.Warn("flow run failed", "tenant", ev.Tenant, "flow", mt.name, "event_id", ev.Id, "transient", out.Transient, "err", out.Error)
	}
	x.metrics.runs.WithLabelValues(statusLabel(res.Status)).Inc()
	x.metrics.duration.Observe(finished.Sub(started).Seconds())
	return res, out.Status != flow.StatusOK && out.Transient
}

func statusLabel(s eventsv1.FlowStatus) string {
	if s == eventsv1.FlowStatus_FLOW_STATUS_OK {
		return "ok"
	}
	return "error"
}

type metrics struct {
	runs     *prometheus.CounterVec
	duration prometheus.Histogram
	retries  prometheus.Counter
	skipped  *prometheus.CounterVec
	changes  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greentic_flow_runs_total",
			Help: "Flow runs by status (ok, error).",
		}, []string{"status"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "greentic_flow_run_seconds",
			Help:    "Duration of one flow run.",
			Buckets: []float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5, 10},
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "greentic_flow_retries_total",
			Help: "Events handed back for a later attempt because a flow failed transiently.",
		}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greentic_flow_results_skipped_total",
			Help: "Flow results not run as events, by reason (max_hops).",
		}, []string{"reason"}),
	}
	m.changes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "greentic_flow_changes_total",
		Help: "Changes of the flows bucket applied by this replica, by outcome (loaded, removed, invalid: stored but not compiling).",
	}, []string{"outcome"})
	var err error
	if m.changes, err = bus.Register(reg, m.changes); err != nil {
		return nil, err
	}
	if m.runs, err = bus.Register(reg, m.runs); err != nil {
		return nil, err
	}
	if m.duration, err = bus.Register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.retries, err = bus.Register(reg, m.retries); err != nil {
		return nil, err
	}
	if m.skipped, err = bus.Register(reg, m.skipped); err != nil {
		return nil, err
	}
	return m, nil
}
