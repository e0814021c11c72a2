//go:build unix

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/event"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/natstest"
)

// readyTimeout bounds a process's start; race-enabled binaries on two busy
// cores take a few seconds.
const readyTimeout = 60 * time.Second

// chartValues are what this install sets on top of the values files (as
// `helm install --set` would): the NATS URL, the providers and their
// credentials (distinctive values the fake providers check, so they must
// come through the chart's Secrets), the operator token, and settings the
// test needs and an installation would not: the executor's ack wait is the
// delay before events held by a killed executor are redelivered (30s by
// default), and the senders' rate limits (10 sends per second per tenant by
// default) would make the burst a test of the limiter.
func chartValues(s secrets, natsURL, sendGridURL, twilioURL string) map[string]any {
	return map[string]any{
		"nats.url":                              natsURL,
		"adminApi.auth.tokens":                  []any{"e2e@operator=" + s.adminToken},
		"emailSender.provider":                  "sendgrid",
		"emailSender.sendgrid.apiKey":           s.sendGridAPIKey,
		"emailSender.config.email-sendgrid-url": sendGridURL,
		"emailSender.config.email-tenant-rate":  0,
		"emailSender.config.email-account-rate": 0,
		"smsSender.provider":                    "twilio",
		"smsSender.twilio.accountSid":           s.twilioAccountSID,
		"smsSender.twilio.authToken":            s.twilioAuthToken,
		"smsSender.config.sms-twilio-url":       twilioURL,
		"smsSender.config.sms-tenant-rate":      0,
		"smsSender.config.sms-account-rate":     0,
		"flowExecutor.config.ack-wait":          "4s",
		"flowExecutor.config.run-timeout":       "3s",
	}
}

// secrets are the credentials an operator gives the chart.
type secrets struct {
	sendGridAPIKey   string
	twilioAccountSID string
	twilioAuthToken  string
	adminToken       string
}

// deployment is a running microservices install: nats-server and one
// process per service, on loopback.
type deployment struct {
	c        *cluster
	env      map[string]map[string]string // per service, as started
	ops      map[string]string            // per service, its ops address
	ingress  string                       // ingress-webhook's HTTP address
	admin    string                       // admin-api's gRPC address
	natsURL  string
	busEnv   string // GREENTIC_ENV
	topology bus.Topology
	js       jetstream.JetStream

	mu    sync.Mutex
	procs map[string]*process
}

// deploy starts nats-server, then admin-api, lets configure set up the
// tenants through it (as an operator would before the rest starts), then
// every other service, and waits until each is ready.
func deploy(t *testing.T, c *cluster, s secrets, sendGridURL, twilioURL string, configure func(d *deployment)) *deployment {
	t.Helper()
	d := &deployment{c: c, ops: map[string]string{}, procs: map[string]*process{}}

	natsAddr, monitor := freeAddr(t), freeAddr(t)
	host, port := splitAddr(t, natsAddr)
	_, monitorPort := splitAddr(t, monitor)
	d.natsURL = "nats://" + natsAddr

	d.env = serviceEnv(t, chartValues(s, d.natsURL, sendGridURL, twilioURL), t.TempDir())
	d.ingress, d.admin = freeAddr(t), freeAddr(t)
	for _, name := range services {
		env := d.env[name]
		if env["NATS_URL"] != d.natsURL {
			t.Fatalf("%s: NATS_URL=%q, want the chart's nats.url %q", name, env["NATS_URL"], d.natsURL)
		}
		d.ops[name] = freeAddr(t)
		override(t, name, env, "GREENTIC_OPS_ADDR", d.ops[name])
	}
	override(t, "ingress-webhook", d.env["ingress-webhook"], "GREENTIC_HTTP_ADDR", d.ingress)
	override(t, "admin-api", d.env["admin-api"], "GREENTIC_ADMIN_GRPC_ADDR", d.admin)

	nats := c.start(t, "nats-server", "nats-server", nil,
		"-js", "-sd", t.TempDir(), "-a", host, "-p", port, "-m", monitorPort)
	if !c.waitReady(nats, "http://"+monitor+"/healthz", readyTimeout) {
		t.FailNow()
	}

	d.busEnv = d.env["flow-executor"]["GREENTIC_ENV"]
	if d.busEnv == "" {
		d.busEnv = "dev" // the services' default
	}
	d.topology = bus.DefaultTopology(d.busEnv)
	_, d.js = natstest.Connect(t, d.natsURL)

	d.start(t, "admin-api")
	configure(d)
	var wg sync.WaitGroup
	for _, name := range services {
		if name == "admin-api" {
			continue
		}
		p := d.launch(t, name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.waitReady(name, p)
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return d
}

// override replaces a listen address the chart set (":9100" in a pod) by
// a loopback address of this machine.
func override(t *testing.T, service string, env map[string]string, key, value string) {
	t.Helper()
	if _, ok := env[key]; !ok {
		t.Fatalf("the chart does not set %s for %s", key, service)
	}
	env[key] = value
}

// start starts the named service and waits until it is ready.
func (d *deployment) start(t *testing.T, name string) {
	t.Helper()
	if !d.waitReady(name, d.launch(t, name)) {
		t.FailNow()
	}
}

func (d *deployment) launch(t *testing.T, name string) *process {
	t.Helper()
	p := d.c.start(t, name, name, d.env[name])
	d.mu.Lock()
	d.procs[name] = p
	d.mu.Unlock()
	return p
}

// waitReady waits for the service's /readyz (see cluster.waitReady).
func (d *deployment) waitReady(name string, p *process) bool {
	return d.c.waitReady(p, "http://"+d.ops[name]+"/readyz", readyTimeout)
}

// kill sends SIGKILL to the named service and waits until it is gone.
func (d *deployment) kill(name string) {
	d.mu.Lock()
	p := d.procs[name]
	d.mu.Unlock()
	p.kill()
}

// greenticctl runs the built greenticctl against admin-api with the
// operator token.
func (d *deployment) greenticctl(t *testing.T, token string, args ...string) string {
	t.Helper()
	out, err := run(context.Background(), map[string]string{"GREENTIC_TOKEN": token},
		filepath.Join(d.c.bin, "greenticctl"), append([]string{"--addr", d.admin}, args...)...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return out
}

// watch counts the messages stored on subject by the key each yields,
// from the start of the events stream, as they are stored.
func (d *deployment) watch(t *testing.T, subject string, key func(jetstream.Msg) (string, error)) *tally {
	t.Helper()
	ctx := context.Background()
	cons, err := d.eventsStream(t).OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatalf("consumer on %s: %v", subject, err)
	}
	tl := &tally{subject: subject, byKey: map[string]int{}}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		k, err := key(m)
		tl.add(k, err)
	})
	if err != nil {
		t.Fatalf("consume %s: %v", subject, err)
	}
	t.Cleanup(cc.Stop)
	return tl
}

