package ingress

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/greentic/events/pkg/bus"
	eventsv1 "github.com/greentic/events/pkg/gen/greentic/events/v1"
	"github.com/greentic/events/pkg/signature"
	"github.com/greentic/events/pkg/tenant"
)

// recordingPublisher validates like the bus does and remembers what it would store.
type recordingPublisher struct{ events []*eventsv1.Event }

func (p *recordingPublisher) PublishEvent(_ context.Context, e *eventsv1.Event) (bus.Published, error) {
	if _, err := bus.EventSubject("dev", e.Tenant, e.EventType); err != nil {
		return bus.Published{}, err
	}
	p.events = append(p.events, e)
	return bus.Published{Stream: "GREENTIC_EVENTS_DEV", Sequence: uint64(len(p.events))}, nil
}

// FuzzWebhook sends arbitrary bodies, correctly signed or not, through the
// whole handler: it must never panic, always answer JSON, and answer 202
// only for a JSON object with a valid type, storing the body unchanged.
func FuzzWebhook(f *testing.F) {
	for _, seed := range []string{
		`{"type":"order.created","id":"o-1"}`,
		`{"type":"order.created","id":12}`,
		`{"type":"order.created","id":null}`,
		`{"type":"a..b"}`,
		`{"type":"order.result"}`,
		`{"type":["x"]}`,
		`{"type":"x","id":"a b"}`,
		`{"type":"x","type":"y"}`,
		`[]`, `null`, `"x"`, `{`, ``, "{\"type\":\"\u00e9\"}", `{"type":"x"} trailing`,
	} {
		f.Add([]byte(seed), true)
		f.Add([]byte(seed), false)
	}
	reg := tenant.NewRegistry()
	reg.PutTenant(tenant.Tenant{ID: "demo"})
	reg.PutSource(genericSource("demo", "generic"))
	f.Fuzz(func(t *testing.T, body []byte, sign bool) {
		pub := &recordingPublisher{}
		h, err := NewHandler(Config{PublishTimeout: 1e9, MaxBodyBytes: 1 << 20, RetryAfter: 5e9, MaxEventsPerRequest: 10}, Deps{Registry: reg, Publisher: pub, Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, "/v1/webhooks/demo/generic", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if sign {
			req.Header.Set("X-Greentic-Signature", "sha256="+signature.SignHMACSHA256(body, secret, "hex"))
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		resp := rec.Result()
		raw, _ := io.ReadAll(resp.Body)
		if !json.Valid(raw) {
			t.Fatalf("answer %d is not JSON: %q", resp.StatusCode, raw)
		}
		switch resp.StatusCode {
		case http.StatusAccepted:
			if !sign || len(pub.events) != 1 || !bytes.Equal(pub.events[0].Payload, body) {
				t.Fatalf("202 for body %q (signed %v, %d events)", body, sign, len(pub.events))
			}
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge:
			if len(pub.events) != 0 {
				t.Fatalf("%d answer stored an event", resp.StatusCode)
			}
		default:
			t.Fatalf("unexpected status %d: %s", resp.StatusCode, raw)
		}
		if !sign && resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("unsigned body answered %d", resp.StatusCode)
		}
	})
}

// FuzzAppendAccepted checks the hand-written 202 body against encoding/json.
func FuzzAppendAccepted(f *testing.F) {
	f.Add("generic:o-1", "order.created", true, false)
	f.Add(`a"b\c<d>&`+"\x01\u00e9", "x", false, true)
	f.Fuzz(func(t *testing.T, id, typ string, dup, batch bool) {
		out := []Accepted{{EventID: id, EventType: typ, Duplicate: dup}, {EventID: typ, EventType: id}}
		var want bytes.Buffer
		if batch {
			_ = json.NewEncoder(&want).Encode(AcceptedBatch{Events: out})
		} else {
			_ = json.NewEncoder(&want).Encode(out[0])
		}
		if got := appendAccepted(nil, out, batch); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("appendAccepted = %s, encoding/json = %s", got, want.Bytes())
		}
	})
}
