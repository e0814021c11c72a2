// Command timer-bench measures one timer instance with N ad-hoc schedules all
// due at the same instants against two references in the same run, on one
// in-process nats-server with a file store:
//
//   - baseline: bare Go timers (time.AfterFunc), one per schedule, firing at
//     the same instants; each records when it fired and re-arms itself;
//   - publish: the same timers, each also storing the tick's event in
//     JetStream as the timer does (same id, subject and metadata;
//     PublishEvent waits for the stream's ack; at most 1024 in flight): the
//     least any timer on this bus does per tick;
//   - timer: timer.Serve with its default settings, the N schedules loaded
//     from the schedules bucket.
//
// For each target and N it reports the lag p50/p99/max (scheduled time to the
// callback for the baseline, to the event being stored for the others: the
// stream's own timestamp of the message), the process's CPU time per tick,
// and the heap the target holds once loaded and at its peak. The stored ticks
// are checked: exactly N events per measured instant and no event id twice,
// or the command exits non-zero. Timings are reported, never asserted.
//
//	go run ./services/timer/cmd/timer-bench -schedules 10000,100000 -ticks 3
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/greentic/events/pkg/benchkit"
	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/event"
	"github.com/greentic/events/pkg/flow"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/natstest"
	"github.com/greentic/events/pkg/schedule"
	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/pkg/tenant"
	"github.com/greentic/events/pkg/tenant/tenantkv"
	"github.com/greentic/events/services/timer/timer"
)

// The goal: lag p99 under 50 ms at 10k schedules due in the same second.
const (
	goalLag       = 50 * time.Millisecond
	goalSchedules = 10000
)

// publishSlots bounds the publish reference's publishes in flight, as the
// timer bounds its own (maxPublishes in package timer).
const publishSlots = 1024

// preWindow is how long before the first measured tick the CPU window
// opens; it is ticks x period long, so it closes preWindow before the tick
// after the last one.
const preWindow = 200 * time.Millisecond

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "timer-bench:", err)
		os.Exit(1)
	}
}

// result is what one target did with n schedules.
type result struct {
	target  string
	n       int
	period  time.Duration
	load    time.Duration // until every schedule is armed (timer: ready)
	lag     benchkit.Lags // scheduled time to stored (baseline: to the callback)
	fired   benchkit.Lags // scheduled time to the fire (fired_at, ms precision)
	drain   time.Duration // median over the ticks of the lag of a tick's last event
	cpu     time.Duration // process CPU time per tick (ticks x period, divided by ticks)
	heap    int64         // live heap once loaded (timer: ready), over the start
	peak    int64         // most heap and stacks in use during the ticks, over the start
	gor     int64         // most goroutines during the ticks
	catchUp int           // measured ticks stored as catch-up (fired past the misfire threshold)
	failed  int           // publishes that failed (timed out) and were retried: the timer's greentic_timer_fires_total{outcome="failed"}
	invalid string        // why the stored ticks are wrong; empty when they are right
}

// eps is how many events per second a tick is stored at: n over the lag
// of its last event.
func (r result) eps() float64 {
	if r.drain <= 0 {
		return 0
	}
	return float64(r.n) / r.drain.Seconds()
}

