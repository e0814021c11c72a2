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
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("ingress-bench", flag.ContinueOnError)
	duration := fs.Duration("duration", 5*time.Second, "length of one measured round")
	rounds := fs.Int("rounds", 3, "rounds per target (alternating baseline and ingress)")
	concurrency := fs.Int("concurrency", 32, "concurrent HTTP clients")
	warmup := fs.Duration("warmup", time.Second, "unmeasured warm-up per target")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "ingress-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := natstest.Start(dir)
	if err != nil {
		return err
	}
	defer srv.Stop()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		return err
	}
	defer nc.Close()
	log := service.NewLogger(io.Discard, slog.LevelError)
	rt, err := service.NewRuntime(bus.DefaultTopology("bench"), nc, log, service.NewRegistry(), service.NewReadiness())
	if err != nil {
		return err
	}
	if err := rt.EnsureTopology(ctx); err != nil {
		return err
	}

	reg := tenant.NewRegistry()
	reg.PutTenant(tenant.Tenant{ID: "demo"})
	reg.PutSource(tenant.Source{
		Tenant: "demo", Name: "generic", Scheme: tenant.SchemeHMACSHA256, Secrets: []string{secret},
		Signature: tenant.Signature{Header: "X-Greentic-Signature", Encoding: "hex", Prefix: "sha256="},
		EventType: tenant.ValueFrom{Field: "type"}, EventID: tenant.ValueFrom{Field: "id"},
	})
	icfg := ingress.Config{PublishTimeout: 5 * time.Second, MaxBodyBytes: 1 << 20, RetryAfter: 5 * time.Second}
	ih, err := ingress.NewHandler(icfg, reg, rt.Publisher, log, nil)
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

	targets := map[string]string{}
	for name, h := range map[string]http.Handler{"baseline": baseline, "ingress": ih} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = hs.Serve(ln) }()
		defer hs.Close()
		targets[name] = "http://" + ln.Addr().String()
	}
	paths := map[string]string{"baseline": "/", "ingress": "/v1/webhooks/demo/generic"}

	fmt.Printf("ingress-bench: %d rounds x %s per target, %d clients, GOMAXPROCS=%d\n", *rounds, *duration, *concurrency, runtime.GOMAXPROCS(0))
	for _, name := range []string{"baseline", "ingress"} {
		if _, err := load(ctx, name, targets[name]+paths[name], *concurrency, *warmup); err != nil {
			return err
		}
	}
	all := map[string][]result{}
	for i := 0; i < *rounds; i++ {
		for _, name := range []string{"baseline", "ingress"} {
			res, err := load(ctx, name, targets[name]+paths[name], *concurrency, *duration)
			if err != nil {
				return err
			}
			fmt.Printf("  round %d %-8s %8.0f req/s  p50 %-10s p99 %-10s errors %d\n", i+1, name, res.rps, res.p50.Round(time.Microsecond), res.p99.Round(time.Microsecond), res.errors)
			all[name] = append(all[name], res)
		}
	}
	b, in := median(all["baseline"]), median(all["ingress"])
	fmt.Println()
	fmt.Println("| target | accepted req/s | p50 | p99 |")
	fmt.Println("|---|---|---|---|")
	fmt.Printf("| baseline: net/http + JetStream publish | %.0f | %s | %s |\n", b.rps, b.p50.Round(time.Microsecond), b.p99.Round(time.Microsecond))
	fmt.Printf("| ingress-webhook (HMAC verify, normalize, publish) | %.0f | %s | %s |\n", in.rps, in.p50.Round(time.Microsecond), in.p99.Round(time.Microsecond))
	fmt.Printf("| **ratio ingress / baseline** | **%.2f** | %.2f | **%.2f** |\n", in.rps/b.rps, float64(in.p50)/float64(b.p50), float64(in.p99)/float64(b.p99))
	return nil
}

// median picks, per figure, the median over the rounds.
func median(rs []result) result {
	pick := func(f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return result{
		rps: pick(func(r result) float64 { return r.rps }),
		p50: time.Duration(pick(func(r result) float64 { return float64(r.p50) })),
		p99: time.Duration(pick(func(r result) float64 { return float64(r.p99) })),
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
	start := time.Now()
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
	elapsed := time.Since(start)
	if len(lat) == 0 {
		return result{}, fmt.Errorf("%s accepted no request (%d errors)", name, errs)
	}
	slices.Sort(lat)
	return result{
		name: name, requests: len(lat), errors: errs,
		rps: float64(len(lat)) / elapsed.Seconds(),
		p50: lat[len(lat)/2], p99: lat[len(lat)*99/100],
	}, nil
}
