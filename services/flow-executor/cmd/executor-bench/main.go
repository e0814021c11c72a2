// Command executor-bench measures the flow-executor against a baseline in the
// same run: a bus.Consumer with the executor's stream, filter and concurrency
// whose handler does nothing (consume and ack). Both drain the same number of
// order.created events pre-filled into the events stream of one in-process
// nats-server with a file store; rounds alternate so machine noise hits both.
// A second reference, "publish", is that consumer publishing one result per
// event (the least bus work any executor must do: consume, store a result,
// ack), so the flow machinery's own share shows. It also times
// flow.Program.Run without the bus (absolute figures: there is no baseline
// for those).
//
//	go run ./services/flow-executor/cmd/executor-bench -events 20000 -rounds 3
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/greentic/events/pkg/benchkit"
	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/flow"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/natstest"
	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/pkg/tenant"
	"github.com/greentic/events/pkg/tenant/tenantkv"
	"github.com/greentic/events/services/flow-executor/executor"
)

// handleEventFlow is the event part of the brief's handle_event flow in its
// branch + respond form (examples/flows/handle_event.yaml sends an email and
// an sms instead): a branch on the event type, then a respond node with a
// templated body.
const handleEventFlow = `
name: handle_event
version: "1.0"
nodes:
  - id: on_order
    type: branch
    config:
      conditions:
        - expression: "event.event_type == 'order.created'"
          next: send_confirmation
        - expression: "event.event_type == 'order.shipped'"
          next: send_tracking
  - id: send_confirmation
    type: respond
    config:
      body:
        action: confirmation
        order_id: "{{ event.payload.id }}"
        message: "Order {{ event.payload.id }} confirmed"
  - id: send_tracking
    type: respond
    config:
      body:
        action: tracking
        order_id: "{{ event.payload.id }}"
        message: "Order {{ event.payload.id }} shipped"
triggers:
  - type: event
    event_type: "order.created"
    target: on_order
  - type: event
    event_type: "order.shipped"
    target: on_order
`

// scriptExpr is the expression of the one-node script flow.
const scriptExpr = `event.event_type == 'order.created' && event.payload.total > 10`

const scriptFlow = `
name: expr
version: "1"
nodes:
  - id: check
    type: script
    config:
      script: "` + scriptExpr + `"
triggers:
  - {type: event, event_type: "order.created", target: check}
`

const (
	tenantID  = "acme"
	eventType = "order.created"
	flowName  = "handle_event"
	// baselineDurable is the baseline's durable name (a stage of its own,
	// so it never shares the executor's).
	baselineDurable = "bench-baseline"
	publishDurable  = "bench-publish"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "executor-bench:", err)
		os.Exit(1)
	}
}

type result struct {
	name   string
	events int
	eps    float64
	// cpu is the CPU time of the whole process (consumer, nats-server, the
	// bench's polling) per event: steadier than events/s on a noisy machine.
	cpu time.Duration
	// drainEPS and drainCPU (executor only) run until its durable has also
	// acked the results it published, which share the events stream.
	drainEPS    float64
	drainCPU    time.Duration
	redelivered int
}