type bench struct {
	url         string
	nc          *nats.Conn
	log         *slog.Logger
	env         string
	tenants     int
	ticks       int
	period      time.Duration // 0: per target and n (periodFor)
	cfg         timer.Config
	profile     string
	heapProfile string
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("timer-bench", flag.ContinueOnError)
	counts := fs.String("schedules", "10000,100000", "comma-separated numbers of schedules, one case each")
	ticks := fs.Int("ticks", 3, "measured ticks per target and case")
	period := fs.Duration("period", 0, "time between two ticks, whole seconds (0: 1s for the baseline, 1s per 20000 schedules for publish, 1s per 10000 for the timer, so that a tick is stored before the next one)")
	tenants := fs.Int("tenants", 4, "tenants the schedules are spread over")
	only := fs.String("targets", "baseline,publish,timer", "comma-separated targets to run, in this order for every case")
	env := fs.String("env", "bench", "prefix of the environments (one per case and target, deleted after it)")
	flushInterval := fs.Duration("state-flush-interval", -1, "the timer's -timer-state-flush-interval (negative: its default)")
	cpuProfile := fs.String("cpuprofile", "", "write CPU profiles of the measured windows to FILE.<target>.<schedules>")
	memProfile := fs.String("memprofile", "", "write heap profiles taken once loaded to FILE.<target>.<schedules>")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var ns []int
	for _, s := range strings.Split(*counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("-schedules: %q is not a positive number", s)
		}
		ns = append(ns, n)
	}
	if *ticks < 1 || *tenants < 1 {
		return errors.New("-ticks and -tenants must be at least 1")
	}
	if *period != 0 && (*period < time.Second || *period%time.Second != 0) {
		return fmt.Errorf("-period %s: whole seconds, at least 1s", *period)
	}
	order := strings.Split(*only, ",")
	for _, name := range order {
		if name != "baseline" && name != "publish" && name != "timer" {
			return fmt.Errorf("unknown target %q (baseline, publish, timer)", name)
		}
	}
	// The timer's defaults, as the service starts without flags.
	var cfg timer.Config
	f := service.NewFlags("timer-bench")
	cfg.RegisterFlags(f)
	if err := f.Parse(nil, func(string) (string, bool) { return "", false }); err != nil {
		return err
	}
	if *flushInterval >= 0 {
		cfg.StateFlushInterval = *flushInterval
	}
	if err := cfg.Validate(); err != nil {
		return err
	}

	srv, nc, stop, err := natstest.StartTemp("timer-bench-")
	if err != nil {
		return err
	}
	defer stop()
	b := &bench{
		url: srv.ClientURL(), nc: nc, log: service.NewLogger(io.Discard, slog.LevelError),
		env: *env, tenants: *tenants, ticks: *ticks, period: *period, cfg: cfg, profile: *cpuProfile, heapProfile: *memProfile,
	}
	fmt.Printf("timer-bench: schedules %s, %d measured ticks per target, %d tenants, state flush every %s, GOMAXPROCS=%d\n",
		*counts, *ticks, *tenants, cfg.StateFlushInterval, runtime.GOMAXPROCS(0))

	var all []result
	for _, n := range ns {
		for _, name := range order {
			res, err := b.measure(ctx, name, n)
			if err != nil {
				return fmt.Errorf("%s with %d schedules: %w", name, n, err)
			}
			fmt.Printf("  %-8s %6d schedules every %-3s load %-7s lag p50 %-8s p99 %-8s max %-8s fired p99 %-8s last %-8s cpu/tick %-8s heap %s peak %s goroutines %d%s\n",
				name, n, res.period, benchkit.Dur(res.load),
				benchkit.Dur(res.lag.P50), benchkit.Dur(res.lag.P99), benchkit.Dur(res.lag.Max), benchkit.Dur(res.fired.P99), benchkit.Dur(res.drain),
				benchkit.Dur(res.cpu), benchkit.MiB(res.heap), benchkit.MiB(res.peak), res.gor, notes(res))
			all = append(all, res)
		}
	}
	report(all, ns, order)
	var stats runtime.MemStats
	runtime.ReadMemStats(&stats)
	fmt.Printf("process (nats-server included, all targets): Sys %s, peak RSS %s\n", benchkit.MiB(int64(stats.Sys)), benchkit.PeakRSS())

	var bad []string
	for _, r := range all {
		if r.invalid != "" {
			bad = append(bad, fmt.Sprintf("%s with %d schedules: %s", r.target, r.n, r.invalid))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("wrong ticks:\n  %s", strings.Join(bad, "\n  "))
	}
	return nil
}

