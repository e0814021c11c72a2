package standalone

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/event"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/natstest"
	"github.com/greentic/events/pkg/service"
	"github.com/greentic/events/pkg/service/servicetest"
	"github.com/greentic/events/pkg/signature"
	"github.com/greentic/events/pkg/tenant/tenantkv"
)

type running struct {
	ep     Endpoints
	js     jetstream.JetStream
	stream jetstream.Stream
}

// start runs standalone with its defaults, the example bundle, a temporary
// data dir and free ports.
func start(t *testing.T, dataDir string) (*running, context.CancelFunc) {
	t.Helper()
	return startWith(t, dataDir, nil)
}

// startWith is start with configure applied to the parsed configuration.
func startWith(t *testing.T, dataDir string, configure func(*Config)) (*running, context.CancelFunc) {
	t.Helper()
	var cfg Config
	f := service.NewFlags(Name)
	cfg.RegisterFlags(f)
	if err := f.Parse(nil, func(string) (string, bool) { return "", false }); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = dataDir
	cfg.NATSAddr = "127.0.0.1:0"
	cfg.Bundle = "../../../examples/bundle.yaml"
	cfg.LogLevel = "error"
	for _, ln := range []*net.Listener{&cfg.OpsListener, &cfg.Ingress.Listener, &cfg.Admin.Listener} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		*ln = l
	}
	if configure != nil {
		configure(&cfg)
	}
	started := make(chan Endpoints, 1)
	cfg.Started = func(ep Endpoints) { started <- ep }
	stop := servicetest.Go(t, func(ctx context.Context) error { return Run(ctx, cfg, testLog()) })
	var ep Endpoints
	select {
	case ep = <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("standalone did not start")
	}
	natstest.Eventually(t, 15*time.Second, "standalone ready", func() bool {
		resp, err := http.Get("http://" + ep.Ops + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	nc, js := natstest.Connect(t, ep.NATSURL)
	stream, err := js.Stream(context.Background(), "GREENTIC_EVENTS_DEV")
	if err != nil {
		t.Fatal(err)
	}
	return &running{ep: ep, js: js, stream: stream}, func() { nc.Close(); stop() }
}

func (r *running) post(t *testing.T, path string, body []byte, sig string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+r.ep.Ingress+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if sig != "" {
		req.Header.Set("X-Greentic-Signature", sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("answer %d is not JSON: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, out
}

func sign(body []byte) string {
	return "sha256=" + signature.SignHMACSHA256(body, "demo-secret", "hex")
}

// count is the number of stored messages on subject.
func (r *running) count(t *testing.T, subject string) uint64 {
	t.Helper()
	info, err := r.stream.Info(context.Background(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[subject]
}

func (r *running) total(t *testing.T) uint64 {
	t.Helper()
	info, err := r.stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestEndToEnd(t *testing.T) {
	r, _ := start(t, t.TempDir())
	body := []byte(`{"type":"order.created","id":"o-1"}`)

	code, out := r.post(t, "/v1/webhooks/demo/generic", body, sign(body))
	if code != http.StatusAccepted || out["event_id"] != "generic:o-1" {
		t.Fatalf("signed webhook: %d %v, want 202 with event_id generic:o-1", code, out)
	}
	ctx := context.Background()
	msg, err := r.stream.GetLastMsgForSubject(ctx, "greentic.events.dev.demo.order.created")
	if err != nil {
		t.Fatalf("event not on greentic.events.dev.demo.order.created: %v", err)
	}
	ev, err := event.Unmarshal(msg.Data)
	if err != nil || ev.Id != "generic:o-1" || !bytes.Equal(ev.Payload, body) {
		t.Fatalf("stored event %v (%v)", ev, err)
	}

	resultSubject := "greentic.events.dev.demo.order.created.result"
	var res *eventsv1.FlowResult
	deadline := time.Now().Add(15 * time.Second)
	for res == nil {
		if m, err := r.stream.GetLastMsgForSubject(ctx, resultSubject); err == nil {
			res = &eventsv1.FlowResult{}
			if err := proto.Unmarshal(m.Data, res); err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no result on %s", resultSubject)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if res.Status != eventsv1.FlowStatus_FLOW_STATUS_OK || res.Flow != "handle_event" || res.EventId != "generic:o-1" ||
		!strings.Contains(string(res.Output), "Order o-1 confirmed") {
		t.Fatalf("result %v", res)
	}

	// The provider redelivers the same webhook: no second event, no second result.
	code, out = r.post(t, "/v1/webhooks/demo/generic", body, sign(body))
	if code != http.StatusAccepted || out["event_id"] != "generic:o-1" || out["duplicate"] != true {
		t.Fatalf("redelivery: %d %v, want 202 duplicate", code, out)
	}
	if n := r.count(t, "greentic.events.dev.demo.order.created"); n != 1 {
		t.Fatalf("%d events after a redelivery, want 1", n)
	}

	// The flow's confirmation email is captured (no SendGrid key) and
	// reported as an event of its own, after the result.
	natstest.Eventually(t, 15*time.Second, "the captured email's event", func() bool {
		return r.count(t, "greentic.events.dev.demo.email.captured") == 1
	})
	before := r.total(t)
	bad := []struct {
		name, path string
		body       []byte
		sig        string
		status     int
	}{
		{"wrong signature", "/v1/webhooks/demo/generic", body, "sha256=" + signature.SignHMACSHA256(body, "not-the-secret", "hex"), 401},
		{"unknown tenant", "/v1/webhooks/nobody/generic", body, sign(body), 404},
		{"unknown source", "/v1/webhooks/demo/unknown", body, sign(body), 404},
		{"malformed JSON", "/v1/webhooks/demo/generic", []byte(`{"type":"order.created",`), sign([]byte(`{"type":"order.created",`)), 400},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			code, out := r.post(t, b.path, b.body, b.sig)
			e, _ := out["error"].(map[string]any)
			if code != b.status || e["code"] == nil || e["message"] == "" {
				t.Fatalf("got %d %v, want %d with a JSON error", code, out, b.status)
			}
		})
	}
	time.Sleep(200 * time.Millisecond) // a stray result would land by now
	if after := r.total(t); after != before {
		t.Fatalf("rejected requests stored %d messages", after-before)
	}
	if n := r.count(t, resultSubject); n != 1 {
		t.Fatalf("%d results, want 1", n)
	}

	resp, err := http.Get("http://" + r.ep.Ops + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`greentic_ingress_requests_total{outcome="accepted",source="generic",tenant="demo"} 1`,
		`greentic_ingress_requests_total{outcome="invalid_signature",source="generic",tenant="demo"} 1`,
		`greentic_flow_runs_total{status="ok"} 1`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// waitResults waits until subject holds n results.
func (r *running) waitResults(t *testing.T, subject string, n uint64) {
	t.Helper()
	natstest.Eventually(t, 15*time.Second, fmt.Sprintf("%d results on %s", n, subject), func() bool { return r.count(t, subject) >= n })
}

// TestRestartKeepsEverything stops standalone and starts it again on the same
// data dir: stored events and results are still there, the bundle is applied
// again without change, processed events do not run again, and new ones do.
func TestRestartKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	r, stop := start(t, dir)
	body := []byte(`{"type":"order.created","id":"before-restart"}`)
	if code, out := r.post(t, "/v1/webhooks/demo/generic", body, sign(body)); code != http.StatusAccepted {
		t.Fatalf("%d %v", code, out)
	}
	resultSubject := "greentic.events.dev.demo.order.created.result"
	r.waitResults(t, resultSubject, 1)
	stop()

	r, _ = start(t, dir)
	if n := r.count(t, "greentic.events.dev.demo.order.created"); n != 1 {
		t.Fatalf("%d events after restart, want 1", n)
	}
	// The same delivery is still recognised as a duplicate.
	if code, out := r.post(t, "/v1/webhooks/demo/generic", body, sign(body)); code != http.StatusAccepted || out["duplicate"] != true {
		t.Fatalf("redelivery after restart: %d %v", code, out)
	}
	body2 := []byte(`{"type":"order.created","id":"after-restart"}`)
	if code, out := r.post(t, "/v1/webhooks/demo/generic", body2, sign(body2)); code != http.StatusAccepted {
		t.Fatalf("%d %v", code, out)
	}
	r.waitResults(t, resultSubject, 2)
	time.Sleep(300 * time.Millisecond)
	if n := r.count(t, resultSubject); n != 2 {
		t.Fatalf("%d results, want 2 (one per event)", n)
	}
}

func TestConfigValidate(t *testing.T) {
	var cfg Config
	f := service.NewFlags(Name)
	cfg.RegisterFlags(f)
	env := map[string]string{"GREENTIC_ENV": "bad env"}
	if err := f.Parse(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "GREENTIC_ENV") {
		t.Fatalf("Validate() = %v, want an error naming GREENTIC_ENV", err)
	}
	if err := f.Parse([]string{"-http-addr", "nonsense"}, func(string) (string, bool) { return "", false }); err != nil {
		t.Fatal(err)
	}
	cfg.Env = "dev"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "GREENTIC_HTTP_ADDR") {
		t.Fatalf("Validate() = %v, want an error naming GREENTIC_HTTP_ADDR", err)
	}
}

// TestTimerTickRunsFlow: a flow's timer trigger fires in standalone and its
// tick runs the flow in the executor.
func TestTimerTickRunsFlow(t *testing.T) {
	r, _ := start(t, t.TempDir())
	ctx := context.Background()
	store, err := tenantkv.Open(ctx, r.js, bus.DefaultTopology("dev"))
	if err != nil {
		t.Fatal(err)
	}
	doc := []byte(`name: heartbeat
version: "1.0"
nodes:
  - id: beat
    type: respond
    config: {body: {scheduled_at: "{{ event.metadata.scheduled_at }}"}}
triggers:
  - {type: timer, cron: "* * * * * *", event_type: heartbeat.tick, target: beat}
`)
	if _, err := store.PutFlow(ctx, "demo", "heartbeat", doc); err != nil {
		t.Fatal(err)
	}
	subject := "greentic.events.dev.demo.heartbeat.tick.result"
	r.waitResults(t, subject, 1)
	m, err := r.stream.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	res := &eventsv1.FlowResult{}
	if err := proto.Unmarshal(m.Data, res); err != nil {
		t.Fatal(err)
	}
	if res.Status != eventsv1.FlowStatus_FLOW_STATUS_OK || res.Flow != "heartbeat" || res.Trigger != "0:beat" ||
		!strings.HasPrefix(res.EventId, "demo:flow.heartbeat.0:") || !strings.Contains(string(res.Output), `"scheduled_at":"20`) {
		t.Fatalf("result %v", res)
	}
}

// testLog is where standalone logs in tests: nowhere, or stderr when
// GREENTIC_TEST_LOG is set.
func testLog() io.Writer {
	if os.Getenv("GREENTIC_TEST_LOG") != "" {
		return os.Stderr
	}
	return io.Discard
}
