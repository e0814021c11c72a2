package bus

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/greentic/events/pkg/event"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
)

// Header names set on the events and results this package publishes. The
// body is a protobuf Event, or a FlowResult on a subject ending in .result;
// tenant and type are in the subject.
const (
	HeaderMsgID       = jetstream.MsgIDHeader // "Nats-Msg-Id"
	HeaderTraceparent = "traceparent"
	HeaderEventID     = "Greentic-Event-Id"
	// HeaderCommandID is set on sender commands: {event id}:{flow}:{node}.
	HeaderCommandID = "Greentic-Command-Id"
	// HeaderFlows names flows, comma separated: on a dead letter of the
	// flow stage, the flows that failed; on an event (a replayed dead
	// letter), the only flows the executor runs for it.
	HeaderFlows = "Greentic-Flows"
	// HeaderReplay marks a message republished from the dead-letter stream
	// (admin-api's DeadLetterService): its value, the replay marker, is
	// unique per dead letter ("dlq-{sequence}"). Whatever a consumer
	// publishes or records because of a replayed message carries the marker
	// in its id, so it is not taken for a duplicate of what the failed
	// attempt published or recorded.
	HeaderReplay = "Greentic-Replay"
)

// ReplayMarker is the replay marker of the dead letter at sequence seq of
// the dead-letter stream.
func ReplayMarker(seq uint64) string { return "dlq-" + strconv.FormatUint(seq, 10) }

// ReplayMsgID is the de-duplication id of a message republished from the
// dead-letter stream: its original id (or, without one, the dead letter's
// original stream and sequence) and the replay marker. Replaying the same
// dead letter twice stores it once; a later dead letter of the same
// message has another marker.
func ReplayMsgID(originalMsgID, marker string) string {
	return originalMsgID + "/replay/" + marker
}

// maxReplayMarkerLen bounds a replay marker: it is appended to event and
// message ids, which have length limits of their own.
const maxReplayMarkerLen = 64

// ValidateReplayMarker checks the replay marker of a delivery (the value of
// HeaderReplay) before it goes into ids: at most 64 printable ASCII
// characters without spaces.
func ValidateReplayMarker(marker string) error {
	if marker == "" || len(marker) > maxReplayMarkerLen {
		return fmt.Errorf("invalid replay marker %q: must be 1 to %d characters", marker, maxReplayMarkerLen)
	}
	for i := 0; i < len(marker); i++ {
		if c := marker[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("invalid replay marker %q: only printable ASCII without spaces is allowed", marker)
		}
	}
	return nil
}

// WithReplay appends the replay marker to an id derived from a replayed
// message (a result or outcome id); with no marker it returns id unchanged.
func WithReplay(id, marker string) string {
	if marker == "" {
		return id
	}
	return id + "/replay/" + marker
}

// MsgID builds the deterministic de-duplication id of a message. Ids are
// scoped by tenant because event ids can come from outside (a provider's
// delivery id) and two tenants may well send the same one.
func MsgID(tenant string, parts ...string) string {
	return tenant + ":" + strings.Join(parts, ":")
}

// ResultMsgID is the de-duplication id of the result of flow on an event:
// {tenant}/{flow}/{event id}. Results share the events stream; the '/' after
// the tenant (which no tenant or flow name contains) keeps them apart from
// event ids, which follow a ':'.
func ResultMsgID(tenant, flow, eventID string) string {
	return tenant + "/" + flow + "/" + eventID
}

// Published is the outcome of a publish: where JetStream stored the message,
// or that it was a duplicate of one stored earlier within the window.
type Published struct {
	Stream    string
	Sequence  uint64
	Duplicate bool
}

// Publisher publishes to JetStream and waits for the stream's acknowledgement.
type Publisher struct {
	js   jetstream.JetStream
	topo Topology
}

// NewPublisher returns a publisher for the environment of topo.
func NewPublisher(js jetstream.JetStream, topo Topology) *Publisher {
	return &Publisher{js: js, topo: topo}
}

// Topology returns the topology the publisher publishes into.
func (p *Publisher) Topology() Topology { return p.topo }

