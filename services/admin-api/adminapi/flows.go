package adminapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greentic/events/pkg/bus"
	"github.com/greentic/events/pkg/event"
	"github.com/greentic/events/pkg/flow"
	adminv1 "github.com/greentic/events/pkg/gen/greentic/admin/v1"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/tenant"
	"github.com/greentic/events/pkg/tenant/tenantkv"
)

const (
	// maxFlowBytes bounds a flow document: flows are configuration, and
	// every executor replica compiles and keeps each of them.
	maxFlowBytes = 256 << 10
	// maxTestEventBytes bounds the sample event of a dry run.
	maxTestEventBytes = 1 << 20
	// maxProblemViolations bounds the field violations of one error (the
	// details travel in a trailer); ValidateFlow returns every problem.
	maxProblemViolations = 100
	// testFlowTimeout bounds a dry run on top of the flow's own run
	// deadline and the call's deadline.
	testFlowTimeout = 10 * time.Second
	// testEventSource is the source of a sample event that names none.
	testEventSource = "admin-api/test"
	// effectHTTP is the kind of a request an http node made in a dry run.
	effectHTTP = "http"
	// maxDryRunHTTPBody bounds the request body a dry run records.
	maxDryRunHTTPBody = 64 << 10
)

type flowServer struct {
	adminv1.UnimplementedFlowServiceServer
	*Server
}

// ValidateFlow compiles a document and returns its problems; a bad flow
// is an answer, not an error.
func (s *flowServer) ValidateFlow(ctx context.Context, req *adminv1.ValidateFlowRequest) (*adminv1.ValidateFlowResponse, error) {
	if err := authorize(ctx, "tenant", req.GetTenant()); err != nil {
		return nil, err
	}
	if err := checkFlowSize("yaml", req.GetYaml()); err != nil {
		return nil, err
	}
	_, problems := compileFlow([]byte(req.GetYaml()))
	res := &adminv1.ValidateFlowResponse{}
	for _, p := range problems {
		res.Problems = append(res.Problems, &adminv1.Problem{Line: int32(p.Line), Column: int32(p.Column), Path: p.Path, Message: p.Message})
	}
	return res, nil
}

// PutFlow stores a valid flow under the name its document gives.
func (s *flowServer) PutFlow(ctx context.Context, req *adminv1.PutFlowRequest) (*adminv1.PutFlowResponse, error) {
	f := req.GetFlow()
	if f == nil {
		return nil, required("flow")
	}
	if err := authorize(ctx, "flow.tenant", f.GetTenant()); err != nil {
		return nil, err
	}
	if err := checkFlowSize("flow.yaml", f.GetYaml()); err != nil {
		return nil, err
	}
	if err := s.tenantExists(ctx, f.GetTenant()); err != nil {
		return nil, err
	}
	doc := []byte(f.GetYaml())
	prog, problems := compileFlow(doc)
	if len(problems) > 0 {
		return nil, problemsErr("flow.yaml", problems)
	}
	name := prog.Name()
	if f.GetName() != "" && f.GetName() != name {
		return nil, invalid("flow.name", fmt.Sprintf("%q differs from the document's name %q (the document names the flow)", f.GetName(), name))
	}
	what := "flow " + f.GetTenant() + "/" + name
	e, err := s.store.Modify(ctx, bus.BucketFlows, tenant.FlowKey(f.GetTenant(), name), f.GetRevision(), replaceWith(doc))
	if err != nil {
		return nil, storeErr(what, err)
	}
	s.log.Info("flow stored", "tenant", f.GetTenant(), "flow", name, "revision", e.Revision, "by", principal(ctx).Name)
	return &adminv1.PutFlowResponse{Flow: flowOf(f.GetTenant(), name, e)}, nil
}

