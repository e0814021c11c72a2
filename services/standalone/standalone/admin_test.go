package standalone

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/natstest"
	"github.com/greentic/events/pkg/signature"
	"github.com/greentic/events/services/admin-api/ctl"
)

// greenticctl runs the CLI in-process against the running standalone, with
// the operator token it generated; it returns stdout and the exit code.
func (r *running) greenticctl(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	full := append([]string{"--addr", r.ep.Admin, "--token-file", r.ep.AdminTokenFile}, args...)
	code := ctl.Main(ctx, full, &out, &errOut)
	if code != 0 {
		t.Logf("greenticctl %s: exit %d: %s", strings.Join(args, " "), code, errOut.String())
	}
	return out.String(), code
}

// mustCtl is greenticctl that fails the test on a non-zero exit.
func (r *running) mustCtl(t *testing.T, args ...string) string {
	t.Helper()
	out, code := r.greenticctl(t, args...)
	if code != 0 {
		t.Fatalf("greenticctl %s: exit %d", strings.Join(args, " "), code)
	}
	return out
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// flowChanges is how many flows-bucket changes the executor has applied
// (greentic_flow_changes_total on the ops server).
func (r *running) flowChanges(t *testing.T) float64 {
	t.Helper()
	resp, err := http.Get("http://" + r.ep.Ops + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var n float64
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "greentic_flow_changes_total{") {
			if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
				n += v
			}
		}
	}
	return n
}

// applyFlow stores a flow with greenticctl and waits until the executor
// has it: an event stored before that would run the flow's old version,
// or none.
func (r *running) applyFlow(t *testing.T, tenantID, file string) {
	t.Helper()
	before := r.flowChanges(t)
	r.mustCtl(t, "flows", "apply", "--tenant", tenantID, "-f", file)
	natstest.Eventually(t, 10*time.Second, "the executor loads the flow", func() bool { return r.flowChanges(t) > before })
}

