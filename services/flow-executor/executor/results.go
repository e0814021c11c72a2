package executor

import (
	"encoding/json"
	"fmt"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/greentic/events/pkg/bus"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
)

// Metadata of an event made from a flow result.
const (
	// MetaResultFlow names the flow that produced the result.
	MetaResultFlow = "result_flow"
	// MetaResultHops is the number of results in the chain: 1 for the
	// result of an event, 2 for the result of a flow run on a result, ...
	MetaResultHops = "result_hops"
)

// resultSource is the Event.source of results seen as events.
const resultSource = "greentic/flow"

// resultPayload is the JSON payload of a result seen as an event.
type resultPayload struct {
	EventID    string          `json:"event_id"`
	EventType  string          `json:"event_type"`
	Flow       string          `json:"flow"`
	Trigger    string          `json:"trigger"`
	Status     string          `json:"status"`
	Output     json.RawMessage `json:"output"`
	Error      string          `json:"error,omitempty"`
	StartedAt  int64           `json:"started_at"`
	FinishedAt int64           `json:"finished_at"`
	Replay     string          `json:"replay,omitempty"`
}

// resultEvent turns a flow result on subj into the event flows see:
// type {event type}.result, id {event id}:{flow}, payload the result as
// JSON. It returns a nil event for a chain longer than MaxResultHops, and
// the producing flow, which the result must not run again.
//
// The result of a replayed event is another event than the failed
// attempt's result: its id carries the replay marker
// ({event id}:{flow}/replay/{marker}), so the flows it triggers publish
// their results and effects anew.
func (x *executor) resultEvent(subj bus.Subject, d bus.Delivery) (*eventsv1.Event, string, error) {
	typ := subj.Type + "." + bus.ResultSuffix
	_, hops := bus.SplitResultType(typ)
	if hops > x.cfg.MaxResultHops {
		x.metrics.skipped.WithLabelValues("max_hops").Inc()
		x.log.Warn("flow result not run: chain too long", "subject", d.Subject, "hops", hops, "max", x.cfg.MaxResultHops)
		return nil, "", nil
	}
	r := &eventsv1.FlowResult{}
	if err := proto.Unmarshal(d.Data, r); err != nil {
		return nil, "", bus.Permanent(fmt.Errorf("result on %s does not decode: %w", d.Subject, err))
	}
	if r.Tenant != subj.Tenant || r.EventType != subj.Type || r.Flow == "" {
		return nil, "", bus.Permanent(fmt.Errorf("result of event %s names tenant %q type %q flow %q but was published on %s", r.EventId, r.Tenant, r.EventType, r.Flow, d.Subject))
	}
	if r.Replay != "" {
		if err := bus.ValidateReplayMarker(r.Replay); err != nil {
			return nil, "", bus.Permanent(fmt.Errorf("result of event %s: %w", r.EventId, err))
		}
	}
	status := "ok"
	if r.Status != eventsv1.FlowStatus_FLOW_STATUS_OK {
		status = "error"
	}
	output := json.RawMessage(r.Output)
	if !json.Valid(output) {
		output = json.RawMessage("null")
	}
	payload, err := json.Marshal(resultPayload{
		EventID: r.EventId, EventType: r.EventType, Flow: r.Flow, Trigger: r.Trigger, Status: status,
		Output: output, Error: r.Error, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, Replay: r.Replay,
	})
	if err != nil {
		return nil, "", bus.Permanent(fmt.Errorf("result of event %s: %w", r.EventId, err))
	}
	return &eventsv1.Event{
		Id:          bus.WithReplay(r.EventId+":"+r.Flow, r.Replay),
		EventType:   typ,
		Source:      resultSource + "/" + r.Flow,
		Timestamp:   r.FinishedAt,
		Payload:     payload,
		Metadata:    map[string]string{MetaResultFlow: r.Flow, MetaResultHops: strconv.Itoa(hops)},
		Tenant:      r.Tenant,
		Env:         r.Env,
		Subject:     d.Subject,
		Traceparent: r.Traceparent,
	}, r.Flow, nil
}
