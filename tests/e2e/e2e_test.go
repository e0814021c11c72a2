//go:build unix

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/greentic/events/pkg/bus"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/signature"
)

const (
	tenantID     = "e2e"
	sourceName   = "shop"
	sourceSecret = "e2e-shop-webhook-secret-3f9c"
	eventType    = "order.created"
	flowName     = "notify"

	burst   = 300 // webhooks of the burst
	senders = 4   // goroutines sending them
	// killAfter results of the burst, the executor is killed.
	killAfter = 40
)

// bundle is the tenant as an operator would write it for greenticctl apply.
const bundle = `tenants:
  - id: ` + tenantID + `
    display_name: End-to-end tenant
    sources:
      - name: ` + sourceName + `
        scheme: hmac-sha256
        secrets: [` + sourceSecret + `]
        signature: { header: X-Shop-Signature, encoding: hex, prefix: "sha256=" }
        event_type: { field: type }
        event_id: { field: id }
    flows:
      - flows/notify.yaml
`

// flowYAML mails and texts the customer for every order.created event; the
// order id in both texts is how the fake providers count per event.
const flowYAML = `name: ` + flowName + `
version: "1.0"
nodes:
  - id: send_email
    type: email
    config:
      from: shop@example.com
      to: customer@example.com
      subject: "Order {{ event.payload.id }} confirmed"
      text: "Thank you! order={{ event.payload.id }}"
    next: send_sms
  - id: send_sms
    type: sms
    config:
      from: "+15005550006"
      to: "+15005550001"
      body: "Confirmed: order={{ event.payload.id }}"
    next: done
  - id: done
    type: respond
    config:
      body:
        order_id: "{{ event.payload.id }}"
triggers:
  - type: event
    event_type: ` + eventType + `
    target: send_email
`