// okResult is the event id of a FlowResult that ended OK.
func okResult(m jetstream.Msg) (string, error) {
	var r eventsv1.FlowResult
	if err := proto.Unmarshal(m.Data(), &r); err != nil {
		return "", fmt.Errorf("result: %w", err)
	}
	if r.GetStatus() != eventsv1.FlowStatus_FLOW_STATUS_OK {
		return "", fmt.Errorf("result of %s: %s %s", r.GetEventId(), r.GetStatus(), r.GetError())
	}
	return r.GetEventId(), nil
}

// originEvent is the event id an outcome event (email.sent, sms.sent) reports on.
func originEvent(m jetstream.Msg) (string, error) {
	ev, err := event.Unmarshal(m.Data())
	if err != nil {
		return "", fmt.Errorf("outcome event: %w", err)
	}
	id := ev.GetMetadata()[event.MetaOriginEventID]
	if id == "" {
		return "", fmt.Errorf("outcome event %s without %s", ev.GetId(), event.MetaOriginEventID)
	}
	return id, nil
}

// tally is what watch counted.
type tally struct {
	subject string

	mu    sync.Mutex
	byKey map[string]int
	total int
	bad   []string
}

func (tl *tally) add(key string, err error) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.total++
	if err != nil {
		tl.bad = append(tl.bad, err.Error())
		return
	}
	tl.byKey[key]++
}

func (tl *tally) count(key string) int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl.byKey[key]
}

func (tl *tally) sum() int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl.total
}

// missing is how many of keys have not been counted yet.
func (tl *tally) missing(keys []string) int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	n := 0
	for _, k := range keys {
		if tl.byKey[k] == 0 {
			n++
		}
	}
	return n
}

// exactlyOnce fails the test unless every key was counted once, nothing
// else was counted and nothing failed to decode.
func (tl *tally) exactlyOnce(t *testing.T, keys []string) {
	t.Helper()
	tl.mu.Lock()
	defer tl.mu.Unlock()
	want := map[string]bool{}
	var problems []string
	for _, k := range keys {
		want[k] = true
		if n := tl.byKey[k]; n != 1 {
			problems = append(problems, fmt.Sprintf("%s: %d", k, n))
		}
	}
	for k, n := range tl.byKey {
		if !want[k] {
			problems = append(problems, fmt.Sprintf("unexpected %s: %d", k, n))
		}
	}
	problems = append(problems, tl.bad...)
	if len(problems) > 0 {
		t.Errorf("%s: want each of %d events once, %d stored; %d problems: %s",
			tl.subject, len(keys), tl.total, len(problems), summarize(problems))
	}
}

// summarize lists at most 20 problems.
func summarize(problems []string) string {
	if len(problems) > 20 {
		problems = append(problems[:20:20], fmt.Sprintf("... %d more", len(problems)-20))
	}
	return strings.Join(problems, "; ")
}

// waitFor polls cond every 50ms until it holds; on timeout it fails the
// test with what and cond's last description of the state.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (%s)", what, timeout, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeFile writes a file under dir, creating its directory.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