// postSigned posts body to a tenant's source signed with secret in
// X-Shop-Signature and returns the status code.
func (r *running) postSigned(t *testing.T, tenant, source, secret, body string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+r.ep.Ingress+"/v1/webhooks/"+tenant+"/"+source, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Shop-Signature", "sha256="+signature.SignHMACSHA256([]byte(body), secret, "hex"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// lastResult is the last flow result stored on subject.
func (r *running) lastResult(t *testing.T, subject string) *eventsv1.FlowResult {
	t.Helper()
	m, err := r.stream.GetLastMsgForSubject(context.Background(), subject)
	if err != nil {
		t.Fatalf("result on %s: %v", subject, err)
	}
	res := &eventsv1.FlowResult{}
	if err := proto.Unmarshal(m.Data, res); err != nil {
		t.Fatal(err)
	}
	return res
}

const shopSource = `tenant: globex
name: shop
scheme: hmac-sha256
secrets: [globex-shop-secret]
signature: { header: X-Shop-Signature, encoding: hex, prefix: "sha256=" }
event_type: { field: type }
event_id: { field: id }
`

// ordersFlow confirms an order; with broken set, its script fails on
// every order whose id is not a number.
func ordersFlow(broken bool) string {
	script := `"string(event.payload.id)"`
	if broken {
		script = `"int(event.payload.id)"`
	}
	return `name: orders
version: "1.0"
nodes:
  - id: parse
    type: script
    config: { script: ` + script + ` }
    next: confirmed
  - id: confirmed
    type: respond
    config:
      body:
        order_id: "{{ event.payload.id }}"
triggers:
  - type: event
    event_type: order.created
    target: parse
`
}

// TestOnboardingThroughGreenticctl onboards a tenant with greenticctl only:
// tenant, source, flow and schedule; a signed webhook to the new source
// produces the flow's result and the schedule ticks. Deleting the tenant
// makes its webhooks answer 404 and its schedule stop.
func TestOnboardingThroughGreenticctl(t *testing.T) {
	r, _ := start(t, t.TempDir())
	dir := t.TempDir()
	r.mustCtl(t, "tenants", "create", "globex", "--display-name", "Globex Corp")
	r.mustCtl(t, "sources", "put", "-f", writeFile(t, dir, "source.yaml", shopSource))
	r.applyFlow(t, "globex", writeFile(t, dir, "flow.yaml", ordersFlow(false)))
	r.mustCtl(t, "schedules", "create", "-f", writeFile(t, dir, "schedule.yaml", "tenant: globex\nname: heartbeat\ncron: \"@every 1s\"\nevent_type: heartbeat.tick\n"))
	if out := r.mustCtl(t, "tenants", "list"); !strings.Contains(out, "globex") || !strings.Contains(out, "Globex Corp") {
		t.Fatalf("tenants list does not show globex:\n%s", out)
	}

	// The ingress learns of the source through the bucket watch.
	natstest.Eventually(t, 10*time.Second, "the new source accepts a signed webhook", func() bool {
		return r.postSigned(t, "globex", "shop", "globex-shop-secret", `{"type":"order.created","id":"g-1"}`) == http.StatusAccepted
	})
	const resultSubject = "greentic.events.dev.globex.order.created.result"
	r.waitResults(t, resultSubject, 1)
	res := r.lastResult(t, resultSubject)
	var out map[string]any
	_ = json.Unmarshal(res.Output, &out)
	if res.Status != eventsv1.FlowStatus_FLOW_STATUS_OK || res.Flow != "orders" || out["order_id"] != "g-1" {
		t.Fatalf("result %v, output %s", res, res.Output)
	}
	if code := r.postSigned(t, "globex", "shop", "wrong-secret-123", `{"type":"order.created","id":"g-2"}`); code != http.StatusUnauthorized {
		t.Fatalf("a webhook with a wrong signature answered %d", code)
	}
	const tickSubject = "greentic.events.dev.globex.heartbeat.tick"
	natstest.Eventually(t, 10*time.Second, "the schedule ticks", func() bool { return r.count(t, tickSubject) >= 2 })

	r.mustCtl(t, "tenants", "delete", "globex")
	natstest.Eventually(t, 10*time.Second, "webhooks of the deleted tenant answer 404", func() bool {
		return r.postSigned(t, "globex", "shop", "globex-shop-secret", `{"type":"order.created","id":"g-3"}`) == http.StatusNotFound
	})
	// A tick already being published when the delete landed may still be
	// stored; after that, none.
	time.Sleep(1500 * time.Millisecond)
	ticks := r.count(t, tickSubject)
	time.Sleep(3 * time.Second)
	if n := r.count(t, tickSubject); n != ticks {
		t.Fatalf("the deleted tenant's schedule still ticks: %d ticks, then %d", ticks, n)
	}
	if _, code := r.greenticctl(t, "tenants", "get", "globex"); code != 1 {
		t.Fatalf("tenants get of a deleted tenant exited %d, want 1", code)
	}
	if out, code := r.greenticctl(t, "schedules", "list", "--tenant", "globex", "-o", "json"); code != 0 || strings.Contains(out, "heartbeat") {
		t.Fatalf("the deleted tenant's schedule is still listed (exit %d):\n%s", code, out)
	}
}

// TestDeadLetterReplayThroughGreenticctl: a permanently failing flow
// dead-letters an event; greenticctl dlq list shows it; after the flow is
// fixed, greenticctl dlq replay produces a successful result.
func TestDeadLetterReplayThroughGreenticctl(t *testing.T) {
	r, _ := start(t, t.TempDir())
	dir := t.TempDir()
	r.mustCtl(t, "tenants", "create", "globex")
	r.mustCtl(t, "sources", "put", "-f", writeFile(t, dir, "source.yaml", shopSource))
	flowFile := writeFile(t, dir, "flow.yaml", ordersFlow(true))
	r.applyFlow(t, "globex", flowFile)
	natstest.Eventually(t, 10*time.Second, "the new source accepts a signed webhook", func() bool {
		return r.postSigned(t, "globex", "shop", "globex-shop-secret", `{"type":"order.created","id":"A-1"}`) == http.StatusAccepted
	})
	const resultSubject = "greentic.events.dev.globex.order.created.result"
	r.waitResults(t, resultSubject, 1)
	if res := r.lastResult(t, resultSubject); res.Status != eventsv1.FlowStatus_FLOW_STATUS_ERROR {
		t.Fatalf("the broken flow answered %v", res)
	}

	var letters []map[string]any
	natstest.Eventually(t, 10*time.Second, "dlq list shows the dead letter", func() bool {
		out := r.mustCtl(t, "dlq", "list", "--tenant", "globex", "-o", "json")
		letters = nil
		if err := json.Unmarshal([]byte(out), &letters); err != nil {
			t.Fatalf("dlq list -o json is not a JSON array: %v\n%s", err, out)
		}
		return len(letters) == 1
	})
	if letters[0]["stage"] != "flow" || !strings.Contains(letters[0]["reason"].(string), "parse") {
		t.Fatalf("dead letter %v", letters[0])
	}
	if out := r.mustCtl(t, "dlq", "list", "--tenant", "globex"); !strings.Contains(out, "order.created") {
		t.Fatalf("dlq list table does not show the event type:\n%s", out)
	}

	// Fix the flow, wait until the executor has it, then replay.
	writeFile(t, dir, "flow.yaml", ordersFlow(false))
	r.applyFlow(t, "globex", flowFile)
	r.mustCtl(t, "dlq", "replay", "--all", "--tenant", "globex", "--purge")
	r.waitResults(t, resultSubject, 2)
	res := r.lastResult(t, resultSubject)
	if res.Status != eventsv1.FlowStatus_FLOW_STATUS_OK || res.EventId != "shop:A-1" || res.Replay == "" {
		t.Fatalf("replayed result %v", res)
	}
	if out := r.mustCtl(t, "dlq", "list", "--tenant", "globex", "-o", "json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("the replayed letter was not purged:\n%s", out)
	}
}