// TestE2EMicroservices runs the product as a microservices install would:
// nats-server and every service as its own OS process, configured through
// the environment the chart sets, the tenant configured with greenticctl.
// A signed webhook runs a flow with an email and an sms node against fake
// SendGrid and Twilio servers; then a burst of webhooks is processed while
// the flow-executor is killed with SIGKILL and restarted, and every event
// still has exactly one result, one email and one SMS.
func TestE2EMicroservices(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts nats-server and every service as processes")
	}
	began := time.Now()
	root := repoRoot(t)
	bin := buildCommands(t, root)
	t.Logf("built %d binaries in %s", len(commands), time.Since(began).Round(time.Millisecond))

	s := secrets{
		sendGridAPIKey:   "SG.e2e-sendgrid-key-6d2b91",
		twilioAccountSID: "AC0123456789abcdef0123456789abcdef",
		twilioAuthToken:  "e2eTwilioAuthToken8c41e7",
		adminToken:       "e2e-operator-token-a5f0c3d9e1",
	}
	sendGrid, sendGridSrv := fakeSendGrid(t, s.sendGridAPIKey)
	twilio, twilioSrv := fakeTwilio(t, s.twilioAccountSID, s.twilioAuthToken)

	started := time.Now()
	c := newCluster(t, bin)
	d := deploy(t, c, s, sendGridSrv.URL, twilioSrv.URL, func(d *deployment) {
		dir := t.TempDir()
		writeFile(t, dir, "flows/notify.yaml", flowYAML)
		path := writeFile(t, dir, "bundle.yaml", bundle)
		t.Logf("greenticctl apply:\n%s", d.greenticctl(t, s.adminToken, "apply", "-f", path))
	})
	t.Logf("nats-server and %d services ready in %s", len(services), time.Since(started).Round(time.Millisecond))

	resultSubject := mustSubject(t)(bus.ResultSubject(d.busEnv, tenantID, eventType))
	results := d.watch(t, resultSubject, okResult)
	emailsSent := d.watch(t, mustSubject(t)(bus.EventSubject(d.busEnv, tenantID, "email.sent")), originEvent)
	smsSent := d.watch(t, mustSubject(t)(bus.EventSubject(d.busEnv, tenantID, "sms.sent")), originEvent)
	client := &http.Client{Timeout: 10 * time.Second}
	var firstID string // the event of the first subtest

	t.Run("SignedWebhook", func(t *testing.T) {
		body := order("first")
		if code, _, err := d.post(client, body, "sha256="+signature.SignHMACSHA256(body, "not-the-secret", "hex")); code != http.StatusUnauthorized {
			t.Fatalf("forged webhook: %d (%v), want 401", code, err)
		}
		code, ans, err := d.post(client, body, sign(body))
		if err != nil || code != http.StatusAccepted || ans.Duplicate || ans.EventID == "" {
			t.Fatalf("webhook: %d %+v (%v), want 202 with an event id, not a duplicate", code, ans, err)
		}
		id := ans.EventID
		firstID = id
		waitFor(t, 30*time.Second, "result of "+id, func() (bool, string) {
			return results.count(id) > 0, fmt.Sprintf("%d results", results.sum())
		})
		m, err := d.eventsStream(t).GetLastMsgForSubject(context.Background(), resultSubject)
		if err != nil {
			t.Fatal(err)
		}
		var r eventsv1.FlowResult
		if err := proto.Unmarshal(m.Data, &r); err != nil {
			t.Fatal(err)
		}
		if r.GetEventId() != id || r.GetFlow() != flowName || r.GetStatus() != eventsv1.FlowStatus_FLOW_STATUS_OK ||
			!bytes.Contains(r.GetOutput(), []byte(`"order_id":"first"`)) {
			t.Fatalf("result: %v", &r)
		}
		waitFor(t, 30*time.Second, "email.sent and sms.sent of "+id, func() (bool, string) {
			return emailsSent.count(id) > 0 && smsSent.count(id) > 0,
				fmt.Sprintf("email.sent %d, sms.sent %d", emailsSent.sum(), smsSent.sum())
		})
		time.Sleep(300 * time.Millisecond) // give a second send every chance to show
		for _, p := range []*fakeProvider{sendGrid, twilio} {
			byOrder, total, refused := p.counts()
			if total != 1 || byOrder["first"] != 1 || len(refused) > 0 {
				t.Errorf("%s: %d messages %v, refused %q; want exactly one for order first", p.name, total, byOrder, refused)
			}
		}
		results.exactlyOnce(t, []string{id})
		emailsSent.exactlyOnce(t, []string{id})
		smsSent.exactlyOnce(t, []string{id})
	})
	if t.Failed() {
		return
	}

	t.Run("ExecutorKilledDuringBurst", func(t *testing.T) {
		burstStart := time.Now()
		orders := make([]string, burst)
		for i := range orders {
			orders[i] = fmt.Sprintf("b-%03d", i)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		t.Cleanup(wg.Wait)
		t.Cleanup(cancel) // runs first: the senders stop if the test stops early
		ids := make([]string, burst)
		errs := make(chan error, senders)
		for w := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < burst && ctx.Err() == nil; i += senders {
					body := order(orders[i])
					code, ans, err := d.post(client, body, sign(body))
					if err != nil || code != http.StatusAccepted || ans.Duplicate || ans.EventID == "" {
						errs <- fmt.Errorf("webhook %s: %d %+v (%v)", orders[i], code, ans, err)
						return
					}
					ids[i] = ans.EventID
					// A few milliseconds apart, so the burst is still arriving
					// while the executor is down.
					time.Sleep(10 * time.Millisecond)
				}
			}()
		}

		before := results.sum()
		waitFor(t, 30*time.Second, fmt.Sprintf("%d results of the burst", killAfter), func() (bool, string) {
			return results.sum()-before >= killAfter, fmt.Sprintf("%d results", results.sum()-before)
		})
		d.kill("flow-executor")
		killedAt := results.sum() - before
		cons, err := d.js.Consumer(context.Background(), d.topology.EventsStream(), d.topology.Durable("flow-executor"))
		if err != nil {
			t.Fatal(err)
		}
		info, err := cons.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("flow-executor killed after %d of %d results (%s into the burst); %d events delivered to it and not acknowledged, %d not delivered yet",
			killedAt, burst, time.Since(burstStart).Round(time.Millisecond), info.NumAckPending, info.NumPending)
		if killedAt >= burst {
			t.Fatalf("the executor was killed after the whole burst was processed")
		}
		d.start(t, "flow-executor")
		t.Logf("flow-executor restarted (%s into the burst)", time.Since(burstStart).Round(time.Millisecond))

		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if t.Failed() {
			return
		}
		t.Logf("%d webhooks accepted in %s", burst, time.Since(burstStart).Round(time.Millisecond))

		waitFor(t, 60*time.Second, "a result for every event", func() (bool, string) {
			n := results.missing(ids)
			return n == 0, fmt.Sprintf("%d events without a result", n)
		})
		t.Logf("every event has its result %s after the burst started", time.Since(burstStart).Round(time.Millisecond))
		waitFor(t, 30*time.Second, "an email and an SMS for every event", func() (bool, string) {
			e, s := emailsSent.missing(ids), smsSent.missing(ids)
			return e == 0 && s == 0, fmt.Sprintf("%d without email.sent, %d without sms.sent", e, s)
		})
		waitFor(t, 30*time.Second, "the executor's consumer drained", func() (bool, string) {
			info, err := cons.Info(context.Background())
			if err != nil {
				return false, err.Error()
			}
			return info.NumPending == 0 && info.NumAckPending == 0,
				fmt.Sprintf("%d pending, %d awaiting ack", info.NumPending, info.NumAckPending)
		})
		// Redeliveries of what the killed executor held, and any second
		// send, would show by now: the ack wait is 4s.
		time.Sleep(time.Second)

		all := append([]string{firstID}, ids...)
		results.exactlyOnce(t, all)
		emailsSent.exactlyOnce(t, all)
		smsSent.exactlyOnce(t, all)
		for _, p := range []*fakeProvider{sendGrid, twilio} {
			byOrder, total, refused := p.counts()
			var wrong []string
			for _, o := range append([]string{"first"}, orders...) {
				if byOrder[o] != 1 {
					wrong = append(wrong, fmt.Sprintf("%s: %d", o, byOrder[o]))
				}
			}
			if total != burst+1 || len(wrong) > 0 || len(refused) > 0 {
				t.Errorf("%s: %d messages for %d orders; not exactly once: %s; refused: %q",
					p.name, total, burst+1, summarize(wrong), refused)
			}
		}
		dlq, err := d.js.Stream(context.Background(), d.topology.DLQStream())
		if err != nil {
			t.Fatal(err)
		}
		if info, err := dlq.Info(context.Background()); err != nil || info.State.Msgs != 0 {
			t.Errorf("dead letters: %v (%v), want none", info.State.Msgs, err)
		}
	})
	t.Logf("%s from start-up to the end, %s with the build",
		time.Since(started).Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}