func (s *flowServer) GetFlow(ctx context.Context, req *adminv1.GetFlowRequest) (*adminv1.GetFlowResponse, error) {
	e, err := s.storedFlow(ctx, req.GetTenant(), req.GetName())
	if err != nil {
		return nil, err
	}
	return &adminv1.GetFlowResponse{Flow: flowOf(req.GetTenant(), req.GetName(), e)}, nil
}

// storedFlow reads the stored flow a request names.
func (s *flowServer) storedFlow(ctx context.Context, tenantID, name string) (tenantkv.Entry, error) {
	key, err := itemKey(ctx, "tenant", "name", tenantID, name)
	if err != nil {
		return tenantkv.Entry{}, err
	}
	e, err := s.store.Get(ctx, bus.BucketFlows, key)
	if err != nil {
		return tenantkv.Entry{}, storeErr("flow "+tenantID+"/"+name, err)
	}
	return e, nil
}

// ListFlows lists the flows of a tenant, or of every tenant for an
// operator naming none.
func (s *flowServer) ListFlows(ctx context.Context, req *adminv1.ListFlowsRequest) (*adminv1.ListFlowsResponse, error) {
	items, next, err := s.listPage(ctx, bus.BucketFlows, req.GetTenant(), req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	res := &adminv1.ListFlowsResponse{NextPageToken: next}
	for _, e := range items {
		t, n, ok := tenant.SplitKey(e.Key)
		if !ok {
			continue
		}
		res.Flows = append(res.Flows, flowOf(t, n, e))
	}
	return res, nil
}

// DeleteFlow removes a flow; with a revision only if it is still at it.
func (s *flowServer) DeleteFlow(ctx context.Context, req *adminv1.DeleteFlowRequest) (*adminv1.DeleteFlowResponse, error) {
	key, err := itemKey(ctx, "tenant", "name", req.GetTenant(), req.GetName())
	if err != nil {
		return nil, err
	}
	if err := s.store.Delete(ctx, bus.BucketFlows, key, req.GetRevision()); err != nil {
		return nil, storeErr("flow "+req.GetTenant()+"/"+req.GetName(), err)
	}
	s.log.Info("flow deleted", "tenant", req.GetTenant(), "flow", req.GetName(), "by", principal(ctx).Name)
	return &adminv1.DeleteFlowResponse{}, nil
}

// TestFlow runs a stored flow or a document against a sample event.
// Nothing leaves the process: email, sms, webhook and publish nodes are
// recorded by a flow.Recorder, and http nodes are answered by dryRunHTTP
// (200 with the JSON body {}) and recorded as "http" effects, so a flow
// can be tested past its http nodes without calling anyone.
func (s *flowServer) TestFlow(ctx context.Context, req *adminv1.TestFlowRequest) (*adminv1.TestFlowResponse, error) {
	if err := authorize(ctx, "tenant", req.GetTenant()); err != nil {
		return nil, err
	}
	var (
		prog *flow.Program
		name string
	)
	switch {
	case req.GetName() != "" && req.GetYaml() != "":
		return nil, invalid("yaml", "set either name (a stored flow) or yaml (a document), not both")
	case req.GetName() != "":
		e, err := s.storedFlow(ctx, req.GetTenant(), req.GetName())
		if err != nil {
			return nil, err
		}
		var problems flow.Problems
		if prog, problems = compileFlow(e.Value); len(problems) > 0 {
			return nil, status.Errorf(codes.FailedPrecondition, "stored flow %s/%s no longer compiles: %v", req.GetTenant(), req.GetName(), problems)
		}
		name = req.GetName()
	case req.GetYaml() != "":
		if err := checkFlowSize("yaml", req.GetYaml()); err != nil {
			return nil, err
		}
		var problems flow.Problems
		if prog, problems = compileFlow([]byte(req.GetYaml())); len(problems) > 0 {
			return nil, problemsErr("yaml", problems)
		}
		name = prog.Name()
	default:
		return nil, invalid("yaml", "set name (a stored flow) or yaml (a document to test)")
	}
	ev, err := s.sampleEvent(req.GetTenant(), req.GetEventJson())
	if err != nil {
		return nil, err
	}
	trig, err := testTrigger(prog, name, ev)
	if err != nil {
		return nil, err
	}

	rctx, cancel := context.WithTimeout(ctx, testFlowTimeout)
	defer cancel()
	rec := &dryRun{}
	started := s.now()
	out := prog.Run(rctx, flow.Input{Event: ev, Tenant: ev.Tenant, Env: ev.Env, Now: s.now, Effects: &rec.Recorder, HTTP: rec}, trig.Target)
	finished := s.now()
	if ctx.Err() != nil {
		// The caller gave up or the call's deadline passed: the run's
		// result says only that it was stopped.
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	res := out.FlowResult(ev, name, trig, started, finished)
	resJSON, err := event.ResultJSON(res)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode flow result: %v", err)
	}
	effects, err := rec.effects()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode effects: %v", err)
	}
	return &adminv1.TestFlowResponse{ResultJson: resJSON, Effects: effects}, nil
}

