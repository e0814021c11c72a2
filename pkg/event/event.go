// Package event holds helpers around the protobuf Event contract: ids,
// W3C trace context, validation and the JSON view used by APIs and logs.
package event

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/google/uuid"

	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
)

const maxIDLen = 256

// NewID returns a new random, time-ordered event id (UUIDv7).
func NewID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// ValidateID checks an event id supplied from outside: printable ASCII
// without spaces, at most 256 characters.
func ValidateID(id string) error {
	if id == "" {
		return fmt.Errorf("invalid event id: must not be empty")
	}
	if len(id) > maxIDLen {
		return fmt.Errorf("invalid event id: longer than %d characters", maxIDLen)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("invalid event id %q: only printable ASCII without spaces is allowed", id)
		}
	}
	return nil
}

// NewTraceparent starts a new W3C trace: version 00, random trace and span ids, sampled.
func NewTraceparent() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	var out [55]byte // 00-{32 hex}-{16 hex}-01
	copy(out[:], "00-")
	hex.Encode(out[3:35], b[:16])
	out[35] = '-'
	hex.Encode(out[36:52], b[16:])
	copy(out[52:], "-01")
	return string(out[:])
}

// ChildTraceparent keeps the trace id of parent and starts a new span.
// An invalid parent starts a new trace.
func ChildTraceparent(parent string) string {
	if !ValidTraceparent(parent) {
		return NewTraceparent()
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return parent[:36] + hex.EncodeToString(b[:]) + parent[52:]
}

// ValidTraceparent reports whether s is a well-formed version-00 W3C
// traceparent with non-zero trace and span ids.
func ValidTraceparent(s string) bool {
	if len(s) != 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' || s[:2] != "00" {
		return false
	}
	isHex := func(p string) bool {
		zero := true
		for i := 0; i < len(p); i++ {
			c := p[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
			if c != '0' {
				zero = false
			}
		}
		return !zero || len(p) == 2
	}
	return isHex(s[3:35]) && isHex(s[36:52]) && isHex(s[53:55])
}

// Time converts the event's unix-millisecond timestamp.
func Time(e *eventsv1.Event) time.Time { return time.UnixMilli(e.GetTimestamp()).UTC() }

var jsonOpts = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: false}

// JSONView is the JSON shape of an Event for APIs, logs and flows: the
// field names of the contract, with the payload embedded as JSON (not base64).
type JSONView struct {
	ID          string            `json:"id"`
	EventType   string            `json:"event_type"`
	Source      string            `json:"source,omitempty"`
	Timestamp   int64             `json:"timestamp"`
	Payload     json.RawMessage   `json:"payload,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	Tenant      string            `json:"tenant"`
	Env         string            `json:"env"`
	Subject     string            `json:"subject,omitempty"`
	Traceparent string            `json:"traceparent,omitempty"`
}

// View returns the JSON view of e. A payload that is not valid JSON is
// carried as a JSON string so the view stays valid JSON.
func View(e *eventsv1.Event) JSONView {
	p := json.RawMessage(e.GetPayload())
	if len(p) > 0 && !json.Valid(p) {
		p, _ = json.Marshal(string(e.GetPayload()))
	}
	return JSONView{
		ID: e.GetId(), EventType: e.GetEventType(), Source: e.GetSource(), Timestamp: e.GetTimestamp(),
		Payload: p, Metadata: e.GetMetadata(), Tenant: e.GetTenant(), Env: e.GetEnv(),
		Subject: e.GetSubject(), Traceparent: e.GetTraceparent(),
	}
}

// Marshal encodes an Event for the bus (protobuf binary).
func Marshal(e *eventsv1.Event) ([]byte, error) { return proto.Marshal(e) }

// Unmarshal decodes an Event from the bus.
func Unmarshal(b []byte) (*eventsv1.Event, error) {
	e := &eventsv1.Event{}
	if err := proto.Unmarshal(b, e); err != nil {
		return nil, fmt.Errorf("decode event: %w", err)
	}
	return e, nil
}

// ProtoJSON encodes any contract message with the field names of the .proto file.
func ProtoJSON(m proto.Message) ([]byte, error) { return jsonOpts.Marshal(m) }
