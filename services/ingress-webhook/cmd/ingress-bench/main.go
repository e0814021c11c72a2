// Command ingress-bench measures the ingress against a baseline in the same
// run: a bare net/http handler that publishes the same bytes to the same
// JetStream. Both serve real HTTP on loopback, on one in-process
// nats-server with a file store; rounds alternate so machine noise hits both.
//
//	go run ./services/ingress-webhook/cmd/ingress-bench -duration 5s -rounds 3 -concurrency 32
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/greentic/events/pkg/benchkit"
	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/natstest"
	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/pkg/signature"
	"github.com/greentic/events/pkg/tenant"
	"github.com/greentic/events/services/ingress-webhook/ingress"
)

const secret = "bench-secret"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "ingress-bench:", err)
		os.Exit(1)
	}
}

type result struct {
	name     string
	requests int
	errors   int
	rps      float64
	p50, p99 time.Duration
	// cpu is the CPU time of the whole process (clients, HTTP server,
	// nats-server) per accepted request: steadier than req/s on a noisy
	// machine.
	cpu time.Duration
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("ingress-bench", flag.ContinueOnError)
	duration := fs.Duration("duration", 5*time.Second, "length of one measured round")
	rounds := fs.Int("rounds", 3, "rounds per target (alternating baseline and ingress)")
	concurrency := fs.Int("concurrency", 64, "concurrent HTTP clients")
	warmup := fs.Duration("warmup", time.Second, "unmeasured warm-up per target")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the measured rounds to this file")
	only := fs.String("targets", "baseline,ingress,dedupe", "comma-separated targets to run (the first is the reference of the ratios)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	_, nc, stop, err := natstest.StartTemp("ingress-bench-")
	if err != nil {
		return err
	}
	defer stop()
	log := service.NewLogger(io.Discard, slog.LevelError)
	rt, err := service.NewRuntime(bus.DefaultTopology("bench"), nc, log, service.NewRegistry(), service.NewReadiness())
	if err != nil {
		return err
	}
	if err := rt.EnsureTopology(ctx); err != nil {
		return err
	}

	reg := tenant.NewRegistry()
	// A rate limit far above the load, so the limiter runs but never refuses.
	reg.PutTenant(tenant.Tenant{ID: "demo", RateLimit: tenant.RateLimit{PerSecond: 1e7, Burst: 1e7}})
	generic := tenant.Source{
		Tenant: "demo", Name: "generic", Scheme: tenant.SchemeHMACSHA256, Secrets: []string{secret},
		Signature: tenant.Signature{Header: "X-Greentic-Signature", Encoding: "hex", Prefix: "sha256="},
		EventType: tenant.ValueFrom{Field: "type"},
	}
	reg.PutSource(generic)
	// The same source reading a delivery id: a 24h de-duplication lookup
	// before and a record after each publish.
	delivery := generic
	delivery.Name, delivery.EventID = "delivery", tenant.ValueFrom{Field: "id"}
	reg.PutSource(delivery)
	kv, err := rt.Topology.KeyValue(ctx, rt.JS, bus.BucketDeliveries)
	if err != nil {
		return err
	}
	icfg := ingress.Config{PublishTimeout: 5 * time.Second, MaxBodyBytes: 1 << 20, RetryAfter: 5 * time.Second, MaxEventsPerRequest: 1000}
	ih, err := ingress.NewHandler(icfg, ingress.Deps{Registry: reg, Publisher: rt.Publisher, Deliveries: ingress.KVDeliveries{KV: kv}, Log: log})
	if err != nil {
		return err
	}
	subject, _ := bus.EventSubject("bench", "demo", "order.created")
	var seq atomic.Uint64
	baseline := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		id := "baseline-" + strconv.FormatUint(seq.Add(1), 10)
		if _, err := rt.JS.Publish(r.Context(), subject, body, jetstream.WithMsgID(id)); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"event_id":"` + id + `"}`))
	})

	urls := map[string]string{}
	for name, h := range map[string]http.Handler{"baseline": baseline, "ingress": ih} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = hs.Serve(ln) }()
		defer hs.Close()
		urls[name] = "http://" + ln.Addr().String()
	}
	targets := map[string]string{
		"baseline": urls["baseline"] + "/",
		"ingress":  urls["ingress"] + "/v1/webhooks/demo/generic",
		"dedupe":   urls["ingress"] + "/v1/webhooks/demo/delivery",
	}
	order := strings.Split(*only, ",")
	for _, name := range order {
		if targets[name] == "" {
			return fmt.Errorf("unknown target %q (baseline, ingress, dedupe)", name)
		}
	}

	fmt.Printf("ingress-bench: %d rounds x %s per target, %d clients, GOMAXPROCS=%d\n", *rounds, *duration, *concurrency, runtime.GOMAXPROCS(0))
	for _, name := range order {
		if _, err := load(ctx, name, targets[name], *concurrency, *warmup); err != nil {
			return err
		}
	}
	stopProfile, err := benchkit.StartCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	all := map[string][]result{}
	for i := 0; i < *rounds; i++ {
		for _, name := range order {
			// Every round starts from empty streams, so no target pays for
			// the messages and de-duplication ids another one left.
			if err := purge(ctx, rt); err != nil {
				return err
			}
			res, err := load(ctx, name, targets[name], *concurrency, *duration)
			if err != nil {
				return err
			}
			fmt.Printf("  round %d %-8s %8.0f req/s  p50 %-10s p99 %-10s cpu/req %-8s errors %d\n", i+1, name, res.rps, res.p50.Round(time.Microsecond), res.p99.Round(time.Microsecond), res.cpu.Round(time.Microsecond), res.errors)
			all[name] = append(all[name], res)
		}
	}
	if len(all["baseline"]) == 0 || len(order) < 3 {
		for _, name := range order {
			r := median(all[name])
			fmt.Printf("%s: %.0f req/s p50 %s p99 %s cpu/req %s\n", name, r.rps, r.p50, r.p99, r.cpu)
		}
		return nil
	}
	b, in, dd := median(all["baseline"]), median(all["ingress"]), median(all["dedupe"])
	row := func(name string, r result) {
		fmt.Printf("| %s | %.0f | %s | %s | %s |\n", name, r.rps, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.cpu.Round(time.Microsecond))
	}
	ratio := func(name string, r result) {
		fmt.Printf("| **ratio %s / baseline** | **%.2f** | %.2f | **%.2f** | %.2f |\n", name, r.rps/b.rps, float64(r.p50)/float64(b.p50), float64(r.p99)/float64(b.p99), float64(r.cpu)/float64(b.cpu))
	}
	fmt.Println()
	fmt.Println("| target | accepted req/s | p50 | p99 | CPU per request |")
	fmt.Println("|---|---|---|---|---|")
	row("baseline: net/http + JetStream publish", b)
	row("ingress (HMAC verify, rate limit, normalize, publish)", in)
	row("dedupe (ingress + 24h delivery-id lookup and record)", dd)
	ratio("ingress", in)
	ratio("dedupe", dd)
	return nil
}

// purge empties the events stream and the deliveries bucket.
func purge(ctx context.Context, rt *service.Runtime) error {
	for _, name := range []string{rt.Topology.EventsStream(), "KV_" + rt.Topology.BucketName(bus.BucketDeliveries)} {
		s, err := rt.JS.Stream(ctx, name)
		if err != nil {
			return err
		}
		if err := s.Purge(ctx); err != nil {
			return fmt.Errorf("purge %s: %w", name, err)
		}
	}
	runtime.GC()
	return nil
}

// median picks, per figure, the median over the rounds.
func median(rs []result) result {
	return result{
		rps: benchkit.Median(rs, func(r result) float64 { return r.rps }),
		p50: benchkit.Median(rs, func(r result) time.Duration { return r.p50 }),
		p99: benchkit.Median(rs, func(r result) time.Duration { return r.p99 }),
		cpu: benchkit.Median(rs, func(r result) time.Duration { return r.cpu }),
	}
}

// load sends signed order.created webhooks with unique ids from n clients
// for d and measures accepted requests and their latency.
func load(ctx context.Context, name, url string, n int, d time.Duration) (result, error) {
	tr := &http.Transport{MaxIdleConns: n, MaxIdleConnsPerHost: n, MaxConnsPerHost: n}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	deadline := time.Now().Add(d)
	var mu sync.Mutex
	var lat []time.Duration
	var errs int
	var wg sync.WaitGroup
	var counter atomic.Uint64
	prefix := name + "-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	start, cpu0 := time.Now(), benchkit.CPUTime()
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 4096)
			localErrs := 0
			for time.Now().Before(deadline) && ctx.Err() == nil {
				id := prefix + strconv.FormatUint(counter.Add(1), 10)
				body := []byte(`{"type":"order.created","id":"` + id + `","total":42.5,"currency":"EUR","items":[{"sku":"A-1","qty":2}]}`)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Greentic-Signature", "sha256="+signature.SignHMACSHA256(body, secret, "hex"))
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					localErrs++
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					localErrs++
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, local...)
			errs += localErrs
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), benchkit.CPUTime()-cpu0
	if len(lat) == 0 {
		return result{}, fmt.Errorf("%s accepted no request (%d errors)", name, errs)
	}
	l := benchkit.Percentiles(lat)
	return result{
		name: name, requests: len(lat), errors: errs,
		rps: float64(len(lat)) / elapsed.Seconds(),
		p50: l.P50, p99: l.P99,
		cpu: cpu / time.Duration(len(lat)),
	}, nil
}
