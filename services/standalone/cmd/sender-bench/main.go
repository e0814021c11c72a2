// Command sender-bench measures one email sender and one SMS sender instance
// against fake providers that answer every request after a fixed latency
// (50 ms), and compares each with a baseline in the same run: the same sends
// made directly with the same provider type, from as many goroutines as the
// sender's concurrency, against the same fake. The baseline is the
// provider-bound ceiling of these sends without the bus, the send records or
// the outcome events; the theoretical ceiling is concurrency / latency.
//
// Everything runs in one process, on loopback: an in-process nats-server with
// JetStream and a file store, and two net/http/httptest servers standing in
// for SendGrid (202 with an X-Message-Id) and Twilio (201 with a message SID).
// For each channel, N commands spread over a few tenants are published to
// the outbound stream first; then emailsender.Serve (or smssender.Serve) runs
// with its default settings except that rate limits are off, and the clock
// runs from its start until the N outcome events (email.sent, sms.sent) are
// stored.
//
// The fakes count the requests of every command id (SendGrid's custom arg and
// the Twilio status callback's query parameter, greentic_command_id), and the
// stored outcome events are read back: the command exits non-zero unless
// every target made exactly one request per command and the sender stored
// exactly one sent event per command and nothing else. Timings are reported,
// never asserted.
//
//	go run ./services/standalone/cmd/sender-bench -commands 5000
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/greentic/events/pkg/benchkit"
	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/event"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/natstest"
	"github.com/greentic/events/pkg/sender"
	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/pkg/tenant"
	"github.com/greentic/events/pkg/tenant/tenantkv"
	"github.com/greentic/events/services/email-sender/emailsender"
	"github.com/greentic/events/services/sms-sender/smssender"
)

// Credentials of the fake accounts (twilio-go accepts letters and digits
// only).
const (
	sendGridKey  = "SGbenchkey0123456789"
	twilioSID    = "AC0123456789abcdef0123456789abcdef"
	twilioToken  = "benchtoken0123456789"
	callbackURL  = "https://hooks.example.com/v1/webhooks/{tenant}/twilio"
	fromEmail    = "shop@example.com"
	fromNumber   = "+15005550001"
	pollInterval = 10 * time.Millisecond
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "sender-bench:", err)
		os.Exit(1)
	}
}

// result is what one target did with one channel's n commands.
type result struct {
	channel string
	target  string
	round   int
	n       int
	elapsed time.Duration
	cpu     time.Duration // process CPU time per command
	peak    int64         // most heap and stacks in use during the run, over the start
	gor     int64         // most goroutines during the run
	conns   int64         // connections the fake accepted during the run
	send    time.Duration // mean duration of one provider call (sender: its histogram)
	redeliv int           // sender: redelivered commands
	invalid string        // why the run is wrong; empty when it is right
}

func (r result) cps() float64 { return float64(r.n) / r.elapsed.Seconds() }

// slotTime is how long one of the concurrency slots was busy per command.
func (r result) slotTime(concurrency int) time.Duration {
	return time.Duration(float64(r.elapsed) * float64(concurrency) / float64(r.n))
}

// fake is a provider that answers every request latency after it came
// and counts the requests of each command id. It counts the connections it
// accepted, too.
type fake struct {
	srv   *httptest.Server
	conns atomic.Int64
	mu    sync.Mutex
	ids   map[string]int // requests per command id
	other int            // requests without a command id
}

// newFake starts a fake whose commandID reads a request's command id and
// whose accept writes the answer.
func newFake(latency time.Duration, commandID func(r *http.Request) (string, bool), accept func(w http.ResponseWriter)) *fake {
	f := &fake{ids: map[string]int{}}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := time.NewTimer(latency)
		defer t.Stop()
		id, ok := commandID(r)
		f.mu.Lock()
		if ok {
			f.ids[id]++
		} else {
			f.other++
		}
		f.mu.Unlock()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
		accept(w)
	}))
	f.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.conns.Add(1)
		}
	}
	f.srv.Start()
	return f
}

// count returns how many distinct ids with prefix were requested, how many
// of them more than once, and the requests without an id.
func (f *fake) count(prefix string) (distinct, repeated, other int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, c := range f.ids {
		if strings.HasPrefix(id, prefix) {
			distinct++
			if c > 1 {
				repeated++
			}
		}
	}
	return distinct, repeated, f.other
}

