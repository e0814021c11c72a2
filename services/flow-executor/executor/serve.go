package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
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
const Stage = "flow"

// Serve runs the executor on rt until ctx ends. It loads every flow before
// it takes its first event, so no event is acknowledged by a replica that
// does not know the tenant's flows yet.
func Serve(ctx context.Context, rt *service.Runtime, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
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
	consumer, err := bus.NewConsumer(rt.JS, rt.Topology, bus.ConsumerConfig{
		Stream:         rt.Topology.EventsStream(),
		Durable:        rt.Topology.Durable(Name),
		FilterSubjects: []string{bus.EventFilter(rt.Topology.Env)},
		Stage:          Stage,
		Concurrency:    cfg.Concurrency,
		AckWait:        cfg.AckWait,
		MaxAttempts:    cfg.MaxAttempts,
		DrainTimeout:   rt.ShutdownTimeout,
		Logger:         log,
		Registerer:     rt.Registry,
	})
	if err != nil {
		return err
	}
	x := &executor{flows: flows, pub: rt.Publisher, cfg: cfg, log: log, metrics: m}
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
	flows   *flowSet
	pub     publisher
	cfg     Config
	log     *slog.Logger
	metrics *metrics
}

// handle runs every matching flow on one event and publishes their results.
// It is safe to run again on a redelivered event: results are published with
// a message id per (event, flow), so a rerun stores nothing twice.
func (x *executor) handle(ctx context.Context, d bus.Delivery) error {
	subj, err := bus.ParseSubject(d.Subject)
	if err != nil {
		return bus.Permanent(err)
	}
	if subj.Kind != bus.KindEvent {
		return nil // flow results share the stream; they trigger nothing
	}
	ev, err := event.Unmarshal(d.Data)
	if err != nil {
		return bus.Permanent(err)
	}
	if ev.Tenant != subj.Tenant || ev.EventType != subj.Type {
		return bus.Permanent(fmt.Errorf("event %s names tenant %q type %q but was published on %s", ev.Id, ev.Tenant, ev.EventType, d.Subject))
	}
	if x.cfg.beforeRun != nil {
		x.cfg.beforeRun()
	}
	for _, mt := range x.flows.match(ev.Tenant, ev.EventType) {
		fx := &busEffects{pub: x.pub, timeout: 10 * time.Second}
		res := x.run(ctx, ev, mt, fx)
		if fx.busErr != nil {
			// Not the flow's fault: run it again later. Effects already
			// published carry the same ids and are not stored twice.
			return bus.Retryable(fmt.Errorf("flow %s for event %s: %w", mt.name, ev.Id, fx.busErr))
		}
		if x.cfg.afterRun != nil {
			x.cfg.afterRun()
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := x.pub.PublishResult(pctx, res)
		cancel()
		if err != nil {
			return bus.Retryable(fmt.Errorf("publish result of flow %s for event %s: %w", mt.name, ev.Id, err))
		}
	}
	return nil
}

func (x *executor) run(ctx context.Context, ev *eventsv1.Event, mt match, fx flow.Effects) *eventsv1.FlowResult {
	started := time.Now()
	rctx, cancel := context.WithTimeout(ctx, x.cfg.RunTimeout)
	defer cancel()
	out := mt.program.Run(rctx, flow.Input{Event: ev, Tenant: ev.Tenant, Env: ev.Env, Effects: fx}, mt.trigger.Target)
	finished := time.Now()
	res := &eventsv1.FlowResult{
		EventId:     ev.Id,
		EventType:   ev.EventType,
		Tenant:      ev.Tenant,
		Env:         ev.Env,
		Flow:        mt.name,
		Trigger:     strconv.Itoa(mt.trigger.Index) + ":" + mt.trigger.Target,
		Status:      eventsv1.FlowStatus_FLOW_STATUS_OK,
		Output:      out.Output,
		Error:       out.Error,
		StartedAt:   started.UnixMilli(),
		FinishedAt:  finished.UnixMilli(),
		Traceparent: event.ChildTraceparent(ev.Traceparent),
	}
	if out.Status != flow.StatusOK {
		res.Status = eventsv1.FlowStatus_FLOW_STATUS_ERROR
		x.log.Warn("flow run failed", "tenant", ev.Tenant, "flow", mt.name, "event_id", ev.Id, "err", out.Error)
	}
	for _, nt := range out.Trace {
		res.Trace = append(res.Trace, &eventsv1.NodeTrace{
			Id: nt.ID, Type: nt.Type, DurationMicros: nt.Duration.Microseconds(), Outcome: nt.Outcome, Error: nt.Error,
		})
	}
	x.metrics.runs.WithLabelValues(statusLabel(res.Status)).Inc()
	x.metrics.duration.Observe(finished.Sub(started).Seconds())
	return res
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
	}
	var err error
	if m.runs, err = bus.Register(reg, m.runs); err != nil {
		return nil, err
	}
	if m.duration, err = bus.Register(reg, m.duration); err != nil {
		return nil, err
	}
	return m, nil
}