// sampleEvent decodes the JSON view of an event (see event.JSONView) for
// a dry run of tenantID's flow, filling in what a sample may leave out:
// the id, the time, the source and the trace context. The env (and so the
// subject) is always this environment's, so a sample copied from another
// one runs as is; a sample naming another tenant is refused.
func (s *flowServer) sampleEvent(tenantID string, raw []byte) (*eventsv1.Event, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, required("event_json")
	}
	if len(raw) > maxTestEventBytes {
		return nil, invalid("event_json", fmt.Sprintf("%d bytes; at most %d are accepted", len(raw), maxTestEventBytes))
	}
	var v event.JSONView
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return nil, invalid("event_json", "not the JSON view of an event (id, event_type, source, timestamp, payload, metadata, tenant, env, subject, traceparent): "+err.Error())
	}
	if dec.More() {
		return nil, invalid("event_json", "more than one JSON value")
	}
	switch {
	case v.Tenant != "" && v.Tenant != tenantID:
		return nil, invalid("event_json.tenant", fmt.Sprintf("%q is not the tenant of the request (%s); leave it out", v.Tenant, tenantID))
	case v.EventType == "":
		return nil, required("event_json.event_type")
	}
	if err := validateSampleType(v.EventType); err != nil {
		return nil, invalid("event_json.event_type", err.Error())
	}
	if v.ID == "" {
		v.ID = event.NewID()
	} else if err := event.ValidateID(v.ID); err != nil {
		return nil, invalid("event_json.id", err.Error())
	}
	if v.Traceparent == "" {
		v.Traceparent = event.NewTraceparent()
	} else if !event.ValidTraceparent(v.Traceparent) {
		return nil, invalid("event_json.traceparent", "not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)")
	}
	if v.Timestamp == 0 {
		v.Timestamp = s.now().UnixMilli()
	}
	if v.Source == "" {
		v.Source = testEventSource
	}
	if len(v.Payload) == 0 || bytes.Equal(v.Payload, []byte("null")) {
		v.Payload = json.RawMessage("{}")
	}
	// The subject it would have had on the bus here (none for a result type).
	v.Subject, _ = bus.EventSubject(s.topo().Env, tenantID, v.EventType)
	return &eventsv1.Event{
		Id: v.ID, EventType: v.EventType, Source: v.Source, Timestamp: v.Timestamp, Payload: v.Payload,
		Metadata: v.Metadata, Tenant: tenantID, Env: s.topo().Env, Subject: v.Subject, Traceparent: v.Traceparent,
	}, nil
}

// validateSampleType checks the type of a sample event: an event type, or
// the type of a flow result ({event type}.result), which flows may trigger on.
func validateSampleType(t string) error {
	if base, ok := strings.CutSuffix(t, ".result"); ok && base != "" {
		t = base
	}
	return bus.ValidateEventType(t)
}