// periodFor is the time between two ticks of a target. Every tick must be
// stored before the next one comes, or the figures would measure a backlog
// (and the timer, past its misfire threshold, would miss ticks): the bare
// timers fire 100k schedules within a fraction of a second, their publish
// stores about 30k ticks per second on 2 cores, the timer about half that.
// The CPU figures are per tick, so the periods need not be equal.
func (b *bench) periodFor(target string, n int) time.Duration {
	switch {
	case b.period != 0:
		return b.period
	case target == "baseline":
		return time.Second
	case target == "publish":
		return time.Duration((n+19999)/20000) * time.Second
	}
	return time.Duration((n+9999)/10000) * time.Second
}

func notes(r result) string {
	var out string
	if r.failed > 0 {
		out += fmt.Sprintf("  (%d publishes failed and retried)", r.failed)
	}
	if r.catchUp > 0 {
		out += fmt.Sprintf("  (%d measured ticks fired as catch-up)", r.catchUp)
	}
	if r.invalid != "" {
		out += "  WRONG: " + r.invalid
	}
	return out
}

func ratio(a, b float64) string {
	switch {
	case b == 0:
		return "-"
	case a/b < 1:
		return fmt.Sprintf("%.2f", a/b)
	}
	return fmt.Sprintf("%.1f", a/b)
}

// report prints the table, the ratios against the references and the goal.
func report(all []result, ns []int, order []string) {
	find := func(target string, n int) (result, bool) {
		for _, r := range all {
			if r.target == target && r.n == n {
				return r, true
			}
		}
		return result{}, false
	}
	desc := map[string]string{
		"baseline": "baseline: bare Go timers",
		"publish":  "publish: Go timers + JetStream publish",
		"timer":    "timer",
	}
	fmt.Println()
	fmt.Println("| schedules | target | lag p50 | lag p99 | lag max | events/s | CPU per tick | heap once loaded | peak heap | goroutines |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	for _, n := range ns {
		for _, name := range order {
			r, ok := find(name, n)
			if !ok {
				continue
			}
			fmt.Printf("| %d | %s (every %s) | %s | %s | %s | %.0f | %s | %s | %s | %d |\n", n, desc[name], r.period,
				benchkit.Dur(r.lag.P50), benchkit.Dur(r.lag.P99), benchkit.Dur(r.lag.Max), r.eps(),
				benchkit.Dur(r.cpu), benchkit.MiB(r.heap), benchkit.MiB(r.peak), r.gor)
		}
		t, hasT := find("timer", n)
		for _, ref := range []string{"baseline", "publish"} {
			r, ok := find(ref, n)
			if !hasT || !ok {
				continue
			}
			f := func(a, b time.Duration) string { return ratio(float64(a), float64(b)) }
			fmt.Printf("| %d | **ratio timer / %s** | %s | **%s** | %s | %s | %s | %s | %s | |\n", n, ref,
				f(t.lag.P50, r.lag.P50), f(t.lag.P99, r.lag.P99), f(t.lag.Max, r.lag.Max), ratio(t.eps(), r.eps()), f(t.cpu, r.cpu),
				ratio(float64(t.heap), float64(r.heap)), ratio(float64(t.peak), float64(r.peak)))
		}
	}
	fmt.Println()
	for _, n := range ns {
		t, ok := find("timer", n)
		if !ok {
			continue
		}
		fmt.Printf("timer, %d schedules: loaded in %s, %.1f KiB of heap per schedule once loaded, %.0f µs of CPU per tick of one schedule; ticks fired (fired_at) p50 %s p99 %s after their time\n",
			n, benchkit.Dur(t.load), float64(t.heap)/float64(n)/1024, float64(t.cpu.Microseconds())/float64(n),
			benchkit.Dur(t.fired.P50), benchkit.Dur(t.fired.P99))
	}
	if t, ok := find("timer", goalSchedules); ok {
		verdict := "met"
		if t.lag.P99 >= goalLag {
			verdict = fmt.Sprintf("NOT met (%.1fx)", float64(t.lag.P99)/float64(goalLag))
		}
		line := fmt.Sprintf("goal: lag p99 < %s with %d schedules due in the same second: p99 %s, %s", goalLag, goalSchedules, benchkit.Dur(t.lag.P99), verdict)
		if p, ok := find("publish", goalSchedules); ok {
			line += fmt.Sprintf("; the same ticks stored from bare Go timers: p99 %s", benchkit.Dur(p.lag.P99))
		}
		fmt.Println(line)
	}
}

