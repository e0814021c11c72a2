package adminapi

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/greentic/events/pkg/bus"
	adminv1 "github.com/greentic/events/pkg/gen/greentic/admin/v1"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/tenant"
	"github.com/greentic/events/pkg/tenant/tenantkv"
)

const orderFlow = `name: confirm
version: "1"
nodes:
  - id: lookup
    type: http
    config:
      method: POST
      url: "https://api.example.com/orders/{{ event.payload.id }}"
      body: {id: "{{ event.payload.id }}"}
    next: mail
  - id: mail
    type: email
    config:
      to: "{{ event.payload.email }}"
      from: Shop <shop@example.com>
      subject: "Order {{ event.payload.id }}"
      text: Thank you
    next: done
  - id: done
    type: respond
    config:
      body: {sent: "{{ nodes.mail.id }}", lookup: "{{ nodes.lookup.status }}"}
triggers:
  - {type: event, event_type: order.created, target: lookup}
  - {type: timer, cron: "0 9 * * *", target: done}
`

// badFlow has two problems: an expression cut short at line 8, column 23,
// and a respond node with a next at line 12, column 5.
const badFlow = `name: bad
version: "1"
nodes:
  - id: start
    type: branch
    config:
      conditions:
        - expression: "event.payload.total >"
          next: done
  - id: done
    type: respond
    next: nowhere
triggers:
  - {type: event, event_type: order.created, target: start}
`

func simpleFlow(name, text string) string {
	return "name: " + name + "\nversion: \"1\"\nnodes:\n  - id: done\n    type: respond\n    config: {body: {text: " + text + "}}\ntriggers:\n  - {type: event, event_type: order.created, target: done}\n"
}

// storeTenantsForTest writes tenants straight into the tenants bucket.
func storeTenantsForTest(t *testing.T, h *harness, ids ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, id := range ids {
		if _, err := h.store.PutTenant(ctx, tenant.Tenant{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
}

// violations returns the BadRequest field violations of err.
func violations(t *testing.T, err error) []*errdetails.BadRequest_FieldViolation {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("want InvalidArgument, got %v", err)
	}
	var out []*errdetails.BadRequest_FieldViolation
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			out = append(out, br.GetFieldViolations()...)
		}
	}
	return out
}

func TestValidateFlow(t *testing.T) {
	h := newHarness(t)
	res, err := h.acme.Flows.ValidateFlow(h.acme.ctx(t), &adminv1.ValidateFlowRequest{Tenant: "acme", Yaml: orderFlow})
	if err != nil || len(res.GetProblems()) != 0 {
		t.Fatalf("valid flow: %v %v", res, err)
	}
	res, err = h.acme.Flows.ValidateFlow(h.acme.ctx(t), &adminv1.ValidateFlowRequest{Tenant: "acme", Yaml: badFlow})
	if err != nil {
		t.Fatalf("a bad flow is an answer, not an error: %v", err)
	}
	ps := res.GetProblems()
	if len(ps) != 2 {
		t.Fatalf("problems: %v", ps)
	}
	if p := ps[0]; p.GetLine() != 8 || p.GetColumn() != 23 || p.GetPath() != "nodes[0].config.conditions[0].expression" || !strings.Contains(p.GetMessage(), "invalid expression") {
		t.Errorf("first problem: %v", p)
	}
	if p := ps[1]; p.GetLine() != 12 || p.GetColumn() != 5 || p.GetPath() != "nodes[1].next" {
		t.Errorf("second problem: %v", p)
	}

	for name, tc := range map[string]struct {
		c    *client
		req  *adminv1.ValidateFlowRequest
		code codes.Code
		fld  string
	}{
		"empty yaml":       {h.acme, &adminv1.ValidateFlowRequest{Tenant: "acme"}, codes.InvalidArgument, "yaml"},
		"too large":        {h.acme, &adminv1.ValidateFlowRequest{Tenant: "acme", Yaml: orderFlow + "#" + strings.Repeat("x", maxFlowBytes)}, codes.InvalidArgument, "yaml"},
		"no tenant":        {h.operator, &adminv1.ValidateFlowRequest{Yaml: orderFlow}, codes.InvalidArgument, "tenant"},
		"other tenant":     {h.acme, &adminv1.ValidateFlowRequest{Tenant: "globex", Yaml: orderFlow}, codes.PermissionDenied, ""},
		"no token":         {h.anonymous, &adminv1.ValidateFlowRequest{Tenant: "acme", Yaml: orderFlow}, codes.Unauthenticated, ""},
		"operator, globex": {h.operator, &adminv1.ValidateFlowRequest{Tenant: "globex", Yaml: orderFlow}, codes.OK, ""},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tc.c.Flows.ValidateFlow(tc.c.ctx(t), tc.req)
			wantCode(t, err, tc.code)
			if tc.fld != "" {
				wantField(t, err, tc.fld)
			}
		})
	}
}

