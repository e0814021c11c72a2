package event

import (
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
)

func TestResultJSON(t *testing.T) {
	result := func(output []byte) *eventsv1.FlowResult {
		return &eventsv1.FlowResult{
			EventId: "e1", EventType: "order.created", Tenant: "acme", Env: "dev", Flow: "orders", Trigger: "0:start",
			Status: eventsv1.FlowStatus_FLOW_STATUS_OK, Output: output, StartedAt: 1700000000000, FinishedAt: 1700000000042,
			Trace: []*eventsv1.NodeTrace{{Id: "start", Type: "script", DurationMicros: 12, Outcome: "ok", Attempts: 1}},
		}
	}
	tests := []struct {
		name       string
		in         *eventsv1.FlowResult
		wantOutput string // the output as it appears in the document; "" means absent
	}{
		{"json output embedded", result([]byte(`{"sent": "e1:orders:mail", "n": 12345678901234567890}`)), `{"sent":"e1:orders:mail","n":12345678901234567890}`},
		{"json array", result([]byte(`[1, 2]`)), `[1,2]`},
		{"text output becomes a string", result([]byte("done")), `"done"`},
		{"truncated json becomes a string", result([]byte(`{"a":`)), `"{\"a\":"`},
		{"no output", result(nil), ""},
		{"empty result", &eventsv1.FlowResult{Output: []byte(`{"a":1}`)}, `{"a":1}`},
		{"nil result", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := ResultJSON(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]json.RawMessage
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatalf("not a JSON object: %v\n%s", err, b)
			}
			if got, ok := doc["output"]; string(got) != tc.wantOutput || ok != (tc.wantOutput != "") {
				t.Errorf("output = %s, want %s\n%s", got, tc.wantOutput, b)
			}
			if tc.in == nil {
				return
			}
			// Without the output it is the protobuf JSON of the result.
			delete(doc, "output")
			rest, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			var back eventsv1.FlowResult
			if err := protojson.Unmarshal(rest, &back); err != nil {
				t.Fatalf("not the protobuf JSON of a flow result: %v\n%s", err, b)
			}
			if back.GetEventId() != tc.in.GetEventId() || back.GetStatus() != tc.in.GetStatus() || back.GetFinishedAt() != tc.in.GetFinishedAt() || len(back.GetTrace()) != len(tc.in.GetTrace()) {
				t.Errorf("decoded %v, want %v", &back, tc.in)
			}
			if strings.Contains(string(b), `"eventId"`) || !strings.HasPrefix(string(b), `{"event_id"`) && tc.in.GetEventId() != "" {
				t.Errorf("not the .proto field names in their order:\n%s", b)
			}
		})
	}
}

func TestResultJSONLeavesTheResult(t *testing.T) {
	r := &eventsv1.FlowResult{EventId: "e1", Output: []byte(`{"a":1}`)}
	if _, err := ResultJSON(r); err != nil {
		t.Fatal(err)
	}
	if string(r.GetOutput()) != `{"a":1}` {
		t.Fatalf("output changed to %q", r.GetOutput())
	}
}