// bench holds what every round shares.
type bench struct {
	srvURL  string
	admin   *service.Runtime
	env     string
	cfg     executor.Config
	log     *slog.Logger
	profile string // file prefix of CPU profiles, empty for none
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("executor-bench", flag.ContinueOnError)
	events := fs.Int("events", 20000, "events pre-filled and drained per round")
	rounds := fs.Int("rounds", 3, "rounds per target (alternating baseline and executor)")
	warmup := fs.Int("warmup", 2000, "events of one unmeasured warm-up round per target")
	cpuProfile := fs.String("cpuprofile", "", "write CPU profiles of the measured windows (pre-fill excluded) to FILE.<target>.<round>")
	only := fs.String("targets", "baseline,publish,executor", "comma-separated targets to run, in this order in every round (the ratio is executor / baseline)")
	env := fs.String("env", "bench", "environment of the topology")
	tenantConcurrency := fs.Int("tenant-concurrency", 0, "events of one tenant handled at once by both targets (0: the executor's default)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *events < 1 || *rounds < 1 {
		return errors.New("-events and -rounds must be at least 1")
	}
	order := strings.Split(*only, ",")
	for _, name := range order {
		if name != "baseline" && name != "publish" && name != "executor" {
			return fmt.Errorf("unknown target %q (baseline, publish, executor)", name)
		}
	}
	// The executor's defaults, as the service starts without flags.
	var cfg executor.Config
	f := service.NewFlags("executor-bench")
	cfg.RegisterFlags(f)
	if err := f.Parse(nil, func(string) (string, bool) { return "", false }); err != nil {
		return err
	}
	if *tenantConcurrency != 0 {
		cfg.TenantConcurrency = *tenantConcurrency
	}
	if err := cfg.Validate(); err != nil {
		return err
	}

	fmt.Printf("executor-bench: %d rounds x %d events per target, %d-byte payloads, concurrency %d (%d per tenant), GOMAXPROCS=%d\n",
		*rounds, *events, len(payload("e1-000000000000-10000")), cfg.Concurrency, cfg.TenantConcurrency, runtime.GOMAXPROCS(0))

	// Expression cost first, while nothing else runs in the process.
	micro, err := exprBenchmarks()
	if err != nil {
		return err
	}
	for _, m := range micro {
		fmt.Printf("  %-46s %8.0f ns/op %5d allocs/op %6d B/op\n", m.name, m.ns, m.allocs, m.bytes)
	}

	srv, nc, stop, err := natstest.StartTemp("executor-bench-")
	if err != nil {
		return err
	}
	defer stop()
	log := service.NewLogger(io.Discard, slog.LevelError)
	admin, err := service.NewRuntime(bus.DefaultTopology(*env), nc, log, service.NewRegistry(), service.NewReadiness())
	if err != nil {
		return err
	}
	if err := admin.EnsureTopology(ctx); err != nil {
		return err
	}
	store, err := tenantkv.Open(ctx, admin.JS, admin.Topology)
	if err != nil {
		return err
	}
	if _, err := store.PutTenant(ctx, tenant.Tenant{ID: tenantID}); err != nil {
		return err
	}
	if _, err := store.PutFlow(ctx, tenantID, flowName, []byte(handleEventFlow)); err != nil {
		return err
	}
	b := &bench{srvURL: srv.ClientURL(), admin: admin, env: *env, cfg: cfg, log: log}

	for _, name := range order {
		if _, err := b.measure(ctx, name, 0, *warmup); err != nil {
			return fmt.Errorf("warm-up %s: %w", name, err)
		}
	}
	b.profile = *cpuProfile
	all := map[string][]result{}
	for i := 1; i <= *rounds; i++ {
		for _, name := range order {
			res, err := b.measure(ctx, name, i, *events)
			if err != nil {
				return fmt.Errorf("round %d %s: %w", i, name, err)
			}
			line := fmt.Sprintf("  round %d %-8s %8.0f events/s  cpu/event %-8s", i, name, res.eps, res.cpu.Round(time.Microsecond))
			if name == "executor" {
				line += fmt.Sprintf("  with own results %8.0f events/s  cpu/event %-8s", res.drainEPS, res.drainCPU.Round(time.Microsecond))
			}
			fmt.Printf("%s redelivered %d\n", line, res.redelivered)
			all[name] = append(all[name], res)
		}
	}
	if err := b.checkDLQ(ctx); err != nil {
		return err
	}
	if b.profile != "" {
		fmt.Printf("CPU profiles: go tool pprof -top %s.<target>.*\n", b.profile)
	}

	fmt.Println()
	fmt.Println("| target | events/s | CPU per event |")
	fmt.Println("|---|---|---|")
	base, hasBase := all["baseline"]
	pub, hasPub := all["publish"]
	exec, hasExec := all["executor"]
	var bm, pm, em result
	if hasBase {
		bm = median(base)
		fmt.Printf("| baseline: bus.Consumer, handler returns nil (consume + ack) | %.0f | %s |\n", bm.eps, bm.cpu.Round(time.Microsecond))
	}
	if hasPub {
		pm = median(pub)
		fmt.Printf("| publish: the same consumer publishing one result per event (consume + store a result + ack) | %.0f | %s |\n", pm.eps, pm.cpu.Round(time.Microsecond))
	}
	if hasExec {
		em = median(exec)
		fmt.Printf("| executor: decode, match, handle_event flow, publish result | %.0f | %s |\n", em.eps, em.cpu.Round(time.Microsecond))
		fmt.Printf("| executor until its own results are consumed too | %.0f | %s |\n", em.drainEPS, em.drainCPU.Round(time.Microsecond))
	}
	if hasBase && hasExec {
		fmt.Printf("| **ratio executor / baseline** | **%.2f** | %.2f |\n", em.eps/bm.eps, float64(em.cpu)/float64(bm.cpu))
	}
	if hasPub && hasExec {
		fmt.Printf("| ratio executor / publish | %.2f | %.2f |\n", em.eps/pm.eps, float64(em.cpu)/float64(pm.cpu))
	}
	fmt.Println()
	fmt.Println("| flow.Program.Run, in-memory event, no bus (absolute, no baseline) | ns/op | allocs/op | B/op |")
	fmt.Println("|---|---|---|---|")
	for _, m := range micro {
		fmt.Printf("| %s | %.0f | %d | %d |\n", m.name, m.ns, m.allocs, m.bytes)
	}
	return nil
}