// sendGridFake answers mail sends with 202 and an X-Message-Id; it reads the
// command id from the body's custom args.
func sendGridFake(latency time.Duration) *fake {
	var seq atomic.Int64
	return newFake(latency, func(r *http.Request) (string, bool) {
		var body struct {
			CustomArgs map[string]string `json:"custom_args"`
		}
		if r.Method != http.MethodPost || r.URL.Path != "/v3/mail/send" || json.NewDecoder(r.Body).Decode(&body) != nil {
			return "", false
		}
		id := body.CustomArgs[event.SendGridArgCommandID]
		return id, id != ""
	}, func(w http.ResponseWriter) {
		w.Header().Set("X-Message-Id", "sgbench"+strconv.FormatInt(seq.Add(1), 10))
		w.WriteHeader(http.StatusAccepted)
	})
}

// twilioFake answers message creates with 201 and a queued message; it
// reads the command id from the status callback's query.
func twilioFake(latency time.Duration) *fake {
	return newFake(latency, func(r *http.Request) (string, bool) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/Messages.json") || r.ParseForm() != nil {
			return "", false
		}
		u, err := url.Parse(r.PostForm.Get("StatusCallback"))
		if err != nil {
			return "", false
		}
		id := u.Query().Get(event.TwilioCallbackCommandID)
		return id, id != ""
	}, func(w http.ResponseWriter) {
		var sid [16]byte
		_, _ = rand.Read(sid[:])
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"sid":"SM`+hex.EncodeToString(sid[:])+`","status":"queued"}`)
	})
}

// channel is what the bench needs of one sender.
type channel struct {
	name      string // bus.ChannelEmail, bus.ChannelSMS
	fake      *fake
	command   func(id, tenantID string, i int) proto.Message
	baseline  func(ctx context.Context, cmd proto.Message) (sender.Receipt, error)
	serve     func(ctx context.Context, rt *service.Runtime) error
	readyName string
}

type bench struct {
	srvURL      string
	admin       *service.Runtime
	log         *slog.Logger
	env         string
	tenants     int
	concurrency int
	profile     string
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sender-bench", flag.ContinueOnError)
	n := fs.Int("commands", 5000, "commands per channel, target and round")
	rounds := fs.Int("rounds", 1, "rounds (each: baseline then sender, for every channel)")
	concurrency := fs.Int("concurrency", 32, "sends in flight at once: the sender's -{channel}-concurrency and the baseline's goroutines")
	tenantConcurrency := fs.Int("tenant-concurrency", 0, "the sender's sends in flight at once for one tenant (0: its default)")
	tenants := fs.Int("tenants", 8, "tenants the commands are spread over")
	latency := fs.Duration("latency", 50*time.Millisecond, "how long the fake providers take to answer")
	only := fs.String("channels", "email,sms", "comma-separated channels to run, in this order")
	env := fs.String("env", "bench", "environment of the topology")
	cpuProfile := fs.String("cpuprofile", "", "write CPU profiles of the measured windows to FILE.<channel>.<target>.<round>")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *rounds < 1 || *concurrency < 1 || *tenants < 1 || *latency <= 0 {
		return errors.New("-commands, -rounds, -concurrency and -tenants must be at least 1, -latency positive")
	}

	// The senders' defaults, as the services start without flags, with the
	// rate limits off: the bench measures the delivery loop, not the
	// token buckets.
	none := func(string) (string, bool) { return "", false }
	var ecfg emailsender.Config
	ef := service.NewFlags("sender-bench")
	ecfg.RegisterFlags(ef, emailsender.ProviderSendGrid)
	if err := ef.Parse(nil, none); err != nil {
		return err
	}
	var scfg smssender.Config
	sf := service.NewFlags("sender-bench")
	scfg.RegisterFlags(sf, smssender.ProviderTwilio)
	if err := sf.Parse(nil, none); err != nil {
		return err
	}
	for _, c := range []*sender.Config{&ecfg.Config, &scfg.Config} {
		c.Concurrency = *concurrency
		if *tenantConcurrency > 0 {
			c.TenantConcurrency = *tenantConcurrency
		}
		c.TenantConcurrency = min(c.TenantConcurrency, c.Concurrency)
		c.TenantRate.PerSecond, c.AccountRate.PerSecond = 0, 0
	}

	sg, tw := sendGridFake(*latency), twilioFake(*latency)
	defer sg.srv.Close()
	defer tw.srv.Close()
	ecfg.SendGridURL = sg.srv.URL
	ecfg.Lookup = func(name string) (string, bool) {
		if name == emailsender.EnvAPIKey {
			return sendGridKey, true
		}
		return "", false
	}
	scfg.TwilioURL, scfg.StatusCallbackURL = tw.srv.URL, callbackURL
	scfg.Lookup = func(name string) (string, bool) {
		switch name {
		case smssender.EnvAccountSID:
			return twilioSID, true
		case smssender.EnvAuthToken:
			return twilioToken, true
		}
		return "", false
	}
	if err := ecfg.Validate(); err != nil {
		return err
	}
	if err := scfg.Validate(); err != nil {
		return err
	}

	// The baselines: the same provider types the senders build, with the
	// deployment account the senders resolve for commands naming none.
	sgp := &emailsender.SendGrid{BaseURL: sg.srv.URL}
	sgAcct := sender.Account{Key: sender.DefaultAccountKey, Credentials: map[string]string{"api_key": sendGridKey}}
	twp := &smssender.Twilio{BaseURL: tw.srv.URL, StatusCallbackURL: callbackURL}
	twAcct := sender.Account{Key: sender.DefaultAccountKey, Credentials: map[string]string{"account_sid": twilioSID, "auth_token": twilioToken}}
	channels := map[string]*channel{
		bus.ChannelEmail: {
			name: bus.ChannelEmail, fake: sg, readyName: bus.ChannelEmail + "_sender_tenants",
			command: func(id, tenantID string, i int) proto.Message {
				return &eventsv1.EmailCommand{
					Id:      id,
					Origin:  &eventsv1.CommandOrigin{Tenant: tenantID, EventId: id, Flow: "welcome", Node: "mail"},
					From:    &eventsv1.EmailAddress{Email: fromEmail, Name: "Shop"},
					To:      []*eventsv1.EmailAddress{{Email: "customer" + strconv.Itoa(i) + "@example.com", Name: "Customer"}},
					Subject: "Your order " + strconv.Itoa(i),
					Text:    "Hello, your order " + strconv.Itoa(i) + " has been confirmed and will ship soon.",
				}
			},
			baseline: func(ctx context.Context, cmd proto.Message) (sender.Receipt, error) {
				return sgp.Send(ctx, cmd.(*eventsv1.EmailCommand), sgAcct)
			},
			serve: func(ctx context.Context, rt *service.Runtime) error { return emailsender.Serve(ctx, rt, ecfg) },
		},
		bus.ChannelSMS: {
			name: bus.ChannelSMS, fake: tw, readyName: bus.ChannelSMS + "_sender_tenants",
			command: func(id, tenantID string, i int) proto.Message {
				return &eventsv1.SmsCommand{
					Id:     id,
					Origin: &eventsv1.CommandOrigin{Tenant: tenantID, EventId: id, Flow: "welcome", Node: "text"},
					To:     "+1500555" + fmt.Sprintf("%04d", i%10000),
					From:   fromNumber,
					Body:   "Your order " + strconv.Itoa(i) + " has been confirmed and will ship soon.",
				}
			},
			baseline: func(ctx context.Context, cmd proto.Message) (sender.Receipt, error) {
				return twp.Send(ctx, cmd.(*eventsv1.SmsCommand), twAcct)
			},
			serve: func(ctx context.Context, rt *service.Runtime) error { return smssender.Serve(ctx, rt, scfg) },
		},
	}
	var order []*channel
	for _, name := range strings.Split(*only, ",") {
		c, ok := channels[strings.TrimSpace(name)]
		if !ok {
			return fmt.Errorf("unknown channel %q (email, sms)", name)
		}
		order = append(order, c)
	}

	srv, nc, stop, err := natstest.StartTemp("sender-bench-")
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
	for t := range *tenants {
		if _, err := store.PutTenant(ctx, tenant.Tenant{ID: tenantName(t)}); err != nil {
			return err
		}
	}
	b := &bench{srvURL: srv.ClientURL(), admin: admin, log: log, env: *env, tenants: *tenants, concurrency: *concurrency, profile: *cpuProfile}

	ceiling := float64(*concurrency) / latency.Seconds()
	fmt.Printf("sender-bench: %d commands per channel, target and round, %d round(s), fake providers answering after %s, concurrency %d (%d per tenant, %d tenants), rate limits off, ceiling %.0f commands/s, GOMAXPROCS=%d\n",
		*n, *rounds, *latency, *concurrency, ecfg.TenantConcurrency, *tenants, ceiling, runtime.GOMAXPROCS(0))

	var all []result
	for round := 1; round <= *rounds; round++ {
		for _, c := range order {
			for _, target := range []string{"baseline", "sender"} {
				res, err := b.measure(ctx, c, target, round, *n)
				if err != nil {
					return fmt.Errorf("round %d %s %s: %w", round, c.name, target, err)
				}
				line := fmt.Sprintf("  round %d %-5s %-8s %6.0f commands/s  %5.1f%% of ceiling  slot time/command %-8s mean provider call %-8s cpu/command %-8s peak heap %-9s goroutines %-5d connections %d",
					round, c.name, target, res.cps(), 100*res.cps()/ceiling, benchkit.Dur(res.slotTime(*concurrency)), benchkit.Dur(res.send),
					us(res.cpu), benchkit.MiB(res.peak), res.gor, res.conns)
				if target == "sender" {
					line += fmt.Sprintf("  redelivered %d", res.redeliv)
				}
				if res.invalid != "" {
					line += "  WRONG: " + res.invalid
				}
				fmt.Println(line)
				all = append(all, res)
			}
		}
	}
	if err := b.checkDLQ(ctx); err != nil {
		return err
	}
	if b.profile != "" {
		fmt.Printf("CPU profiles: go tool pprof -top %s.<channel>.<target>.*\n", b.profile)
	}
	report(all, *concurrency, ceiling)
	var stats runtime.MemStats
	runtime.ReadMemStats(&stats)
	fmt.Printf("process (nats-server and fakes included, all targets): Sys %s, peak RSS %s\n", benchkit.MiB(int64(stats.Sys)), benchkit.PeakRSS())

	var bad []string
	for _, r := range all {
		if r.invalid != "" {
			bad = append(bad, fmt.Sprintf("round %d %s %s: %s", r.round, r.channel, r.target, r.invalid))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("wrong sends:\n  %s", strings.Join(bad, "\n  "))
	}
	return nil
}

func tenantName(t int) string { return "tenant-" + strconv.Itoa(t) }

// report prints the table and the ratios.
func report(all []result, concurrency int, ceiling float64) {
	fmt.Println()
	fmt.Println("| round | channel | target | commands/s | of ceiling | slot time per command | mean provider call | CPU per command | peak heap | goroutines |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	desc := map[string]string{
		"baseline": "baseline: provider.Send from %d goroutines",
		"sender":   "sender: %s-sender, one instance",
	}
	for i, r := range all {
		d := fmt.Sprintf(desc[r.target], concurrency)
		if r.target == "sender" {
			d = fmt.Sprintf(desc[r.target], r.channel)
		}
		fmt.Printf("| %d | %s | %s | %.0f | %.2f | %s | %s | %s | %s | %d |\n", r.round, r.channel, d, r.cps(), r.cps()/ceiling,
			benchkit.Dur(r.slotTime(concurrency)), benchkit.Dur(r.send), us(r.cpu), benchkit.MiB(r.peak), r.gor)
		if r.target != "sender" || i == 0 || all[i-1].target != "baseline" || all[i-1].channel != r.channel {
			continue
		}
		base := all[i-1]
		fmt.Printf("| %d | %s | **ratio sender / baseline** | **%.2f** | | %.2f | %.2f | %.2f | %.2f | |\n", r.round, r.channel,
			r.cps()/base.cps(), float64(r.slotTime(concurrency))/float64(base.slotTime(concurrency)),
			float64(r.send)/float64(base.send), float64(r.cpu)/float64(base.cpu), float64(r.peak)/float64(base.peak))
	}
	fmt.Printf("\nceiling: %d sends in flight / provider latency = %.0f commands/s\n", concurrency, ceiling)
}

// measure runs one target with n commands of channel c.
func (b *bench) measure(ctx context.Context, c *channel, target string, round, n int) (result, error) {
	res := result{channel: c.name, target: target, round: round, n: n}
	prefix := c.name + "-" + target[:1] + strconv.Itoa(round) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	cmds := make([]proto.Message, n)
	tenants := make([]string, n)
	for i := range n {
		tenants[i] = tenantName(i % b.tenants)
		cmds[i] = c.command(prefix+strconv.Itoa(i), tenants[i], i)
	}
	if target == "sender" {
		if err := benchkit.Parallel(ctx, n, 64, func(i int) error {
			_, err := b.admin.Publisher.PublishCommand(ctx, tenants[i], c.name, prefix+strconv.Itoa(i), "", cmds[i])
			return err
		}); err != nil {
			return res, fmt.Errorf("publish commands: %w", err)
		}
	}
	conns0 := c.fake.conns.Load()
	base := benchkit.Settled()
	stopProfile, err := b.startProfile(c.name, target, round)
	if err != nil {
		return res, err
	}
	stopSampler := benchkit.Sampler(20 * time.Millisecond)
	if target == "baseline" {
		err = b.runBaseline(ctx, c, cmds, &res)
	} else {
		err = b.runSender(ctx, c, prefix, &res)
	}
	m := stopSampler()
	stopProfile()
	if err != nil {
		return res, err
	}
	res.peak, res.gor = m.InUse-base.InUse, m.Goroutines
	res.conns = c.fake.conns.Load() - conns0

	// Every command reached the fake exactly once.
	distinct, repeated, other := c.fake.count(prefix)
	var problems []string
	if distinct != n || repeated != 0 {
		problems = append(problems, fmt.Sprintf("the fake got %d of %d command ids, %d of them more than once", distinct, n, repeated))
	}
	if other != 0 {
		problems = append(problems, fmt.Sprintf("the fake got %d requests without a command id", other))
	}
	if res.invalid != "" {
		problems = append([]string{res.invalid}, problems...)
	}
	res.invalid = strings.Join(problems, "; ")
	return res, nil
}

// runBaseline sends cmds with the channel's provider from b.concurrency
// goroutines.
func (b *bench) runBaseline(ctx context.Context, c *channel, cmds []proto.Message, res *result) error {
	var failed atomic.Int64
	var firstErr atomic.Value
	var total atomic.Int64 // nanoseconds in provider calls
	start, cpu0 := time.Now(), benchkit.CPUTime()
	err := benchkit.Parallel(ctx, len(cmds), b.concurrency, func(i int) error {
		t := time.Now()
		if _, err := c.baseline(ctx, cmds[i]); err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, err.Error())
		}
		total.Add(int64(time.Since(t)))
		return nil
	})
	res.elapsed, res.cpu = time.Since(start), (benchkit.CPUTime()-cpu0)/time.Duration(len(cmds))
	res.send = time.Duration(total.Load() / int64(len(cmds)))
	if f := failed.Load(); f > 0 {
		res.invalid = fmt.Sprintf("%d sends failed (first: %v)", f, firstErr.Load())
	}
	return err
}

// runSender starts the channel's sender on a connection of its own and runs
// the clock until the n outcome events of the commands are stored.
func (b *bench) runSender(ctx context.Context, c *channel, prefix string, res *result) error {
	n := res.n
	events, err := b.admin.JS.Stream(ctx, b.admin.Topology.EventsStream())
	if err != nil {
		return err
	}
	outcomes := bus.EventFilter(b.env)
	outcomes = strings.TrimSuffix(outcomes, ">") + "*." + c.name + ".*"
	stored := func() (uint64, error) {
		info, err := events.Info(ctx, jetstream.WithSubjectFilter(outcomes))
		if err != nil {
			return 0, err
		}
		var sum uint64
		for _, v := range info.State.Subjects {
			sum += v
		}
		return sum, nil
	}
	before, err := stored()
	if err != nil {
		return err
	}
	lastSeq := uint64(0)
	if info, err := events.Info(ctx); err == nil {
		lastSeq = info.State.LastSeq
	}

	conn, err := nats.Connect(b.srvURL)
	if err != nil {
		return err
	}
	defer conn.Close()
	rt, err := service.NewRuntime(bus.DefaultTopology(b.env), conn, b.log, service.NewRegistry(), service.NewReadiness())
	if err != nil {
		return err
	}
	rt.ShutdownTimeout = 10 * time.Second
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	start, cpu0 := time.Now(), benchkit.CPUTime()
	go func() { done <- c.serve(sctx, rt) }()
	stopped := false
	deadline := start.Add(time.Minute + time.Duration(n)*10*time.Millisecond)
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		got, err := stored()
		if err == nil && got-before >= uint64(n) {
			break
		}
		select {
		case err := <-done:
			stopped = true
			return fmt.Errorf("sender stopped before %d outcome events were stored: %v", n, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d outcome events stored after %s", got-before, n, time.Since(start).Round(time.Second))
		}
	}
	res.elapsed, res.cpu = time.Since(start), (benchkit.CPUTime()-cpu0)/time.Duration(n)
	res.send = meanHistogram(rt, "greentic_sender_send_duration_seconds")
	cancel()
	if !stopped {
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("sender: %w", err)
			}
		case <-time.After(30 * time.Second):
			return errors.New("sender did not stop within 30s")
		}
	}
	if cons, err := b.admin.JS.Consumer(ctx, b.admin.Topology.OutboundStream(), b.admin.Topology.Durable(c.name+"-sender")); err == nil {
		res.redeliv = cons.CachedInfo().NumRedelivered
	}
	res.invalid = b.checkEvents(ctx, events, outcomes, lastSeq, c.name+".sent", prefix, n)
	return nil
}

// checkEvents reads the outcome events stored after seq: there must be
// exactly n, all of type want, one per command id with prefix.
func (b *bench) checkEvents(ctx context.Context, stream jetstream.Stream, filter string, seq uint64, want, prefix string, n int) string {
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: seq + 1,
	})
	if err != nil {
		return "read the outcome events: " + err.Error()
	}
	seen := make(map[string]int, n)
	var problems []string
	problem := func(format string, args ...any) {
		if len(problems) < 5 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	total := 0
	for {
		batch, err := cons.FetchNoWait(1000)
		if err != nil {
			return "read the outcome events: " + err.Error()
		}
		got := 0
		for m := range batch.Messages() {
			got++
			total++
			ev, err := event.Unmarshal(m.Data())
			if err != nil {
				problem("undecodable event on %s: %v", m.Subject(), err)
				continue
			}
			id := ev.Metadata[event.MetaCommandID]
			if ev.EventType != want {
				problem("event %s of command %s is %s", ev.Id, id, ev.EventType)
			}
			if !strings.HasPrefix(id, prefix) {
				problem("event %s is of another command, %q", ev.Id, id)
			}
			seen[id]++
		}
		if batch.Error() != nil {
			return "read the outcome events: " + batch.Error().Error()
		}
		if got == 0 {
			break
		}
	}
	repeated := 0
	for _, c := range seen {
		if c > 1 {
			repeated++
		}
	}
	if total != n || len(seen) != n || repeated > 0 {
		problem("%d outcome events for %d commands (%d distinct, %d stored more than once), want exactly %d", total, n, len(seen), repeated, n)
	}
	return strings.Join(problems, "; ")
}

// meanHistogram is the mean of the runtime's histogram name (0 when absent).
func meanHistogram(rt *service.Runtime, name string) time.Duration {
	mfs, err := rt.Registry.Gather()
	if err != nil {
		return 0
	}
	var sum float64
	var count uint64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if h := m.GetHistogram(); h != nil {
				sum += h.GetSampleSum()
				count += h.GetSampleCount()
			}
		}
	}
	if count == 0 {
		return 0
	}
	return time.Duration(sum / float64(count) * float64(time.Second))
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

// startProfile profiles one measured window.
func (b *bench) startProfile(channel, target string, round int) (func(), error) {
	if b.profile == "" {
		return func() {}, nil
	}
	return benchkit.StartCPUProfile(b.profile + "." + channel + "." + target + "." + strconv.Itoa(round))
}

func us(d time.Duration) string { return d.Round(time.Microsecond).String() }