// topology is the environment of one target and case. Each gets its own,
// deleted afterwards, so nothing one left (events, state, de-duplication
// ids) weighs on another.
func (b *bench) topology(target string, n int) bus.Topology {
	return bus.DefaultTopology(b.env + "-" + target + "-" + strconv.Itoa(n))
}

// deleteTopology removes the streams and buckets of topo.
func deleteTopology(ctx context.Context, js jetstream.JetStream, topo bus.Topology) error {
	for _, sc := range topo.Streams() {
		if err := js.DeleteStream(ctx, sc.Name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("delete stream %s: %w", sc.Name, err)
		}
	}
	for _, kc := range topo.Buckets() {
		if err := js.DeleteKeyValue(ctx, kc.Bucket); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
			return fmt.Errorf("delete bucket %s: %w", kc.Bucket, err)
		}
	}
	return nil
}

// sched is the tenant and name of schedule i.
func (b *bench) sched(i int) (tenantID, name string) {
	return "tenant-" + strconv.Itoa(i%b.tenants), "s" + strconv.Itoa(i)
}

// spec is the schedules' spec: every second in six-field cron (seconds
// first), else "@every", which the timer fires at the multiples of the
// period since the Unix epoch.
func spec(period time.Duration) string {
	if period == time.Second {
		return "* * * * * *"
	}
	return "@every " + period.String()
}

// window is what a target is measured over: ticks instants, period apart
// (multiples of the period since the Unix epoch, as "@every" fires), and a
// CPU window of ticks x period from preWindow before the first.
type window struct {
	period  time.Duration
	instant []time.Time
}

// nextWindow starts at the first instant at least lead from now.
func nextWindow(period time.Duration, ticks int, lead time.Duration) window {
	first := time.Now().Add(lead).Truncate(period).Add(period)
	w := window{period: period}
	for i := range ticks {
		w.instant = append(w.instant, first.Add(time.Duration(i)*period))
	}
	return w
}

func (w window) first() time.Time    { return w.instant[0] }
func (w window) last() time.Time     { return w.instant[len(w.instant)-1] }
func (w window) cpuStart() time.Time { return w.first().Add(-preWindow) }
func (w window) cpuEnd() time.Time   { return w.last().Add(w.period - preWindow) }

func sleepUntil(ctx context.Context, t time.Time) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Until(t)):
		return nil
	}
}

// measure runs one target with n schedules in an environment of its own.
func (b *bench) measure(ctx context.Context, target string, n int) (result, error) {
	topo := b.topology(target, n)
	admin, err := service.NewRuntime(topo, b.nc, b.log, service.NewRegistry(), service.NewReadiness())
	if err != nil {
		return result{}, err
	}
	if err := admin.EnsureTopology(ctx); err != nil {
		return result{}, err
	}
	defer func() { _ = deleteTopology(context.WithoutCancel(ctx), admin.JS, topo) }()
	res := result{target: target, n: n, period: b.periodFor(target, n)}
	if target == "timer" {
		err = b.runTimer(ctx, admin, &res)
	} else {
		err = b.runTimers(ctx, admin, &res)
	}
	return res, err
}

// loaded records the live heap once the target is loaded (over base),
// and writes a heap profile when asked.
func (b *bench) loaded(res *result, base benchkit.Memory) error {
	res.heap = benchkit.Settled().Live - base.Live
	return b.writeHeapProfile(res.target, res.n)
}