// measure runs one round of target name: empty stream, n pre-filled events,
// then the target starts on its own connection and the clock runs until
// every event is handled. Round 0 is the warm-up.
func (b *bench) measure(ctx context.Context, name string, round, n int) (result, error) {
	stream, err := b.admin.JS.Stream(ctx, b.admin.Topology.EventsStream())
	if err != nil {
		return result{}, err
	}
	durable := b.admin.Topology.Durable(baselineDurable)
	switch name {
	case "executor":
		durable = b.admin.Topology.Durable(executor.Name)
	case "publish":
		durable = b.admin.Topology.Durable(publishDurable)
	}
	// Every round starts from an empty stream and a new durable consumer,
	// so no target pays for what another left.
	if err := b.reset(ctx, stream); err != nil {
		return result{}, err
	}
	prefix := name[:1] + strconv.Itoa(round) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	if err := b.prefill(ctx, prefix, n); err != nil {
		return result{}, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return result{}, err
	}
	if info.State.Msgs != uint64(n) {
		return result{}, fmt.Errorf("pre-filled %d events, the stream holds %d", n, info.State.Msgs)
	}
	lastEvent := info.State.LastSeq

	conn, err := nats.Connect(b.srvURL)
	if err != nil {
		return result{}, err
	}
	defer conn.Close()
	rt, err := service.NewRuntime(bus.DefaultTopology(b.env), conn, b.log, service.NewRegistry(), service.NewReadiness())
	if err != nil {
		return result{}, err
	}
	rt.ShutdownTimeout = 10 * time.Second
	var body func(context.Context) error
	switch name {
	case "baseline", "publish":
		c, err := bus.NewConsumer(rt.JS, rt.Topology, bus.ConsumerConfig{
			Stream:         rt.Topology.EventsStream(),
			Durable:        durable,
			FilterSubjects: []string{bus.EventFilter(rt.Topology.Env)},
			Stage:          executor.Stage,
			Concurrency:    b.cfg.Concurrency,
			Key:            bus.TenantKey,
			KeyConcurrency: b.cfg.TenantConcurrency,
			MaxParked:      b.cfg.MaxParked,
			AckWait:        b.cfg.AckWait,
			MaxAttempts:    b.cfg.MaxAttempts,
			DrainTimeout:   rt.ShutdownTimeout,
			Logger:         b.log,
			Registerer:     rt.Registry,
		})
		if err != nil {
			return result{}, err
		}
		handler := func(context.Context, bus.Delivery) error { return nil }
		if name == "publish" {
			handler = publishHandler(rt.Publisher)
		}
		body = func(ctx context.Context) error { return c.Run(ctx, handler) }
	default:
		body = func(ctx context.Context) error { return executor.Serve(ctx, rt, b.cfg) }
	}

	runtime.GC()
	stopProfile, err := b.startProfile(name, round)
	if err != nil {
		return result{}, err
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	start, cpu0 := time.Now(), benchkit.CPUTime()
	go func() { done <- body(rctx) }()
	stopped := false
	wait := func(what string, cond func() bool) error {
		deadline := time.Now().Add(time.Minute + time.Duration(n)*time.Millisecond)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for !cond() {
			select {
			case err := <-done:
				stopped = true
				return fmt.Errorf("%s stopped before %s: %v", name, what, err)
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: not %s after %s", name, what, time.Since(start).Round(time.Second))
			}
		}
		return nil
	}
	// drained: the durable has acked everything up to seq.
	drained := func(seq uint64) func() bool {
		return func() bool {
			c, err := b.admin.JS.Consumer(ctx, stream.CachedInfo().Config.Name, durable)
			if err != nil {
				return false
			}
			info := c.CachedInfo()
			return info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Stream >= seq
		}
	}
	var res result
	res.name, res.events = name, n
	switch name {
	case "baseline":
		err = wait("every event acked", drained(lastEvent))
	case "publish":
		err = wait("every result stored", func() bool {
			si, err := stream.Info(ctx)
			return err == nil && si.State.Msgs >= uint64(2*n)
		})
	default:
		// The executor is done with the events once their n results are
		// stored: results land in the same stream, after the events.
		err = wait("every result stored", func() bool {
			si, err := stream.Info(ctx)
			return err == nil && si.State.Msgs >= uint64(2*n)
		})
	}
	elapsed, cpu := time.Since(start), benchkit.CPUTime()-cpu0
	stopProfile()
	if err != nil {
		return result{}, err
	}
	res.eps, res.cpu = float64(n)/elapsed.Seconds(), cpu/time.Duration(n)
	if name == "publish" {
		if err := wait("every event and result acked", drained(lastEvent+uint64(n))); err != nil {
			return result{}, err
		}
	}
	if name == "executor" {
		// It also consumes (and acks) the results it published.
		if err := wait("every event and result acked", drained(lastEvent+uint64(n))); err != nil {
			return result{}, err
		}
		elapsed, cpu := time.Since(start), benchkit.CPUTime()-cpu0
		res.drainEPS, res.drainCPU = float64(n)/elapsed.Seconds(), cpu/time.Duration(n)
		if err := b.checkResult(ctx, stream, lastEvent+uint64(n)); err != nil {
			return result{}, err
		}
	}
	if c, err := b.admin.JS.Consumer(ctx, stream.CachedInfo().Config.Name, durable); err == nil {
		res.redelivered = c.CachedInfo().NumRedelivered
	}
	cancel()
	if !stopped {
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				return result{}, fmt.Errorf("%s: %w", name, err)
			}
		case <-time.After(30 * time.Second):
			return result{}, fmt.Errorf("%s did not stop within 30s", name)
		}
	}
	return res, nil
}