// encodeBuffers are reused for encoding events: the NATS client copies a
// message into its own buffer before the publish returns.
var encodeBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// PublishEvent validates e, fills in env, subject and traceparent, and
// publishes it with Nats-Msg-Id MsgID(tenant, id). It returns only once
// JetStream has stored the event (or recognised it as a duplicate).
func (p *Publisher) PublishEvent(ctx context.Context, e *eventsv1.Event) (Published, error) {
	if e.Env == "" {
		e.Env = p.topo.Env
	}
	if e.Env != p.topo.Env {
		return Published{}, fmt.Errorf("publish event %s: env %q does not match the bus env %q", e.Id, e.Env, p.topo.Env)
	}
	if err := event.ValidateID(e.Id); err != nil {
		return Published{}, err
	}
	subject, err := EventSubject(e.Env, e.Tenant, e.EventType)
	if err != nil {
		return Published{}, err
	}
	e.Subject = subject
	if !event.ValidTraceparent(e.Traceparent) {
		e.Traceparent = event.NewTraceparent()
	}
	bufp := encodeBuffers.Get().(*[]byte)
	defer encodeBuffers.Put(bufp)
	data, err := proto.MarshalOptions{}.MarshalAppend((*bufp)[:0], e)
	if err != nil {
		return Published{}, fmt.Errorf("encode event %s: %w", e.Id, err)
	}
	*bufp = data[:0] // keep a grown buffer; the client copies data before Publish returns
	// Headers are kept to what the subject and Nats-Msg-Id do not already
	// say: every header is parsed by the server on every message.
	h := make(nats.Header, 3)
	h[HeaderEventID] = []string{e.Id}
	h[HeaderTraceparent] = []string{e.Traceparent}
	return p.Publish(ctx, subject, MsgID(e.Tenant, e.Id), data, h)
}

// PublishResult publishes the result of running flow r.Flow on an event to
// greentic.events.{env}.{tenant}.{type}.result, once per (event, flow) with
// Nats-Msg-Id ResultMsgID. The result of a replayed event (r.Replay set to
// the replay marker) has the id WithReplay(ResultMsgID(...), r.Replay): it
// is stored although the attempt that failed stored a result for the same
// event and flow, and once per replay.
func (p *Publisher) PublishResult(ctx context.Context, r *eventsv1.FlowResult) (Published, error) {
	subject, err := ResultSubject(p.topo.Env, r.Tenant, r.EventType)
	if err != nil {
		return Published{}, err
	}
	// The event id and flow make the de-duplication id: without them every
	// such result of the tenant would be dropped as a duplicate of the first.
	if err := event.ValidateID(r.EventId); err != nil {
		return Published{}, fmt.Errorf("publish result: %w", err)
	}
	if r.Flow == "" {
		return Published{}, fmt.Errorf("publish result of event %s: flow is required", r.EventId)
	}
	msgID := ResultMsgID(r.Tenant, r.Flow, r.EventId)
	if r.Replay != "" {
		if err := ValidateReplayMarker(r.Replay); err != nil {
			return Published{}, fmt.Errorf("publish result of event %s: %w", r.EventId, err)
		}
		msgID = WithReplay(msgID, r.Replay)
	}
	r.Env = p.topo.Env
	data, err := proto.Marshal(r)
	if err != nil {
		return Published{}, fmt.Errorf("encode result of event %s: %w", r.EventId, err)
	}
	h := make(nats.Header, 3)
	h[HeaderEventID] = []string{r.EventId}
	if event.ValidTraceparent(r.Traceparent) {
		h[HeaderTraceparent] = []string{r.Traceparent}
	}
	return p.Publish(ctx, subject, msgID, data, h)
}

// Publish publishes data to subject with the given de-duplication id and
// waits for the stream's acknowledgement.
func (p *Publisher) Publish(ctx context.Context, subject, msgID string, data []byte, h nats.Header) (Published, error) {
	if msgID == "" {
		return Published{}, fmt.Errorf("publish to %s: a message id is required", subject)
	}
	if h == nil {
		h = nats.Header{}
	}
	msg := &nats.Msg{Subject: subject, Data: data, Header: h}
	ack, err := p.js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID))
	if err != nil {
		return Published{}, fmt.Errorf("publish %s to %s: %w", msgID, subject, err)
	}
	return Published{Stream: ack.Stream, Sequence: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

// CommandID is the id of the side effect of node in flow for an event:
// {event id}:{flow}:{node}. The same run redelivered makes the same id.
func CommandID(eventID, flow, node string) string { return eventID + ":" + flow + ":" + node }

// PublishCommand publishes a sender command (an EmailCommand, SmsCommand or
// WebhookCommand) for tenant on greentic.outbound.{env}.{tenant}.{channel},
// with Nats-Msg-Id MsgID(tenant, id): publishing the same command again,
// however often a flow run is retried, stores it once.
func (p *Publisher) PublishCommand(ctx context.Context, tenant, channel, id, traceparent string, cmd proto.Message) (Published, error) {
	subject, err := OutboundSubject(p.topo.Env, tenant, channel)
	if err != nil {
		return Published{}, err
	}
	if err := event.ValidateID(id); err != nil {
		return Published{}, fmt.Errorf("publish %s command: %w", channel, err)
	}
	data, err := proto.Marshal(cmd)
	if err != nil {
		return Published{}, fmt.Errorf("encode %s command %s: %w", channel, id, err)
	}
	h := make(nats.Header, 3)
	h[HeaderCommandID] = []string{id}
	if event.ValidTraceparent(traceparent) {
		h[HeaderTraceparent] = []string{traceparent}
	}
	return p.Publish(ctx, subject, MsgID(tenant, id), data, h)
}