// measured sleeps through the CPU window of w, recording CPU time, the
// peak of heap and stacks in use and of goroutines, and a CPU profile
// when asked.
func (b *bench) measured(ctx context.Context, w window, res *result, base benchkit.Memory) error {
	if err := sleepUntil(ctx, w.cpuStart()); err != nil {
		return err
	}
	stopProfile, err := b.startProfile(res.target, res.n)
	if err != nil {
		return err
	}
	stopSampler := benchkit.Sampler(20 * time.Millisecond)
	cpu0 := benchkit.CPUTime()
	err = sleepUntil(ctx, w.cpuEnd())
	cpu := benchkit.CPUTime() - cpu0
	m := stopSampler()
	stopProfile()
	res.cpu = cpu / time.Duration(len(w.instant))
	res.peak, res.gor = m.InUse-base.InUse, m.Goroutines
	return err
}

// runTimers runs a reference: one time.AfterFunc per schedule, re-armed
// for the next instant when it fires (before its work, as gocron
// reschedules a job before running it). The baseline records when it
// fired; the publish reference also stores the tick's event.
func (b *bench) runTimers(ctx context.Context, admin *service.Runtime, res *result) error {
	n := res.n
	var pub *bus.Publisher
	if res.target == "publish" {
		conn, err := nats.Connect(b.url)
		if err != nil {
			return err
		}
		defer conn.Close()
		rt, err := service.NewRuntime(admin.Topology, conn, b.log, service.NewRegistry(), service.NewReadiness())
		if err != nil {
			return err
		}
		pub = rt.Publisher
	}
	fired := make([]time.Time, n*b.ticks) // [tick*n+i]
	base := benchkit.Settled()
	// Arming 100k timers and a GC take well under a second.
	w := nextWindow(res.period, b.ticks, 1500*time.Millisecond)
	first, last := w.first(), w.last()
	var done sync.WaitGroup // one per schedule and tick
	done.Add(n * len(w.instant))
	var failures atomic.Int64
	slots := make(chan struct{}, publishSlots)
	timers := make([]*time.Timer, n)
	start := time.Now()
	for i := range n {
		tenantID, name := b.sched(i)
		at := first
		var mu sync.Mutex // orders the callback's read of timers[i] after its creation
		mu.Lock()
		timers[i] = time.AfterFunc(time.Until(at), func() {
			now := time.Now()
			mu.Lock()
			this := at
			if at.Before(last) {
				at = at.Add(res.period)
				timers[i].Reset(time.Until(at))
			}
			mu.Unlock()
			defer done.Done()
			fired[int(this.Sub(first)/res.period)*n+i] = now
			if pub != nil {
				slots <- struct{}{}
				if err := publishTick(ctx, pub, tenantID, name, this, now); err != nil {
					failures.Add(1)
				}
				<-slots
			}
		})
		mu.Unlock()
	}
	res.load = time.Since(start)
	if err := b.loaded(res, base); err != nil {
		return err
	}
	if err := b.measured(ctx, w, res, base); err != nil {
		return err
	}
	finished := make(chan struct{})
	go func() { done.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(time.Minute):
		return errors.New("the timers did not finish within 1m of the last tick")
	case <-ctx.Done():
		return ctx.Err()
	}
	if f := failures.Load(); f > 0 {
		res.invalid = fmt.Sprintf("%d publishes failed", f)
	}
	if pub != nil {
		return b.check(ctx, admin, w, res)
	}
	perTick := make([][]time.Duration, len(w.instant))
	var lag []time.Duration
	for k, at := range w.instant {
		for i := range n {
			d := fired[k*n+i].Sub(at)
			lag = append(lag, d)
			perTick[k] = append(perTick[k], d)
		}
	}
	res.lag, res.fired, res.drain = benchkit.Percentiles(lag), benchkit.Percentiles(slices.Clone(lag)), drainOf(perTick)
	return nil
}