// testTrigger picks the trigger a sample event runs, as the flow-executor
// does: a timer tick (source flow.TimerSource with the metadata
// timer_trigger) runs that timer trigger; any other event the first event
// trigger matching its type.
func testTrigger(prog *flow.Program, name string, ev *eventsv1.Event) (flow.Trigger, error) {
	if idx, ok := ev.Metadata[flow.MetaTimerTrigger]; ok && ev.Source == flow.TimerSource {
		i, err := strconv.Atoi(idx)
		if err != nil {
			return flow.Trigger{}, invalid("event_json.metadata", fmt.Sprintf("%s %q is not a trigger index", flow.MetaTimerTrigger, idx))
		}
		t, ok := prog.MatchTimer(i)
		if !ok {
			return flow.Trigger{}, invalid("event_json.metadata", fmt.Sprintf("flow %s has no timer trigger at index %d (%s)", name, i, describeTimers(prog)))
		}
		return t, nil
	}
	if ts := prog.MatchEvent(ev.EventType); len(ts) > 0 {
		return ts[0], nil
	}
	var patterns []string
	for _, t := range prog.Triggers() {
		if t.Type == flow.TriggerEvent {
			patterns = append(patterns, strconv.Quote(t.EventType))
		}
	}
	msg := fmt.Sprintf("no trigger of flow %s matches event type %q", name, ev.EventType)
	if len(patterns) > 0 {
		msg += "; its event triggers are " + strings.Join(patterns, ", ")
	} else {
		msg += "; it has no event triggers"
	}
	if len(prog.Timers()) > 0 {
		msg += fmt.Sprintf("; to run a timer trigger send source %q with metadata %s set to its index (%s)", flow.TimerSource, flow.MetaTimerTrigger, describeTimers(prog))
	}
	return flow.Trigger{}, invalid("event_json.event_type", msg)
}

func describeTimers(prog *flow.Program) string {
	var parts []string
	for _, t := range prog.Timers() {
		parts = append(parts, fmt.Sprintf("%d: %s", t.Index, t.Cron))
	}
	if len(parts) == 0 {
		return "it has none"
	}
	return "timer triggers " + strings.Join(parts, ", ")
}

// problemsErr is InvalidArgument with one field violation of field per
// problem, each "line L, column C: path: message".
func problemsErr(field string, problems flow.Problems) error {
	descs := make([]string, len(problems))
	for i, p := range problems {
		descs[i] = problemText(p)
	}
	msg := fmt.Sprintf("%s: %d problem(s): %s", field, len(problems), strings.Join(descs[:min(len(descs), 5)], "; "))
	if len(descs) > 5 {
		msg += "; ..."
	}
	br := &errdetails.BadRequest{}
	for i, d := range descs {
		if i == maxProblemViolations {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
				Field: field, Description: fmt.Sprintf("and %d more problems (ValidateFlow lists all of them)", len(descs)-i),
			})
			break
		}
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: field, Description: d})
	}
	st := status.New(codes.InvalidArgument, msg)
	if d, err := st.WithDetails(br); err == nil {
		st = d
	}
	return st.Err()
}

