package event

import (
	"encoding/json"
	"strings"
	"testing"

	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
)

const validTP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestValidTraceparent(t *testing.T) {
	tests := []struct {
		name string
		tp   string
		want bool
	}{
		{"valid sampled", validTP, true},
		{"valid not sampled", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true},
		{"new traceparent", NewTraceparent(), true},
		{"empty", "", false},
		{"uppercase trace id", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false},
		{"uppercase span id", "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01", false},
		{"all-zero trace id", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},
		{"all-zero span id", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false},
		{"version 01", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"version ff", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"too short", validTP[:54], false},
		{"too long", validTP + "0", false},
		{"trailing field", validTP + "-00", false},
		{"short trace id", "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7a-01", false},
		{"underscore separators", "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01", false},
		{"non-hex flags", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g", false},
		{"non-hex trace id", "00-4bf92f3577b34da6a3ce929d0e0e473z-00f067aa0ba902b7-01", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValidTraceparent(tc.tp); got != tc.want {
				t.Errorf("ValidTraceparent(%q) = %v, want %v", tc.tp, got, tc.want)
			}
		})
	}
}

func TestNewTraceparentIsRandom(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		tp := NewTraceparent()
		if !ValidTraceparent(tp) {
			t.Fatalf("NewTraceparent() = %q, not valid", tp)
		}
		if seen[tp[3:35]] {
			t.Fatalf("NewTraceparent() repeated trace id %s", tp[3:35])
		}
		seen[tp[3:35]] = true
	}
}

func TestChildTraceparent(t *testing.T) {
	tests := []struct {
		name      string
		parent    string
		keepTrace bool
	}{
		{"valid parent keeps trace id", validTP, true},
		{"not sampled parent keeps trace id and flags", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true},
		{"invalid parent starts new trace", "garbage", false},
		{"empty parent starts new trace", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			child := ChildTraceparent(tc.parent)
			if !ValidTraceparent(child) {
				t.Fatalf("ChildTraceparent(%q) = %q, not valid", tc.parent, child)
			}
			if !tc.keepTrace {
				return
			}
			if child[3:35] != tc.parent[3:35] {
				t.Errorf("trace id changed: parent %s child %s", tc.parent, child)
			}
			if child[36:52] == tc.parent[36:52] {
				t.Errorf("span id not changed: parent %s child %s", tc.parent, child)
			}
			if child[53:] != tc.parent[53:] {
				t.Errorf("flags changed: parent %s child %s", tc.parent, child)
			}
			if other := ChildTraceparent(tc.parent); other[36:52] == child[36:52] {
				t.Errorf("two children share span id %s", child[36:52])
			}
		})
	}
}

func TestNewIDUniqueAndValid(t *testing.T) {
	const n = 10000
	seen := make(map[string]bool, n)
	prev := ""
	for i := 0; i < n; i++ {
		id := NewID()
		if err := ValidateID(id); err != nil {
			t.Fatalf("NewID() = %q rejected: %v", id, err)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
		if id < prev {
			t.Fatalf("NewID() not time-ordered: %q after %q", id, prev)
		}
		prev = id
	}
}

func TestValidateID(t *testing.T) {
	tests := []struct {
		name    string
		id      string
		wantErr bool
	}{
		{"uuid", "0190c5a8-7a9b-7cc3-8a5e-3f6d1c2b4a59", false},
		{"provider delivery id", "evt_1NqXyZ2eZvKYlo2C:retry#1", false},
		{"max length", strings.Repeat("a", 256), false},
		{"single char", "x", false},
		{"empty", "", true},
		{"too long", strings.Repeat("a", 257), true},
		{"space", "a b", true},
		{"leading space", " ab", true},
		{"tab", "a\tb", true},
		{"newline", "a\nb", true},
		{"nul", "a\x00b", true},
		{"del", "a\x7fb", true},
		{"non-ascii", "caf\u00e9", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateID(tc.id)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ValidateID(%q) = %v, wantErr %v", tc.id, err, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "event id") {
				t.Errorf("error %q does not name the event id", err)
			}
		})
	}
}

func TestView(t *testing.T) {
	tests := []struct {
		name        string
		payload     []byte
		wantPayload any // decoded payload in the view; nil means absent
	}{
		{"json object kept as json", []byte(`{"order":{"id":42,"total":"9.99"}}`), map[string]any{"order": map[string]any{"id": float64(42), "total": "9.99"}}},
		{"json array", []byte(`[1,2]`), []any{float64(1), float64(2)}},
		{"plain text becomes string", []byte("hello, world"), "hello, world"},
		{"truncated json becomes string", []byte(`{"a":`), `{"a":`},
		{"form body becomes string", []byte("a=1&b=2"), "a=1&b=2"},
		{"empty payload omitted", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := &eventsv1.Event{
				Id: "e1", EventType: "order.created", Source: "webhook/shop", Timestamp: 1700000000000,
				Payload: tc.payload, Metadata: map[string]string{"k": "v"}, Tenant: "acme", Env: "dev",
				Subject: "greentic.events.dev.acme.order.created", Traceparent: validTP,
			}
			b, err := json.Marshal(View(e))
			if err != nil {
				t.Fatalf("marshal view: %v", err)
			}
			if !json.Valid(b) {
				t.Fatalf("view is not valid JSON: %s", b)
			}
			var got map[string]any
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("decode view: %v", err)
			}
			for k, want := range map[string]any{
				"id": "e1", "event_type": "order.created", "source": "webhook/shop", "timestamp": float64(1700000000000),
				"tenant": "acme", "env": "dev", "subject": "greentic.events.dev.acme.order.created", "traceparent": validTP,
			} {
				if got[k] != want {
					t.Errorf("view[%q] = %v, want %v", k, got[k], want)
				}
			}
			p, ok := got["payload"]
			if tc.wantPayload == nil {
				if ok {
					t.Errorf("payload = %v, want absent", p)
				}
				return
			}
			gb, _ := json.Marshal(p)
			wb, _ := json.Marshal(tc.wantPayload)
			if string(gb) != string(wb) {
				t.Errorf("payload = %s, want %s", gb, wb)
			}
		})
	}
}

func TestViewKeepsJSONPayloadBytes(t *testing.T) {
	// Big numbers and key order must survive: the payload is embedded, never re-encoded.
	raw := `{"z":1,"a":12345678901234567890,"f":1.10}`
	v := View(&eventsv1.Event{Id: "e1", Payload: []byte(raw)})
	if string(v.Payload) != raw {
		t.Fatalf("payload = %s, want %s", v.Payload, raw)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	in := &eventsv1.Event{Id: "e1", EventType: "a.b", Payload: []byte(`{"x":1}`), Tenant: "t", Env: "dev", Metadata: map[string]string{"a": "b"}}
	b, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if out.GetId() != "e1" || string(out.GetPayload()) != `{"x":1}` || out.GetMetadata()["a"] != "b" {
		t.Fatalf("round trip = %v", out)
	}
	if _, err := Unmarshal([]byte{0xff, 0xff, 0xff}); err == nil {
		t.Fatal("Unmarshal(garbage) succeeded")
	}
}