func TestPutFlow(t *testing.T) {
	h := newHarness(t)
	storeTenantsForTest(t, h, "acme", "globex")
	ctx := h.acme.ctx(t)

	res, err := h.acme.Flows.PutFlow(ctx, &adminv1.PutFlowRequest{Flow: &adminv1.Flow{Tenant: "acme", Yaml: orderFlow}})
	if err != nil {
		t.Fatal(err)
	}
	f := res.GetFlow()
	if f.GetName() != "confirm" || f.GetTenant() != "acme" || f.GetRevision() == 0 || f.GetYaml() != orderFlow || f.GetUpdateTime().AsTime().IsZero() {
		t.Fatalf("put: %v", f)
	}
	// The executor compiles exactly the bytes given.
	e, err := h.store.Get(ctx, bus.BucketFlows, "acme.confirm")
	if err != nil || string(e.Value) != orderFlow || e.Revision != f.GetRevision() {
		t.Fatalf("stored: %q %v", e.Value, err)
	}

	t.Run("same document again changes nothing", func(t *testing.T) {
		again, err := h.acme.Flows.PutFlow(ctx, &adminv1.PutFlowRequest{Flow: &adminv1.Flow{Tenant: "acme", Name: "confirm", Yaml: orderFlow}})
		if err != nil || again.GetFlow().GetRevision() != f.GetRevision() {
			t.Fatalf("put again: %v %v", again, err)
		}
	})
	t.Run("update over the current revision", func(t *testing.T) {
		changed := strings.Replace(orderFlow, "Thank you", "Thanks!", 1)
		up, err := h.acme.Flows.PutFlow(ctx, &adminv1.PutFlowRequest{Flow: &adminv1.Flow{Tenant: "acme", Yaml: changed, Revision: f.GetRevision()}})
		if err != nil || up.GetFlow().GetRevision() <= f.GetRevision() || up.GetFlow().GetYaml() != changed {
			t.Fatalf("update: %v %v", up, err)
		}
		// The revision read first is stale now.
		_, err = h.acme.Flows.PutFlow(ctx, &adminv1.PutFlowRequest{Flow: &adminv1.Flow{Tenant: "acme", Yaml: orderFlow, Revision: f.GetRevision()}})
		wantCode(t, err, codes.FailedPrecondition)
		// Revision zero replaces whatever is stored.
		rep, err := h.acme.Flows.PutFlow(ctx, &adminv1.PutFlowRequest{Flow: &adminv1.Flow{Tenant: "acme", Yaml: orderFlow}})
		if err != nil || rep.GetFlow().GetRevision() <= up.GetFlow().GetRevision() {
			t.Fatalf("replace: %v %v", rep, err)
		}
	})
	t.Run("problems are field violations with line and column", func(t *testing.T) {
		_, err := h.acme.Flows.PutFlow(ctx, &adminv1.PutFlowRequest{Flow: &adminv1.Flow{Tenant: "acme", Yaml: badFlow}})
		vs := violations(t, err)
		if len(vs) != 2 {
			t.Fatalf("violations: %v", vs)
		}
		for i, want := range []string{
			"line 8, column 23: nodes[0].config.conditions[0].expression: invalid expression",
			"line 12, column 5: nodes[1].next: a respond node ends the run",
		} {
			if vs[i].GetField() != "flow.yaml" || !strings.HasPrefix(vs[i].GetDescription(), want) {
				t.Errorf("violation %d: %v, want flow.yaml %q...", i, vs[i], want)
			}
		}
		if _, err := h.store.Get(ctx, bus.BucketFlows, "acme.bad"); err != tenantkv.ErrNotFound {
			t.Errorf("a bad flow was stored: %v", err)
		}
	})

	for name, tc := range map[string]struct {
		c    *client
		f    *adminv1.Flow
		code codes.Code
		fld  string
		msg  string
	}{
		"no flow":          {h.acme, nil, codes.InvalidArgument, "flow", ""},
		"no tenant":        {h.operator, &adminv1.Flow{Yaml: orderFlow}, codes.InvalidArgument, "flow.tenant", ""},
		"no yaml":          {h.acme, &adminv1.Flow{Tenant: "acme"}, codes.InvalidArgument, "flow.yaml", ""},
		"too large":        {h.acme, &adminv1.Flow{Tenant: "acme", Yaml: orderFlow + "#" + strings.Repeat("x", maxFlowBytes)}, codes.InvalidArgument, "flow.yaml", ""},
		"name differs":     {h.acme, &adminv1.Flow{Tenant: "acme", Name: "other", Yaml: orderFlow}, codes.InvalidArgument, "flow.name", ""},
		"unknown tenant":   {h.operator, &adminv1.Flow{Tenant: "initech", Yaml: orderFlow}, codes.NotFound, "", "initech"},
		"missing revision": {h.acme, &adminv1.Flow{Tenant: "acme", Yaml: simpleFlow("fresh", "x"), Revision: 7}, codes.NotFound, "", "acme/fresh"},
		"other tenant":     {h.acme, &adminv1.Flow{Tenant: "globex", Yaml: orderFlow}, codes.PermissionDenied, "", ""},
		"no token":         {h.anonymous, &adminv1.Flow{Tenant: "acme", Yaml: orderFlow}, codes.Unauthenticated, "", ""},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tc.c.Flows.PutFlow(tc.c.ctx(t), &adminv1.PutFlowRequest{Flow: tc.f})
			wantCode(t, err, tc.code)
			if tc.fld != "" {
				wantField(t, err, tc.fld)
			}
			if !strings.Contains(status.Convert(err).Message(), tc.msg) {
				t.Errorf("message %q does not name %q", status.Convert(err).Message(), tc.msg)
			}
		})
	}
}