// webhookAnswer is the ingress's 202 answer.
type webhookAnswer struct {
	EventID   string `json:"event_id"`
	EventType string `json:"event_type"`
	Duplicate bool   `json:"duplicate"`
}

// post sends a webhook of the tenant's source with the given signature.
func (d *deployment) post(client *http.Client, body []byte, sig string) (int, webhookAnswer, error) {
	var ans webhookAnswer
	req, err := http.NewRequest(http.MethodPost, "http://"+d.ingress+"/v1/webhooks/"+tenantID+"/"+sourceName, bytes.NewReader(body))
	if err != nil {
		return 0, ans, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Shop-Signature", sig)
	resp, err := client.Do(req)
	if err != nil {
		return 0, ans, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		return resp.StatusCode, ans, fmt.Errorf("answer %d: %w", resp.StatusCode, err)
	}
	return resp.StatusCode, ans, nil
}

func (d *deployment) eventsStream(t *testing.T) jetstream.Stream {
	t.Helper()
	st, err := d.js.Stream(context.Background(), d.topology.EventsStream())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// order is the webhook body of an order.created event with the given id.
func order(id string) []byte {
	return []byte(`{"type":"` + eventType + `","id":"` + id + `","total":42.5}`)
}

// sign is the source's signature header value for body.
func sign(body []byte) string {
	return "sha256=" + signature.SignHMACSHA256(body, sourceSecret, "hex")
}

// mustSubject fails the test when a subject cannot be built.
func mustSubject(t *testing.T) func(string, error) string {
	return func(s string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}