// reset deletes both durable consumers and purges the events stream (which
// also holds the flow results).
func (b *bench) reset(ctx context.Context, stream jetstream.Stream) error {
	for _, d := range []string{b.admin.Topology.Durable(baselineDurable), b.admin.Topology.Durable(publishDurable), b.admin.Topology.Durable(executor.Name)} {
		if err := b.admin.JS.DeleteConsumer(ctx, b.admin.Topology.EventsStream(), d); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("delete consumer %s: %w", d, err)
		}
	}
	if err := stream.Purge(ctx); err != nil {
		return fmt.Errorf("purge %s: %w", b.admin.Topology.EventsStream(), err)
	}
	return nil
}

// payload is an order of about 150 bytes (with an id of 21 characters).
func payload(id string) []byte {
	return []byte(`{"id":"` + id + `","customer":"c-1042","total":42.5,"currency":"EUR","items":[{"sku":"A-1","qty":2},{"sku":"B-7","qty":1}],"ship":"express"}`)
}

func newEvent(id string) *eventsv1.Event {
	return &eventsv1.Event{
		Id: id, EventType: eventType, Tenant: tenantID, Source: "webhook/shop",
		Payload: payload(id), Timestamp: time.Now().UnixMilli(),
	}
}

// prefill publishes n order.created events of tenant acme with unique ids,
// as the ingress does (PublishEvent: protobuf Event, traceparent, message id).
func (b *bench) prefill(ctx context.Context, prefix string, n int) error {
	const workers = 64
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				if _, err := b.admin.Publisher.PublishEvent(ctx, newEvent(prefix+strconv.FormatInt(i, 10))); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// checkResult makes sure the executor stored what the flow answers.
func (b *bench) checkResult(ctx context.Context, stream jetstream.Stream, seq uint64) error {
	m, err := stream.GetMsg(ctx, seq)
	if err != nil {
		return fmt.Errorf("last result: %w", err)
	}
	want, _ := bus.ResultSubject(b.env, tenantID, eventType)
	r := &eventsv1.FlowResult{}
	if err := proto.Unmarshal(m.Data, r); err != nil || m.Subject != want {
		return fmt.Errorf("message %d on %s is not a result (%v)", seq, m.Subject, err)
	}
	if r.Status != eventsv1.FlowStatus_FLOW_STATUS_OK || !strings.Contains(string(r.Output), "confirmed") {
		return fmt.Errorf("result %s: status %s output %s error %q", r.EventId, r.Status, r.Output, r.Error)
	}
	return nil
}

// checkDLQ fails the run if anything was dead-lettered.
func (b *bench) checkDLQ(ctx context.Context) error {
	s, err := b.admin.JS.Stream(ctx, b.admin.Topology.DLQStream())
	if err != nil {
		return err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	if info.State.Msgs != 0 {
		return fmt.Errorf("%d dead letters in %s", info.State.Msgs, b.admin.Topology.DLQStream())
	}
	return nil
}

// startProfile profiles one measured window, pre-fill excluded; the warm-up
// (round 0) is not profiled.
func (b *bench) startProfile(name string, round int) (func(), error) {
	if b.profile == "" || round == 0 {
		return func() {}, nil
	}
	return benchkit.StartCPUProfile(b.profile + "." + name + "." + strconv.Itoa(round))
}

// median picks, per figure, the median over the rounds.
func median(rs []result) result {
	return result{
		eps:      benchkit.Median(rs, func(r result) float64 { return r.eps }),
		cpu:      benchkit.Median(rs, func(r result) time.Duration { return r.cpu }),
		drainEPS: benchkit.Median(rs, func(r result) float64 { return r.drainEPS }),
		drainCPU: benchkit.Median(rs, func(r result) time.Duration { return r.drainCPU }),
	}
}

type micro struct {
	name   string
	ns     float64
	allocs int64
	bytes  int64
}

// exprBenchmarks times flow.Program.Run on an in-memory event: the one-node
// script flow and the handle_event flow (branch, then respond).
func exprBenchmarks() ([]micro, error) {
	ev := newEvent("o-1")
	ev.Env, ev.Traceparent = "bench", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	var out []micro
	for _, c := range []struct {
		name, doc, target, want string
	}{
		{"script `" + scriptExpr + "`", scriptFlow, "check", "true"},
		{"handle_event (branch + templated respond)", handleEventFlow, "on_order", "confirmed"},
	} {
		p, err := flow.Compile([]byte(c.doc))
		if err != nil {
			return nil, fmt.Errorf("compile %s: %w", c.name, err)
		}
		ctx := context.Background()
		in := flow.Input{Event: ev}
		if r := p.Run(ctx, in, c.target); r.Status != flow.StatusOK || !strings.Contains(string(r.Output), c.want) {
			return nil, fmt.Errorf("%s: status %s output %s error %q", c.name, r.Status, r.Output, r.Error)
		}
		// The median of three 1s runs: one run is easily off by half on a
		// small machine.
		var runs []micro
		for range 3 {
			var failed atomic.Bool
			br := testing.Benchmark(func(tb *testing.B) {
				tb.ReportAllocs()
				for tb.Loop() {
					if r := p.Run(ctx, in, c.target); r.Status != flow.StatusOK {
						failed.Store(true)
					}
				}
			})
			if failed.Load() || br.N == 0 {
				return nil, fmt.Errorf("%s: benchmark failed", c.name)
			}
			runs = append(runs, micro{name: c.name, ns: float64(br.T.Nanoseconds()) / float64(br.N), allocs: br.AllocsPerOp(), bytes: br.AllocedBytesPerOp()})
		}
		slices.SortFunc(runs, func(a, b micro) int { return cmp.Compare(a.ns, b.ns) })
		out = append(out, runs[1])
	}
	return out, nil
}

// publishHandler stores a result for each event, as the executor would,
// without running a flow; results (which share the stream) are skipped.
func publishHandler(pub *bus.Publisher) bus.Handler {
	output := []byte(`{"action":"confirmation","order_id":"o-1","message":"Order o-1 confirmed"}`)
	return func(ctx context.Context, d bus.Delivery) error {
		if strings.HasSuffix(d.Subject, "."+bus.ResultSuffix) {
			return nil
		}
		now := time.Now().UnixMilli()
		_, err := pub.PublishResult(ctx, &eventsv1.FlowResult{
			EventId: d.Header.Get(bus.HeaderEventID), EventType: eventType, Tenant: tenantID, Flow: flowName,
			Trigger: "0:on_order", Status: eventsv1.FlowStatus_FLOW_STATUS_OK, Output: output, StartedAt: now, FinishedAt: now,
		})
		return err
	}
}