// problemText formats a problem as "line L, column C: path: message",
// leaving out what is unknown.
func problemText(p flow.Problem) string {
	var b strings.Builder
	switch {
	case p.Line > 0 && p.Column > 0:
		fmt.Fprintf(&b, "line %d, column %d: ", p.Line, p.Column)
	case p.Line > 0:
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// compileFlow compiles a document and checks that its name can be a key
// of the flows bucket.
func compileFlow(doc []byte) (*flow.Program, flow.Problems) {
	prog, err := flow.Compile(doc)
	if err != nil {
		var problems flow.Problems
		if errors.As(err, &problems) {
			return nil, problems
		}
		return nil, flow.Problems{{Message: err.Error()}}
	}
	if err := bus.ValidateName("name", prog.Name()); err != nil {
		return nil, flow.Problems{{Path: "name", Message: err.Error()}}
	}
	return prog, nil
}

func checkFlowSize(field, doc string) error {
	switch {
	case strings.TrimSpace(doc) == "":
		return required(field)
	case len(doc) > maxFlowBytes:
		return invalid(field, fmt.Sprintf("the document has %d bytes; a flow may have at most %d", len(doc), maxFlowBytes))
	}
	return nil
}

func flowOf(tenantID, name string, e tenantkv.Entry) *adminv1.Flow {
	return &adminv1.Flow{Tenant: tenantID, Name: name, Yaml: string(e.Value), Revision: e.Revision, UpdateTime: timestamppb.New(e.Created)}
}

// replaceWith is the change of a Modify that stores value whatever is stored.
func replaceWith(value []byte) func(tenantkv.Entry, bool) ([]byte, error) {
	return func(tenantkv.Entry, bool) ([]byte, error) { return value, nil }
}

// dryRun records the effects of a dry run in the order the run asked for
// them: commands and published events through the embedded
// flow.Recorder, the requests of http nodes itself.
type dryRun struct {
	flow.Recorder
	mu sync.Mutex
	// http holds the recorded requests, each with the number of Recorder
	// effects before it.
	http []dryRunRequest
}

type dryRunRequest struct {
	after int
	json  []byte
}

// Do records an http node's request and answers it with 200 and the JSON
// body {} without sending it.
func (d *dryRun) Do(req *http.Request) (*http.Response, error) {
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	var body json.RawMessage
	if req.Body != nil {
		data, err := io.ReadAll(io.LimitReader(req.Body, maxDryRunHTTPBody+1))
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		switch {
		case len(data) > maxDryRunHTTPBody:
			body, _ = json.Marshal(fmt.Sprintf("(%d bytes or more, not shown)", maxDryRunHTTPBody+1))
		case len(data) == 0:
		case json.Valid(data):
			body = data
		default:
			body, _ = json.Marshal(string(data))
		}
	}
	headers := map[string]string{}
	for k, vs := range req.Header {
		headers[k] = strings.Join(vs, ", ")
	}
	rec, err := json.Marshal(struct {
		Method  string            `json:"method"`
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers,omitempty"`
		Body    json.RawMessage   `json:"body,omitempty"`
	}{req.Method, req.URL.String(), headers, body})
	if err != nil {
		return nil, err
	}
	after := len(d.Recorder.Effects())
	d.mu.Lock()
	d.http = append(d.http, dryRunRequest{after: after, json: rec})
	d.mu.Unlock()
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(strings.NewReader("{}")),
		ContentLength: 2,
		Request:       req,
	}, nil
}

// effects returns every recorded effect as JSON: commands in their
// protobuf JSON form, published events in the JSON view of an Event,
// http requests as {method, url, headers, body}.
func (d *dryRun) effects() ([]*adminv1.Effect, error) {
	d.mu.Lock()
	reqs := append([]dryRunRequest(nil), d.http...)
	d.mu.Unlock()
	var out []*adminv1.Effect
	flush := func(upTo int) {
		for len(reqs) > 0 && reqs[0].after <= upTo {
			out = append(out, &adminv1.Effect{Kind: effectHTTP, Json: reqs[0].json})
			reqs = reqs[1:]
		}
	}
	for i, fx := range d.Recorder.Effects() {
		flush(i)
		var (
			b   []byte
			err error
		)
		if ev, ok := fx.Message.(*eventsv1.Event); ok {
			b, err = json.Marshal(event.View(ev))
		} else {
			b, err = event.ProtoJSON(fx.Message)
		}
		if err != nil {
			return nil, fmt.Errorf("%s effect: %w", fx.Kind, err)
		}
		out = append(out, &adminv1.Effect{Kind: fx.Kind, Json: b})
	}
	flush(int(^uint(0) >> 1))
	return out, nil
}