// publishTick stores the event of one tick as the timer does: same id,
// subject, metadata and per-publish timeout.
func publishTick(ctx context.Context, pub *bus.Publisher, tenantID, name string, at, firedAt time.Time) error {
	const format = "2006-01-02T15:04:05.000Z07:00"
	ev := &eventsv1.Event{
		Id:        tenantID + ":" + name + ":" + strconv.FormatInt(at.Unix(), 10),
		EventType: schedule.DefaultEventType,
		Source:    flow.TimerSource,
		Timestamp: at.UnixMilli(),
		Payload:   []byte("{}"),
		Metadata: map[string]string{
			timer.MetaSchedule:    name,
			timer.MetaScheduledAt: at.UTC().Format(format),
			timer.MetaFiredAt:     firedAt.UTC().Format(format),
		},
		Tenant: tenantID,
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := pub.PublishEvent(pctx, ev)
	return err
}

// runTimer stores n schedules in the schedules bucket, starts one timer on
// a connection of its own and measures its ticks after an unmeasured one.
func (b *bench) runTimer(ctx context.Context, admin *service.Runtime, res *result) error {
	n, period := res.n, res.period
	store, err := tenantkv.Open(ctx, admin.JS, admin.Topology)
	if err != nil {
		return err
	}
	for t := range b.tenants {
		if _, err := store.PutTenant(ctx, tenant.Tenant{ID: "tenant-" + strconv.Itoa(t)}); err != nil {
			return err
		}
	}
	putStart := time.Now()
	if err := benchkit.Parallel(ctx, n, 64, func(i int) error {
		tenantID, name := b.sched(i)
		_, err := store.PutSchedule(ctx, schedule.Schedule{Tenant: tenantID, Name: name, Cron: spec(period)})
		return err
	}); err != nil {
		return fmt.Errorf("put schedules: %w", err)
	}
	fmt.Printf("  (%d schedules %q stored in %s)\n", n, spec(period), benchkit.Dur(time.Since(putStart)))

	conn, err := nats.Connect(b.url)
	if err != nil {
		return err
	}
	defer conn.Close()
	rt, err := service.NewRuntime(admin.Topology, conn, b.log, service.NewRegistry(), service.NewReadiness())
	if err != nil {
		return err
	}
	rt.ShutdownTimeout = 30 * time.Second
	if err := rt.EnsureTopology(ctx); err != nil {
		return err
	}
	base := benchkit.Settled()
	start := time.Now()
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- timer.Serve(tctx, rt, b.cfg) }()
	stopped := false
	stopTimer := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("timer: %w", err)
			}
			return nil
		case <-time.After(time.Minute):
			return errors.New("timer did not stop within 1m")
		}
	}
	defer func() { _ = stopTimer() }()
	// Ready: every schedule loaded (the gauge counts them as they are, the
	// readiness check is registered before) and every check passing.
	deadline := time.Now().Add(5*time.Minute + time.Duration(n)*time.Millisecond)
	for gauge(rt, "greentic_timer_schedules") != float64(n) || len(rt.Ready.Check(ctx)) > 0 {
		select {
		case err := <-done:
			stopped = true
			return fmt.Errorf("timer stopped before it was ready: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timer not ready after %s", time.Since(start).Round(time.Second))
		}
	}
	res.load = time.Since(start)
	if err := b.loaded(res, base); err != nil {
		return err
	}
	// After the start come the first write of every schedule's state and
	// the first ticks: leave 2s, then one unmeasured tick, then the
	// measured ones.
	warmup := nextWindow(period, 1, 2*time.Second)
	w := nextWindow(period, b.ticks, time.Until(warmup.first())+time.Millisecond)
	if err := b.measured(ctx, w, res, base); err != nil {
		return err
	}
	// The window closes before the next tick: the stop lets the fires in
	// flight finish (the last tick, if it is not stored yet) and starts no
	// other.
	if err := stopTimer(); err != nil {
		return err
	}
	res.failed = int(counter(rt, "greentic_timer_fires_total", "outcome", "failed"))
	return b.check(ctx, admin, w, res)
}

// gauge reads a gauge of the runtime's registry (0 when absent).
func gauge(rt *service.Runtime, name string) float64 {
	mfs, err := rt.Registry.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 && mf.GetMetric()[0].Gauge != nil {
			return mf.GetMetric()[0].Gauge.GetValue()
		}
	}
	return 0
}