func TestGetListDeleteFlows(t *testing.T) {
	h := newHarness(t)
	storeTenantsForTest(t, h, "acme", "globex")
	put := func(c *client, tenantID, name string) *adminv1.Flow {
		t.Helper()
		res, err := c.Flows.PutFlow(c.ctx(t), &adminv1.PutFlowRequest{Flow: &adminv1.Flow{Tenant: tenantID, Yaml: simpleFlow(name, name)}})
		if err != nil {
			t.Fatal(err)
		}
		return res.GetFlow()
	}
	a1 := put(h.acme, "acme", "a1")
	put(h.acme, "acme", "a2")
	put(h.acme, "acme", "a3")
	put(h.globex, "globex", "g1")

	t.Run("get", func(t *testing.T) {
		res, err := h.acme.Flows.GetFlow(h.acme.ctx(t), &adminv1.GetFlowRequest{Tenant: "acme", Name: "a1"})
		if err != nil || res.GetFlow().GetYaml() != simpleFlow("a1", "a1") || res.GetFlow().GetRevision() != a1.GetRevision() {
			t.Fatalf("get: %v %v", res, err)
		}
		_, err = h.acme.Flows.GetFlow(h.acme.ctx(t), &adminv1.GetFlowRequest{Tenant: "acme", Name: "nope"})
		wantCode(t, err, codes.NotFound)
		_, err = h.acme.Flows.GetFlow(h.acme.ctx(t), &adminv1.GetFlowRequest{Tenant: "globex", Name: "g1"})
		wantCode(t, err, codes.PermissionDenied)
		_, err = h.acme.Flows.GetFlow(h.acme.ctx(t), &adminv1.GetFlowRequest{Tenant: "acme"})
		wantField(t, err, "name")
		_, err = h.acme.Flows.GetFlow(h.acme.ctx(t), &adminv1.GetFlowRequest{Tenant: "acme", Name: "a.b"})
		wantField(t, err, "name")
		_, err = h.anonymous.Flows.GetFlow(h.anonymous.ctx(t), &adminv1.GetFlowRequest{Tenant: "acme", Name: "a1"})
		wantCode(t, err, codes.Unauthenticated)
	})

	t.Run("list", func(t *testing.T) {
		names := func(fs []*adminv1.Flow) string {
			var out []string
			for _, f := range fs {
				out = append(out, f.GetTenant()+"/"+f.GetName())
			}
			return strings.Join(out, " ")
		}
		// A tenant token lists its own tenant when it names none.
		res, err := h.acme.Flows.ListFlows(h.acme.ctx(t), &adminv1.ListFlowsRequest{})
		if err != nil || names(res.GetFlows()) != "acme/a1 acme/a2 acme/a3" {
			t.Fatalf("acme: %v %v", res, err)
		}
		// An operator naming none lists every tenant.
		res, err = h.operator.Flows.ListFlows(h.operator.ctx(t), &adminv1.ListFlowsRequest{})
		if err != nil || names(res.GetFlows()) != "acme/a1 acme/a2 acme/a3 globex/g1" {
			t.Fatalf("operator: %v %v", res, err)
		}
		// Pages.
		var got []string
		token := ""
		for i := 0; ; i++ {
			res, err := h.operator.Flows.ListFlows(h.operator.ctx(t), &adminv1.ListFlowsRequest{Tenant: "acme", PageSize: 2, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, names(res.GetFlows()))
			if token = res.GetNextPageToken(); token == "" || i > 3 {
				break
			}
		}
		if strings.Join(got, "|") != "acme/a1 acme/a2|acme/a3" {
			t.Fatalf("pages: %q", got)
		}
		_, err = h.acme.Flows.ListFlows(h.acme.ctx(t), &adminv1.ListFlowsRequest{Tenant: "globex"})
		wantCode(t, err, codes.PermissionDenied)
		_, err = h.acme.Flows.ListFlows(h.acme.ctx(t), &adminv1.ListFlowsRequest{PageToken: "%%%"})
		wantField(t, err, "page_token")
		_, err = h.acme.Flows.ListFlows(h.acme.ctx(t), &adminv1.ListFlowsRequest{PageSize: -1})
		wantField(t, err, "page_size")
	})

	t.Run("delete", func(t *testing.T) {
		_, err := h.acme.Flows.DeleteFlow(h.acme.ctx(t), &adminv1.DeleteFlowRequest{Tenant: "acme", Name: "a1", Revision: a1.GetRevision() + 100})
		wantCode(t, err, codes.FailedPrecondition)
		_, err = h.acme.Flows.DeleteFlow(h.acme.ctx(t), &adminv1.DeleteFlowRequest{Tenant: "globex", Name: "g1"})
		wantCode(t, err, codes.PermissionDenied)
		if _, err := h.acme.Flows.DeleteFlow(h.acme.ctx(t), &adminv1.DeleteFlowRequest{Tenant: "acme", Name: "a1", Revision: a1.GetRevision()}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.acme.Flows.DeleteFlow(h.acme.ctx(t), &adminv1.DeleteFlowRequest{Tenant: "acme", Name: "a2"}); err != nil {
			t.Fatal(err)
		}
		_, err = h.acme.Flows.DeleteFlow(h.acme.ctx(t), &adminv1.DeleteFlowRequest{Tenant: "acme", Name: "a1"})
		wantCode(t, err, codes.NotFound)
		_, err = h.acme.Flows.GetFlow(h.acme.ctx(t), &adminv1.GetFlowRequest{Tenant: "acme", Name: "a1"})
		wantCode(t, err, codes.NotFound)
		if _, err := h.operator.Flows.GetFlow(h.operator.ctx(t), &adminv1.GetFlowRequest{Tenant: "globex", Name: "g1"}); err != nil {
			t.Fatalf("another tenant's flow went too: %v", err)
		}
	})
}

// TestFlowPutIsWhatTheExecutorLoads checks the stored form through the
// watch the flow-executor uses.
func TestFlowPutIsWhatTheExecutorLoads(t *testing.T) {
	h := newHarness(t)
	storeTenantsForTest(t, h, "acme")
	if _, err := h.acme.Flows.PutFlow(h.acme.ctx(t), &adminv1.PutFlowRequest{Flow: &adminv1.Flow{Tenant: "acme", Yaml: orderFlow}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan tenantkv.FlowEntry, 1)
	go func() {
		_ = h.store.WatchFlows(ctx, h.rt.Log, func(e tenantkv.FlowEntry) {
			select {
			case got <- e:
			default:
			}
		}, nil)
	}()
	select {
	case e := <-got:
		if e.Tenant != "acme" || e.Name != "confirm" || string(e.Doc) != orderFlow || e.Deleted {
			t.Fatalf("watched: %+v", e)
		}
	case <-ctx.Done():
		t.Fatal("the watch saw no flow")
	}
}

// testResult decodes a TestFlow's result_json: the FlowResult's protobuf
// JSON with its output embedded as JSON, which is returned apart (nil when
// there is none).
func testResult(t *testing.T, res *adminv1.TestFlowResponse) (*eventsv1.FlowResult, json.RawMessage) {
	t.Helper()
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(res.GetResultJson(), &doc); err != nil {
		t.Fatalf("result_json is not a JSON object: %v\n%s", err, res.GetResultJson())
	}
	output := doc["output"]
	delete(doc, "output")
	rest, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var r eventsv1.FlowResult
	if err := protojson.Unmarshal(rest, &r); err != nil {
		t.Fatalf("result_json %s: %v", res.GetResultJson(), err)
	}
	return &r, output
}

func TestTestFlow(t *testing.T) {
	h := newHarness(t)
	storeTenantsForTest(t, h, "acme", "globex")
	sample := []byte(`{"id": "evt-1", "event_type": "order.created", "payload": {"id": "o-42", "email": "ann@example.com"}}`)

	check := func(t *testing.T, res *adminv1.TestFlowResponse) {
		t.Helper()
		r, output := testResult(t, res)
		if r.GetStatus() != eventsv1.FlowStatus_FLOW_STATUS_OK || r.GetFlow() != "confirm" || r.GetEventId() != "evt-1" || r.GetTenant() != "acme" || r.GetEnv() != testEnv || r.GetTrigger() != "0:lookup" || len(r.GetTrace()) != 3 {
			t.Fatalf("result: %v", r)
		}
		// The output is JSON in the document, not the base64 of a bytes field.
		var out map[string]any
		if err := json.Unmarshal(output, &out); err != nil || out["sent"] != "evt-1:confirm:mail" || out["lookup"] != float64(200) {
			t.Fatalf("output %s: %v", output, err)
		}
		fx := res.GetEffects()
		if len(fx) != 2 || fx[0].GetKind() != "http" || fx[1].GetKind() != "email" {
			t.Fatalf("effects: %v", fx)
		}
		var req struct {
			Method, URL string
			Body        map[string]any
		}
		if err := json.Unmarshal(fx[0].GetJson(), &req); err != nil || req.Method != "POST" || req.URL != "https://api.example.com/orders/o-42" || req.Body["id"] != "o-42" {
			t.Fatalf("http effect %s: %v", fx[0].GetJson(), err)
		}
		var cmd eventsv1.EmailCommand
		if err := protojson.Unmarshal(fx[1].GetJson(), &cmd); err != nil || cmd.GetId() != "evt-1:confirm:mail" || len(cmd.GetTo()) != 1 || cmd.GetTo()[0].GetEmail() != "ann@example.com" || cmd.GetSubject() != "Order o-42" {
			t.Fatalf("email effect %s: %v", fx[1].GetJson(), err)
		}
	}

	t.Run("document", func(t *testing.T) {
		res, err := h.acme.Flows.TestFlow(h.acme.ctx(t), &adminv1.TestFlowRequest{Tenant: "acme", Yaml: orderFlow, EventJson: sample})
		if err != nil {
			t.Fatal(err)
		}
		check(t, res)
	})
	t.Run("stored flow", func(t *testing.T) {
		if _, err := h.acme.Flows.PutFlow(h.acme.ctx(t), &adminv1.PutFlowRequest{Flow: &adminv1.Flow{Tenant: "acme", Yaml: orderFlow}}); err != nil {
			t.Fatal(err)
		}
		res, err := h.acme.Flows.TestFlow(h.acme.ctx(t), &adminv1.TestFlowRequest{Tenant: "acme", Name: "confirm", EventJson: sample})
		if err != nil {
			t.Fatal(err)
		}
		check(t, res)
	})
	t.Run("timer trigger", func(t *testing.T) {
		tick := []byte(`{"event_type": "timer.tick", "source": "greentic/timer", "metadata": {"timer_flow": "confirm", "timer_trigger": "1"}}`)
		res, err := h.acme.Flows.TestFlow(h.acme.ctx(t), &adminv1.TestFlowRequest{Tenant: "acme", Yaml: orderFlow, EventJson: tick})
		if err != nil {
			t.Fatal(err)
		}
		if r, _ := testResult(t, res); r.GetTrigger() != "1:done" || r.GetEventId() == "" || len(res.GetEffects()) != 0 {
			t.Fatalf("tick: %v %v", r, res.GetEffects())
		}
	})
	t.Run("published events in the JSON view", func(t *testing.T) {
		doc := `name: relay
version: "1"
nodes:
  - id: out
    type: publish
    config: {event_type: order.relayed, payload: {id: "{{ event.payload.id }}"}}
triggers:
  - {type: event, event_type: order.created, target: out}
`
		res, err := h.acme.Flows.TestFlow(h.acme.ctx(t), &adminv1.TestFlowRequest{Tenant: "acme", Yaml: doc, EventJson: sample})
		if err != nil {
			t.Fatal(err)
		}
		fx := res.GetEffects()
		var ev struct {
			ID        string         `json:"id"`
			EventType string         `json:"event_type"`
			Tenant    string         `json:"tenant"`
			Payload   map[string]any `json:"payload"`
		}
		if len(fx) != 1 || fx[0].GetKind() != "publish" || json.Unmarshal(fx[0].GetJson(), &ev) != nil ||
			ev.ID != "evt-1:relay:out" || ev.EventType != "order.relayed" || ev.Tenant != "acme" || ev.Payload["id"] != "o-42" {
			t.Fatalf("effects: %v", fx)
		}
	})
	t.Run("a failing run is a result", func(t *testing.T) {
		noEmail := []byte(`{"event_type": "order.created", "payload": {"id": "o-1"}}`)
		res, err := h.acme.Flows.TestFlow(h.acme.ctx(t), &adminv1.TestFlowRequest{Tenant: "acme", Yaml: orderFlow, EventJson: noEmail})
		if err != nil {
			t.Fatal(err)
		}
		if r, _ := testResult(t, res); r.GetStatus() != eventsv1.FlowStatus_FLOW_STATUS_ERROR || r.GetError() == "" {
			t.Fatalf("result: %v", r)
		}
	})

	// Nothing was sent: no command went to the outbound stream, no event
	// to the events stream.
	ctx := h.acme.ctx(t)
	for _, name := range []string{"GREENTIC_OUTBOUND_TEST", h.rt.Topology.EventsStream()} {
		st, err := h.rt.JS.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs != 0 {
			t.Fatalf("stream %s holds %d messages after dry runs", name, info.State.Msgs)
		}
	}

	for name, tc := range map[string]struct {
		c    *client
		req  *adminv1.TestFlowRequest
		code codes.Code
		fld  string
	}{
		"name and yaml":   {h.acme, &adminv1.TestFlowRequest{Tenant: "acme", Name: "confirm", Yaml: orderFlow, EventJson: sample}, codes.InvalidArgument, "yaml"},
		"neither":         {h.acme, &adminv1.TestFlowRequest{Tenant: "acme", EventJson: sample}, codes.InvalidArgument, "yaml"},
		"bad document":    {h.acme, &adminv1.TestFlowRequest{Tenant: "acme", Yaml: badFlow, EventJson: sample}, codes.InvalidArgument, "yaml"},
		"no event":        {h.acme, &adminv1.TestFlowRequest{Tenant: "acme", Yaml: orderFlow}, codes.InvalidArgument, "event_json"},
		"not json":        {h.acme, &adminv1.TestFlowRequest{Tenant: "acme", Yaml: orderFlow, EventJson: []byte(`{"event_type":`)}, codes.InvalidArgument, "event_json"},
		"unknown field":   {h.acme, &adminv1.TestFlowRequest{Tenant: "acme", Yaml: orderFlow, EventJson: []byte(`{"type": "order.created"}`)}, codes.InvalidArgument, "event_json"},
		"no event type":   {h.acme, &adminv1.TestFlowRequest{Tenant: "acme", Yaml: orderFlow, EventJson: []byte(`{"payload": {}}`)}, codes.InvalidArgument, "event_json.event_type"},
		"bad event type":  {h.acme, &adminv1.TestFlowRequest{Tenant: "acme", Yaml: orderFlow, EventJson: []byte(`{"event_type": "order.>"}`)}, codes.InvalidArgument, "event_json.event_type"},
		"no trigger":      {h.acme, &adminv1.TestFlowRequest{Tenant: "acme", Yaml: orderFlow, EventJson: []byte(`{"event_type": "order.shipped"}`)}, codes.InvalidArgument, "event_json.event_type"},
		"other tenant":    {h.acme, &adminv1.TestFlowRequest{Tenant: "acme", Yaml: orderFlow, EventJson: []byte(`{"event_type": "order.created", "tenant": "globex"}`)}, codes.InvalidArgument, "event_json.tenant"},
		"bad traceparent": {h.acme, &adminv1.TestFlowRequest{Tenant: "acme", Yaml: orderFlow, EventJson: []byte(`{"event_type": "order.created", "traceparent": "x"}`)}, codes.InvalidArgument, "event_json.traceparent"},
		"no timer there":  {h.acme, &adminv1.TestFlowRequest{Tenant: "acme", Yaml: orderFlow, EventJson: []byte(`{"event_type": "timer.tick", "source": "greentic/timer", "metadata": {"timer_trigger": "0"}}`)}, codes.InvalidArgument, "event_json.metadata"},
		"missing flow":    {h.acme, &adminv1.TestFlowRequest{Tenant: "acme", Name: "nope", EventJson: sample}, codes.NotFound, ""},
		"globex flow":     {h.acme, &adminv1.TestFlowRequest{Tenant: "globex", Yaml: orderFlow, EventJson: sample}, codes.PermissionDenied, ""},
		"no token":        {h.anonymous, &adminv1.TestFlowRequest{Tenant: "acme", Yaml: orderFlow, EventJson: sample}, codes.Unauthenticated, ""},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tc.c.Flows.TestFlow(tc.c.ctx(t), tc.req)
			wantCode(t, err, tc.code)
			if tc.fld != "" {
				wantField(t, err, tc.fld)
			}
		})
	}
	t.Run("no trigger names the flow's event types", func(t *testing.T) {
		_, err := h.acme.Flows.TestFlow(h.acme.ctx(t), &adminv1.TestFlowRequest{Tenant: "acme", Yaml: orderFlow, EventJson: []byte(`{"event_type": "order.shipped"}`)})
		if msg := status.Convert(err).Message(); !strings.Contains(msg, `"order.created"`) || !strings.Contains(msg, "timer_trigger") {
			t.Errorf("message: %s", msg)
		}
	})
}