// counter reads the counter name{label="value"} of the runtime's registry
// (0 when absent).
func counter(rt *service.Runtime, name, label, value string) float64 {
	mfs, err := rt.Registry.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value && m.Counter != nil {
					return m.Counter.GetValue()
				}
			}
		}
	}
	return 0
}

// check reads every event of the target's stream: each measured instant
// must have exactly n events, one per schedule, and no id may be stored
// twice. It sets the lags: scheduled time to the stream's timestamp of the
// message (stored) and to fired_at.
func (b *bench) check(ctx context.Context, admin *service.Runtime, w window, res *result) error {
	n := res.n
	stream, err := admin.JS.Stream(ctx, admin.Topology.EventsStream())
	if err != nil {
		return err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return err
	}
	total := info.State.Msgs
	tickOf := map[int64]int{}
	for k, at := range w.instant {
		tickOf[at.Unix()] = k
	}
	perTick := make([][]time.Duration, len(w.instant))
	var fired []time.Duration
	seen := make(map[string]struct{}, int(total))
	var problems []string
	problem := func(format string, args ...any) {
		if len(problems) < 5 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	if total > 0 {
		cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
		if err != nil {
			return err
		}
		it, err := cons.Messages(jetstream.PullMaxMessages(1000))
		if err != nil {
			return err
		}
		defer it.Stop()
		for read := uint64(0); read < total; read++ {
			m, err := it.Next()
			if err != nil {
				return fmt.Errorf("read the events stream (%d of %d): %w", read, total, err)
			}
			md, err := m.Metadata()
			if err != nil {
				return err
			}
			ev, err := event.Unmarshal(m.Data())
			if err != nil {
				return err
			}
			if _, dup := seen[ev.Id]; dup {
				problem("event %s stored twice", ev.Id)
			}
			seen[ev.Id] = struct{}{}
			at := time.UnixMilli(ev.Timestamp)
			k, ok := tickOf[at.Unix()]
			if !ok {
				continue
			}
			if ev.Metadata[timer.MetaCatchUp] != "" {
				res.catchUp++
			}
			perTick[k] = append(perTick[k], md.Timestamp.Sub(at))
			if f, err := time.Parse(time.RFC3339, ev.Metadata[timer.MetaFiredAt]); err == nil {
				fired = append(fired, f.Sub(at))
			} else {
				problem("event %s: fired_at %q", ev.Id, ev.Metadata[timer.MetaFiredAt])
			}
		}
	}
	for k, at := range w.instant {
		if len(perTick[k]) != n {
			problem("%d events for the tick at %s, want %d", len(perTick[k]), at.Format(time.TimeOnly), n)
		}
	}
	var lag []time.Duration
	for _, l := range perTick {
		lag = append(lag, l...)
	}
	res.lag, res.fired, res.drain = benchkit.Percentiles(lag), benchkit.Percentiles(fired), drainOf(perTick)
	if len(problems) > 0 && res.invalid == "" {
		res.invalid = strings.Join(problems, "; ")
	}
	return nil
}

// drainOf is the median over the ticks of the lag of each tick's last event.
func drainOf(perTick [][]time.Duration) time.Duration {
	var last []time.Duration
	for _, l := range perTick {
		if len(l) > 0 {
			last = append(last, slices.Max(l))
		}
	}
	if len(last) == 0 {
		return 0
	}
	slices.Sort(last)
	return last[len(last)/2]
}

// writeHeapProfile writes the heap profile of the last GC, when asked.
func (b *bench) writeHeapProfile(target string, n int) error {
	if b.heapProfile == "" {
		return nil
	}
	pf, err := os.Create(b.heapProfile + "." + target + "." + strconv.Itoa(n))
	if err != nil {
		return err
	}
	defer pf.Close()
	return pprof.Lookup("heap").WriteTo(pf, 0)
}

// startProfile profiles one measured window.
func (b *bench) startProfile(target string, n int) (func(), error) {
	if b.profile == "" {
		return func() {}, nil
	}
	return benchkit.StartCPUProfile(b.profile + "." + target + "." + strconv.Itoa(n))
}
